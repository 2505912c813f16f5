"""Command line: `python -m bench all | run | report | list | setup`."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from bench.core.backend import BACKENDS
from bench.core.budget import HELP as BUDGET_HELP
from bench.core.budget import BudgetError, parse_budget
from bench.core.options import ConfigError
from bench.core.precision import PRECISIONS
from bench.core.rundir import RUNS_DIR, RUNS_TABLE
from bench.run.store import LOCK as STORE_LOCK
from bench.run.store import ResultsStore, StoreError
from bench.run.suite import MAX_SEED
from bench.run.writer_lock import LOCK_FILE

DEFAULT_OUT = "results"
EXIT_FAILED_RUNS = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad arguments: reported in one line, exit code 2, nothing written."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its four commands."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=(
        "Is AutoML worth its compute against a hand-built network? Runs suites of "
        "datasets x systems x budgets x seeds and reports accuracy against compute."))
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", default=DEFAULT_OUT, help="results folder (default: %(default)s)")
        p.add_argument("--data-dir", help="folder holding the data sets' files (sets BENCH_DATA_DIR)")
        p.add_argument("--force", action="store_true", help="rerun runs already recorded as ok")
        p.add_argument("--keep-models", action="store_true", help="keep exported best models")
        p.add_argument("--max-train", type=int, help="stratified subset of the training set (all datasets)")
        p.add_argument("--max-test", type=int, help="stratified subset of the test set (all datasets)")
        p.add_argument("--max-rss-mb", type=float, help="kill a run whose memory exceeds this many MiB")
        p.add_argument("--max-disk-mb", type=float, help="kill a run whose scratch files exceed this many MiB")
        p.add_argument("--backend", choices=BACKENDS, default=None,
                       help="Keras backend of every Keras system (default: the suite's, else KERAS_BACKEND, else "
                            "tensorflow); a run recorded with another backend is run again")
        p.add_argument("--precision", choices=PRECISIONS, default=None,
                       help="arithmetic of every Keras system: auto picks mixed_bfloat16 where the chip has "
                            "native bf16, else float32 (default: the suite's, else auto)")
        p.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="where runs happen: one at a time here (default), or spread over a Ray cluster")
        p.add_argument("--ray-address", default=None, metavar="ADDR",
                       help="with --executor ray: 'auto' joins the cluster running here, 'ray://HOST:PORT' a remote "
                       "one; default: start a local Ray with this machine's resources")
        p.add_argument("--max-retries", type=int, default=None, metavar="N",
                       help="with --executor ray: tries again a run whose node died, N times (default: 1)")
        p.add_argument("--wait", action="store_true",
                       help="if another driver is writing to --out, wait for it instead of exiting with code 2")

    p_all = sub.add_parser("all", help="run a suite, then write the report")
    p_all.add_argument("--suite", default=None, help="a shipped suite's name or a .toml path (default: default)")
    p_all.add_argument("--dry-run", action="store_true", help="list the runs and stop")
    p_all.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p_all.add_argument("--seeds", default=None, metavar="K,K,...",
                       help="run the suite with these seeds instead of its own (e.g. 0,1,2)")
    common(p_all)

    p_run = sub.add_parser("run", help="run one dataset x system x budget x seed")
    p_run.add_argument("--dataset", required=True, help="digits, cifar10, malaria or folder:PATH")
    p_run.add_argument("--system", required=True, help="majority, resnet, resnet-2019, autokeras, ...")
    p_run.add_argument("--budget", required=True, help=BUDGET_HELP)
    p_run.add_argument("--seed", type=int, default=None, help="seed (default: 0)")
    p_run.add_argument("--seeds", default=None, metavar="K,K,...", help="several seeds, one run each (e.g. 0,1,2)")
    p_run.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                       help="dataset option, repeatable (e.g. split=patient)")
    p_run.add_argument("--system-option", action="append", default=[], metavar="KEY=VALUE",
                       help="system option, repeatable (e.g. batch_size=64)")
    p_run.add_argument("--timeout", help="hard limit of the run process (default: from the budget)")
    common(p_run)

    p_report = sub.add_parser("report", help="write tables, plots and REPORT.md from the results table alone")
    p_report.add_argument("--out", default=DEFAULT_OUT, help="results folder (default: %(default)s)")
    p_report.add_argument("--baseline", default="resnet", help="the hand-built system (default: %(default)s)")
    p_report.add_argument("--price-per-hour", type=float, metavar="USD",
                          help="US dollars per CPU-machine hour: adds cost columns (none without a price)")
    p_report.add_argument("--gpu-price-per-hour", type=float, metavar="USD",
                          help="US dollars per GPU-machine hour, for runs that used a GPU")
    p_report.add_argument("--managed-automl-price-per-hour", type=float, metavar="USD",
                          help="US dollars per hour of a managed cloud AutoML service, applied to AutoML fit hours")
    p_report.add_argument("--parity-tolerance", type=float, metavar="POINTS",
                          help="accuracy points within which AutoML counts as reaching the baseline (default: 0.5)")
    p_report.add_argument("--compute", choices=("time", "flops"), default="time",
                          help="the headline figure's x axis: mean fit time or mean training FLOPs per run "
                               "(default: %(default)s)")

    sub.add_parser("list", help="datasets (with availability), systems, budget forms and suites")

    p_setup = sub.add_parser("setup", help="build the environment of their own some systems run in (autogluon)")
    p_setup.add_argument("environment", help="the environment: autogluon (for the autogluon systems)")
    p_setup.add_argument("--path", default=None, help="where to build it (default: ~/.cache/bench/envs/NAME, or "
                         "BENCH_ENVS_DIR/NAME); a path other than the default is then named by "
                         "BENCH_AUTOGLUON_PYTHON=PATH/bin/python")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        if args.command == "list":
            return cmd_list(console)
        if args.command == "report":
            return cmd_report(args, console)
        if args.command == "setup":
            return cmd_setup(args)
        if args.command == "run":
            return cmd_run(args, console)
        return cmd_all(args, console)
    except (UsageError, ConfigError, BudgetError, StoreError) as exc:
        # One line whatever the message holds (a user's exception text may span several).
        print(f"bench {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]: finished runs are kept; rerun the same command to resume")
        return 130


# ---------------------------------------------------------------------------------------------------
def _check_out_dir(out: str) -> Path:
    """The output folder, or a UsageError if it cannot be written or holds something other than results where
    the harness writes (checked before anything is written)."""
    if not out:
        raise UsageError("--out is empty; name a results folder (e.g. --out results)")
    path = Path(out).expanduser()
    for name, folder in ((RUNS_DIR, True), (RUNS_TABLE, False), (LOCK_FILE, False), (STORE_LOCK, False)):
        inside = path / name
        if inside.exists() and inside.is_dir() != folder:
            what = "a file" if folder else "a folder"
            raise UsageError(f"results folder {path}: {inside} is {what}, where the harness keeps its "
                             f"{'run folders' if folder else 'own file'}; move it away or choose another --out")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"output folder {path}: {probe} is a file; choose another --out")
    try:
        # A real write, removed at once: permission bits say little when running as root.
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".bench-probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise UsageError(f"output folder {path} is not writable ({exc.strerror}); choose another --out") from exc
    return path


def _apply_data_dir(data_dir: str | None) -> None:
    if data_dir is None:
        return
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise UsageError(f"--data-dir {data_dir}: no such folder")
    # Environment, so the run processes (children) see it too.
    os.environ["BENCH_DATA_DIR"] = str(path.resolve())


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise UsageError(f"{name} must be a positive integer, got {value}")


def _positive_number(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UsageError(f"{name} must be a positive number, got {value}")


def _check_limits(args: argparse.Namespace) -> None:
    """The run limits shared by `all` and `run`, checked before anything is written."""
    _positive("--max-train", args.max_train)
    _positive("--max-test", args.max_test)
    # Zero or less would kill every run at once (or, read as false, silently impose no cap).
    _positive_number("--max-rss-mb", args.max_rss_mb)
    _positive_number("--max-disk-mb", args.max_disk_mb)
    if args.max_retries is not None and args.max_retries < 0:
        raise UsageError(f"--max-retries must be a non-negative integer, got {args.max_retries}")
    if args.executor == "local" and (args.ray_address is not None or args.max_retries is not None):
        raise UsageError("--ray-address and --max-retries need --executor ray")


def parse_seeds(text: str, flag: str = "--seeds") -> tuple[int, ...]:
    """'0,1,2' as (0, 1, 2): distinct integers from 0 to MAX_SEED, else a UsageError."""
    seeds: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not (item.isascii() and item.isdigit() and len(item) <= 10 and int(item) <= MAX_SEED):
            raise UsageError(f"{flag} {text!r}: give comma-separated integers from 0 to {MAX_SEED}, "
                             f"e.g. 0,1,2 ({item!r} is not one)")
        if int(item) in seeds:
            raise UsageError(f"{flag} {text!r}: seed {int(item)} is given twice")
        seeds.append(int(item))
    return tuple(seeds)


def _check_table(out: Path) -> None:
    """A results table that cannot be read stops the command before any run (StoreError names its line)."""
    ResultsStore(out).records()


def _executor(args: argparse.Namespace, max_rss_mb: float | None = None, max_disk_mb: float | None = None) -> Any:
    """The executor the arguments ask for, with the run limits (the command line's over the suite's)."""
    from bench.run.execute import LocalExecutor
    from bench.run.supervise import Limits

    limits = Limits(max_rss_mb=max_rss_mb if args.max_rss_mb is None else args.max_rss_mb,
                    max_disk_mb=max_disk_mb if args.max_disk_mb is None else args.max_disk_mb)
    if args.executor == "local":
        return LocalExecutor(limits)
    from bench.run.ray_executor import DEFAULT_MAX_RETRIES, RayExecutor

    retries = DEFAULT_MAX_RETRIES if args.max_retries is None else args.max_retries
    return RayExecutor(limits, address=args.ray_address, max_retries=retries)


def _run(specs: list[Any], args: argparse.Namespace, out: Path, console: Console,
         announce: Callable[[], None] | None = None, **limits: Any) -> Any:
    """Runs the specs on the executor asked for, releasing it afterwards; announce (what is about to run) is
    called once the results folder is held, so a busy folder's error is all a refused command prints."""
    from bench.run.driver import run_specs
    from bench.run.writer_lock import FolderBusy, hold

    def waiting(who: str) -> None:
        console.print(f"waiting for results folder {out}, held by {who}")

    try:
        # One writer per results folder, for the whole suite (the executor's start included).
        with hold(out, wait=args.wait, on_wait=waiting):
            if announce is not None:
                announce()
            executor = _executor(args, **limits)
            try:
                return run_specs(specs, executor, out, force=args.force, console=console)
            finally:
                executor.close()
    except FolderBusy as exc:
        raise UsageError(str(exc)) from None


