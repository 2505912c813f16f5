"""Which arithmetic a run's Keras systems compute in: the `precision` run option and its `auto` choice.

The harness applies one Keras dtype policy to every Keras system of a run alike (System.uses_keras), so the
two sides of a comparison always get the same arithmetic. `auto` picks mixed bfloat16 where the chip computes
bfloat16 natively and float32 elsewhere:

- a GPU the run holds decides when there is one (training runs there): NVIDIA compute capability 8.0 or newer
  (Ampere, Hopper, ...) has bfloat16 tensor cores; older GPUs get float32 (mixed float16 would need loss
  scaling and can diverge: it is offered explicitly, never picked);
- else the CPU: AMX-BF16 (Intel Sapphire Rapids and later) or AVX512-BF16 (Intel Cooper Lake, AMD Zen 4 and
  later) as /proc/cpuinfo lists them; oneDNN, which TensorFlow uses on x86, runs bfloat16 convolutions and
  matrix products on them.

What was picked and why is recorded with each run (runs.csv `precision`, metadata `precision`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.measure.gpu_usage import held_capabilities

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# CPU flags (as /proc/cpuinfo spells them) that mean native bfloat16 arithmetic.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# The first NVIDIA compute capability with bfloat16 tensor cores (A100).
BF16_GPU_CAPABILITY = (8, 0)


@dataclass(frozen=True)
class Precision:
    """The policy a run computes in and why it was chosen."""

    requested: str  # one of PRECISIONS
    policy: str  # a Keras dtype policy name: float32, mixed_bfloat16 or mixed_float16
    reason: str  # what was seen: the CPU flags or GPU capability behind an `auto` choice

    def as_metadata(self) -> dict[str, str]:
        """For metadata.json."""
        return {"requested": self.requested, "policy": self.policy, "reason": self.reason}


def check(requested: str) -> str:
    """The option's value, or a ValueError naming the valid ones."""
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; valid: {', '.join(PRECISIONS)}")
    return requested


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not exist)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def choose(requested: str, flags: frozenset[str] | None = None,
           gpu_capabilities: list[tuple[int, int]] | None = None) -> Precision:
    """The policy for `requested` on this machine (flags and GPU capabilities read here when not given)."""
    check(requested)
    if requested != "auto":
        return Precision(requested, requested, "asked for")
    gpus = held_capabilities() if gpu_capabilities is None else gpu_capabilities
    if gpus:
        lowest = min(gpus)
        seen = ", ".join(f"{major}.{minor}" for major, minor in gpus)
        if lowest >= BF16_GPU_CAPABILITY:
            return Precision(requested, "mixed_bfloat16", f"GPU compute capability {seen} (bf16 from 8.0)")
        return Precision(requested, "float32", f"GPU compute capability {seen} (no bf16 below 8.0)")
    flags = cpu_flags() if flags is None else flags
    native = [f for f in BF16_CPU_FLAGS if f in flags]
    if native:
        return Precision(requested, "mixed_bfloat16", f"CPU flags {' '.join(native)}")
    return Precision(requested, "float32", f"CPU without {' or '.join(BF16_CPU_FLAGS)}")


def satisfies(requested: str, recorded: str) -> bool:
    """Whether a run recorded with policy `recorded` counts as done for a request (resuming a suite).

    `auto` takes whatever this machine or another chose; an explicit policy needs that policy. Records made
    before this option have no policy and were float32.
    """
    return requested == "auto" or requested == (recorded or "float32")
