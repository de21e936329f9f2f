"""Intervals and verdicts for the fidelity tables: is the paper's claim reproduced, refuted, or not resolved here?

Every fidelity number is a mean over units (BBQ items, held-out pairs, seeds, splits). Its uncertainty comes from a
percentile bootstrap over those units (Efron & Tibshirani 1993, ch. 13): resample the units with replacement, recompute
the mean, take the 2.5th and 97.5th percentiles. A comparison of two systems on the *same* units is bootstrapped on
the per-unit differences (the paired bootstrap), which removes the between-item variance both systems share; a
comparison on different units (two seeds' runs on different splits) bootstraps each side on its own. When several
training seeds of the treated system are scored on the same units, ``seeds_paired_bootstrap`` resamples seeds and
units both, so the interval also carries the seed-to-seed spread.

A claim has a direction: the paper says the treated system is better (+1) or worse (-1) than the baseline, or that a
quantity is above (+1) or below (-1) a reference value (RM accuracy above chance 0.5). The verdict:

- ``reproduced``: our estimate has the paper's direction and the 95 % interval excludes 0;
- ``refuted``: the opposite direction, interval excluding 0;
- ``inconclusive``: the interval contains 0. ``needed_n`` then says roughly how many units would make the interval
  exclude 0 if the effect stayed as estimated: the half-width shrinks as 1/sqrt(n), so n · (half-width / |estimate|)².

    >>> from common.stats import paired_bootstrap, verdict
    >>> ci = paired_bootstrap([1, 1, 0, 1] * 100, [0, 1, 0, 0] * 100)
    >>> round(ci.estimate, 2), verdict(ci, direction=+1)
    (0.5, 'reproduced')
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.config import UserError

VERDICTS = ("reproduced", "refuted", "inconclusive")
DEFAULT_RESAMPLES = 10_000
# rows of resampled indices drawn at once: bounds memory at about 64 MB of int64 for any n
_CHUNK_CELLS = 8_000_000


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` units with its bootstrap interval at ``level``."""

    estimate: float
    low: float
    high: float
    n: int
    level: float = 0.95
    method: str = "percentile bootstrap"

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def excludes(self, value: float = 0.0) -> bool:
        return value < self.low or value > self.high

    def format(self, scale: float = 1.0, digits: int = 3, signed: bool = True) -> str:
        """``+0.051 [+0.012, +0.090]`` (``scale=100`` for percentage points; ``signed=False`` for levels)."""
        e, lo, hi = (x * scale for x in (self.estimate, self.low, self.high))
        f = f"{{:{'+' if signed else ''}.{digits}f}}"
        return f"{f.format(e)} [{f.format(lo)}, {f.format(hi)}]"


def _as_array(values: Iterable[float], what: str) -> np.ndarray:
    arr = np.asarray(list(values), dtype=float)
    if arr.ndim != 1:
        raise UserError(f"{what}: expected a flat list of per-unit values, got shape {arr.shape}")
    if arr.size == 0:
        raise UserError(f"{what}: no units to bootstrap (empty list)")
    if not np.all(np.isfinite(arr)):
        raise UserError(f"{what}: {int((~np.isfinite(arr)).sum())} non-finite value(s) among {arr.size}")
    return arr


def _bootstrap_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    n = values.size
    rows = max(1, _CHUNK_CELLS // n)
    means = np.empty(resamples)
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    return means


def _interval(values: np.ndarray, resamples: int, seed: int, level: float, method: str) -> Interval:
    if not 0 < level < 1:
        raise UserError(f"interval level must lie in (0, 1), got {level}")
    estimate = float(values.mean())
    if values.size == 1 or np.all(values == values[0]):
        # every resample has the same mean: the bootstrap says nothing beyond the point itself
        return Interval(estimate, estimate, estimate, int(values.size), level, method)
    means = _bootstrap_means(values, resamples, np.random.default_rng(seed))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high), int(values.size), level, method)


def bootstrap_mean(values: Iterable[float], *, reference: float = 0.0, resamples: int = DEFAULT_RESAMPLES,
                   seed: int = 0, level: float = 0.95) -> Interval:
    """Mean of ``values − reference`` with its interval (``reference=0.5``: accuracy above chance)."""
    arr = _as_array(values, "bootstrap_mean") - reference
    return _interval(arr, resamples, seed, level, "percentile bootstrap" + (f", minus {reference:g}" if reference else ""))


def paired_bootstrap(treated: Sequence[float], baseline: Sequence[float], *, resamples: int = DEFAULT_RESAMPLES,
                     seed: int = 0, level: float = 0.95) -> Interval:
    """Mean of ``treated[i] − baseline[i]`` over shared units (the same BBQ items, the same held-out pairs)."""
    a, b = _as_array(treated, "paired_bootstrap treated"), _as_array(baseline, "paired_bootstrap baseline")
    if a.size != b.size:
        raise UserError(f"paired_bootstrap: {a.size} treated vs {b.size} baseline values; a paired comparison needs "
                        "one value per shared unit on both sides")
    return _interval(a - b, resamples, seed, level, "paired percentile bootstrap")


