"""Benchmarks for the emulator, each measured side by side with a bare aiohttp baseline.

Run them all with ``python -m bench`` (see bench/README.md); never part of the test suite.
"""
