"""Lifecycle metrics: stage distribution, funnel conversion, customers and cohorts, revenue, by period."""
