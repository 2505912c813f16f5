"""The report: tables, verdicts, plots, an HTML page and an amlb-style results file, from runs.csv alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench import rundir
from bench.report import formatting as fmt
from bench.report import parity, tables
from bench.report.amlb import AMLB_FILE, amlb_frame
from bench.report.document import Block, Heading, Paragraph, Table, to_markdown
from bench.report.html import to_html
from bench.report.plots import PLOTS_DIR, Figure, PlotSet, headline_figure, palette, plot_group
from bench.report.runs import (
    Group,
    ReportError,
    arithmetic,
    data_seen,
    grouped,
    keras_backend,
    label_data,
    label_variants,
    load_runs,
    system_classes,
    where_run,
)
from bench.report.tables import (
    DEFAULT_GPU_PRICE_PER_HOUR,
    DEFAULT_PRICE_PER_HOUR,
    MANAGED_AUTOML_PRICE_PER_HOUR,
    Prices,
)
from bench.report.verdicts import verdicts

__all__ = [
    "DEFAULT_GPU_PRICE_PER_HOUR",
    "DEFAULT_PRICE_PER_HOUR",
    "MANAGED_AUTOML_PRICE_PER_HOUR",
    "DEFAULT_PARITY_TOLERANCE",
    "ReportError",
    "write_report",
]

REPORT_MD = "REPORT.md"
REPORT_HTML = "report.html"
TABLES_DIR = "tables"
DEFAULT_PARITY_TOLERANCE = parity.DEFAULT_TOLERANCE
TITLE = "AutoML against a hand-built baseline: accuracy per unit of compute"


def _write_csv(frame: pd.DataFrame, path: Path, written: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    written.append(path)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The groups' rows in one frame: the columns of the first when no group has a row; none without groups."""
    rows = [f for f in frames if not f.empty]
    if rows:
        return pd.concat(rows, ignore_index=True)
    return frames[0] if frames else pd.DataFrame()


def _names(classes: dict[str, str], klass: str) -> str:
    return ", ".join(sorted(s for s, c in classes.items() if c == klass)) or "none"


def _precision_text(precision: str, backend: str = "") -> str:
    """The end of the 'N runs on <hardware>' sentence: the Keras systems' precision and backend, each flagged
    when it differs between them."""
    if not precision:
        return "."
    text = ""
    if precision.startswith("mixed:"):
        text += (f". Keras systems did not compute in one precision ({precision.removeprefix('mixed: ')}): "
                 "their comparison is not like for like; rerun with one `--precision`")
    else:
        text += f", Keras systems in {precision}"
    if backend.startswith("mixed:"):
        text += (f". Keras systems did not run on one backend ({backend.removeprefix('mixed: ')}): their "
                 "times are not like for like; rerun with one `--backend`")
    elif backend:
        text += f" on {backend}"
    return text + "."


def _gpu_paragraph(summaries: list[tables.ConfigSummary]) -> str:
    """What the GPU columns measure, for data where some run measured them ('' where none did)."""
    text = ""
    if any(s.gpu_s is not None for s in summaries):
        text += " GPU is GPUs held x wall time of fit and predict (what renting them costs)."
    if any(s.gpu_busy_s is not None for s in summaries):
        text += " GPU busy is what they worked: the time-integral of their utilisation (1 h at 50% counts 0.5 h)."
    return text


@dataclass(frozen=True)
class GroupResult:
    """One group of data analysed: what its sections and the report's tables are made of."""

    group: Group
    runs: pd.DataFrame
    summaries: list[tables.ConfigSummary]
    versus: list[tables.Versus]
    cost: list[tables.CostRow]
    failures: list[Any]
    parities: list[parity.Parity]
    headline: Figure | str
    plots: PlotSet


def _analyse(group: Group, part: pd.DataFrame, out_dir: Path, *, baseline: str, prices: Prices,
             tolerance: float, colors: dict[str, tuple]) -> GroupResult:
    summaries = tables.summarize(group, part, baseline, out_dir)
    found = parity.parities(summaries, tolerance)
    return GroupResult(
        group=group,
        runs=part,
        summaries=summaries,
        versus=tables.versus(summaries, tolerance),
        cost=tables.cost_rows(summaries, prices),
        failures=tables.failures(part),
        parities=found,
        headline=headline_figure(group, summaries, found, out_dir, colors),
        plots=plot_group(group, part, summaries, out_dir, colors),
    )


def _intro(runs: pd.DataFrame, baseline: str, data_notes: tuple[str, ...], answers: list[str]) -> list[Block]:
    """The title, the answer (a sentence per data set and AutoML system), and what the report is made of."""
    classes = system_classes(runs, baseline)
    others = _names(classes, "other")
    return [
        Heading(1, TITLE),
        *([Paragraph(items=tuple(answers))] if answers else []),
        Paragraph(
            f"Made from {fmt.plural(len(runs), 'run')} in {rundir.RUNS_TABLE} ({(runs['status'] == 'ok').sum()} ok); "
            f"baseline: {baseline}; by the roles the systems declare, AutoML: {_names(classes, 'automl')}; "
            f"floor: {_names(classes, 'floor')}"
            + (f"; other: {others}" if others != "none" else "")
            + f". The amlb-style results are in {AMLB_FILE}.",
            items=data_notes,
        ),
    ]


