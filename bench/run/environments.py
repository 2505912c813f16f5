"""Systems whose libraries cannot share the harness's environment run their worker in one of their own.

As the AutoML Benchmark runs each framework in its own virtualenv: AutoGluon 1.6.3 pins pandas, Pillow and Ray
below the versions this project pins, so its systems (System.environment = 'autogluon') run `python -m
bench.run.worker` with that environment's interpreter; the worker process is the boundary, and it reads and writes
the same run folder as any other. `python -m bench setup autogluon` builds the environment: a virtualenv with
the library, and this checkout installed without its dependencies (editable, so the worker runs this code).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

from bench.core.options import ConfigError
from bench.run.metadata import REPO_ROOT

# Where `setup` puts an environment unless told otherwise, one folder per environment (BENCH_ENVS_DIR moves them).
ENVS_DIR_ENV = "BENCH_ENVS_DIR"
# Seconds to ask an environment's interpreter which `bench` it imports.
PROBE_TIMEOUT_S = 60.0


class EnvironmentMissing(RuntimeError):
    """A system's environment is absent or unusable; the message says how to set it up."""


@dataclass(frozen=True)
class Environment:
    """A worker environment: what `setup` installs into it and how a run finds its interpreter."""

    name: str
    # pip requirements, installed with --isolated: the machine's pip configuration may prefer a local build of
    # torch that does not match PyPI's torchvision (both must be one build).
    requirements: tuple[str, ...]
    # What the worker itself imports besides the library, with this project's pins (installed after, --no-deps
    # keeps the library's pins).
    worker_requirements: tuple[str, ...]
    # A module that must import for the environment to count as set up.
    probe: str
    # An environment variable naming an interpreter to use instead of the default folder's.
    python_env: str
    # Variables its worker starts with unless the user set them.
    worker_env: tuple[tuple[str, str], ...] = ()

    def folder(self) -> Path:
        """The default folder of this environment."""
        return envs_dir() / self.name


ENVIRONMENTS: dict[str, Environment] = {
    "autogluon": Environment(
        name="autogluon",
        requirements=("torch==2.13.0", "torchvision==0.28.0", "autogluon.multimodal==1.6.3",
                      "autogluon.core[raytune]==1.6.3", "setuptools<81"),
        worker_requirements=("rich==15.0.0", "isal==1.9.1"),
        probe="autogluon.multimodal",
        python_env="BENCH_AUTOGLUON_PYTHON",
        # PyTorch's OpenMP threads spin while they wait for each other; on a CPU that other work shares, a thread
        # spinning for one that is descheduled made resnet18's steps 5-20x slower (0.4 s passive, 2-10 s
        # spinning, batch 8, 2 cores at load 10). Waiting passively costs a busy-waiting loop's latency only.
        worker_env=(("OMP_WAIT_POLICY", "PASSIVE"),),
    ),
}


def envs_dir() -> Path:
    """The folder holding the environments: BENCH_ENVS_DIR, else ~/.cache/bench/envs."""
    given = os.environ.get(ENVS_DIR_ENV)
    return Path(given).expanduser() if given else Path.home() / ".cache" / "bench" / "envs"


def environment(name: str) -> Environment:
    """The environment called `name`, else a ConfigError listing those known."""
    if name not in ENVIRONMENTS:
        raise ConfigError(f"unknown environment {name!r}; valid: {', '.join(ENVIRONMENTS)}")
    return ENVIRONMENTS[name]


def interpreter(name: str) -> Path:
    """The Python of environment `name`: the one its variable names, else its default folder's (which may not
    exist yet)."""
    env = environment(name)
    given = os.environ.get(env.python_env)
    return Path(given).expanduser() if given else env.folder() / "bin" / "python"


