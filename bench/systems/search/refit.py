"""When a refit under budget scope 'total' must stop."""

from __future__ import annotations

import time

# Share of the allowed overshoot a refit may run past the budget's end when the search ended too late for one
# epoch before it; the rest is for the batch running when that time is up, the fit's end and saving the model.
REFIT_GRACE_SHARE = 0.5


def refit_stop_at(deadline: float, allowed_s: float, one_epoch_s: float, grace_share: float = REFIT_GRACE_SHARE
                  ) -> float:
    """When a refit under scope 'total' stops (time.monotonic()): the budget's end; a search that ended too late
    for one epoch (one_epoch_s, predicted) before it gets that epoch, up to grace_share of the allowed overshoot
    past the end, so the refit, cut at its next batch, still ends within the bound."""
    return min(max(deadline, time.monotonic() + one_epoch_s), deadline + grace_share * allowed_s)
