"""The harness runs one tiny step of every stage, ours and TRL's, on CPU and reports a positive throughput."""

from __future__ import annotations

import json

import pytest

from bench.run import main as bench_main
from bench.table import load, markdown

TINY = ["--model-size", "tiny", "--device", "cpu", "--steps", "1", "--warmup", "0", "--batch", "2",
        "--min-len", "8", "--max-len", "32", "--gen-len", "4"]


@pytest.mark.parametrize("stage", ["sft", "rm", "dpo"])
@pytest.mark.parametrize("impl", ["ours", "trl"])
def test_one_step_reports_positive_tokens_per_second(stage, impl, tmp_path):
    out = tmp_path / "r.jsonl"
    rec = bench_main(["--stage", stage, "--impl", impl, "--out", str(out), *TINY])
    assert rec["tokens_per_s"] > 0 and rec["tokens"] >= 2 * 8, rec
    assert rec["timed_steps"] == 1 and rec["mfu"] is None, "one timed step; no MFU on CPU"
    assert rec["model_tflops_per_s"] > 0 and rec["peak_mem_gb"] > 0
    assert json.loads(out.read_text().splitlines()[-1])["label"] == ("ours" if impl == "ours" else "trl-best")


def test_ppo_ours_and_trl_112_report_episodes_split_into_phases(tmp_path):
    from bench.ppo import ensure_trl_overlay

    try:
        ensure_trl_overlay()
    except RuntimeError as exc:  # no PyPI here: the baseline cannot be installed
        pytest.skip(str(exc))
    out = tmp_path / "r.jsonl"
    for impl in ("ours", "trl"):
        rec = bench_main(["--stage", "ppo", "--impl", impl, "--out", str(out), *TINY])
        assert rec["episodes"] == 2 and rec["episodes_per_s"] > 0, rec
        assert rec["generation_s"] > 0 and rec["scoring_s"] > 0 and rec["training_s"] > 0, rec
    assert load(out)[("ppo", "trl-best")]["versions"]["trl"] == "1.12.0"
    table = markdown(load(out))
    assert table.splitlines()[-1].startswith("| ppo |") and table.count("x |") == 1, table


def test_bad_lengths_are_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        bench_main(["--stage", "sft", "--impl", "ours", "--min-len", "64", "--max-len", "32"])
    assert "--max-len 32 is below --min-len 64" in capsys.readouterr().err
