"""Tracking: the Segment HTTP Tracking API, from request bytes to domain behaviours."""
