"""Files that stages leave behind: atomic writes, jsonl records, and the run folder every stage writes.

A run folder (``runs/<paper>/<model>/<stage>/``) always holds ``config.yaml`` (the resolved stage config),
``run.json`` (git commit, seed, command line, versions, wall time; trainer stages add ``batch``: per-device batch,
world size, accumulation, global batch) and, once the stage finished, ``metrics.json``.
A finished run is never overwritten silently: rerunning into it needs ``overwrite: true`` (or ``resume: true``
for stages that can continue).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from common.config import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    """Write all records atomically; returns how many were written."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def iter_jsonl(path: str | Path, tolerate_torn_tail: bool = False) -> Iterator[dict]:
    """Records of a jsonl file. A torn last line (a writer killed mid-write) is skipped when tolerated."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; expected a jsonl file")
    try:
        with path.open() as fh:
            lines = fh.readlines()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if tolerate_torn_tail and i == len(lines) - 1:
                return
            raise UserError(f"{path}:{i + 1}: not valid JSON") from None


def read_jsonl(path: str | Path, tolerate_torn_tail: bool = False) -> list[dict]:
    return list(iter_jsonl(path, tolerate_torn_tail))


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=False
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True,
            text=True, timeout=10, check=False,
        )
        commit = out.stdout.strip() or "unknown"
        return commit + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def set_seed(seed: int) -> None:
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", "?")
    return out


def recorded_seed(run_dir: str | Path) -> int | None:
    """The seed a finished stage recorded in its ``run.json`` (None: a folder without one); fidelity notes name each
    training seed they pool."""
    try:
        return json.loads((Path(run_dir) / "run.json").read_text()).get("seed")
    except (OSError, json.JSONDecodeError):
        return None


class RunDir:
    """The output folder of one stage run. ``start`` refuses to clobber a finished run; ``finish`` writes metrics."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.started = time.time()

    @classmethod
    def start(cls, output_dir: str | Path, config: Any, seed: int | None = None, overwrite: bool = False,
              resume: bool = False) -> RunDir:
        run = cls(output_dir)
        if run.path.exists() and not run.path.is_dir():
            raise UserError(f"output_dir {run.path} is a file, not a folder; choose another output_dir")
        if (run.path / "metrics.json").exists() and not (overwrite or resume):
            raise UserError(
                f"{run.path} already holds a finished run (metrics.json); pass --overwrite true to replace it "
                "or choose another output_dir"
            )
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):  # a parent folder of output_dir is a file
            raise UserError(f"output_dir {run.path}: cannot create it, a part of that path is a file") from None
        cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        atomic_write_text(run.path / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
        atomic_write_json(run.path / "run.json", {
            "git_commit": git_commit(),
            "seed": seed,
            "argv": sys.argv,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": platform.node(),
            "versions": _versions(),
        })
        if seed is not None:
            set_seed(seed)
        return run

    def record(self, **fields: Any) -> None:
        """Add (or replace) top-level fields of ``run.json``, e.g. ``batch`` (the layout a trainer resolved). Every
        process of a launch may call it with the same values: each rewrite is atomic and keeps the other fields."""
        path = self.path / "run.json"
        info = json.loads(path.read_text()) if path.exists() else {}
        info.update(fields)
        atomic_write_json(path, info)

    def finish(self, metrics: dict[str, Any], key_metric: str | None = None) -> dict[str, Any]:
        """Write ``metrics.json`` (plus wall time, and which metric the results table should show)."""
        out = dict(metrics)
        out["wall_time_s"] = round(time.time() - self.started, 2)
        if key_metric is not None:
            if key_metric not in out:
                raise KeyError(f"key_metric {key_metric!r} is not among the metrics {sorted(out)}")
            out["key_metric"] = key_metric
        atomic_write_json(self.path / "metrics.json", out)
        info_path = self.path / "run.json"
        if info_path.exists():
            info = json.loads(info_path.read_text())
            info["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            info["wall_time_s"] = out["wall_time_s"]
            atomic_write_json(info_path, info)
        return out
