"""Which Keras backend a run's Keras systems compute with: the `backend` run option.

Keras 3 runs the same models on TensorFlow, JAX or PyTorch. The worker process learns its backend from
`KERAS_BACKEND`, which the supervisor sets before the worker imports Keras (Keras reads it once, on import).
Like precision, the backend is not part of a run's identity: the backend used is recorded per run (runs.csv
`backend`), and a recorded run made with another backend than an explicit request is run again (driver).
"""

from __future__ import annotations

import os

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_BACKEND = "tensorflow"  # what Keras itself picks without KERAS_BACKEND, and what every figure used
ENV = "KERAS_BACKEND"


def check(name: str) -> str:
    """The option's value ('' = the environment's), or a ValueError naming the valid ones."""
    if name and name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; valid: {', '.join(BACKENDS)}")
    return name


def resolve(requested: str) -> str:
    """The backend a run with this request computes with: the request, else KERAS_BACKEND, else TensorFlow."""
    return requested or os.environ.get(ENV) or DEFAULT_BACKEND


def satisfies(requested: str, recorded: str) -> bool:
    """Whether a recorded run's backend meets a request ('' accepts any; records made before the option, with
    no backend, were TensorFlow's)."""
    return not requested or requested == (recorded or DEFAULT_BACKEND)
