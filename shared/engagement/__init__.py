"""Engagement index and lifecycle stages: where each contact stands, and how it moves."""
