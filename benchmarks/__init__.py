"""Benchmarks, run as scripts (`python benchmarks/bench.py`); a package only for the tests."""
