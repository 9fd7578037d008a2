"""Insight: threshold rules that open and resolve alerts (forecasts come next)."""
