"""Command line for one recipe (`python -m baselines.cifar10 --help`): load data, train, print test accuracy.

Data comes from the bench data set registry (BENCH_DATA_DIR etc.) or, with --zip, straight from an image zip
laid out as <split>/<class>/*.jpg (CIFAR-10 JPEG) or <root>/<class>/*.png (NIH malaria cells), read with PIL.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import logging
import re
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from datasets.base import ImageData

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")  # anything else in a zip (Thumbs.db, ...) is skipped
TEST_FRACTION = 0.2  # held-out share when the zip has no train/test folders (the 2019 malaria protocol)
SPLIT_SEED = 0  # fixed, so every run of a recipe is scored on the same test images
PATIENT_CODE = re.compile(r"^(C\d+)")  # NIH malaria file names start with the slide/patient code


def load_zip(path: Path, size: int | None, split: str = "cell") -> ImageData:
    """Images of a folder-per-class zip as uint8 arrays, resized to size x size when given."""
    from PIL import Image
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    images: list[np.ndarray] = []
    labels: list[str] = []
    parts: list[str] = []
    names: list[str] = []
    with zipfile.ZipFile(path) as zf:
        for entry in sorted(zf.namelist()):
            if not entry.lower().endswith(IMAGE_SUFFIXES):
                continue
            folders = entry.split("/")
            img = Image.open(io.BytesIO(zf.read(entry))).convert("RGB")
            if size is not None and img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            images.append(np.asarray(img, dtype=np.uint8))
            labels.append(folders[-2])
            parts.append(folders[-3] if len(folders) >= 3 else "")
            names.append(folders[-1])
    if not images:
        raise SystemExit(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}); give a folder-per-class zip")
    x = np.stack(images)
    class_names = tuple(sorted(set(labels)))
    y = np.array([class_names.index(label) for label in labels], dtype=np.int64)
    is_train = np.array([p == "train" for p in parts])
    if is_train.any() and (~is_train).any():
        return ImageData(x[is_train], y[is_train], x[~is_train], y[~is_train], class_names, split="official",
                         info={"source": str(path)})
    idx = np.arange(len(y))
    if split == "patient":
        groups = [m.group(1) if (m := PATIENT_CODE.match(n)) else n for n in names]
        folds = StratifiedGroupKFold(n_splits=round(1 / TEST_FRACTION), shuffle=True, random_state=SPLIT_SEED)
        train_idx, test_idx = next(folds.split(idx, y, groups))
    else:
        train_idx, test_idx = train_test_split(idx, test_size=TEST_FRACTION, stratify=y,
                                               random_state=SPLIT_SEED)
    return ImageData(x[train_idx], y[train_idx], x[test_idx], y[test_idx], class_names, split=split,
                     info={"source": str(path)})


def main(dataset: str, make_recipe: Callable[[str], object], presets: Sequence[str], default_preset: str,
         default_size: int | None = None, argv: Sequence[str] | None = None) -> dict[str, float]:
    """Parses arguments, trains the recipe, prints and returns test accuracy and times."""
    parser = argparse.ArgumentParser(
        prog=f"python -m baselines.{dataset}", description=f"Train the {dataset} baseline and score it once "
        "on the test set. Example on a GPU: KERAS_BACKEND=jax python -m baselines.cifar10 --preset full "
        "--zip ../shared/data/cifar10-jpeg.zip")
    parser.add_argument("--preset", choices=list(presets), default=default_preset, help="recipe preset")
    parser.add_argument("--dataset", default=dataset, help="bench data set name (when no --zip is given)")
    parser.add_argument("--zip", type=Path, help="read images from this folder-per-class zip instead")
    parser.add_argument("--split", default=None, help="split protocol ('cell' or 'patient' for malaria)")
    parser.add_argument("--size", type=int, default=default_size, help="resize images to SIZE x SIZE (zip)")
    parser.add_argument("--max-train", type=int, help="stratified training subset size")
    parser.add_argument("--max-test", type=int, help="stratified test subset size")
    parser.add_argument("--epochs", type=int, help="override the preset's epoch count")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size")
    parser.add_argument("--budget", type=float, help="wall-clock seconds for training (scales the schedule)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_bfloat16 policy (GPU)")
    parser.add_argument("--out", type=Path, help="folder for history.csv and result.json")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override one of the recipe module's constants (for tuning runs)")
    args = parser.parse_args(argv)
    module = sys.modules[make_recipe.__module__]
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        if not hasattr(module, name) or not name.isupper():
            raise SystemExit(f"--set {assignment}: {module.__name__} has no constant {name!r}")
        setattr(module, name, ast.literal_eval(value))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import keras
    from sklearn.metrics import accuracy_score

    from baselines.training import train
    from bench.timing import measure

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    t0 = time.perf_counter()
    if args.zip is not None:
        data = load_zip(args.zip, args.size, args.split or "cell")
        from datasets.subset import subset

        data = subset(data, args.max_train, args.max_test)
    else:
        from datasets.registry import load_data

        data = load_data(args.dataset, {"split": args.split} if args.split else None,
                         max_train=args.max_train, max_test=args.max_test)
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
        proba = trained.predict_proba(data.x_test)
    result = {
        "recipe": rec.name, "overrides": args.set, "backend": keras.backend.backend(), "split": data.split,
        "n_train": len(data.x_train), "n_test": len(data.x_test), "epochs": len(trained.history),
        "test_accuracy": float(accuracy_score(data.y_test, proba.argmax(axis=1))),
        "val_accuracy": trained.val_accuracy, "fit_s": fit_clock.wall_s, "predict_s": predict_clock.wall_s,
        "params": trained.params,
    }
    print(trained.history.to_string(index=False))
    print(json.dumps(result, indent=1), flush=True)
    if args.out is not None:
        (args.out / "result.json").write_text(json.dumps(result, indent=1))
    return result
