"""The report: tables, verdicts, plots, an HTML page and an amlb-style results file, from runs.csv alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench import rundir
from bench.report import formatting as fmt
from bench.report import tables
from bench.report.amlb import AMLB_FILE, amlb_frame
from bench.report.document import Block, Heading, Paragraph, Table, to_markdown
from bench.report.html import to_html
from bench.report.plots import PLOTS_DIR, palette, plot_group
from bench.report.runs import (
    ReportError,
    arithmetic,
    data_seen,
    grouped,
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
    "ReportError",
    "write_report",
]

REPORT_MD = "REPORT.md"
REPORT_HTML = "report.html"
TABLES_DIR = "tables"
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


def _precision_text(precision: str) -> str:
    """The end of the 'N runs on <hardware>' sentence: the Keras systems' precision, flagged when it differs."""
    if not precision:
        return "."
    if precision.startswith("mixed:"):
        return (f". Keras systems did not compute in one precision ({precision.removeprefix('mixed: ')}): "
                "their comparison is not like for like; rerun with one `--precision`.")
    return f", Keras systems in {precision}."


def _gpu_paragraph(summaries: list[tables.ConfigSummary]) -> str:
    """What the GPU columns measure, for data where some run measured them ('' where none did)."""
    text = ""
    if any(s.gpu_s is not None for s in summaries):
        text += " GPU is GPUs held x wall time of fit and predict (what renting them costs)."
    if any(s.gpu_busy_s is not None for s in summaries):
        text += " GPU busy is what they worked: the time-integral of their utilisation (1 h at 50% counts 0.5 h)."
    return text


