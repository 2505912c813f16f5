"""bench: AutoML (Auto-Keras) against a hand-built baseline, measured honestly."""

__version__ = "0.1.0"
