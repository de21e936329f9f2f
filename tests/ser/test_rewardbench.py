"""ser.rewardbench: a SER loop's RM scored on the shipped RewardBench sample through the loop's own backend (the
frozen MiniLM + head here), its numbers equal to the backend's direct scores, and listed by the leaderboard."""

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from common.config import ConfigError, load_config
from common.eval.rewardbench import load_rewardbench
from common.report import main as report_main
from ser.config import SERConfig
from ser.encoder_head import FrozenEncoderHead
from ser.rewardbench import SERRewardBenchConfig, main

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "ser" / "configs" / "tiny.yaml"
SAMPLE = ROOT / "common" / "tiny_data" / "rewardbench"


def test_loop_rm_scores_the_sample_as_the_loop_scores(tmp_path, embedded_models, capsys):
    loop = tmp_path / "runs" / "ser" / "tiny" / "sst2" / "ser_loop"
    cfg = load_config(SERConfig, TINY, "ser", {"output_dir": str(loop)})
    loop.mkdir(parents=True)
    (loop / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg)))
    head = FrozenEncoderHead(cfg.rm)
    pairs = load_rewardbench(str(SAMPLE))
    head.train([{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs[:10]],
               loop / "loop_1" / "model", None)
    (loop / "metrics.json").write_text(json.dumps({"reward_models": {"ser": {"model_dir": str(loop / "loop_1" /
                                                                                             "model")}}}))
    out = loop.parent / "rewardbench" / "ser"
    m = main(["--config", str(TINY), "--section", "rewardbench", f"ser_loop={loop}", "reward_from=ser",
              f"output_dir={out}", f"data={SAMPLE}"])
    assert m["benchmark"] == "rewardbench" and m["n_pairs"] == 15 and m["scorer"]["scoring"] == "ser_frozen_encoder"
    rows = {r["id"]: r for r in map(json.loads, (out / "scores.jsonl").read_text().splitlines())}
    by_id = {p["id"]: p for p in pairs}
    scored = [by_id[i] for i in rows]
    q = [p["prompt"] for p in scored]
    direct_c = head.score(loop / "loop_1" / "model", q, [p["chosen"] for p in scored])
    direct_r = head.score(loop / "loop_1" / "model", q, [p["rejected"] for p in scored])
    assert [rows[p["id"]]["chosen"] for p in scored] == pytest.approx(direct_c.tolist(), abs=1e-5)
    assert [rows[p["id"]]["rejected"] for p in scored] == pytest.approx(direct_r.tolist(), abs=1e-5)
    assert m["accuracy"] == pytest.approx(float((direct_c > direct_r).mean()))
    assert not (loop / "embeddings.npz").exists()  # the loop's embedding cache is not touched
    capsys.readouterr()
    report_main(["--leaderboard", str(tmp_path / "runs")])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("| ser |"))
    assert "ser_frozen_encoder" in line and f"| {100 * m['rewardbench_overall']:.1f} |" in line


def test_settings_that_do_not_apply_to_a_loop_rm_are_refused():
    with pytest.raises(ConfigError, match="ser_loop"):
        SERRewardBenchConfig(data="x.jsonl", device="cpu")
    with pytest.raises(ConfigError, match="not DPO policies"):
        SERRewardBenchConfig(ser_loop="loop", model="m", dpo_ref="ref", data="x.jsonl", device="cpu")