def _finish(summary: Any, out: Path, console: Console, write_report: bool) -> int:
    console.print(f"[bold]done[/]: {summary.line()}; results in {out / RUNS_TABLE}")
    code = EXIT_FAILED_RUNS if summary.failed else 0
    if write_report:
        code = max(code, _report(out, console))
    return code


def _report(out: Path, console: Console, **kwargs: Any) -> int:
    from bench.run.supervise import harness_env

    # The plots import matplotlib, which writes its font cache where MPLCONFIGDIR says: in the harness's cache,
    # as for the run processes, unless the user names a place.
    if (place := harness_env().get("MPLCONFIGDIR")) is not None:
        os.environ["MPLCONFIGDIR"] = place
    from bench.report import write_report

    try:
        paths = write_report(out, **{k: v for k, v in kwargs.items() if v is not None})
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]report failed[/]: {exc}")
        return EXIT_FAILED_RUNS
    main_file = next((p for p in paths if p.name == "REPORT.md"), paths[0] if paths else out)
    console.print(f"report: {main_file} ({len(paths)} files)")
    return 0


def cmd_all(args: argparse.Namespace, console: Console) -> int:
    """Runs a suite (resuming by default), then writes the report."""
    from bench.run.driver import describe
    from bench.run.suite import DEFAULT_SUITE, load_suite

    _check_limits(args)
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    out = _check_out_dir(args.out)
    _apply_data_dir(args.data_dir)
    suite = load_suite(args.suite or DEFAULT_SUITE)
    # The command line's over the suite's; nothing else about the suite changes.
    overrides = {k: v for k, v in (("precision", args.precision), ("seeds", seeds), ("backend", args.backend))
                 if v is not None}
    if overrides:
        from dataclasses import replace

        suite = replace(suite, **overrides)
    specs = suite.specs(str(out), keep_models=args.keep_models)
    if args.max_train or args.max_test:
        from dataclasses import replace

        specs = [replace(s, dataset=replace(s.dataset, max_train=args.max_train or s.dataset.max_train,
                                            max_test=args.max_test or s.dataset.max_test)) for s in specs]
    if not args.dry_run:
        _check_table(out)
    def announce() -> None:
        console.print(f"suite [bold]{escape(suite.name)}[/]: {len(specs)} runs - {escape(suite.description)}")

    if args.dry_run:
        announce()
        for spec in specs:
            print(describe(spec))
        return 0
    summary = _run(specs, args, out, console, announce, max_rss_mb=suite.max_rss_mb, max_disk_mb=suite.max_disk_mb)
    return _finish(summary, out, console, write_report=not args.no_report)


