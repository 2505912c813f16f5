"""A budgeted KerasTuner search, shared by every searcher (autokeras, autokeras-hybrid, resnet-tuned).

    budget.py       deadline, allowed overshoot, max_trials, when a refit stops, and TrialTimes: the one model
                    predicting a trial or refit
    log.py          SearchLog (deadlines, refit reserve, trial rows) and trials.csv
    oracle.py       the budget in the oracle: STOPPED at the deadline, each trial's row as it ends
    stop.py         stopping at the next batch (deadline_callback) or inside one (HardStop)
    tuner.py        BudgetedTuner / KerasFitTrials: mixins putting any keras_tuner tuner class under a SearchLog
    system.py       SearchSystem: the System frame (log per fit, trials.csv and cleanup, extras)
    distributed.py  one search over several processes: the chief serves its oracle, workers ask it
    processes.py    the workers' processes, local or Ray tasks
    placement.py    where they run: what an executor calls (shares of a machine, a Ray placement group)

A searcher is a SearchSystem subclass that builds its tuner with budgeted(...) or its own BudgetedTuner mixin
and refits the best trial. Deadlines are time.monotonic() values within a process (another process of a search
is told seconds left), and trials.csv's `worker` column names who ran a trial.
"""

from bench.systems.search.budget import BUDGET_SCOPES, TrialTimes, max_trials, refit_stop_at
from bench.systems.search.log import SearchLog
from bench.systems.search.stop import deadline_callback
from bench.systems.search.system import SearchSystem
from bench.systems.search.tuner import BudgetedTuner, KerasFitTrials, budgeted

__all__ = ["BUDGET_SCOPES", "BudgetedTuner", "KerasFitTrials", "SearchLog", "SearchSystem", "TrialTimes", "budgeted",
           "deadline_callback", "max_trials", "refit_stop_at"]
