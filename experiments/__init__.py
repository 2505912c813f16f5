"""The studies behind results/: what their scripts run, from the repository root as `python -m experiments.NAME`.

Not installed with bench (pyproject.toml lists only bench's packages); the benchmarks under tests/ that time a
study's steps import them from here.
"""
