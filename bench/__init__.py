"""Benchmarks and cost model: `python -m bench` measures side by side and writes BENCHMARKS.md."""
