"""Benchmarks of the harness itself: step speed, peer comparison, sweep overhead, resume lookup."""
