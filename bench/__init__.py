"""Benchmarks: `python -m bench [--full] [--only SUITE ...]` (also `make bench`, `make bench-full`)."""
