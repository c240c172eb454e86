"""connbot's benchmarks: `make bench` (python -m bench.run) measures and rewrites bench/RESULTS.md."""