def _headline(results: list[GroupResult], baseline: str, tolerance: float) -> list[Block]:
    """What a reader sees first: per group of data, accuracy against compute and the parity table."""
    blocks: list[Block] = [
        Heading(2, f"Headline: what AutoML's compute buys against {baseline}"),
        Paragraph(parity.caption(tolerance)),
    ]
    unrun = [r.group.label for r in results if not (r.runs["status"] == "ok").any()]
    for r in results:
        if r.group.label in unrun:
            continue  # said once below, not as an empty figure and table
        blocks.append(Heading(3, r.group.label))
        blocks.append(r.headline if isinstance(r.headline, Figure) else Paragraph(f"Skipped {r.headline}."))
        if r.parities:
            blocks.append(Table(_without_data_column(parity.PARITY.display(r.parities)), f"{TABLES_DIR}/parity.csv"))
        else:
            blocks.append(Paragraph("No AutoML system ran on this data."))
    if unrun:
        blocks.append(Paragraph(f"No run ended ok on {'; '.join(unrun)}: see their sections for why."))
    return blocks


def _without_data_column(frame: pd.DataFrame) -> pd.DataFrame:
    # Under the group's own heading the data need not be named again.
    return frame.drop(columns=["Data"], errors="ignore")


def _overview(r: GroupResult, baseline: str, tolerance: float) -> list[Block]:
    """The group's heading, where it ran, and its verdicts, each said once."""
    part = r.runs
    sentences = verdicts(r.group, r.summaries, baseline, tolerance)
    sentences += [s for p in r.parities if (s := parity.sentence(p))]
    return [
        Heading(2, r.group.label),
        Paragraph(f"{fmt.plural(len(part), 'run')} on {where_run(part)}"
                  + _precision_text(arithmetic(part), keras_backend(part))
                  + (f" Data fingerprint: {seen}." if (seen := data_seen(part)) else "")),
        Paragraph(items=tuple(sentences)),
    ]


def _systems(r: GroupResult) -> list[Block]:
    """Every system and budget, and the runs that did not finish."""
    blocks: list[Block] = [
        Heading(3, "Systems and budgets"),
        Paragraph(
            "Accuracy is the mean over ok seeds; the spread is ± 1 std with 2 seeds and a 95% t-interval "
            "with 3 or more. Times are means per ok run (the CSV has them in seconds)." + _gpu_paragraph(r.summaries)
        ),
        Table(tables.SUMMARY.display(r.summaries), f"{TABLES_DIR}/summary.csv"),
    ]
    if note := _checkpoint_note(r.runs):
        blocks.append(Paragraph(note))
    if r.failures:
        blocks += [
            Heading(3, "Runs that did not finish"),
            Table(tables.FAILURES.display(r.failures), f"{TABLES_DIR}/failures.csv"),
        ]
    return blocks


def _all_skipped(r: GroupResult) -> list[Block]:
    """For a group whose runs were all skipped (its data not found, say), its heading and why, once; [] for any
    other group."""
    statuses = set(r.runs["status"])
    if statuses != {"skipped"}:
        return []
    reasons = sorted(set(r.runs["error"].fillna("")))
    why = (f": {reasons[0]}" if len(reasons) == 1 and reasons[0] else
           f", for {len(reasons)} different reasons (each run's in {TABLES_DIR}/failures.csv)")
    return [Heading(2, r.group.label), Paragraph(f"All {fmt.plural(len(r.runs), 'run')} skipped{why}.")]


def _checkpoint_note(runs: pd.DataFrame) -> str:
    """Which ok runs predicted with their best trial's search-time checkpoint, not a refit ('' for none)."""
    ok = runs[(runs["status"] == "ok") & (runs["predicted_by"].fillna("") == "best trial")]
    if ok.empty:
        return ""
    named = "; ".join(f"{r.system} {r.budget} seed {int(r.seed)}" for r in ok.itertuples(index=False))
    return (f"In {fmt.plural(len(ok), 'run')} ({named}) the budget cut the refit inside its first epoch, so the "
            "best trial's search-time checkpoint predicted, as in Auto-Keras' own default (predicted_by in "
            f"{rundir.RUNS_TABLE}).")


