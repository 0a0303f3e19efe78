"""Campaigns: a template sent to a segment, with variants, a holdout and measured uplift."""