def seeds_paired_bootstrap(treated_by_seed: Sequence[Sequence[float]], baseline: Sequence[float], *,
                           resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = 0.95) -> Interval:
    """Mean over training seeds of ``treated[s][i] − baseline[i]``, when every seed's model is scored on the same units.

    A two-level bootstrap (Davison & Hinkley 1997, sec. 3.8): each resample draws the seeds with replacement and,
    independently, the units with replacement (the same units for every drawn seed, so the pairing holds), then takes
    the mean over the drawn seeds of each one's mean paired difference. The interval thus widens with the spread
    between seeds as well as with the item sampling; with a single seed it is ``paired_bootstrap``'s. ``n`` counts the
    units: with few seeds the seed spread may dominate, and more units would not narrow the interval much.
    """
    b = _as_array(baseline, "seeds_paired_bootstrap baseline")
    if not treated_by_seed:
        raise UserError("seeds_paired_bootstrap: no seeds (an empty list of treated runs)")
    rows = [_as_array(t, f"seeds_paired_bootstrap seed {k}") for k, t in enumerate(treated_by_seed)]
    if any(r.size != b.size for r in rows):
        raise UserError(f"seeds_paired_bootstrap: per-seed sizes {[r.size for r in rows]} vs {b.size} baseline "
                        "values; every seed must be scored on the baseline's units")
    if len(rows) == 1:
        return paired_bootstrap(rows[0], b, resamples=resamples, seed=seed, level=level)
    if not 0 < level < 1:
        raise UserError(f"interval level must lie in (0, 1), got {level}")
    diffs = np.stack(rows) - b  # (seeds, units)
    n_seeds, n = diffs.shape
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, _CHUNK_CELLS // (n * n_seeds))
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        units = rng.integers(0, n, size=(stop - start, n))
        drawn = rng.integers(0, n_seeds, size=(stop - start, n_seeds))
        per_seed = diffs[:, units].mean(axis=2)  # (seeds, resamples): each seed's mean over the drawn units
        means[start:stop] = np.take_along_axis(per_seed.T, drawn, axis=1).mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(diffs.mean()), float(low), float(high), int(n), level,
                    f"paired percentile bootstrap over units and {n_seeds} seeds")


def unpaired_bootstrap(treated: Sequence[float], baseline: Sequence[float], *, resamples: int = DEFAULT_RESAMPLES,
                       seed: int = 0, level: float = 0.95) -> Interval:
    """Difference of means of two independent samples, each resampled on its own."""
    a, b = _as_array(treated, "unpaired_bootstrap treated"), _as_array(baseline, "unpaired_bootstrap baseline")
    rng = np.random.default_rng(seed)
    diffs = _bootstrap_means(a, resamples, rng) - _bootstrap_means(b, resamples, rng)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return Interval(float(a.mean() - b.mean()), float(low), float(high), int(min(a.size, b.size)), level,
                    "unpaired percentile bootstrap")


def verdict(interval: Interval, direction: int) -> str:
    """``reproduced`` / ``refuted`` / ``inconclusive`` for a claim whose effect has sign ``direction`` (+1 or −1)."""
    if direction not in (1, -1):
        raise UserError(f"verdict: direction must be +1 or -1 (the sign the paper claims), got {direction!r}")
    if not interval.excludes(0.0):
        return "inconclusive"
    return "reproduced" if (interval.estimate > 0) == (direction > 0) else "refuted"


def needed_n(interval: Interval) -> int | None:
    """Units needed for the interval to exclude 0 if the estimate held (None: a zero estimate never will)."""
    if interval.estimate == 0 or interval.half_width == 0:
        return None
    # rounded before the ceiling so float noise (25.000000000004) does not add a unit
    return max(interval.n, math.ceil(round(interval.n * (interval.half_width / abs(interval.estimate)) ** 2, 6)))


@dataclass
class Claim:
    """One row of a paper's fidelity table: what the paper says, what we measured, and the verdict.

    ``paper_value`` is the paper's own number for the same effect (a difference, or a level minus its reference),
    in the same unit as ``ours``; ``direction`` is the sign the paper claims. ``setting`` says what we ran (model,
    data, sizes) in a few words, ``unit`` what ``n`` counts (items, pairs, seeds). ``scale`` only changes how tables
    print the numbers (100: fractions shown as percentage points).
    """

    paper: str
    claim: str
    metric: str
    direction: int
    ours: Interval
    unit: str
    paper_value: float | None = None
    paper_source: str = ""
    setting: str = ""
    note: str = ""
    scale: float = 1.0
    verdict: str = field(init=False)
    needed_n: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.verdict = verdict(self.ours, self.direction)
        self.needed_n = needed_n(self.ours) if self.verdict == "inconclusive" else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ours"] = asdict(self.ours)
        return out

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Claim:
        row = dict(row)
        for derived in ("verdict", "needed_n"):
            row.pop(derived, None)
        try:
            ours = Interval(**row.pop("ours"))
            return cls(ours=ours, **row)
        except (KeyError, TypeError) as e:
            raise UserError(f"malformed claim row (needs paper, claim, metric, direction, ours, unit): {e}") from e

    def ours_text(self) -> str:
        digits = 1 if self.scale >= 100 else 3
        return f"{self.ours.format(self.scale, digits)} (n={self.ours.n} {self.unit})"

    def paper_text(self) -> str:
        if self.paper_value is None:
            return "—"
        digits = 1 if self.scale >= 100 else 3
        return f"{self.paper_value * self.scale:+.{digits}f}"


CLAIMS_FILE = "claims.json"


def write_claims(output_dir: str | Path, claims: Sequence[Claim]) -> Path:
    """``<output_dir>/claims.json``: the rows ``common.fidelity`` gathers into the cross-paper table."""
    from common.artifacts import atomic_write_text

    path = Path(output_dir) / CLAIMS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps([c.to_dict() for c in claims], indent=1) + "\n")
    return path


def read_claims(path: str | Path) -> list[Claim]:
    path = Path(path)
    try:
        rows = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: cannot read claims ({e})") from e
    if not isinstance(rows, list):
        raise UserError(f"{path}: expected a JSON list of claims, got {type(rows).__name__}")
    return [Claim.from_dict(r) for r in rows]
