import dataclasses
import json

import pytest

from common.artifacts import RunDir, atomic_write_text, read_jsonl
from common.config import UserError


@dataclasses.dataclass
class Cfg:
    lr: float = 0.1


def test_run_dir_records_config_commit_seed_and_metrics(tmp_path):
    run = RunDir.start(tmp_path / "run", Cfg(), seed=7)
    run.finish({"accuracy": 0.9}, key_metric="accuracy")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["seed"] == 7 and info["git_commit"] and "wall_time_s" in info
    assert "lr: 0.1" in (tmp_path / "run" / "config.yaml").read_text()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["accuracy"] == 0.9 and metrics["key_metric"] == "accuracy"


def test_finished_run_is_not_overwritten_without_consent(tmp_path):
    RunDir.start(tmp_path, Cfg()).finish({"x": 1})
    with pytest.raises(UserError, match="already holds a finished run"):
        RunDir.start(tmp_path, Cfg())
    RunDir.start(tmp_path, Cfg(), overwrite=True)


def test_torn_last_jsonl_line_is_dropped_only_when_tolerated(tmp_path):
    p = tmp_path / "cache.jsonl"
    atomic_write_text(p, '{"a": 1}\n{"a": 2}\n{"a": ')
    assert read_jsonl(p, tolerate_torn_tail=True) == [{"a": 1}, {"a": 2}]
    with pytest.raises(UserError, match="cache.jsonl:3"):
        read_jsonl(p)
