"""Benchmarks for `make bench`; see README.md in this folder."""
