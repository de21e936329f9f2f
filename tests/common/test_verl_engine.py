"""engine: verl — the translation of our RL keys, verl's own schema on every full-scale target, and each paper's
reward through verl's reward path scoring exactly as engine ours does.

The verl checks run in verl's own environment (.venv-verl, `make install-verl`; `make test` builds it); they skip
when it is absent, e.g. under a bare `pytest` in a fresh clone.
"""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
import yaml

from common.config import ConfigError, UserError, load_config, read_yaml
from common.train.ppo import PPOConfig, encode_prompts, train_ppo
from common.verl_bridge import hydra_document, translate
from pcrm.ppo import PCRMPPOConfig
from rllr.ppo import RLLRPPOConfig
from ser.ppo import SERPPOConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIG_CLASSES = {"rldf": PPOConfig, "rllr": RLLRPPOConfig, "rlchf": PPOConfig, "pcrm": PCRMPPOConfig,
                  "ser": SERPPOConfig}
SMALL_SCALE = {"tiny", "fidelity", "policy_fidelity"}


def _verl_python() -> str:
    python = os.environ.get("VERL_PYTHON") or str(ROOT / ".venv-verl" / "bin" / "python")
    if not Path(python).is_file():
        pytest.skip(f"verl's environment {python} is absent; `make install-verl` builds it")
    return python


@pytest.fixture(scope="module")
def verl_python():
    return _verl_python()


def full_scale_rl_sections() -> list[tuple[str, Path, str]]:
    """(paper, config, section) for every RL section of every full-scale config."""
    out = []
    for paper in CONFIG_CLASSES:
        for config in sorted((ROOT / paper / "configs").glob("*.yaml")):
            if config.stem in SMALL_SCALE:
                continue
            for section in read_yaml(config):
                if section == "rl" or section.startswith("rl_"):
                    out.append((paper, config, section))
    return out


def _load_target(paper: str, config: Path, section: str):
    """The section as its paper's RL stage reads it; inputs the stage script fills in get placeholders."""
    values = read_yaml(config)[section] or {}
    filled = {"dataset": "prompts.jsonl", "output_dir": "runs/x/rl"}
    if not values.get("model"):
        filled["model"] = "meta-llama/Llama-2-7b-hf"
    cls = CONFIG_CLASSES[paper]
    if cls is RLLRPPOConfig:
        filled.update(label_rm={"path": "runs/x/label_rm"}, rat_rm={"path": "runs/x/rat_rm"})
    elif cls is PCRMPPOConfig:
        filled["reward_model"] = "runs/x/rm"
    elif not values.get("reward_models") and not values.get("reward_function"):
        filled["reward_models"] = [{"path": "runs/x/rm"}]
    return load_config(cls, config, section, filled)


def _write(plan, path: Path) -> Path:
    path.write_text(yaml.safe_dump(hydra_document(plan), sort_keys=False))
    return path


def _plan(cfg, tmp_path, n_prompts=1024, total_steps=10):
    return translate(cfg, train_file=str(tmp_path / "train.parquet"), n_prompts=n_prompts, total_steps=total_steps,
                     reward_url="http://127.0.0.1:1", checkpoint_dir=str(tmp_path / "ckpt"), experiment="rl",
                     bos_token=True)


# --- the translation, by hand ------------------------------------------------------------------------------------


def test_translation_carries_each_key_to_verl(tmp_path):
    cfg = PPOConfig(model="m", dataset="d", reward_models=[{"path": "rm"}], learning_rate=2e-6,
                    critic_learning_rate=5e-6, kl_coef=0.03, adaptive_kl=True, kl_target=6.0, kl_horizon=10000,
                    gamma=0.99, lam=0.9, cliprange=0.15, cliprange_value=0.3, ppo_epochs=2, rollout_batch_size=64,
                    mini_batch_size=2, gradient_accumulation_steps=8, max_prompt_length=400, max_new_tokens=200,
                    use_lora=True, lora_r=8, lora_alpha=16, seed=7, gpus_per_node=4, num_nodes=2,
                    rollout_tensor_parallel=2, lr_scheduler="cosine", warmup_steps=10, top_k=0)
    flat = _plan(cfg, tmp_path, total_steps=30).flat()
    expect = {
        "actor_rollout_ref.actor.optim.lr": 2e-6, "critic.optim.lr": 5e-6,
        "algorithm.adv_estimator": "gae", "algorithm.use_kl_in_reward": True, "algorithm.kl_ctrl.type": "adaptive",
        "algorithm.kl_ctrl.kl_coef": 0.03, "algorithm.kl_ctrl.target_kl": 6.0, "algorithm.kl_ctrl.horizon": 10000,
        "algorithm.gamma": 0.99, "algorithm.lam": 0.9, "actor_rollout_ref.actor.clip_ratio": 0.15,
        "critic.cliprange_value": 0.3, "actor_rollout_ref.actor.ppo_epochs": 2, "data.train_batch_size": 64,
        # 2 sequences per forward x 8 accumulated = 16 sequences per optimiser step, over all 8 GPUs
        "actor_rollout_ref.actor.ppo_mini_batch_size": 16, "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": 2,
        "data.max_prompt_length": 400, "data.max_response_length": 200,
        "actor_rollout_ref.model.lora_rank": 8, "critic.model.lora_rank": 8, "actor_rollout_ref.model.lora_alpha": 16,
        "data.seed": 7, "actor_rollout_ref.rollout.seed": 7, "trainer.n_gpus_per_node": 4, "trainer.nnodes": 2,
        "actor_rollout_ref.rollout.tensor_model_parallel_size": 2, "actor_rollout_ref.rollout.top_k": -1,
        "actor_rollout_ref.actor.optim.lr_scheduler_type": "cosine", "actor_rollout_ref.actor.optim.lr_warmup_steps": 10,
        "trainer.total_training_steps": 30, "trainer.use_v1": True,
    }
    assert {k: flat[k] for k in expect} == expect


