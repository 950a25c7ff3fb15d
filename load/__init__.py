"""Benchmark harness: the edge mirror against nginx and registry:2 setups, side by side, through a Storj-like link."""
