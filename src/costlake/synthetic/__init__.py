"""Synthetic billing with known anomalies, for demos, tests and benchmarks."""
