"""Resuming trainer stages (SFT, RM, DPO through HF's Trainer; PPO through ours) after a kill: a half-written
checkpoint is skipped and named, a finished run is never retrained by --resume, and train_loss covers the whole run.

A "kill" here is an exception raised from a TrainerCallback at a chosen step: the run stops after its last
checkpoint was written and before metrics.json, as a SIGKILL would leave it (tests/common/test_sft.py has the real
SIGKILL run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from common.artifacts import read_jsonl, write_jsonl
from common.config import UserError
from common.rewards import FunctionReward
from common.train import checkpoint_problem, run_train_loss
from common.train import dpo as dpo_stage
from common.train import rm as rm_stage
from common.train import sft as sft_stage
from common.train.ppo import PPOConfig, train_ppo

RECORDS = [{"prompt": "What colour is the sky?", "response": "Blue."}, {"prompt": "Say hello.", "response": "Hi!"},
           {"prompt": "What is 2+2?", "response": "4"}, {"prompt": "Name a fruit.", "response": "Apple"}]
PAIRS = [{"prompt": f"Item {i}:", "chosen": "good", "rejected": "bad"} for i in range(8)]


class Killed(Exception):
    """Stands for the SIGKILL that stops a run between two checkpoints."""


def kill_at(monkeypatch, module, builder: str, step: int) -> None:
    """Make ``module.builder``'s trainer die at the end of ``step`` (after any checkpoint of that step)."""
    from transformers import TrainerCallback

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step and not control.should_save:
                raise Killed(step)

        def on_save(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise Killed(step)

    real = getattr(module, builder)

    def build(*args, **kwargs):
        built = real(*args, **kwargs)
        (built[0] if isinstance(built, tuple) else built).add_callback(Kill())
        return built

    monkeypatch.setattr(module, builder, build)


def sft_cfg(tiny_llama, tmp_path, out, **kw):
    data = tmp_path / "sft.jsonl"
    write_jsonl(data, RECORDS)
    settings = {"model_name_or_path": tiny_llama, "dataset": str(data), "output_dir": str(out), "template": "tokenizer",
                "report_to": "none", "per_device_train_batch_size": 2, "learning_rate": 5e-3,
                "lr_scheduler_type": "constant", "logging_steps": 1, "save_steps": 2, "max_length": 64, "seed": 0,
                "max_steps": 4}
    return sft_stage.SFTConfig(**{**settings, **kw})


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def fabricate_half_written(out: Path, good: str) -> dict[str, str]:
    """Copies of a good checkpoint, each broken the way a kill during HF's save leaves one: {name: expected note}."""
    broken = {}
    for name, breaks, note in [
        ("checkpoint-5", lambda d: truncate(d / "model.safetensors"), "model.safetensors is"),
        ("checkpoint-6", lambda d: (d / "trainer_state.json").unlink(), "no trainer_state.json"),
        ("checkpoint-7", lambda d: truncate(d / "optimizer.pt", 0.9), "optimizer.pt is truncated"),
    ]:
        shutil.copytree(out / good, out / name)
        breaks(out / name)
        broken[name] = note
    return broken


# --- which checkpoint counts ------------------------------------------------------------------------------------


def test_a_checkpoint_counts_only_when_every_file_hf_wrote_is_whole(tiny_llama, tmp_path, monkeypatch):
    out = tmp_path / "run"
    kill_at(monkeypatch, sft_stage, "build_sft_trainer", 2)
    with pytest.raises(Killed):
        sft_stage.train_sft(sft_cfg(tiny_llama, tmp_path, out))
    good = out / "checkpoint-2"
    assert checkpoint_problem(good) is None
    for name, damage, expected in [
        ("no-state", lambda d: (d / "trainer_state.json").unlink(), "no trainer_state.json"),
        ("torn-state", lambda d: truncate(d / "trainer_state.json"), "trainer_state.json is not valid JSON"),
        ("one-byte-short", lambda d: truncate(d / "model.safetensors", 1 - 1e-9), "model.safetensors is"),
        ("header-only", lambda d: truncate(d / "model.safetensors", 0.0001), "model.safetensors"),
        ("no-weights", lambda d: (d / "model.safetensors").unlink(), "no model weights"),
        ("torn-rng", lambda d: truncate(d / "rng_state.pth"), "rng_state.pth is truncated"),
    ]:
        copy = tmp_path / name / "checkpoint-2"
        shutil.copytree(good, copy)
        damage(copy)
        assert expected in (checkpoint_problem(copy) or ""), name


def test_sft_resume_skips_half_written_checkpoints_names_them_and_continues_from_the_complete_one(
        tiny_llama, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    kill_at(monkeypatch, sft_stage, "build_sft_trainer", 3)
    with pytest.raises(Killed):
        sft_stage.train_sft(sft_cfg(tiny_llama, tmp_path, out))
    monkeypatch.undo()
    assert (out / "checkpoint-2").is_dir() and not (out / "metrics.json").exists()
    broken = fabricate_half_written(out, "checkpoint-2")
    with pytest.raises(UserError, match=r"holds checkpoints of an earlier run \(checkpoint-2\)"):
        sft_stage.train_sft(sft_cfg(tiny_llama, tmp_path, out))  # without --resume: refused, nothing touched
    assert all((out / name).is_dir() for name in broken)
    capsys.readouterr()

    metrics = sft_stage.train_sft(sft_cfg(tiny_llama, tmp_path, out, resume=True))
    printed = capsys.readouterr().out
    assert Path(metrics["resumed_from"]).name == "checkpoint-2" and metrics["global_step"] == 4
    for name, note in broken.items():
        assert f"skipping the incomplete {name} ({note}" in printed
        assert (out / f"incomplete-{name}").is_dir()  # set aside, not deleted
    assert "sft: resuming from" in printed and printed.count("sft: resuming from") == 1
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert checkpoint_problem(out / "checkpoint-4") is None and (out / "model.safetensors").is_file()


def test_resumed_sft_run_reports_the_same_train_loss_as_an_uninterrupted_one(tiny_llama, tmp_path, monkeypatch):
    # checkpoints every 2 steps, losses logged every 5: a checkpoint step is not a logging step
    kw = {"max_steps": 6, "save_steps": 2, "logging_steps": 5}
    straight = sft_stage.train_sft(sft_cfg(tiny_llama, tmp_path, tmp_path / "straight", **kw))
    out = tmp_path / "resumed"
    kill_at(monkeypatch, sft_stage, "build_sft_trainer", 5)  # dies after checkpoint-4, with step 5 trained
    with pytest.raises(Killed):
        sft_stage.train_sft(sft_cfg(tiny_llama, tmp_path, out, **kw))
    monkeypatch.undo()
    resumed = sft_stage.train_sft(sft_cfg(tiny_llama, tmp_path, out, resume=True, **kw))
    assert Path(resumed["resumed_from"]).name == "checkpoint-4" and resumed["global_step"] == 6
    assert resumed["train_loss"] == pytest.approx(straight["train_loss"], abs=1e-4)
    # HF's own figure covers steps 5-6 only: it is what metrics.json used to report, and it differs
    assert abs(resumed["train_loss_last_segment"] - straight["train_loss"]) > 1e-2
    logged = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())["log_history"]
    assert [e["step"] for e in logged if "loss" in e] == [2, 4, 5, 6]  # checkpoint steps are logged too


def test_run_train_loss_weights_each_logged_window_by_its_steps():
    history = [{"loss": 4.0, "step": 1}, {"loss": 2.0, "step": 4}, {"loss": 9.0, "step": 6}]  # the last is after
    assert run_train_loss(history, segment_loss=1.0, start_step=4, end_step=6) == pytest.approx((4 + 6 + 2) / 6)
    assert run_train_loss(history, segment_loss=3.0, start_step=0, end_step=6) == 3.0
    # a checkpoint written before checkpoint steps were logged (last log at step 1 of 4): the gap is left out
    assert run_train_loss(history[:1], segment_loss=1.0, start_step=4, end_step=6) == pytest.approx((4 + 2) / 3)


# --- a finished run --------------------------------------------------------------------------------------------


def test_resume_into_a_finished_run_is_one_line_and_leaves_it_as_it_was(tiny_llama, tmp_path, capsys):
    out = tmp_path / "run"
    first = sft_stage.train_sft(sft_cfg(tiny_llama, tmp_path, out))
    before = {f: (out / f).read_bytes() for f in ("metrics.json", "run.json", "config.yaml", "model.safetensors")}
    with pytest.raises(UserError, match=r"holds a finished run \(metrics.json, global_step 4\): --resume true "
                                        r"continues only a run that stopped before it finished"):
        sft_stage.train_sft(sft_cfg(tiny_llama, tmp_path, out, resume=True))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # the command line: one line, exit 2
        sft_stage.main(["--model_name_or_path", tiny_llama, "--dataset", str(tmp_path / "sft.jsonl"),
                        "--output_dir", str(out), "--template", "tokenizer", "--report_to", "none",
                        "--max_steps", "4", "--resume", "true"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "holds a finished run" in err
    with pytest.raises(UserError, match="already holds a finished run"):
        sft_stage.train_sft(sft_cfg(tiny_llama, tmp_path, out))
    assert {f: (out / f).read_bytes() for f in before} == before  # nothing was rewritten
    again = sft_stage.train_sft(sft_cfg(tiny_llama, tmp_path, out, resume=True, overwrite=True))
    assert again["resumed_from"] is None and again["global_step"] == first["global_step"] == 4  # from the start


def test_rm_and_dpo_resume_skip_a_half_written_checkpoint_and_refuse_a_finished_run(tiny_llama, tmp_path,
                                                                                     monkeypatch, capsys):
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    common = {"model_name_or_path": tiny_llama, "dataset": str(tmp_path / "pairs.jsonl"), "template": "plain",
              "learning_rate": 1e-3, "max_steps": 4, "save_steps": 2, "per_device_train_batch_size": 4,
              "eval_fraction": 0.0, "report_to": "none", "logging_steps": 1}
    for stage, config, train, builder in [(rm_stage, rm_stage.RMConfig, rm_stage.train_rm, "build_rm_trainer"),
                                          (dpo_stage, dpo_stage.DPOConfig, dpo_stage.train_dpo, "build_dpo_trainer")]:
        out = tmp_path / stage.__name__.rsplit(".", 1)[-1]
        straight = train(config(**common, output_dir=str(tmp_path / f"{out.name}-straight")))
        kill_at(monkeypatch, stage, builder, 3)
        with pytest.raises(Killed):
            train(config(**common, output_dir=str(out)))
        monkeypatch.undo()
        shutil.copytree(out / "checkpoint-2", out / "checkpoint-3")
        truncate(out / "checkpoint-3" / "model.safetensors")
        capsys.readouterr()
        metrics = train(config(**common, output_dir=str(out), resume=True))
        assert "skipping the incomplete checkpoint-3 (model.safetensors is" in capsys.readouterr().out, out.name
        assert Path(metrics["resumed_from"]).name == "checkpoint-2" and metrics["global_step"] == 4
        assert metrics["train_loss"] == pytest.approx(straight["train_loss"], abs=1e-4), out.name
        before = (out / "metrics.json").read_bytes()
        with pytest.raises(UserError, match="holds a finished run"):
            train(config(**common, output_dir=str(out), resume=True))
        assert (out / "metrics.json").read_bytes() == before


# --- PPO --------------------------------------------------------------------------------------------------------


def test_ppo_resume_skips_half_written_checkpoints_and_a_finished_run_is_extended_only_past_its_end(
        tiny_llama, tmp_path, capsys):
    prompts = tmp_path / "prompts.jsonl"
    write_jsonl(prompts, [{"prompt": p} for p in ("Say hi.", "Name a colour.", "Count to three.", "Describe the sea.")])
    out = tmp_path / "ppo"
    reward = FunctionReward(lambda p, r: [float(len(x)) / 10 for x in r])

    def cfg(**kw):
        return PPOConfig(**{"model": tiny_llama, "dataset": str(prompts), "output_dir": str(out), "seed": 0,
                            "rollout_batch_size": 4, "mini_batch_size": 2, "max_new_tokens": 4, "temperature": 0.1,
                            "algorithm": "ppo", "use_lora": True, "learning_rate": 1e-3, "ppo_epochs": 1,
                            "save_steps": 1, "total_steps": 2, **kw})

    first = train_ppo(cfg(), reward_source=reward)
    ckpts = out / "checkpoints"
    before = (out / "metrics.json").read_bytes()
    with pytest.raises(UserError, match=r"holds a finished run \(2 steps, metrics.json\) and total_steps is 2: there "
                                        "is nothing to resume"):
        train_ppo(cfg(resume=True), reward_source=reward)
    assert (out / "metrics.json").read_bytes() == before
    shutil.copytree(ckpts / "step-000002", ckpts / "step-000003")
    truncate(ckpts / "step-000003" / "policy" / "adapter_model.safetensors")
    shutil.copytree(ckpts / "step-000002", ckpts / "step-000004")
    truncate(ckpts / "step-000004" / "trainer_state.pt")
    capsys.readouterr()

    metrics = train_ppo(cfg(resume=True, total_steps=3), reward_source=reward)
    printed = capsys.readouterr().out
    assert "skipping the incomplete checkpoint step-000003 (policy/adapter_model.safetensors is" in printed
    assert "skipping the incomplete checkpoint step-000004 (trainer_state.pt is truncated" in printed
    assert f"resuming from {ckpts / 'step-000002'} at step 2/3" in printed
    assert "extending the finished run" in printed and json.loads((out / "metrics-step-2.json").read_text()) == \
        json.loads(before)  # the first run's results are kept
    assert [r["step"] for r in read_jsonl(out / "log.jsonl")] == [1, 2, 3] and metrics["steps"] == 3
    assert metrics["reward_first"] == first["reward_first"]
    assert sorted(p.name for p in ckpts.iterdir()) == ["incomplete-step-000003", "incomplete-step-000004",
                                                       "step-000002", "step-000003"]  # save_total_limit 2
    state = torch.load(ckpts / "step-000003" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 3
