"""Metrics: pure functions over predictions and references (no model code here)."""
