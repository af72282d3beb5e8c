"""Benchmarks of MAGRAY itself: retrieval quality on BEIR-format datasets."""