def test_adafactor_reaches_verls_actor_and_critic_as_transformers_adafactor_at_a_fixed_lr(tmp_path):
    flat = _plan(PPOConfig(model="m", dataset="d", reward_models=[{"path": "rm"}]), tmp_path).flat()
    assert "actor_rollout_ref.actor.optim.optimizer" not in flat  # AdamW: verl's own default stays
    cfg = PPOConfig(model="m", dataset="d", reward_models=[{"path": "rm"}], optimizer="adafactor")
    flat = _plan(cfg, tmp_path).flat()
    for section in ("actor_rollout_ref.actor.optim", "critic.optim"):
        assert (flat[f"{section}.optimizer_impl"], flat[f"{section}.optimizer"]) == \
            ("transformers.optimization", "Adafactor")
        assert flat[f"{section}.override_optimizer_config"] == {"scale_parameter": False, "relative_step": False,
                                                                 "warmup_init": False}


def test_remax_uses_verls_remax_without_a_critic_and_the_legacy_trainer(tmp_path):
    cfg = PPOConfig(model="m", dataset="d", reward_models=[{"path": "rm"}], algorithm="remax", adaptive_kl=False)
    plan = _plan(cfg, tmp_path)
    flat = plan.flat()
    assert flat["algorithm.adv_estimator"] == "remax" and flat["algorithm.kl_ctrl.type"] == "fixed"
    assert not any(k.startswith("critic.") for k in flat)
    assert flat["trainer.use_v1"] is False  # verl's v1 trainer has no greedy baseline
    assert any("greedy" in note for note in plan.notes)


@pytest.mark.parametrize("change, key", [
    ({"whiten_advantages": False}, "rl.whiten_advantages"),
    ({"lr_scheduler": "linear"}, "rl.lr_scheduler"),
    ({"rollout_batch_size": 6, "mini_batch_size": 2, "gpus_per_node": 4}, "rl.rollout_batch_size"),
    ({"rollout_batch_size": 8, "mini_batch_size": 2, "gpus_per_node": 4}, "rl.mini_batch_size"),
])
def test_what_verl_cannot_run_is_refused_naming_our_key(tmp_path, change, key):
    cfg = PPOConfig(model="m", dataset="d", reward_models=[{"path": "rm"}], **change)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _plan(cfg, tmp_path)


# --- verl's own schema ---------------------------------------------------------------------------------------------

# engine-ours targets with an upstream setting verl cannot run (RL_ENGINE=verl refuses them in one line): SER's
# linear schedule [CODE SER/ppo/ppo.py]; its 13B / 70B targets, which need verl, run cosine (ser/README.md)
VERL_REFUSED = {("ser", "llama3", "rl"): "rl.lr_scheduler", ("ser", "mistral", "rl"): "rl.lr_scheduler"}


