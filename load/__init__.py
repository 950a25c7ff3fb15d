"""Benchmark harness: the edge against nginx and registry:2 setups, side by side, through a Storj-like link."""
