"""``make bench``: speed, cost and import-time measurements, written into BENCHMARKS.md."""
