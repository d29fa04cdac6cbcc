"""Benchmarks: scripts that print their figures as ratios against a peer (README)."""
