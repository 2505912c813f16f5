"""TABLE.md from make.sh's runs: one results folder per backend, joined on recipe and data.

Training throughput comes from each run's history.csv, whose fit_s is the cumulative time of the training steps
alone (validation passes excluded): images/s is the training images (n_train less the recipe's validation
slice) times the epochs over that time. The first epoch also traces and compiles, so the steady figure (the
median of epochs 2 onwards) is given beside the overall one.

Usage: python results/backends/table.py [FOLDER]   (default results/backends; writes FOLDER/TABLE.md)
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pandas as pd

from bench.core import rundir
from bench.systems.resnet import RECIPES

BACKENDS = ("tensorflow", "jax", "torch")


def train_images(n_train: int, n_classes: int, recipe: str) -> int:
    """The images a recipe trains on: n_train less its stratified validation slice (training.validation_split)."""
    fraction = importlib.import_module(f"bench.baselines.{RECIPES[recipe][0]}").VAL_FRACTION
    return n_train - (max(n_classes, round(fraction * n_train)) if fraction else 0)


def recipe_row(backend: str, run: pd.Series, folder: Path) -> dict[str, object]:
    """One recipe run: throughput, accuracy and its per-epoch validation accuracy."""
    options = dict(pair.split("=", 1) for pair in str(run["system_options"]).split(";") if pair)
    recipe = options.get("recipe", "auto")
    history = pd.read_csv(rundir.run_dir(folder, run["run_id"]) / rundir.HISTORY)
    images = train_images(int(run["n_train"]), int(run["n_classes"]), str(recipe))
    epoch_s = history["fit_s"].diff().fillna(history["fit_s"])
    steady = epoch_s.iloc[1:].median() if len(epoch_s) > 1 else float("nan")
    return {
        "backend": backend, "data": f"{run['dataset']} ({images} train)", "recipe": recipe,
        "precision": run["precision"], "epochs": len(history),
        "images/s": images * len(history) / history["fit_s"].iloc[-1], "images/s steady": images / steady,
        "first epoch s": epoch_s.iloc[0], "fit s": float(run["fit_s"]),
        "test accuracy": float(run["accuracy"]),
        "val accuracy per epoch": " ".join(f"{a:.3f}" for a in history["val_accuracy"]),
    }


def automl_row(backend: str, run: pd.Series) -> dict[str, object]:
    return {"backend": backend, "data": run["dataset"], "budget": run["budget"], "precision": run["precision"],
            "test accuracy": float(run["accuracy"]), "trials": run["trials"], "fit s": float(run["fit_s"])}


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table (pandas' to_markdown needs tabulate, which the project does not install)."""
    def cell(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main(folder: Path) -> str:
    recipes, automl, hardware, missing = [], [], set(), []
    for backend in BACKENDS:
        path = folder / backend / "runs.csv"
        if not path.exists():
            missing.append(backend)
            continue
        runs = pd.read_csv(path, keep_default_na=False, dtype={"system_options": str})
        for _, run in runs.iterrows():
            if run["status"] != "ok":
                missing.append(f"{backend} {run['dataset']} {run['system']} ({run['status']}: {run['error'][:80]})")
                continue
            hardware.add(run["hardware"])
            if run["system"] == "resnet":
                recipes.append(recipe_row(backend, run, folder / backend))
            else:
                automl.append(automl_row(backend, run))
    text = [f"# Keras backends side by side\n\nMachine: {', '.join(sorted(hardware)) or 'unknown'}. "
            "Made by `results/backends/make.sh`; images/s counts training steps only (validation excluded); "
            "steady = median epoch after the first (which also compiles).\n"]
    if recipes:
        frame = pd.DataFrame(recipes).sort_values(["data", "backend"], key=lambda c: c.map(_order))
        text.append("## Recipes\n\n" + markdown(frame) + "\n")
    if automl:
        text.append("## Auto-Keras\n\n" + markdown(pd.DataFrame(automl)) + "\n")
    if missing:
        text.append("Not in the tables: " + "; ".join(missing) + "\n")
    out = "\n".join(text)
    (folder / "TABLE.md").write_text(out)
    return out


def _order(value: object) -> object:
    return BACKENDS.index(value) if value in BACKENDS else value


if __name__ == "__main__":
    print(main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/backends")))