def parse_assignments(items: list[str], what: str) -> dict[str, Any]:
    """KEY=VALUE pairs; values read as TOML (numbers, true/false, quoted strings), else as plain text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {item!r} is not KEY=VALUE")
        try:
            parsed = tomllib.loads(f"v = {value}")
        except tomllib.TOMLDecodeError:
            parsed = {}
        read = parsed.get("v") if list(parsed) == ["v"] else None
        if read is None or isinstance(read, dt.date | dt.time):  # a date is text here
            out[key] = value
        elif isinstance(read, list | dict) or (isinstance(read, float) and not math.isfinite(read)):
            # Options travel to the run process as JSON and into the table as text: scalars only.
            raise UsageError(f"{what} {item!r}: a value is a string, a boolean or a finite number")
        else:
            out[key] = read
    return out


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    """Runs one spec and records it in the same results table."""
    from bench.datasets.registry import open_dataset
    from bench.run.spec import DatasetRef, RunSpec, freeze
    from bench.run.suite import TimeoutRule
    from bench.systems import make_system

    _check_limits(args)
    if args.seed is not None and args.seeds is not None:
        raise UsageError("give --seed K or --seeds K,K,..., not both")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else (0 if args.seed is None else args.seed,)
    if not 0 <= seeds[0] <= MAX_SEED:
        raise UsageError(f"--seed must be an integer from 0 to {MAX_SEED}, got {seeds[0]}")
    budget = parse_budget(args.budget)
    dataset_options = parse_assignments(args.dataset_option, "--dataset-option")
    system_options = parse_assignments(args.system_option, "--system-option")
    dataset = open_dataset(args.dataset, dataset_options)
    make_system(args.system, system_options)
    if args.timeout is not None:
        limit = parse_budget(args.timeout)
        timeout = limit.seconds
        if timeout is None or limit.trials is not None or timeout < 1:
            raise UsageError(f"--timeout {args.timeout!r} must be a time of at least 1s, such as 30m")
    else:
        timeout = TimeoutRule().for_budget(budget)
    out = _check_out_dir(args.out)
    _apply_data_dir(args.data_dir)
    # Asked for by name, a data set that is not here is an error; in a suite it is a skipped row (driver).
    found = dataset.availability()
    if not found.ok:
        raise UsageError(f"dataset {args.dataset!r} is not available: {found.reason}")
    _check_table(out)
    specs = [RunSpec(dataset=DatasetRef(args.dataset, freeze(dataset_options), args.max_train, args.max_test),
                     system=args.system, system_options=freeze(system_options), budget=budget, seed=seed,
                     timeout_s=timeout, out_dir=str(out), keep_models=args.keep_models,
                     precision=args.precision or "auto", backend=args.backend or "") for seed in seeds]
    summary = _run(specs, args, out, console)
    return _finish(summary, out, console, write_report=False)


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    """Regenerates the report from runs.csv; no training."""
    if not args.out:
        raise UsageError("--out is empty; name the results folder to report on (e.g. --out results)")
    out = Path(args.out)
    if not (out / RUNS_TABLE).exists():
        raise UsageError(f"no results table {out / RUNS_TABLE}: run `python -m bench all` first")
    for flag, price in (("--price-per-hour", args.price_per_hour), ("--gpu-price-per-hour", args.gpu_price_per_hour),
                        ("--managed-automl-price-per-hour", args.managed_automl_price_per_hour)):
        if price is not None and not (math.isfinite(price) and price >= 0):
            raise UsageError(f"{flag} must be a non-negative number, got {price}")
    if args.parity_tolerance is not None and not (math.isfinite(args.parity_tolerance) and
                                                  0 <= args.parity_tolerance <= 100):
        raise UsageError(f"--parity-tolerance must be a number of points from 0 to 100, got {args.parity_tolerance}")
    _check_table(out)
    return _report(out, console, baseline=args.baseline, price_per_hour=args.price_per_hour,
                   gpu_price_per_hour=args.gpu_price_per_hour,
                   managed_automl_price_per_hour=args.managed_automl_price_per_hour,
                   parity_tolerance=None if args.parity_tolerance is None else args.parity_tolerance / 100,
                   compute=args.compute)


def cmd_list(console: Console) -> int:
    """Prints datasets (with availability), systems, budget forms and suites."""
    from bench.datasets.registry import dataset_names, open_dataset
    from bench.run.suite import load_suite, suite_names
    from bench.systems import system_description, system_names

    print("datasets:")
    for name in dataset_names():
        ds = open_dataset(name, {"path": "DIR"} if name == "folder" else {})
        if name == "folder":
            print(f"  folder:PATH  {ds.description}")
            continue
        found = ds.availability()
        state = "available" if found.ok else f"unavailable - {found.reason}"
        print(f"  {name:12s} {ds.description}\n  {'':12s} {state}")
    print("systems:")
    for name in system_names():
        print(f"  {name:18s} {system_description(name)}")
    print(f"budgets:\n  {BUDGET_HELP}")
    print("suites:")
    for name in suite_names():
        try:
            desc = load_suite(name).description
        except ConfigError as exc:
            desc = f"(invalid: {exc})"
        print(f"  {name:18s} {desc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def cmd_setup(args: argparse.Namespace) -> int:
    """Builds a system environment (bench.run.environments); pip's progress goes to the terminal."""
    from bench.run import environments

    env = environments.environment(args.environment)  # an unknown name: one line, exit 2
    folder = Path(args.path).expanduser() if args.path else None
    if folder is not None and folder.exists() and not folder.is_dir():
        raise UsageError(f"--path {args.path} is a file; give a folder for the environment")
    try:
        python = environments.setup(env.name, folder)
    except environments.EnvironmentMissing as exc:
        print(f"bench setup: error: {exc}", file=sys.stderr)
        return EXIT_FAILED_RUNS
    default = folder is None or folder.resolve() == env.folder().resolve()
    hint = "" if default else f"; point {env.python_env}={python} at it before running its systems"
    print(f"the {env.name} environment is ready: {python}{hint}")
    return 0