def _against_baseline(r: GroupResult, baseline: str, tolerance: float) -> list[Block]:
    """Each AutoML configuration against the baseline's reference."""
    if not r.versus:
        return []
    found = tables.plateau(r.summaries, tolerance)
    ref = found.text if found else f"{baseline} has no ok run here, so there is no reference."
    # The ratio is of fit (wall) time also where GPUs ran: GPU and GPU busy time are in the summary.
    ratio = " Compute ratio = AutoML fit time / baseline fit time" + (
        " (wall time, not GPU or GPU busy time)." if _gpu_paragraph(r.summaries) else "."
    )
    pairing = (
        " The 90% interval of the difference carries the seeds' and the test images' variance, paired by seed"
        " where 2 or more seeds ran both and by test image where both kept predictions; it resolves the"
        " difference when it excludes 0."
    )
    scopes = sorted({v.automl.budget_scope for v in r.versus if v.automl.budget_scope})
    covers = {"total": "search and refit", "search": "the search only (the refit comes after it)"}
    scope_words = " and ".join(covers.get(sc, sc) for sc in scopes)
    return [
        Heading(3, f"AutoML against {baseline}" + (f" (AutoML budgets cover {scope_words})" if scope_words else "")),
        Paragraph(ref + ratio + pairing),
        Table(tables.VERSUS.display(r.versus), f"{TABLES_DIR}/versus_baseline.csv"),
    ]


def _cost(r: GroupResult, prices: Prices) -> list[Block]:
    """What one run of each configuration costs to rent."""
    if not r.cost:
        return []
    return [
        Heading(3, "Cost"),
        Paragraph(
            f"Per run: fit time in hours x the price of the machine rented for them, "
            f"{fmt.price(prices.cpu)}/h for a CPU machine and {fmt.price(prices.gpu)}/h for a GPU machine; "
            f"the managed cloud AutoML rows price the AutoML fit hours at "
            f"{fmt.price(prices.managed_automl)}/h, the commonly cited figure."
            + (" Energy is per run over fit and predict: the held GPUs' (NVML's counter) and the CPU packages' "
               "(RAPL: the whole package's draw, other processes included)."
               if any(c.gpu_energy_j is not None or c.cpu_energy_j is not None for c in r.cost) else "")
        ),
        Table(tables.COST.display(r.cost), f"{TABLES_DIR}/cost.csv"),
    ]


def _figures(r: GroupResult) -> list[Block]:
    """The group's detail figures, and notes on those that could not be made."""
    blocks: list[Block] = [Heading(3, "Figures"), *r.plots.figures]
    if r.plots.notes:
        blocks.append(Paragraph(items=r.plots.notes))
    return blocks


def _write_tables(results: list[GroupResult], folder: Path, written: list[Path]) -> None:
    """The CSVs: every group's rows in one file per table."""
    _write_csv(_concat([tables.SUMMARY.csv(r.summaries) for r in results]), folder / "summary.csv", written)
    _write_csv(_concat([tables.VERSUS.csv(r.versus) for r in results if r.versus]), folder / "versus_baseline.csv",
               written)
    _write_csv(_concat([tables.COST.csv(r.cost) for r in results]), folder / "cost.csv", written)
    _write_csv(_concat([tables.FAILURES.csv(r.failures) for r in results]), folder / "failures.csv", written)
    _write_csv(_concat([parity.PARITY.csv(r.parities) for r in results]), folder / "parity.csv", written)


def write_report(
    out_dir: Path,
    *,
    baseline: str = "resnet",
    price_per_hour: float = DEFAULT_PRICE_PER_HOUR,
    gpu_price_per_hour: float = DEFAULT_GPU_PRICE_PER_HOUR,
    parity_tolerance: float = DEFAULT_PARITY_TOLERANCE,
) -> list[Path]:
    """Writes REPORT.md, report.html, tables/, plots/ and results_amlb.csv from runs.csv; returns paths.

    parity_tolerance is a fraction of accuracy (0.005: half a point)."""
    out_dir = Path(out_dir)
    recorded = load_runs(out_dir)
    runs, data_notes = label_data(label_variants(recorded))
    for stale in (out_dir / PLOTS_DIR).glob("*.*"):
        # A dataset that left the table must not leave its old plots behind.
        stale.unlink()
    prices = Prices(cpu=price_per_hour, gpu=gpu_price_per_hour)
    colors = palette(sorted(runs["system"].unique()))
    results = [
        _analyse(group, part, out_dir, baseline=baseline, prices=prices, tolerance=parity_tolerance, colors=colors)
        for group, part in grouped(runs)
    ]
    written: list[Path] = []
    for r in results:
        figures = ([r.headline] if isinstance(r.headline, Figure) else []) + list(r.plots.figures)
        written += [p for f in figures for p in (f.png, f.svg)]
    _write_tables(results, out_dir / TABLES_DIR, written)
    _write_csv(amlb_frame(recorded, out_dir), out_dir / AMLB_FILE, written)  # amlb's own names and params
    answers = [s for r in results for s in parity.answer_sentences(r.parities)]
    blocks = _intro(runs, baseline, data_notes, answers) + _headline(results, baseline, parity_tolerance)
    for r in results:
        if skipped := _all_skipped(r):
            blocks += skipped  # one reason said once, not a table of empty cells
            continue
        blocks += _overview(r, baseline, parity_tolerance) + _systems(r)
        blocks += _against_baseline(r, baseline, parity_tolerance) + _cost(r, prices)
        blocks += _figures(r)
    md, page = out_dir / REPORT_MD, out_dir / REPORT_HTML
    md.write_text(to_markdown(blocks, out_dir), encoding="utf-8")
    page.write_text(to_html(blocks, TITLE), encoding="utf-8")
    return [md, page, *written]
