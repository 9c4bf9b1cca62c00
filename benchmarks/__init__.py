"""Benchmarks: measurements, not tests (never part of the pytest run)."""
