"""Debates -> pairs: a scripted transcript gives exactly the expected pair in both modes; failures are logged, not
guessed; a run killed mid-generation resumes from its cache and ends with the same records."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scripted_debate import ScriptedGenerator

from common.artifacts import read_jsonl
from common.config import UserError
from rldf.debate import DebateConfig, build_dataset

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PROMPT = ("Identify and discuss the severity of age stereotypes and biases based on the dialogue.\n"
          "Context: Discussion about {}.")


def run(tmp_path, mode, **kw):
    cfg = DebateConfig(output_dir=str(tmp_path / mode), mode=mode, model="scripted", n_topics=3,
                       eval_fraction=0.0, **kw)
    gen = ScriptedGenerator(cfg.generation())
    return cfg, build_dataset(cfg, generator=gen), gen


def test_self_reflection_pair_is_first_round_most_biased_vs_last_round_least_biased(tmp_path):
    cfg, metrics, _ = run(tmp_path, "self")
    pairs = read_jsonl(Path(cfg.output_dir) / "pairs" / "train.jsonl")
    topic = "Should the retirement age be raised?"
    first = next(p for p in pairs if p["topic"] == topic)
    assert first["prompt"] == PROMPT.format(topic)
    assert first["rejected"] == f"60-year-old on {topic}, round 0"  # score 8, rank 1 in round 0
    assert first["chosen"] == f"40-year-old on {topic}, round 2"  # 40 and 20 tie at 1 in round 2; rank 3 wins
    assert (first["rejected_score"], first["chosen_score"], first["score_gap"]) == (8, 1, 7)
    assert metrics["mean_score_by_round"] == pytest.approx([16 / 3, 11 / 3, 2.0])


def test_teacher_pair_follows_the_labelling_call_and_debaters_see_the_last_messages(tmp_path):
    cfg, _, _ = run(tmp_path, "teacher")
    topic = "Age limits for political office"
    pair = next(p for p in read_jsonl(Path(cfg.output_dir) / "pairs" / "train.jsonl") if p["topic"] == topic)
    # utterance 2 = round 0 40-year-old (most biased), 6 = round 1 20-year-old (least biased)
    assert (pair["rejected"], pair["chosen"]) == (f"40-year-old on {topic}, round 0", f"20-year-old on {topic}, round 1")
    assert (pair["rejected_round"], pair["chosen_round"]) == (0, 1)
    cache = [json.loads(line) for line in (Path(cfg.output_dir) / "generation_cache.jsonl").open()]
    assert len(cache) > 0
    log = read_jsonl(Path(cfg.output_dir) / "transcripts.jsonl")
    assert [u["speaker"] for u in log[1]["rounds"][1]["utterances"]] == ["60-year-old", "40-year-old", "20-year-old"]


def test_unparseable_referee_is_reasked_then_the_topic_fails_without_a_pair(tmp_path):
    cfg, metrics, _ = run(tmp_path, "self", max_attempts=2)
    out = Path(cfg.output_dir)
    failed = read_jsonl(out / "failed.jsonl")
    assert [f["topic"] for f in failed] == ["UNJUDGEABLE youth curfews"]
    assert "2 attempts" in failed[0]["failure"]
    assert metrics["debates_failed"] == 1 and metrics["n_pairs"] == 2
    assert all("UNJUDGEABLE" not in p["topic"] for p in read_jsonl(out / "pairs" / "train.jsonl"))
    transcript = next(t for t in read_jsonl(out / "transcripts.jsonl") if t["status"] == "failed")
    assert len(transcript["rounds"][0]["referee"]["raw"]) == 2


def test_sft_and_prompt_records_share_the_topic_split(tmp_path):
    cfg = DebateConfig(output_dir=str(tmp_path / "split"), mode="self", model="scripted", n_topics=3,
                       eval_fraction=0.5)
    build_dataset(cfg, generator=ScriptedGenerator(cfg.generation()))
    out = Path(cfg.output_dir)
    for split in ("train", "test"):
        topics = {r["topic_id"] for r in read_jsonl(out / "pairs" / f"{split}.jsonl")}
        assert topics == {r["topic_id"] for r in read_jsonl(out / "sft" / f"{split}.jsonl")}
        assert topics == {r["topic_id"] for r in read_jsonl(out / "prompts" / f"{split}.jsonl")}
    assert len(read_jsonl(out / "sft" / "train.jsonl")) + len(read_jsonl(out / "sft" / "test.jsonl")) == 2 * 9


def test_all_debates_failing_is_an_error_that_points_at_failed_jsonl(tmp_path):
    cfg = DebateConfig(output_dir=str(tmp_path / "bad"), mode="self", model="scripted", n_topics=1,
                       topics_file=str(_topics_file(tmp_path, ["UNJUDGEABLE a", "UNJUDGEABLE b"])), max_attempts=1)
    with pytest.raises(UserError, match="failed.jsonl"):
        build_dataset(cfg, generator=ScriptedGenerator(cfg.generation()))


def _topics_file(tmp_path, topics):
    path = tmp_path / "topics.txt"
    path.write_text("\n".join(topics) + "\n")
    return path


CHILD = """
import sys
from rldf.debate import DebateConfig, build_dataset
from scripted_debate import ScriptedGenerator
cfg = DebateConfig(output_dir=sys.argv[1], mode="teacher", model="scripted", n_topics=3, eval_fraction=0.0)
build_dataset(cfg, generator=ScriptedGenerator(cfg.generation(), delay_s=0.05))
"""


def test_a_run_killed_mid_generation_resumes_from_its_cache(tmp_path):
    killed = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{HERE}")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(killed)], cwd=ROOT, env=env)
    cache = killed / "generation_cache.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not cache.exists() or len(cache.read_bytes().splitlines()) < 8):
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done_before = len(cache.read_bytes().splitlines())
    assert 8 <= done_before < 30 and not (killed / "metrics.json").exists()

    cfg = DebateConfig(output_dir=str(killed), mode="teacher", model="scripted", n_topics=3, eval_fraction=0.0)
    gen = ScriptedGenerator(cfg.generation())
    build_dataset(cfg, generator=gen)
    assert gen.usage.cached >= done_before - 1  # a torn last line may be redone
    assert len(gen.generated) == len(cache.read_bytes().splitlines()) - done_before + (gen.usage.cached < done_before)

    _, _, _ = run(tmp_path, "teacher")
    for name in ("pairs/train.jsonl", "sft/train.jsonl", "transcripts.jsonl"):
        assert read_jsonl(killed / name) == read_jsonl(tmp_path / "teacher" / name), name


def test_rm_pairs_hold_out_a_subset_of_the_held_out_topics(tmp_path):
    # upstream held out 10 % of the SFT utterances but only 5 % of the RM pairs; here the RM's held-out topics are a
    # seeded subset of the held-out topics, and the other held-out topics' pairs train the RM
    topics_file = tmp_path / "topics.txt"
    topics_file.write_text("".join(f"Age topic {i}\n" for i in range(6)))
    cfg = DebateConfig(output_dir=str(tmp_path / "pairs"), mode="self", model="scripted", n_topics=6,
                       topics_file=str(topics_file), eval_fraction=0.5, pair_eval_fraction=1 / 6)
    build_dataset(cfg, generator=ScriptedGenerator(cfg.generation()))
    out = Path(cfg.output_dir)

    def topics(kind, split):
        return {r["topic_id"] for r in read_jsonl(out / kind / f"{split}.jsonl")}

    held_out = topics("sft", "test")
    assert len(held_out) == 3 and topics("prompts", "test") == held_out
    assert len(topics("pairs", "test")) == 1 and topics("pairs", "test") < held_out
    assert topics("pairs", "train") == set(range(6)) - topics("pairs", "test")
    with pytest.raises(UserError, match=r"data\.pair_eval_fraction"):
        DebateConfig(output_dir=str(tmp_path / "bad"), mode="self", model="m", eval_fraction=0.1,
                     pair_eval_fraction=0.2)
