"""Benchmark of our BERT + Triton NLU against Rasa's default DIET pipeline on public datasets.

`python -m bench` (or `make bench`) splits each dataset, trains both pipelines NLU-only,
measures quality and latency, and writes bench/results/results.json and docs/benchmarks.md.
"""
