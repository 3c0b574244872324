"""Sweep driver library for tpusim: sweep files, the results table, running points."""
