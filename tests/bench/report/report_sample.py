"""A hand-made results folder with known numbers (runs.csv and a few run artifacts) for the report tests."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from bench.run.records import COLUMNS, RunRecord

HARDWARE = "test CPU, 2 cores"


def run(dataset: str, split: str, system: str, budget: str, seed: int, status: str = "ok", **fields) -> RunRecord:
    """One record with defaults filled in for the fields a test does not care about."""
    ok = status == "ok"
    acc = fields.pop("accuracy", None)
    defaults = {
        "accuracy": acc,
        "balanced_accuracy": acc,
        "macro_f1": acc,
        "log_loss": 0.1 if ok else None,
        "predict_s": 1.0 if ok else None,
        "cpu_s": 2 * fields.get("fit_s", 0.0) if ok else None,
        "params": 1000 if ok and system != "majority" else None,
        "n_classes": 2,
        "hardware": HARDWARE,
        "device": "cpu",
        "started_utc": "2026-11-28T12:00:00",
        "duration_s": (fields.get("fit_s") or 0.0) + 5.0,
    }
    defaults.update(fields)
    return RunRecord(
        run_id=f"{dataset}-{system}-{budget}-{seed}",
        suite="test",
        dataset=dataset,
        split=split,
        system=system,
        budget=budget,
        seed=seed,
        status=status,
        **defaults,
    )


def records() -> list[RunRecord]:
    """Known numbers: malaria resolved, cifar10 overlapping, digits one seed each, mnist AutoML failed."""
    rows = []
    for seed, (r, a) in enumerate([(0.970, 0.960), (0.971, 0.961), (0.972, 0.962)]):
        rows.append(run("malaria", "cell", "resnet", "full", seed, accuracy=r, fit_s=3300.0))
        rows.append(run("malaria", "cell", "autokeras", "24h", seed, accuracy=a, fit_s=86400.0, trials=40))
        rows.append(run("malaria", "cell", "majority", "full", seed, accuracy=0.5, fit_s=0.01))
    rows.append(run("malaria", "cell", "autokeras", "1h", 0, "failed", error="ResourceExhaustedError: OOM"))
    rows.append(run("malaria", "cell", "autokeras", "1h", 1, "timeout", error="killed after 1.5h"))
    rows.append(run("malaria", "cell", "autokeras", "1h", 2, accuracy=0.95, fit_s=3700.0, trials=3))
    for seed, (r, a) in enumerate([(0.90, 0.91), (0.92, 0.93)]):
        rows.append(run("cifar10", "official", "resnet", "full", seed, accuracy=r, fit_s=1800.0, n_classes=10))
        rows.append(run("cifar10", "official", "autokeras", "1h", seed, accuracy=a, fit_s=3600.0, n_classes=10))
    rows.append(run("digits", "stratified-25%", "resnet", "full", 0, accuracy=0.98, fit_s=30.0, n_classes=10))
    rows.append(run("digits", "stratified-25%", "autokeras", "t2", 0, accuracy=0.95, fit_s=120.0, n_classes=10))
    rows.append(run("mnist", "official", "resnet", "full", 0, accuracy=0.99, fit_s=600.0, n_classes=10))
    rows.append(run("mnist", "official", "autokeras", "1h", 0, "failed", error="ValueError: bad shape"))
    return rows


def write_runs(out_dir: Path, rows: list[RunRecord]) -> None:
    """Writes rows as out_dir/runs.csv with RunRecord's columns."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "runs.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(r.to_row() for r in rows)


def write_artifacts(out_dir: Path) -> None:
    """history.csv, trials.csv, predictions.csv and metadata.json for the malaria runs of seed 0."""
    folder = out_dir / "runs"
    history = folder / "malaria-resnet-full-0"
    history.mkdir(parents=True)
    (history / "history.csv").write_text(
        "epoch,fit_s,loss,val_accuracy\n1,1100,0.5,0.90\n2,2200,0.3,0.95\n3,3300,0.2,0.97\n"
    )
    trials = folder / "malaria-autokeras-24h-0"
    trials.mkdir(parents=True)
    (trials / "trials.csv").write_text(
        "trial_id,started_s,ended_s,epochs,val_accuracy,status,summary,error\n"
        "0,0,20000,10,0.93,completed,a,\n1,20000,50000,10,,failed,b,OOM\n2,50000,80000,10,0.96,completed,c,\n"
    )
    labels = ["Parasitized", "Uninfected"]
    truth = ["Parasitized", "Uninfected"] * 10
    for run_dir, wrong in ((history, 1), (trials, 2)):
        lines = [",".join([*labels, "predictions", "truth"])]
        for i, t in enumerate(truth):
            p = t if i >= wrong else labels[1 - labels.index(t)]
            probs = ["0.9", "0.1"] if p == labels[0] else ["0.1", "0.9"]
            lines.append(",".join([*probs, p, t]))
        (run_dir / "predictions.csv").write_text("\n".join(lines) + "\n")
        (run_dir / "metadata.json").write_text('{"versions": {"autokeras": "3.0.0", "bench": "0.1.0"}}')


def write_correct(out_dir: Path, record: RunRecord, correct) -> RunRecord:
    """Writes the run's predictions.csv, right on the images where `correct` is true (truth alternating over two
    labels, the same test set for every run of one length), and returns the record with its accuracy set to
    the fraction right."""
    labels = ("a", "b")
    folder = out_dir / "runs" / record.run_id
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["a,b,predictions,truth"]
    for i, right in enumerate(correct):
        truth = labels[i % 2]
        predicted = truth if right else labels[1 - i % 2]
        lines.append(("0.9,0.1," if predicted == "a" else "0.1,0.9,") + f"{predicted},{truth}")
    (folder / "predictions.csv").write_text("\n".join(lines) + "\n")
    accuracy = sum(bool(c) for c in correct) / len(correct)
    return dataclasses.replace(record, accuracy=accuracy, balanced_accuracy=accuracy, macro_f1=accuracy)
