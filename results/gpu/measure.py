"""Runs a command with the harness's NVML sampler around it and writes its GPU usage and wall time as JSON.

For the airbench peer, which runs outside the harness (PyTorch, through its pytest runner): the same
figures a harness run records (gpu_s, gpu_busy_s, gpu_mem_peak_mb, gpu_energy_j), over the whole command,
imports and data preparation included, so they bound the peer's training from above.

Usage: python results/gpu/measure.py OUT.json -- COMMAND [ARG ...]   (exits with the command's status)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.measure.gpu_usage import GpuSampler


def main(argv: list[str]) -> int:
    out, sep, *command = argv
    if sep != "--" or not command:
        raise SystemExit(__doc__)
    sampler = GpuSampler().start()
    start = time.monotonic()
    with sampler.window():
        status = subprocess.call(command)
    fields = {**sampler.stop().as_fields(), "wall_s": time.monotonic() - start, "returncode": status}
    Path(out).write_text(json.dumps(fields, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
