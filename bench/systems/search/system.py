"""The System side of a budgeted search: one log per fit, trials.csv and cleanup however fit ends, the extras
every searcher reports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from bench.core.budget import Budget
from bench.measure.flops import Spent
from bench.systems.base import FitContext, System
from bench.systems.search.distributed import Chief, follow_chief
from bench.systems.search.log import SearchLog, trials_spent


class SearchSystem(System):
    """A System whose fit is a budgeted KerasTuner search and a refit; subclasses say the search space, oracle,
    data and refit, and have an `Options` with a budget_scope."""

    role: ClassVar[str] = "automl"
    # A KerasTuner search trains Keras models: the harness gives it the run's precision, backend and kernels,
    # as it gives the baseline.
    uses_keras: ClassVar[bool] = True
    SEARCH_STATE: ClassVar[str] = "search.json"  # the log's rows and times, beside the tuner's project

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._log: SearchLog | None = None
        self._workers: dict[str, Any] = {}  # a distributed search's workers' compute (Chief.usage)

    # --- what a searcher says --------------------------------------------------------------------------
    def refit_extras(self) -> dict[str, Any]:
        """The final model's figures, val_accuracy first: its validation accuracy on the validation data of its
        own fit (records.RunRecord.val_accuracy)."""
        return {}

    def refit_spent(self) -> Spent:
        """The FLOPs the final model spent: its refit's training and its predictions on the test set."""
        return Spent()

    def budget_end(self) -> float | None:
        """The time overshoot_s is measured against: the budget's end."""
        return None if self._log is None else self._log.deadline

    def resumes(self, budget: Budget) -> bool:
        """A search continues from its last finished trial after its process (or its chief) died: its tuner reloads
        its saved project (overwrite=False; over several processes the chief's, which holds the oracle)."""
        return True

    def continuing(self, ctx: FitContext) -> bool:
        """As System.continuing, in the run's own process only (a search's workers keep nothing)."""
        return ctx.search_worker is None and super().continuing(ctx)

    def tuner_dir(self, ctx: FitContext, project_folder: str) -> Path:
        """Where the tuner keeps its project: in the run's resume folder when the search can continue (it then
        outlives a killed process; bench.core.resume removes it when the run ends), else in the run's scratch."""
        return (ctx.resume.checkpoint_dir if self.continuing(ctx) else ctx.workdir) / project_folder

    def overwrite(self, ctx: FitContext) -> bool:
        """The tuner's overwrite: False when it is to reload what an earlier attempt left."""
        return not self.continuing(ctx)

    # --- the search's frame ----------------------------------------------------------------------------
    @contextmanager
    def searching(self, ctx: FitContext, t0: float, project_folder: str, scope: str | None = None,
                  **fields: Any) -> Iterator[SearchLog]:
        """A new log for a search started at t0 (scope: the options' budget_scope unless given); on leaving,
        however fit ended, trials.csv is written and the tuner's folder under ctx.workdir deleted. With
        search_workers > 1 this process is the chief of the search's processes (they start with its tuner's
        oracle and are gone on leaving); in one of those workers (ctx.search_worker) the tuner asks the chief's
        oracle."""
        carrying = self.continuing(ctx)
        # A continued search's clock runs on from the earlier attempts' (its rows keep their times).
        start = t0 - (ctx.resume.before.fit_s if carrying else 0.0)
        self._log = log = SearchLog.start(ctx, start, scope or self.options.budget_scope, **fields)
        if carrying:
            state = ctx.resume.checkpoint_dir / self.SEARCH_STATE
            log.restore(state)

            def persist() -> None:
                log.save(state)
                ctx.resume.checkpointed(f"{len(log.rows)} trial(s)")

            log.on_record = persist
        chief = None
        if ctx.search_worker is not None:  # a worker of the search (its ctx.workdir is its own)
            follow_chief(ctx.search_worker, log)
        elif self.search_workers() > 1:
            chief = Chief.prepare(log, self.search_workers(), ctx)
        try:
            yield log
        finally:
            try:
                if chief is not None:  # first: the trials of workers it stops now are failed in the log
                    chief.close()
                    self._workers = chief.usage()
            finally:
                log.finish(ctx.run_dir, ctx.workdir / project_folder)

    def search_workers(self) -> int:
        """Processes the search runs in (the options' search_workers; 1 for a searcher without it)."""
        return int(getattr(self.options, "search_workers", 1))

    def budget_scope(self) -> str:
        """What a wall-clock budget bounds in this run: 'total' or 'search'."""
        return self.options.budget_scope

    def trials(self) -> int | None:
        """Trials run, failed ones included (one the deadline kept from starting is not counted)."""
        return None if self._log is None else len(self._log.rows)

    def extras(self) -> dict[str, Any]:
        """The search's figures (SearchLog.extras), the refit's (refit_extras) and the FLOPs of both."""
        if self._log is None:
            return {}
        # Before refit_extras, which may predict more (a validation score) than the test set the run predicted.
        spent = trials_spent(self._log.rows) + self.refit_spent()
        # A searcher that counts nothing (no trial_epoch_examples, no refit_spent) is 'not counted', never 0.
        counted = spent.fields() if spent.train or spent.predict else {}
        return {**self._log.extras(self.budget_scope(), self.budget_end()), **self.refit_extras(), **self._workers,
                **counted}
