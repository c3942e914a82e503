"""Learning-rate schedules of DESIGN.md §7."""

from __future__ import annotations

WARM_UP_START = 1e-6


def lr_at(it: int, base: float, warm_up: int, max_iter: int, schedule: str = "poly") -> float:
    """Learning rate for the step taken after ``it`` steps (``it`` is 0-based).

    ``poly`` (pre_train): linear warm-up from 1e-6 to ``base`` over ``warm_up`` steps, then
    ``base * (1 - i' / (I' + 1))`` with ``i' = it - warm_up`` and ``I' = max_iter - warm_up``
    (polynomial decay with power 1; it never reaches 0). ``constant`` (main_train): ``base``.
    """
    if schedule == "constant":
        return base
    if schedule != "poly":
        raise ValueError(f"unknown lr schedule {schedule!r}")
    if it < warm_up:
        return WARM_UP_START + (base - WARM_UP_START) * it / warm_up
    return base * (1.0 - (it - warm_up) / (max_iter - warm_up + 1))
