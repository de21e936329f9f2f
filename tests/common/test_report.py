"""Results report: rows from metrics.json, the paper's number beside ours, curves from logs, bars per variant."""

import json

import pytest

from common.config import UserError
from common.report import collect_runs, curve_series, main, markdown_table, read_reported


def make_run(root, rel, metrics, log=None, trainer_state=None):
    run = root / rel
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps(metrics))
    if log is not None:
        (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    if trainer_state is not None:
        (run / "checkpoint-2").mkdir()
        (run / "checkpoint-2" / "trainer_state.json").write_text(json.dumps({"log_history": trainer_state}))
    return run


@pytest.fixture()
def runs(tmp_path):
    root = tmp_path / "runs"
    papers = tmp_path / "papers"
    (papers / "rldf").mkdir(parents=True)
    (papers / "rldf" / "reported.yaml").write_text(
        "rm/accuracy:\n  value: 0.85\n  source: '[CODE] RLDF RM log'\n"
        "accuracy:\n  value: 0.5\n  source: 'bare metric entry'\n")
    make_run(root, "rldf/tiny/rm", {"accuracy": 0.7, "wall_time_s": 3.0, "key_metric": "accuracy"},
             trainer_state=[{"step": 1, "loss": 0.7, "learning_rate": 1e-4}, {"step": 2, "loss": 0.5}])
    make_run(root, "rldf/tiny/rm_len", {"accuracy": 0.75, "wall_time_s": 4.0, "key_metric": "accuracy"})
    make_run(root, "ser/tiny/ppo", {"reward_mean": 0.1, "wall_time_s": 9.0, "key_metric": "reward_mean"},
             log=[{"step": 1, "policy_loss": 0.3, "reward_mean": 0.0, "kl": 0.01},
                  {"step": 2, "policy_loss": 0.2, "reward_mean": 0.1, "kl": 0.02}])
    return root, papers


def test_rows_carry_paper_number_stage_entry_before_bare_metric(runs):
    root, papers = runs
    rows = {r["run"]: r for r in collect_runs([root], papers)}
    assert rows["rldf/tiny/rm"]["reported"]["value"] == 0.85  # "rm/accuracy" wins over "accuracy"
    assert rows["rldf/tiny/rm_len"]["reported"]["value"] == 0.5
    assert rows["ser/tiny/ppo"]["reported"] is None
    table = markdown_table(list(rows.values()))
    assert "| rldf | rldf/tiny/rm | 3 | accuracy | 0.7 | 0.85 | [CODE] RLDF RM log |" in table


def test_table_without_paper_numbers_keeps_the_five_columns(runs):
    root, _ = runs
    table = markdown_table(collect_runs([root], papers_root=None))
    assert table.splitlines()[0] == "| paper | stage run | wall time (s) | key metric | value |"
    assert "| ser | ser/tiny/ppo | 9 | reward_mean | 0.1 |" in table


def test_reported_yaml_entry_needs_value_and_source(tmp_path):
    (tmp_path / "pcrm").mkdir()
    (tmp_path / "pcrm" / "reported.yaml").write_text("accuracy: 0.7\n")
    with pytest.raises(UserError, match="accuracy: expected"):
        read_reported("pcrm", tmp_path)


def test_curve_series_groups_loss_reward_kl_and_skips_learning_rate():
    series = curve_series([{"step": 1, "loss": 1.0, "learning_rate": 0.1, "rewards/chosen": 0.5, "kl": 0.0},
                           {"step": 3, "loss": 0.5, "objective/kl": 0.2}])
    assert series["loss"]["loss"] == ([1.0, 3.0], [1.0, 0.5])
    assert series["reward"]["rewards/chosen"] == ([1.0], [0.5])
    assert set(series["kl"]) == {"kl", "objective/kl"}
    assert all("learning_rate" not in keys for keys in series.values())


def test_write_report_makes_markdown_curves_and_variant_bars(runs, tmp_path, capsys):
    root, papers = runs
    main([str(root), "--out", str(tmp_path / "report"), "--papers_root", str(papers)])
    out = tmp_path / "report"
    pngs = sorted(p.name for p in out.glob("*.png"))
    # curves for the two runs that logged; one bar plot for rldf's accuracy shared by two variants
    assert pngs == ["bars_rldf_accuracy.png", "curves_rldf_rldf_tiny_rm.png", "curves_ser_ser_tiny_ppo.png"]
    report = (out / "report.md").read_text()
    assert "![rldf_accuracy]" not in report and "bars_rldf_accuracy.png" in report
    assert "0.85" in capsys.readouterr().out
