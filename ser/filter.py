"""SER's confidence filter: which unlabelled pairs the current reward model may label itself.

Scoring is pointwise, as upstream (``microsoft/DKI_LLM``, folder ``SER/``) [CODE]: each response of a pair gets
``p = σ(r(x, y))`` on its own, which is not the Bradley-Terry pair probability. For a pair (y_a, y_b):

    keep (a ≻ b)  status 1:  p_a > t_R and p_b < t_L      (clearly good vs clearly bad)
                  status 2:  p_a − p_b > margin           (finer distinctions)
    keep (b ≻ a)  the same clauses with a and b swapped
    otherwise     the pair stays in the pool for the next loop

t_L = 0.45, t_R = 0.55, margin = 0.3 are hard-coded upstream [CODE]. Upstream applies both clauses at once
(schedule "both"); reviews say the paper alternates them (schedule "alternate": status 1 on even selection
rounds, status 2 on odd ones) [SECONDARY]. The two directions exclude each other, so a pair gets at most one label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATUS_SCHEDULES = ("both", "alternate")


@dataclass(frozen=True)
class FilterThresholds:
    """t_low (t_L) and t_high (t_R) bound the pointwise probabilities of status 1; margin is status 2's gap."""

    t_low: float = 0.45  # [CODE]
    t_high: float = 0.55  # [CODE]
    margin: float = 0.3  # [CODE]

    def __post_init__(self) -> None:
        if not 0.0 <= self.t_low <= self.t_high <= 1.0:
            raise ValueError(f"filter thresholds need 0 <= t_low <= t_high <= 1; got t_low={self.t_low}, "
                             f"t_high={self.t_high}")
        if not 0.0 < self.margin < 1.0:
            raise ValueError(f"filter margin must lie in (0, 1); got {self.margin}")


def statuses_for_round(schedule: str, round_index: int) -> tuple[int, ...]:
    """Which clauses are active in selection round ``round_index`` (0 = the first pool scoring, by RM_0)."""
    if schedule == "both":
        return (1, 2)
    if schedule == "alternate":
        return (1,) if round_index % 2 == 0 else (2,)
    raise ValueError(f"status schedule {schedule!r} is not one of {list(STATUS_SCHEDULES)}")


@dataclass
class Selection:
    """Per pool pair: ``label`` +1 (a ≻ b), −1 (b ≻ a) or 0 (stays in the pool); ``status`` 1, 2, or 0."""

    label: np.ndarray  # (N,) int8
    status: np.ndarray  # (N,) int8

    @property
    def selected(self) -> np.ndarray:
        return np.flatnonzero(self.label != 0)

    @property
    def remaining(self) -> np.ndarray:
        return np.flatnonzero(self.label == 0)

    def count(self, status: int) -> int:
        return int(np.sum(self.status == status))


def select_confident(p_a: np.ndarray, p_b: np.ndarray, thresholds: FilterThresholds = FilterThresholds(),
                     statuses: tuple[int, ...] = (1, 2)) -> Selection:
    """Apply the filter to pointwise probabilities. (N,), (N,) -> Selection.

    When both clauses hold for a pair, it is credited to status 1 if status 1 is active (it is the coarser one).
    """
    p_a = np.asarray(p_a, dtype=np.float64)
    p_b = np.asarray(p_b, dtype=np.float64)
    if p_a.shape != p_b.shape or p_a.ndim != 1:
        raise ValueError(f"p_a and p_b must be 1-D of one length; got shapes {p_a.shape} and {p_b.shape}")
    bad = set(statuses) - {1, 2}
    if bad or not statuses:
        raise ValueError(f"statuses must be a non-empty subset of (1, 2); got {statuses}")
    t = thresholds
    label = np.zeros(p_a.shape, dtype=np.int8)
    status = np.zeros(p_a.shape, dtype=np.int8)
    for sign, p_win, p_lose in ((1, p_a, p_b), (-1, p_b, p_a)):
        clauses = {1: (p_win > t.t_high) & (p_lose < t.t_low), 2: (p_win - p_lose) > t.margin}
        for s in sorted(statuses, reverse=True):  # status 1 written last so it wins when both hold
            hit = clauses[s] & ((label == 0) | (label == sign))
            label[hit] = sign
            status[hit] = s
    return Selection(label=label, status=status)
