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

Standalone, as upstream's ``SER/data_process/rm_loop_filter_by_self.py`` [CODE] (one loop step run by hand)::

    python -m ser.filter --input scored.json --kept kept.json --remaining remaining.json
                         [--tau_low 0.45] [--tau_high 0.55] [--margin 0.3] [--statuses 1,2] [--logits] [--overwrite]

The input is upstream's scored file: a JSON list (or ``.jsonl``) of pairs ``{response_j, response_k, score_j,
score_k, ...}`` with pointwise probabilities (``--logits``: raw RM outputs, σ applied here; ``--names a,b`` reads
``response_a``/``score_a``...). Kept pairs are written as upstream writes them: the winner in the first slot (its
response and score swapped in when the second response wins), plus ``self_label`` (+1: the first response won as
given, −1: swapped) and ``status`` (1 or 2). Remaining pairs are written unchanged. A ``.jsonl`` output is JSON
lines, any other a JSON list. Each output is written atomically; existing outputs are kept unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.artifacts import atomic_write_text
from common.config import UserError, run_cli

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


# ---------------------------------------------------------------------------------------------------------------
# The standalone filter (upstream's rm_loop_filter_by_self.py).


def read_scored(path: Path) -> list[Any]:
    """Items of a JSON list file, or of a JSON-lines file (``.jsonl``)."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    if path.suffix == ".jsonl":
        items = []
        for i, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise UserError(f"{path}:{i}: not valid JSON ({exc.msg})") from None
        return items
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); expected a "
                        "list of scored pairs (a .jsonl file holds one pair per line)") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: the top level is a {type(data).__name__}; expected a list of scored pairs")
    return data


def _score(item: dict, key: str, where: str, logits: bool) -> float:
    value = item[key]
    try:
        x = float(value)  # upstream reads float(item['score_j']): numbers or numeric strings
    except (TypeError, ValueError):
        x = None
    if x is None or isinstance(value, bool):
        raise UserError(f"{where}: {key} {value!r} is not a number")
    if not math.isfinite(x):
        raise UserError(f"{where}: {key} is {value!r}; scores must be finite")
    if logits:
        return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
    if not 0.0 <= x <= 1.0:
        raise UserError(f"{where}: {key} = {x} lies outside [0, 1]; the filter compares probabilities σ(r) "
                        "(pass --logits if the scores are raw RM outputs)")
    return x


def filter_scored(items: list[Any], thresholds: FilterThresholds = FilterThresholds(),
                  statuses: tuple[int, ...] = (1, 2), names: tuple[str, str] = ("j", "k"), logits: bool = False,
                  source: str = "input") -> tuple[list[dict], list[dict]]:
    """(kept, remaining) of upstream-format scored pairs, by :func:`select_confident`."""
    a, b = names
    need = (f"response_{a}", f"response_{b}", f"score_{a}", f"score_{b}")
    p_a, p_b = [], []
    for i, item in enumerate(items, start=1):
        where = f"{source} item {i}"
        if not isinstance(item, dict):
            raise UserError(f"{where}: a {type(item).__name__}, not an object with {', '.join(need)}")
        missing = [k for k in need if k not in item]
        if missing:
            raise UserError(f"{where}: field {missing[0]!r} is missing; each pair needs {', '.join(need)}"
                            + ("" if names != ("j", "k") else " (--names a,b reads response_a/score_a...)"))
        p_a.append(_score(item, f"score_{a}", where, logits))
        p_b.append(_score(item, f"score_{b}", where, logits))
    sel = select_confident(np.array(p_a), np.array(p_b), thresholds, statuses)
    kept = []
    for i in sel.selected:
        item, label = dict(items[i]), int(sel.label[i])
        if label < 0:
            for field_a, field_b in ((f"response_{a}", f"response_{b}"), (f"score_{a}", f"score_{b}")):
                item[field_a], item[field_b] = items[i][field_b], items[i][field_a]
        kept.append({**item, "self_label": label, "status": int(sel.status[i])})
    return kept, [items[i] for i in sel.remaining]


def _dump(path: Path, items: list[dict]) -> None:
    if path.suffix == ".jsonl":
        atomic_write_text(path, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in items))
    else:
        atomic_write_text(path, json.dumps(items, indent=2, ensure_ascii=False) + "\n")


def _statuses(text: str) -> tuple[int, ...]:
    try:
        out = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        out = ()
    if not out or set(out) - {1, 2}:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1, 2 or 1,2 (upstream applies both)")
    return out


def _names(text: str) -> tuple[str, str]:
    parts = [x.strip() for x in text.split(",")]
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: give two different suffixes, e.g. j,k")
    return parts[0], parts[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ser.filter", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="SER's confidence filter on a scored pool file: confident pairs to --kept (winner first), "
                    "the rest to --remaining (upstream SER/data_process/rm_loop_filter_by_self.py).",
        epilog=__doc__)
    parser.add_argument("--input", required=True, type=Path, help="scored pairs: JSON list or .jsonl")
    parser.add_argument("--kept", required=True, type=Path, help="output: the self-labelled pairs")
    parser.add_argument("--remaining", required=True, type=Path, help="output: the pairs left for the next loop")
    parser.add_argument("--tau_low", "--t_low", "--left_threshold", dest="t_low", type=float,
                        default=FilterThresholds.t_low, help="t_L: status 1 needs the loser's p below it (0.45)")
    parser.add_argument("--tau_high", "--t_high", "--right_threshold", dest="t_high", type=float,
                        default=FilterThresholds.t_high, help="t_R: status 1 needs the winner's p above it (0.55)")
    parser.add_argument("--margin", type=float, default=FilterThresholds.margin,
                        help="status 2 needs p_winner - p_loser above it (0.3, hard-coded upstream)")
    parser.add_argument("--statuses", type=_statuses, default=(1, 2), help="active clauses: 1, 2 or 1,2 (default)")
    parser.add_argument("--names", type=_names, default=("j", "k"),
                        help="suffixes of the two responses' fields (default j,k: response_j, score_j...)")
    parser.add_argument("--logits", action="store_true", help="scores are raw RM outputs: apply σ first")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    args = parser.parse_args(argv)

    def go() -> int:
        paths = {"--input": args.input.resolve(), "--kept": args.kept.resolve(),
                 "--remaining": args.remaining.resolve()}
        if len(set(paths.values())) < 3:
            raise UserError(f"--input, --kept and --remaining must be three different files; got {args.input}, "
                            f"{args.kept}, {args.remaining}")
        try:
            thresholds = FilterThresholds(args.t_low, args.t_high, args.margin)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        for flag in ("--kept", "--remaining"):
            path = getattr(args, flag[2:])
            if path.exists() and not args.overwrite:
                raise UserError(f"{flag} {path} exists; pass --overwrite to replace it")
            if path.is_dir():
                raise UserError(f"{flag} {path} is a folder; give a file name")
        kept, remaining = filter_scored(read_scored(args.input), thresholds, args.statuses, args.names, args.logits,
                                        str(args.input))
        _dump(args.remaining, remaining)
        _dump(args.kept, kept)
        n1 = sum(x["status"] == 1 for x in kept)
        print(f"ser.filter: {len(kept) + len(remaining)} pairs -> {len(kept)} kept (status 1: {n1}, status 2: "
              f"{len(kept) - n1}; {sum(x['self_label'] < 0 for x in kept)} swapped) in {args.kept}, "
              f"{len(remaining)} remaining in {args.remaining}")
        return 0

    return run_cli(go)


if __name__ == "__main__":
    raise SystemExit(main())
