"""Launch hooks: LAUNCH starts the SFT / RM / DPO trainers of every paper's stage scripts, global_batch_size keeps
the global batch whatever the process count, run.json records the batch layout, and every full-scale make target
hands the scripts a launcher and an RL engine.

The two-process test runs a real stage script (rlchf/scripts/06_sft.sh) under
``LAUNCH="accelerate launch --multi_gpu --num_processes 2"`` with ``ACCELERATE_USE_CPU=1``: two processes, gloo
backend. (``accelerate launch --cpu --num_processes 2`` would start a single process: accelerate's multi-CPU path
goes through mpirun; run.json would then say world_size 1.)
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.artifacts import RunDir
from common.config import ConfigError
from common.train import batch_layout, resolve_accumulation, world_size_from_env
from common.train.dpo import DPOConfig
from common.train.rm import RMConfig
from common.train.sft import SFTConfig

ROOT = Path(__file__).resolve().parent.parent
PAPERS = ["rldf", "rllr", "rlchf", "pcrm", "ser"]
# Two runs of the same 4 optimizer steps on the same 16 examples in the same order: only the summation order of the
# gradient differs (all-reduce of two micro-batch gradients vs accumulating them in one process), ~1e-7 relative in
# float32. Measured here: equal to the last bit (difference 0.0 in train_loss, first and last logged loss). A wrong
# global batch lands far outside the tolerance: one process of global batch 2 (what `--cpu --num_processes 2` starts)
# ends 0.037 from the reference in train_loss_last, 2 processes x accumulation 2 (global 8) end 0.17 from it.
LOSS_TOLERANCE = 1e-4


# ----------------------------------------------------------------------------------------------------------------
# (c) global_batch_size arithmetic


def test_global_batch_size_sets_the_accumulation_from_the_world_size():
    assert resolve_accumulation(None, 4, 3, "sft", world_size=8) == 3  # unset: as given
    assert resolve_accumulation(64, 4, 1, "sft", world_size=8) == 2
    assert resolve_accumulation(64, 4, 1, "sft", world_size=1) == 16
    assert resolve_accumulation(32, 4, 8, "rm", world_size=8) == 1


@pytest.mark.parametrize("global_batch, per_device, world", [(30, 4, 1), (16, 4, 8), (0, 1, 1)])
def test_a_global_batch_that_does_not_split_is_a_one_line_config_error(global_batch, per_device, world):
    with pytest.raises(ConfigError, match=r"^dpo\.global_batch_size: ") as err:
        resolve_accumulation(global_batch, per_device, 1, "dpo", world_size=world)
    assert "\n" not in str(err.value) and f"{per_device} x {world}" in str(err.value)


def test_stage_configs_read_the_launchers_world_size(monkeypatch, tmp_path):
    common = {"model_name_or_path": "m", "dataset": "d.jsonl", "output_dir": str(tmp_path)}
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert world_size_from_env() == 2
    assert SFTConfig(**common, per_device_train_batch_size=2, global_batch_size=16).gradient_accumulation_steps == 4
    assert RMConfig(**common, per_device_train_batch_size=4, global_batch_size=32).gradient_accumulation_steps == 4
    assert DPOConfig(**common, per_device_train_batch_size=1, gradient_accumulation_steps=5,
                     global_batch_size=None).gradient_accumulation_steps == 5
    with pytest.raises(ConfigError, match=r"^rm\.global_batch_size: 6 is not a multiple of "
                                          r"per_device_train_batch_size 4 x 2"):
        RMConfig(**common, per_device_train_batch_size=4, global_batch_size=6)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE='two'"):
        SFTConfig(**common, global_batch_size=8)
    monkeypatch.delenv("WORLD_SIZE")
    assert SFTConfig(**common, per_device_train_batch_size=2, global_batch_size=16).gradient_accumulation_steps == 8


def test_run_json_records_the_batch_layout(tmp_path):
    class Args:
        per_device_train_batch_size, world_size, gradient_accumulation_steps = 4, 8, 2

    run = RunDir.start(tmp_path / "run", {"a": 1}, seed=0)
    run.record(batch=batch_layout(Args()))
    run.finish({"loss": 1.0})
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["batch"] == {"per_device_train_batch_size": 4, "world_size": 8, "gradient_accumulation_steps": 2,
                             "global_batch_size": 64}
    assert "git_commit" in info and "finished_at" in info


def _sections_with_global_batch(node, path=""):
    if isinstance(node, dict):
        if "global_batch_size" in node:
            yield path, node
        for key, value in node.items():
            yield from _sections_with_global_batch(value, f"{path}.{key}" if path else key)


FULL_CONFIGS = sorted(p for paper in PAPERS for p in (ROOT / paper / "configs").glob("*.yaml")
                      if p.stem not in ("tiny", "fidelity", "policy_fidelity"))


@pytest.mark.parametrize("path", FULL_CONFIGS, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_recipe_global_batches_split_on_one_gpu(path):
    for where, section in _sections_with_global_batch(yaml.safe_load(path.read_text())):
        resolve_accumulation(section["global_batch_size"], section.get("per_device_train_batch_size", 4),
                             section.get("gradient_accumulation_steps", 1), f"{path.name}:{where}", world_size=1)


def test_recipes_carry_upstreams_documented_global_batches():
    def gbs(path, *keys):
        node = yaml.safe_load((ROOT / path).read_text())
        for k in keys:
            node = node[k]
        return node["global_batch_size"]

    for model in ("llama2", "chatglm3", "qwen1.5", "baichuan2"):  # [CODE: global batch 32 / 16]
        assert (gbs(f"rldf/configs/{model}.yaml", "rm"), gbs(f"rldf/configs/{model}.yaml", "sft")) == (32, 16)
    assert gbs("pcrm/configs/llama2.yaml", "variants_dialogue", "rm") == 16  # 4 x 4 GPUs
    assert gbs("pcrm/configs/llama2.yaml", "variants_tldr", "rm") == 64  # 16 x 4 GPUs
    for model in ("llama3", "mistral", "llama2-13b"):  # SFT 64 x 8 GPUs, RM 5 x 8 GPUs
        assert (gbs(f"ser/configs/{model}.yaml", "sft"), gbs(f"ser/configs/{model}.yaml", "ser", "rm")) == (512, 40)


# ----------------------------------------------------------------------------------------------------------------
# (b) stage scripts and make targets

TRAINER_MODULES = r"common\.train\.(sft|rm|dpo)|rllr\.rm|pcrm\.rm|pcrm\.variants"
RL_MODULES = r"common\.train\.ppo|rllr\.ppo|pcrm\.ppo|ser\.ppo"


def _script_commands():
    for paper in PAPERS:
        for script in sorted((ROOT / paper / "scripts").glob("*.sh")):
            for line in script.read_text().splitlines():
                yield script, line


def test_stage_scripts_start_trainers_with_launch_and_pass_the_rl_engine():
    trainers, rl = set(), set()
    for script, line in _script_commands():
        name = f"{script.parent.parent.name}/{script.name}"
        if re.search(rf"-m ({TRAINER_MODULES})\b", line):
            assert "$LAUNCH -m" in line, f"{name}: a trainer started without $LAUNCH: {line.strip()}"
            trainers.add(name)
        if re.search(rf"-m ({RL_MODULES})\b", line):
            text = script.read_text()
            assert "${RL_ENGINE:+engine=$RL_ENGINE}" in text, f"{name}: the RL stage does not pass RL_ENGINE"
            rl.add(name)
    for paper in PAPERS:
        assert any(t.startswith(paper) for t in trainers), f"{paper}: no stage script starts a trainer via $LAUNCH"
        assert any(t.startswith(paper) for t in rl), f"{paper}: no RL stage script found"
    for env in ("rldf", "rllr", "pcrm", "ser"):
        assert "LAUNCH=${LAUNCH:-$PY}" in (ROOT / env / "scripts" / "env.sh").read_text()


def _full_scale_targets() -> list[tuple[str, str]]:
    """(paper, target) for every <paper>-<model> target: not tiny, a fidelity target (or one of its halves) or the SER policy experiment."""
    out = []
    for paper in PAPERS:
        for line in (ROOT / paper / "paper.mk").read_text().splitlines():
            m = re.match(rf"^({paper}-[A-Za-z0-9.-]+):", line)
            if m and not re.search(r"-(tiny|policy-fidelity)$|-fidelity(-[a-z0-9]+)?$", m.group(1)):
                out.append((paper, m.group(1)))
    return out


def _make_n(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("LAUNCH", "NUM_GPUS", "RL_ENGINE", "MAKEFLAGS")}
    done = subprocess.run(["make", "-n", "--no-print-directory", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _recipe_engine(paper: str, target: str) -> str | None:
    config = ROOT / paper / "configs" / f"{target[len(paper) + 1:]}.yaml"
    engines = {v["engine"] for k, v in yaml.safe_load(config.read_text()).items()
               if k.startswith("rl") and isinstance(v, dict) and "engine" in v} or {"ours"}
    return engines.pop() if len(engines) == 1 else None


FULL_TARGETS = _full_scale_targets()


def test_every_paper_has_full_scale_targets():
    assert {p for p, _ in FULL_TARGETS} == set(PAPERS)
    assert ("rllr", "rllr-mistral") in FULL_TARGETS and ("ser", "ser-llama2-70b") in FULL_TARGETS


@pytest.mark.parametrize("paper, target", FULL_TARGETS, ids=[t for _, t in FULL_TARGETS])
def test_full_scale_target_expands_to_launcher_and_engine(paper, target):
    out = _make_n(target, "NUM_GPUS=4", "TRUST_REMOTE_CODE=true")
    run_lines = [line for line in out.splitlines() if "scripts/" in line]
    assert run_lines, out
    for line in run_lines:
        assert re.search(r'LAUNCH="\S*python -m accelerate\.commands\.launch --num_processes 4"', line), line
        assert "NUM_GPUS=4" in line, line
        engine = _recipe_engine(paper, target)
        assert f"RL_ENGINE={engine} " in line, (engine, line)
    # the command line wins over the recipe, and so does a multi-node launcher
    out = _make_n(target, "RL_ENGINE=verl", "TRUST_REMOTE_CODE=true",
                  "LAUNCH=deepspeed --hostfile hostfile --no_local_rank --no_python python")
    assert "RL_ENGINE=verl " in out and 'LAUNCH="deepspeed --hostfile hostfile' in out


@pytest.mark.parametrize("paper", PAPERS)
def test_tiny_targets_keep_one_plain_process(paper):
    out = _make_n(f"{paper}-tiny")
    assert "LAUNCH=" not in out and "accelerate" not in out and "RL_ENGINE=" not in out


# ----------------------------------------------------------------------------------------------------------------
# (a) LAUNCH with two processes gives the one-process loss


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SFT_RECIPE = {
    "model_name_or_path": "embedded:tiny-llama", "dataset": "set by the script", "output_dir": "set by the script",
    "template": "tokenizer", "report_to": "none", "per_device_train_batch_size": 2, "global_batch_size": 4,
    "learning_rate": 1.0e-3, "lr_scheduler_type": "constant", "logging_steps": 1, "save_steps": 1000,
    "max_length": 128, "max_steps": 4, "seed": 0}


def _sft_data(path: Path) -> str:
    """16 records of the shipped tiny HH-RLHF set as an sft jsonl file."""
    from common.artifacts import write_jsonl
    from common.data import load_records

    records = load_records(str(ROOT / "common/tiny_data/hh-rlhf/helpful-base"), "sft", split="test", limit=16,
                           seed=0, source_format="hh_rlhf")
    write_jsonl(path, records)
    return str(path)


def _launched_sft_stage(tmp_path: Path, launch: str) -> tuple[dict, dict]:
    """rlchf/scripts/06_sft.sh, whose trainer starts as `$LAUNCH -m common.train.sft`, on the 16 records."""
    out = tmp_path / "two"
    _sft_data(out / "aggregate" / "sft" / "row.jsonl")
    recipe = tmp_path / "sft.yaml"
    recipe.write_text(yaml.safe_dump({"sft": SFT_RECIPE}))
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(CONFIG=str(recipe), OUT=str(out), SFT_ROWS="row", PY=sys.executable, LAUNCH=launch,
               ACCELERATE_USE_CPU="1", HF_HUB_OFFLINE="1", WANDB_MODE="disabled", OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false")
    done = subprocess.run(["bash", str(ROOT / "rlchf" / "scripts" / "06_sft.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = out / "sft" / "row"
    return json.loads((run / "metrics.json").read_text()), json.loads((run / "run.json").read_text())


def test_two_processes_under_launch_reach_the_one_process_loss(tiny_llama, tmp_path, monkeypatch):
    from common.train.sft import train_sft

    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    # the one-process reference runs here (the plain `$PY -m` path of the scripts, without the interpreter start-up)
    one = train_sft(SFTConfig(**{**SFT_RECIPE, "dataset": _sft_data(tmp_path / "sft.jsonl"),
                                 "output_dir": str(tmp_path / "one")}))
    one_info = json.loads((tmp_path / "one" / "run.json").read_text())
    launch = (f"{sys.executable} -m accelerate.commands.launch --multi_gpu --num_processes 2 "
              f"--main_process_port {_free_port()}")
    two, two_info = _launched_sft_stage(tmp_path, launch)
    assert one_info["batch"] == {"per_device_train_batch_size": 2, "world_size": 1,
                                 "gradient_accumulation_steps": 2, "global_batch_size": 4}
    assert two_info["batch"] == {"per_device_train_batch_size": 2, "world_size": 2,
                                 "gradient_accumulation_steps": 1, "global_batch_size": 4}
    assert one["global_step"] == two["global_step"] == 4
    assert one["train_loss_last"] < one["train_loss_first"]  # it trained
    for key in ("train_loss", "train_loss_first", "train_loss_last"):
        assert abs(one[key] - two[key]) <= LOSS_TOLERANCE, (key, one[key], two[key])
