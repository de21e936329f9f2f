"""Models that run their own hub code (ChatGLM3, Baichuan2): no recipe turns trust_remote_code on by itself, the make
targets and stage scripts refuse without TRUST_REMOTE_CODE=true, and a pinned revision (``name@commit``) reaches
from_pretrained everywhere a model is loaded."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from common.config import ConfigError, UserError
from common.models import hub_kwargs, load_causal_lm, load_reward_model, load_tokenizer, split_revision

ROOT = Path(__file__).resolve().parents[2]
REMOTE_TARGETS = {"rllr-chatglm3": "THUDM/chatglm3-6b", "rllr-baichuan2": "baichuan-inc/Baichuan2-7B-Chat",
                  "rllr-baichuan2-13b": "baichuan-inc/Baichuan2-13B-Chat", "rldf-chatglm3": "THUDM/chatglm3-6b",
                  "rldf-baichuan2": "baichuan-inc/Baichuan2-7B-Chat"}
COMMIT = re.compile(r"@[0-9a-f]{40}$")


def _config(target: str) -> tuple[Path, dict]:
    paper, name = target.split("-", 1)
    path = ROOT / paper / "configs" / f"{name}.yaml"
    return path, yaml.safe_load(path.read_text())


def _model_names(cfg: dict) -> list[str]:
    return [v[k] for v in cfg.values() if isinstance(v, dict) for k in ("model_name_or_path", "model")
            if isinstance(v.get(k), str) and "/" in v[k] and not v[k].startswith(("REPLACED", "runs/", "gpt-"))]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TRUST_REMOTE_CODE", "MAKEFLAGS", "LAUNCH", "NUM_GPUS")}
    return {**env, **extra}


# --- the opt-in gate ------------------------------------------------------------------------------------------


def test_no_recipe_turns_remote_code_on_by_itself():
    for paper in ("rldf", "rllr", "rlchf", "pcrm", "ser"):
        for path in sorted((ROOT / paper / "configs").glob("*.yaml")):
            text = path.read_text()
            assert not re.search(r"^\s*trust_remote_code:\s*true", text, re.MULTILINE), path


@pytest.mark.parametrize("target", sorted(REMOTE_TARGETS))
def test_remote_code_recipes_name_their_model_and_pin_it_to_a_commit(target):
    _, cfg = _config(target)
    assert cfg["remote_code"] == REMOTE_TARGETS[target]
    names = _model_names(cfg)
    assert names and all(split_revision(n)[0] == REMOTE_TARGETS[target] for n in names), names
    assert all(COMMIT.search(n) for n in names), names  # a full commit hash, not a branch


@pytest.mark.parametrize("target", sorted(REMOTE_TARGETS))
def test_make_target_refuses_without_trust_remote_code_in_one_line(target):
    # -o: do not (re)build the venv or the embedded models; the gate is the target's first recipe line
    done = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", "-o", ".venv/.models-prepared",
                           target], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if not line.startswith("make")]
    expected = (f"error: {REMOTE_TARGETS[target]} runs its own code from the hub; rerun with "
                "TRUST_REMOTE_CODE=true to allow it")
    assert lines == [expected]
    assert "scripts/" not in done.stdout  # no stage started


@pytest.mark.parametrize("target", sorted(REMOTE_TARGETS))
def test_with_the_opt_in_the_target_hands_it_to_the_stage_scripts(target):
    done = subprocess.run(["make", "-n", "--no-print-directory", target, "TRUST_REMOTE_CODE=true"], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=120, check=True)
    run = [line for line in done.stdout.splitlines() if "scripts/run_all.sh" in line]
    assert run and all("TRUST_REMOTE_CODE=true" in line for line in run), done.stdout


def _source_env(paper: str, config: Path, **extra: str) -> subprocess.CompletedProcess:
    """Source <paper>/scripts/env.sh (as every stage script does) and print what it hands the stages."""
    show = 'echo "TR=${TR:-} TRC=${TRC:-}"' if paper == "rllr" else 'echo "EXTRA=${EXTRA[*]:-} MERGE=${MERGE_FLAGS[*]:-}"'
    script = f'set -e; source {paper}/scripts/env.sh; {show}'
    env = _env(CONFIG=str(config), TASK="sst2", MODEL="m", PY=str(ROOT / ".venv" / "bin" / "python"), **extra)
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.parametrize("target", sorted(REMOTE_TARGETS))
def test_stage_scripts_run_directly_refuse_too_and_pass_the_flag_only_when_opted_in(target):
    paper = target.split("-")[0]
    config, _ = _config(target)
    refused = _source_env(paper, config)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == (f"error: {REMOTE_TARGETS[target]} runs its own code from the hub; rerun with "
                                      "TRUST_REMOTE_CODE=true to allow it")
    allowed = _source_env(paper, config, TRUST_REMOTE_CODE="true")
    assert allowed.returncode == 0, allowed.stderr
    assert "trust_remote_code=true" in allowed.stdout and "--trust-remote-code" in allowed.stdout
    plain = _source_env(paper, ROOT / paper / "configs" / "llama2.yaml")  # no remote code: nothing to opt into
    assert plain.returncode == 0 and "trust_remote_code" not in plain.stdout and "trust-remote" not in plain.stdout


# --- the pinned revision reaches from_pretrained ----------------------------------------------------------------


def test_split_revision_takes_only_a_hub_id_at_a_revision(tmp_path):
    sha = "e9e0406d062cdb887444fe5bd546833920abd4ac"
    assert split_revision(f"THUDM/chatglm3-6b@{sha}") == ("THUDM/chatglm3-6b", sha)
    assert split_revision("gpt2@v1.0") == ("gpt2", "v1.0")
    assert split_revision("THUDM/chatglm3-6b") == ("THUDM/chatglm3-6b", None)
    assert split_revision("embedded:tiny-llama") == ("embedded:tiny-llama", None)
    local = tmp_path / "model@v2"
    local.mkdir()
    assert split_revision(str(local)) == (str(local), None)  # an existing folder is a folder, @ and all
    assert split_revision("/no/such/dir@abc") == ("/no/such/dir@abc", None)  # not a hub id: left to the loaders


class _Captured(Exception):
    pass


@pytest.mark.parametrize("loader, auto", [(load_causal_lm, "AutoModelForCausalLM"),
                                          (load_reward_model, "AutoModelForSequenceClassification"),
                                          (load_tokenizer, "AutoTokenizer")])
def test_a_pinned_revision_reaches_from_pretrained(loader, auto, monkeypatch):
    import transformers

    calls = []

    def from_pretrained(path, **kwargs):
        calls.append((path, kwargs))
        raise _Captured

    monkeypatch.setattr(getattr(transformers, auto), "from_pretrained", from_pretrained)
    sha = "ea66ced17780ca3db39bc9f8aa601d8463db3da5"
    with pytest.raises(_Captured):
        loader(f"baichuan-inc/Baichuan2-7B-Chat@{sha}", trust_remote_code=True)
    with pytest.raises(_Captured):
        loader("baichuan-inc/Baichuan2-7B-Chat", trust_remote_code=True, revision=sha)
    with pytest.raises(_Captured):
        loader("baichuan-inc/Baichuan2-7B-Chat")
    assert [(p, k.get("revision")) for p, k in calls] == [("baichuan-inc/Baichuan2-7B-Chat", sha)] * 2 + \
        [("baichuan-inc/Baichuan2-7B-Chat", None)]
    assert "revision" not in calls[2][1]  # an unpinned name passes no revision at all


def test_pins_that_pin_nothing_or_disagree_are_one_line(tiny_llama):
    assert hub_kwargs(tiny_llama)[1] == {}
    with pytest.raises(UserError, match="a revision pins only a hub model"):
        hub_kwargs(tiny_llama, revision="abc")
    with pytest.raises(UserError, match="pinned to 'abc' by its name but to 'def' by revision"):
        hub_kwargs("org/model@abc", revision="def")


def test_lora_trained_on_a_pinned_model_records_the_pin_and_merge_reloads_that_commit(tiny_llama, tmp_path,
                                                                                       monkeypatch):
    import transformers
    from peft import LoraConfig, get_peft_model

    from common.merge_lora import merge_lora
    from common.models import resolve_model

    real = transformers.AutoModelForCausalLM.from_pretrained
    seen = []

    def hub_stand_in(path, **kwargs):  # "org/model" at a commit: the tiny model's weights, loaded offline
        seen.append((path, kwargs.pop("revision", None)))
        return real(resolve_model(tiny_llama) if path == "org/model" else path, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", hub_stand_in)
    model = load_causal_lm("org/model@0123abc")
    assert model.name_or_path == "org/model@0123abc"
    peft = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["q_proj"]))
    peft.save_pretrained(tmp_path / "adapter")
    load_tokenizer(tiny_llama).save_pretrained(tmp_path / "adapter")
    recorded = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert recorded["base_model_name_or_path"] == "org/model@0123abc"
    merge_lora(tmp_path / "adapter", tmp_path / "merged")
    assert seen == [("org/model", "0123abc"), ("org/model", "0123abc")]


def test_vllm_and_verl_get_the_pin_or_refuse_it():
    from common.generation import GenerationConfig
    from common.generation.vllm_offline import engine_kwargs

    cfg = GenerationConfig(backend="vllm", model="THUDM/chatglm3-6b@abc123", trust_remote_code=True)
    kwargs = engine_kwargs(cfg, "THUDM/chatglm3-6b", "abc123")
    assert kwargs["model"] == "THUDM/chatglm3-6b"
    assert kwargs["revision"] == kwargs["tokenizer_revision"] == kwargs["code_revision"] == "abc123"
    assert "revision" not in engine_kwargs(cfg, "THUDM/chatglm3-6b")

    from common.train.ppo import PPOConfig
    from common.verl_bridge import translate

    rl = PPOConfig(model="THUDM/chatglm3-6b@abc123", dataset="d.jsonl", output_dir="o", engine="verl",
                   reward_function="common.rewards:length_reward")
    with pytest.raises(ConfigError, match="engine verl cannot pin a hub revision; download that commit"):
        translate(rl, train_file="t.parquet", n_prompts=8, total_steps=1, reward_url="http://127.0.0.1:1",
                  checkpoint_dir="c", experiment="e", bos_token=False)
