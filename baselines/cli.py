"""Command line for one recipe (`python -m bench.baselines.cifar10 --help`): load data, train, print test accuracy.

Data comes from the bench data set registry: --path names a file or folder (the adapter's `path` option),
otherwise BENCH_DATA_DIR and the Keras cache are searched, as for `python -m bench`.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType


def set_constants(module: ModuleType, assignments: Sequence[str]) -> None:
    """Sets the recipe module's constants from NAME=VALUE strings, each VALUE a Python literal.

    Only upper-case names the module already has are accepted. Call it before the recipe is built: the
    recipe reads the constants, and derives its other values from them, when it is built.
    """
    # Run as `python -m`, the module is __main__; its spec still has its name.
    module_name = module.__spec__.name if module.__spec__ is not None else module.__name__
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        if not hasattr(module, name) or not name.isupper():
            constants = ", ".join(n for n in vars(module) if n.isupper())
            raise SystemExit(f"--set {assignment}: {module_name} has no constant {name!r}; its constants: "
                             f"{constants}")
        setattr(module, name, ast.literal_eval(value))


def main(dataset: str, make_recipe: Callable[[str], object], presets: Sequence[str], default_preset: str,
         argv: Sequence[str] | None = None) -> dict[str, float]:
    """Parses arguments, trains the recipe, prints and returns test accuracy and times."""
    parser = argparse.ArgumentParser(
        prog=f"python -m bench.baselines.{dataset}", description=f"Train the {dataset} baseline and score it once "
        "on the test set. Example on a GPU: KERAS_BACKEND=jax python -m bench.baselines.cifar10 --preset full "
        "--path ../shared/data/cifar10-jpeg.zip")
    parser.add_argument("--preset", choices=list(presets), default=default_preset, help="recipe preset")
    parser.add_argument("--dataset", default=dataset, help="bench data set name (default: %(default)s)")
    parser.add_argument("--path", help="the data set's file or folder (else BENCH_DATA_DIR, Keras cache)")
    parser.add_argument("--split", default=None, help="split protocol ('cell' or 'patient' for malaria)")
    parser.add_argument("--max-train", type=int, help="stratified training subset size")
    parser.add_argument("--max-test", type=int, help="stratified test subset size")
    parser.add_argument("--epochs", type=int, help="override the preset's epoch count (values derived from it, "
                        "such as a warm-up length, stay the preset's)")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size alone: the LR and "
                        "other values derived from it stay the preset's (--set BATCH_SIZE=N rescales them)")
    parser.add_argument("--budget", type=float, help="wall-clock seconds for training (scales the schedule)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_bfloat16 policy (GPU)")
    parser.add_argument("--out", type=Path, help="folder for history.csv and result.json")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override one of the recipe module's constants (for tuning runs); values the "
                        "recipe derives from it follow")
    args = parser.parse_args(argv)
    set_constants(sys.modules[make_recipe.__module__], args.set)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import keras
    from sklearn.metrics import accuracy_score

    from bench.baselines.training import TTA_AVERAGES, average_views, train
    from bench.measure.timing import measure

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    t0 = time.perf_counter()
    from bench.datasets.registry import load_data

    options = {k: v for k, v in (("path", args.path), ("split", args.split)) if v is not None}
    data = load_data(args.dataset, options, max_train=args.max_train, max_test=args.max_test)
    load_s = time.perf_counter() - t0
    print(f"data: {len(data.x_train)} train, {len(data.x_test)} test, {data.input_shape}, split {data.split} "
          f"({load_s:.1f}s to load); backend {keras.backend.backend()}", flush=True)
    rec = make_recipe(args.preset).with_overrides(args.epochs, args.batch_size)  # type: ignore[attr-defined]
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    deadline = None if args.budget is None else time.monotonic() + args.budget
    with measure() as fit_clock:
        trained = train(rec, data.x_train, data.y_train, data.n_classes, seed=args.seed, deadline=deadline,
                        history_path=None if args.out is None else args.out / "history.csv")
    with measure() as predict_clock:
        views = trained.views(data.x_test)
        proba = average_views(views, rec.tta_average)
    # Every way of averaging the test-time views, from the same predictions: a paired comparison for free.
    by_average = {how: float(accuracy_score(data.y_test, average_views(views, how).argmax(axis=1)))
                  for how in TTA_AVERAGES} if len(views) > 1 else {}
    result = {
        "recipe": rec.name, "overrides": args.set, "backend": keras.backend.backend(), "split": data.split,
        "n_train": len(data.x_train), "n_test": len(data.x_test), "epochs": len(trained.history),
        "test_accuracy": float(accuracy_score(data.y_test, proba.argmax(axis=1))),
        "tta_average": rec.tta_average, "test_accuracy_by_tta_average": by_average,
        "val_accuracy": trained.val_accuracy, "fit_s": fit_clock.wall_s, "predict_s": predict_clock.wall_s,
        "params": trained.params,
    }
    print(trained.history.to_string(index=False))
    print(json.dumps(result, indent=1), flush=True)
    if args.out is not None:
        (args.out / "result.json").write_text(json.dumps(result, indent=1))
    return result
