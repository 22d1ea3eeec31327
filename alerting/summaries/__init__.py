"""Summaries of a patient's home readings: what clinicians read and what average rules compare."""
