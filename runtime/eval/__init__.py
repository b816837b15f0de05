"""Evaluation: datasets, metrics, the per-item loop with resumable results, and reports."""
