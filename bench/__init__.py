"""Benchmarks: each module is one scenario, run as `python -m bench.<name>` from the repo root
(`--help` for its options); what they share is in `bench.stack`."""