def write_report(
    out_dir: Path,
    *,
    baseline: str = "resnet",
    price_per_hour: float = DEFAULT_PRICE_PER_HOUR,
    gpu_price_per_hour: float = DEFAULT_GPU_PRICE_PER_HOUR,
) -> list[Path]:
    """Writes REPORT.md, report.html, tables/, plots/ and results_amlb.csv from runs.csv; returns paths."""
    out_dir = Path(out_dir)
    recorded = load_runs(out_dir)
    runs = label_variants(recorded)
    for stale in (out_dir / PLOTS_DIR).glob("*.*"):
        # A dataset that left the table must not leave its old plots behind.
        stale.unlink()
    prices = Prices(cpu=price_per_hour, gpu=gpu_price_per_hour)
    written: list[Path] = []
    summary, vs, cost, fails = [], [], [], []
    all_verdicts: list[str] = []
    sections: list[Block] = []
    colors = palette(sorted(runs["system"].unique()))
    for group, part in grouped(runs):
        summaries = tables.summarize(group, part, baseline)
        versus = tables.versus(summaries)
        group_cost = tables.cost_rows(summaries, prices)
        group_fails = tables.failures(part)
        sentences = verdicts(group, summaries, baseline)
        all_verdicts += sentences
        summary.append(tables.SUMMARY.csv(summaries))
        if versus:
            vs.append(tables.VERSUS.csv(versus))
        cost.append(tables.COST.csv(group_cost))
        fails.append(tables.FAILURES.csv(group_fails))
        gpu_text = _gpu_paragraph(summaries)
        plots = plot_group(group, part, summaries, out_dir, colors)
        written += [p for f in plots.figures for p in (f.png, f.svg)]
        base = tables.reference(summaries, "baseline")
        sections += [
            Heading(2, group.label),
            Paragraph(f"{fmt.plural(len(part), 'run')} on {where_run(part)}"
                      + _precision_text(arithmetic(part))
                      + (f" Data fingerprint: {seen}." if (seen := data_seen(part)) else "")),
            Paragraph(items=tuple(sentences)),
            Heading(3, "Systems and budgets"),
            Paragraph(
                "Accuracy is the mean over ok seeds; the spread is ± 1 std with 2 seeds and a 95% t-interval "
                "with 3 or more. Times are means per ok run (the CSV has them in seconds)." + gpu_text
            ),
            Table(tables.SUMMARY.display(summaries), f"{TABLES_DIR}/summary.csv"),
        ]
        if group_fails:
            sections += [
                Heading(3, "Runs that did not finish"),
                Table(tables.FAILURES.display(group_fails), f"{TABLES_DIR}/failures.csv"),
            ]
        if versus:
            ref = (
                f"The baseline's reference is {base.system} at budget {base.budget}, its most accurate configuration."
                if base
                else f"{baseline} has no ok run here, so there is no reference."
            )
            # The ratio is of fit (wall) time also where GPUs ran: GPU and GPU busy time are in the summary.
            ratio = " Compute ratio = AutoML fit time / baseline fit time" + (
                " (wall time, not GPU or GPU busy time)." if gpu_text else "."
            )
            pairing = (
                " Where 3 or more seeds ran both (same seeds, same data split), the comparison is paired: the 95%"
                " t-interval of the per-seed differences decides, and it resolves the difference when it excludes"
                " 0; otherwise the two configurations' own intervals must not overlap (unpaired)."
            )
            scopes = sorted({v.automl.budget_scope for v in versus if v.automl.budget_scope})
            covers = {"total": "search and refit", "search": "the search only (the refit comes after it)"}
            scope_words = " and ".join(covers.get(sc, sc) for sc in scopes)
            sections += [
                Heading(3, f"AutoML against {baseline}"
                        + (f" (AutoML budgets cover {scope_words})" if scope_words else "")),
                Paragraph(ref + ratio + pairing),
                Table(tables.VERSUS.display(versus), f"{TABLES_DIR}/versus_baseline.csv"),
            ]
        if group_cost:
            sections += [
                Heading(3, "Cost"),
                Paragraph(
                    f"Per run: fit time in hours x the price of the machine rented for them, "
                    f"{fmt.price(prices.cpu)}/h for a CPU machine and {fmt.price(prices.gpu)}/h for a GPU machine; "
                    f"the managed cloud AutoML rows price the AutoML fit hours at "
                    f"{fmt.price(prices.managed_automl)}/h, the commonly cited figure."
                ),
                Table(tables.COST.display(group_cost), f"{TABLES_DIR}/cost.csv"),
            ]
        sections += [Heading(3, "Figures"), *plots.figures]
        if plots.notes:
            sections.append(Paragraph(items=plots.notes))
    tables_dir = out_dir / TABLES_DIR
    _write_csv(_concat(summary), tables_dir / "summary.csv", written)
    _write_csv(_concat(vs), tables_dir / "versus_baseline.csv", written)
    _write_csv(_concat(cost), tables_dir / "cost.csv", written)
    _write_csv(_concat(fails), tables_dir / "failures.csv", written)
    _write_csv(amlb_frame(recorded, out_dir), out_dir / AMLB_FILE, written)  # amlb's own names and params
    classes = system_classes(runs, baseline)
    others = _names(classes, "other")
    head: list[Block] = [
        Heading(1, TITLE),
        Paragraph(
            f"Made from {fmt.plural(len(runs), 'run')} in {rundir.RUNS_TABLE} ({(runs['status'] == 'ok').sum()} ok); "
            f"baseline: {baseline}; by the roles the systems declare, AutoML: {_names(classes, 'automl')}; "
            f"floor: {_names(classes, 'floor')}"
            + (f"; other: {others}" if others != "none" else "")
            + f". The amlb-style results are in {AMLB_FILE}."
        ),
        Heading(2, "Verdicts"),
        Paragraph(items=tuple(all_verdicts)),
    ]
    blocks = head + sections
    md, page = out_dir / REPORT_MD, out_dir / REPORT_HTML
    md.write_text(to_markdown(blocks, out_dir), encoding="utf-8")
    page.write_text(to_html(blocks, TITLE), encoding="utf-8")
    return [md, page, *written]
