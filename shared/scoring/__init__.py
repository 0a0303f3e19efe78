"""Scoring: rules that turn behaviour into points, decaying engagement, and the ledger of why."""