def test_every_full_scale_rl_target_passes_verls_own_validation(tmp_path, verl_python, tiny_llama):
    from common.models import resolve_model

    targets = full_scale_rl_sections()
    assert {p for p, _, _ in targets} >= {"rldf", "rllr", "pcrm", "ser"}
    refused = {}
    for paper, config, section in targets:
        cfg = _load_target(paper, config, section)
        try:
            _plan(cfg, tmp_path)
        except ConfigError as exc:
            # only an engine-ours target may hold a setting verl cannot run, and only the documented ones
            assert cfg.engine == "ours", f"{paper}/{config.name}:{section}: engine verl, but {exc}"
            refused[(paper, config.stem, section)] = str(exc).split(":")[0]
    assert refused == VERL_REFUSED
    targets = [t for t in targets if (t[0], t[1].stem, t[2]) not in refused]
    jobs = []
    for i, (paper, config, section) in enumerate(targets):
        cfg = _load_target(paper, config, section)
        plan = _plan(cfg, tmp_path)
        jobs.append({"config": str(_write(plan, tmp_path / f"t{i}.yaml")), "overrides": cfg.verl_overrides,
                     "model_standin": resolve_model(tiny_llama)})
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    proc = subprocess.run([verl_python, "-m", "common.verl_check", "--batch", str(tmp_path / "jobs.json")],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(targets), proc.stderr[-2000:]
    failed = [f"{p}/{c.name}:{s}: {r['error']}" for (p, c, s), r in zip(targets, results) if not r["ok"]]
    assert not failed, "\n".join(failed)
    for (_, config, section), result in zip(targets, results):
        cfg_section = read_yaml(config)[section]
        assert result["adv_estimator"] == ("remax" if cfg_section.get("algorithm") == "remax" else "gae")
        assert result["n_gpus"] == cfg_section.get("gpus_per_node", 1) * cfg_section.get("num_nodes", 1)


def test_a_renamed_key_or_a_bad_override_fails_before_any_gpu(tmp_path, verl_python, tiny_llama):
    from common.models import resolve_model
    from common.train.verl_engine import check_with_verl

    cfg = PPOConfig(model="m", dataset="d", reward_models=[{"path": "rm"}])
    plan = _plan(cfg, tmp_path)
    document = hydra_document(plan)
    document["algorithm"]["kl_ctrl"]["target"] = 6.0  # verl calls it target_kl
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match=r"no key 'algorithm\.kl_ctrl\.target'"):
        check_with_verl(verl_python, bad, [], plan.origin, resolve_model(tiny_llama))
    good = str(_write(plan, tmp_path / "good.yaml"))
    standin = resolve_model(tiny_llama)
    jobs = [{"config": good, "model_standin": standin},
            {"config": good, "overrides": ["algorithm.kl_ctrl.targt=2"], "model_standin": standin},
            {"config": good, "overrides": ["trainer.n_gpus_per_node=3"], "model_standin": standin},
            {"config": good, "overrides": ["actor_rollout_ref.actor.ppo_epochs=two"], "model_standin": standin}]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    proc = subprocess.run([verl_python, "-m", "common.verl_check", "--batch", str(tmp_path / "jobs.json")],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    ok, misspelt, indivisible, mistyped = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert proc.returncode == 2 and ok["ok"]
    assert "kl_ctrl.targt" in misspelt["error"]
    assert "divisible" in indivisible["error"]  # verl's own batch-size rule over the GPUs
    assert "ppo_epochs" in mistyped["error"]


def test_the_engine_needs_verls_environment(tmp_path, tiny_llama):
    cfg = PPOConfig(model=tiny_llama, dataset="d", reward_models=[{"path": "rm"}], engine="verl",
                    verl_python=str(tmp_path / "nowhere" / "python"), output_dir=str(tmp_path / "rl"))
    with pytest.raises(UserError, match="make install-verl"):
        train_ppo(cfg)


# --- each paper's reward through verl's reward path -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_rms(tmp_path_factory, tiny_llama):
    """Two seeded tiny-Llama reward models (random score heads): different scores, same shapes as a trained RM."""
    from common.models import load_reward_model, load_tokenizer

    folders = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        folder = tmp_path_factory.mktemp(f"rm{seed}")
        model = load_reward_model(tiny_llama)
        torch.nn.init.normal_(model.score.weight, std=0.5)
        model.save_pretrained(folder)
        load_tokenizer(tiny_llama).save_pretrained(folder)
        folders.append(str(folder))
    return folders


@pytest.fixture(scope="module")
def ser_head(tmp_path_factory, minilm):
    folder = tmp_path_factory.mktemp("ser_head")
    torch.manual_seed(0)
    (folder / "head.json").write_text(json.dumps({"w": (torch.randn(384) * 0.3).tolist()}))
    return str(folder)


PROMPTS = [{"prompt": "Is this review positive? A lovely film.", "label": "positive"},
           {"prompt": "Is this review positive? Dull and long.", "label": "negative"},
           {"prompt": "Question: name a colour.\n\nAnswer: ", "label": "x"},
           {"prompt": "Tell me about the sea.", "label": "y"}]
RESPONSES = ["positive, because it is lovely", "negative", "blue", "It is large and salty."]


def _paper_configs(tiny_llama, tiny_rms, ser_head, prompt_file, tmp_path):
    common = {"model": tiny_llama, "dataset": prompt_file, "engine": "verl", "verl_dry_run": True, "seed": 0,
              "rollout_batch_size": 4, "mini_batch_size": 2}
    return {
        "rldf": PPOConfig(**common, output_dir=str(tmp_path / "rldf"), reward_models=[{"path": tiny_rms[0]}],
                          reward_clip=0.05, algorithm="remax"),
        "rllr": RLLRPPOConfig(**common, output_dir=str(tmp_path / "rllr"), mode="rllr_mixed", tau=0.0,
                              label_rm={"path": tiny_rms[0]}, rat_rm={"path": tiny_rms[1]}),
        "pcrm": PCRMPPOConfig(**common, output_dir=str(tmp_path / "pcrm"), reward_model=tiny_rms[1]),
        "ser": SERPPOConfig(**common, output_dir=str(tmp_path / "ser"), template="plain",
                            reward_function="ser.encoder_head:ppo_reward",
                            reward_function_kwargs={"head_dir": ser_head}, reward_combine="ser.ppo_reward:ser_sigmoid",
                            reward_combine_kwargs={"baseline": 0.2}),
    }


def test_each_papers_reward_scores_identically_through_verl(tmp_path, verl_python, tiny_llama, tiny_rms, ser_head):
    from common.models import load_tokenizer, resolve_model
    from common.reward_server import RewardScorer, spec_from_config
    from common.serve import spawn_server, stop_server

    prompt_file = tmp_path / "prompts.jsonl"
    prompt_file.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    tok = load_tokenizer(tiny_llama)
    response_ids = [tok(r, add_special_tokens=False)["input_ids"] for r in RESPONSES]
    decoded = [tok.decode(ids, skip_special_tokens=True) for ids in response_ids]  # what both engines score
    configs = _paper_configs(tiny_llama, tiny_rms, ser_head, str(prompt_file), tmp_path)

    servers, jobs, expected, our_prompt_ids = [], [], {}, {}
    try:
        with ThreadPoolExecutor(len(configs)) as pool:  # dry runs: parquet, reward spec, verl config checked by verl
            list(pool.map(train_ppo, configs.values()))
        for paper, cfg in configs.items():
            work = Path(cfg.output_dir) / "verl"
            spec = json.loads((work / "reward_spec.json").read_text())
            assert spec == json.loads(json.dumps(spec_from_config(cfg)))
            document = yaml.safe_load((work / "rlhf_repro.yaml").read_text())
            proc, url = spawn_server([sys.executable, "-m", "common.reward_server", "--spec",
                                      str(work / "reward_spec.json"), "--device", "cpu"], {}, 300.0, paper)
            servers.append(proc)
            document["reward"]["custom_reward_function"]["reward_kwargs"]["url"] = url
            (work / "rlhf_repro.yaml").write_text(yaml.safe_dump(document))
            jobs.append({"config": str((work / "rlhf_repro.yaml").resolve()), "tokenizer": resolve_model(tiny_llama),
                         "train_file": str((work / "train.parquet").resolve()), "responses": response_ids})
            records = [dict(p) for p in PROMPTS]
            expected[paper] = RewardScorer(spec)([{"record": r, "response": d} for r, d in zip(records, decoded)])
            our_prompt_ids[paper] = encode_prompts(records, load_tokenizer(tiny_llama, padding_side="left"), cfg)[1]
        (tmp_path / "jobs.json").write_text(json.dumps(jobs))
        proc = subprocess.run([verl_python, str(ROOT / "tests/common/verl_probe.py"), str(tmp_path / "jobs.json")],
                              cwd=ROOT, capture_output=True, text=True, check=False, timeout=600)
    finally:
        for server in servers:
            stop_server(server)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(configs), proc.stderr[-3000:]
    for paper, result in zip(configs, results):
        assert result["prompt_ids"] == our_prompt_ids[paper], f"{paper}: verl's prompt tokens differ from ours"
        assert result["scores"] == pytest.approx(expected[paper], abs=1e-5), paper
    # the papers' rules are visible in the scores: RLDF's clip, RLLR's cap τ = 0 on the label RM, SER's σ(r) - b
    assert max(abs(s) for s in results[0]["scores"]) <= 0.05 + 1e-6
    assert all(-0.2 < s < 0.8 for s in results[3]["scores"])
    assert len({round(s, 6) for s in results[2]["scores"]}) == len(PROMPTS)


def test_a_sharded_reward_model_scores_as_the_one_device_model(tiny_rms):
    """reward_device gpus:... loads the RM with device_map=auto (here: the CPU); the scores must not change."""
    from common.rewards import RewardModelScorer

    one = RewardModelScorer(tiny_rms[0], template="plain")
    sharded = RewardModelScorer(tiny_rms[0], template="plain", device="shard")
    prompts = [r["prompt"] for r in PROMPTS]
    assert sharded.score(prompts, RESPONSES).tolist() == pytest.approx(one.score(prompts, RESPONSES).tolist(), abs=1e-6)
