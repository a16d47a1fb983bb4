"""Benchmark of dhbot against a naive Playwright script and an HTTP floor (see run.py)."""
