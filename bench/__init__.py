"""Benchmarks: each hot path against a baseline measured in the same run."""