def worker_python(name: str) -> str:
    """The interpreter a worker of environment `name` runs with, checked: it exists, imports the library, and
    imports this checkout's `bench` (an environment set up from another checkout would run other code).
    Raises EnvironmentMissing with one line saying how to fix it."""
    env = environment(name)
    python = interpreter(name)
    fix = f"set it up with `python -m bench setup {name}` (or point {env.python_env} at its python)"
    if not python.exists():
        raise EnvironmentMissing(f"the {name} environment is not set up: no {python}; {fix}")
    check = (f"import importlib.util as u, bench; assert u.find_spec({env.probe!r}), 'no {env.probe}'; "
             "print(bench.__file__)")
    try:
        out = subprocess.run([str(python), "-P", "-c", check], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentMissing(f"the {name} environment's {python} does not run ({exc}); {fix}") from exc
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise EnvironmentMissing(f"the {name} environment at {python} is incomplete ({last}); {fix}")
    theirs = Path(out.stdout.strip()).resolve().parent
    ours = Path(__file__).resolve().parents[1]  # the bench package
    if theirs != ours:
        raise EnvironmentMissing(f"the {name} environment at {python} runs the bench of {theirs.parent}, not this "
                                 f"checkout's ({ours.parent}); {fix} from this checkout")
    return str(python)


def setup_commands(name: str, folder: Path) -> list[list[str]]:
    """The commands that build environment `name` in `folder` (after the virtualenv is created)."""
    env = environment(name)
    python = str(folder / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--isolated", "--disable-pip-version-check"]
    return [
        [*pip, *env.requirements],
        [*pip, "--no-deps", *env.worker_requirements],
        [*pip, "--no-deps", "-e", str(REPO_ROOT)],
    ]


def setup(name: str, folder: Path | None = None) -> Path:
    """Creates (or completes) environment `name` in `folder` (default: its default folder) and returns its
    python; pip's output goes to this process's. Raises EnvironmentMissing if a step fails."""
    environment(name)
    if not (REPO_ROOT / "pyproject.toml").exists():
        raise EnvironmentMissing(f"bench is not running from a checkout ({REPO_ROOT} has no pyproject.toml); "
                                 "the environment installs this checkout, so clone the repository first")
    folder = (folder or environment(name).folder()).expanduser().resolve()
    if not (folder / "bin" / "python").exists():
        print(f"creating the {name} environment in {folder}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(folder)
    for command in setup_commands(name, folder):
        print("$ " + " ".join(command), flush=True)
        if subprocess.run(command, stdout=sys.stdout, stderr=sys.stderr).returncode != 0:
            raise EnvironmentMissing(f"setting up the {name} environment failed at: {' '.join(command)}")
    return folder / "bin" / "python"


def worker_interpreter(system: str) -> tuple[str, dict[str, str]]:
    """The python a run of `system` starts its worker with, and the environment variables it needs: the
    harness's own for most systems; for one with an environment of its own (System.environment) that
    environment's (EnvironmentMissing, one line, where it is not set up), unless this interpreter already has
    the library. Such a worker starts with a safe path and without this checkout on PYTHONPATH: the
    repository's top-level datasets/ folder would shadow Hugging Face's `datasets`, which AutoGluon imports."""
    from bench.systems import system_class

    try:
        name = system_class(system).environment
    except ConfigError:
        return sys.executable, {}  # the worker records the unknown system as a failed run
    if not name:
        return sys.executable, {}
    env = environment(name)
    own = os.environ.get(env.python_env) or not _importable(env.probe)  # else this interpreter has the library
    python = worker_python(name) if own else sys.executable
    root = str(REPO_ROOT.resolve())
    kept = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and str(Path(p).resolve()) != root]
    defaults = {k: v for k, v in env.worker_env if k not in os.environ}
    return python, {**defaults, "PYTHONSAFEPATH": "1", "PYTHONPATH": os.pathsep.join(kept)}


def under_ray() -> bool:
    """Whether this process is a task of a running Ray (the Ray executor's run on a node)."""
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def _importable(module: str) -> bool:
    """Whether this interpreter finds `module` (its parent packages are imported to look)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False
