"""Benchmarks for fiswatch (GitHub issue 6): `python -m fiswatch.bench [--quick]`.

Every figure is measured as a ratio against a baseline run in the same process or the
same run (alternately, medians over repeats), because the machines are shared and noisy.
Timing targets live here, never in test assertions.
"""
