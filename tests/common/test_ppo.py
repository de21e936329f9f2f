"""PPO / ReMax: the math against hand-computed values, then short seeded runs of the stage on the tiny model."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from common.artifacts import read_jsonl
from common.config import ConfigError, UserError
from common.rewards import FunctionReward
from common.train import ppo_core as core
from common.train.ppo import PPOConfig, PPOTrainer, train_ppo
from common.train.ppo_models import response_mask_from_eos

# --- math ------------------------------------------------------------------------------------------------------


def test_gae_matches_a_hand_computed_three_step_example():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.5, 0.0, 0.0]])
    values = torch.tensor([[0.5, 0.4, 0.3], [0.2, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])  # row 2: a one-token response; its padding must not leak in
    adv, ret = core.gae_advantages(rewards, values, mask, gamma=1.0, lam=0.95)
    # row 1: δ2 = 1 - 0.3 = 0.7; δ1 = 0 + 0.3 - 0.4 = -0.1; δ0 = 0 + 0.4 - 0.5 = -0.1
    #        A2 = 0.7; A1 = -0.1 + 0.95 * 0.7 = 0.565; A0 = -0.1 + 0.95 * 0.565 = 0.43675
    # row 2: A0 = 0.5 + 0 - 0.2 = 0.3
    assert torch.allclose(adv, torch.tensor([[0.43675, 0.565, 0.7], [0.3, 0.0, 0.0]]))
    assert torch.allclose(ret, torch.tensor([[0.93675, 0.965, 1.0], [0.5, 0.0, 0.0]]))


def test_gae_discount():
    adv, _ = core.gae_advantages(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2), torch.ones(1, 2), gamma=0.5, lam=1.0)
    assert torch.allclose(adv, torch.tensor([[0.5, 1.0]]))  # A0 = γ r1 with λ = 1 and zero values


def test_kl_penalty_per_token_and_score_at_last_token():
    logp = torch.tensor([[-1.0, -2.0, -3.0]])
    ref = torch.tensor([[-1.5, -2.0, -2.0]])
    mask = torch.tensor([[1, 1, 0]])
    rewards, kl = core.kl_penalised_rewards(torch.tensor([2.0]), logp, ref, mask, kl_coef=0.1)
    assert torch.allclose(kl, torch.tensor([[0.5, 0.0, 0.0]]))
    assert torch.allclose(rewards, torch.tensor([[-0.05, 2.0, 0.0]]))


def test_clipped_policy_loss_by_hand():
    old = torch.zeros(1, 2)
    new = torch.tensor([[math.log(1.5), math.log(0.5)]])  # ratios 1.5 and 0.5
    adv = torch.tensor([[1.0, 1.0]])
    loss, stats = core.ppo_policy_loss(new, old, adv, torch.ones(1, 2), cliprange=0.2)
    # token 1: max(-1.5, -1.2) = -1.2 (clipped); token 2: max(-0.5, -0.8) = -0.5
    assert torch.isclose(loss, torch.tensor(-0.85))
    assert stats["clipfrac"] == pytest.approx(0.5)


def test_clipped_value_loss_by_hand():
    loss = core.ppo_value_loss(torch.tensor([[2.0]]), torch.tensor([[0.0]]), torch.tensor([[1.0]]),
                               torch.ones(1, 1), cliprange_value=0.5)
    assert torch.isclose(loss, torch.tensor(0.5 * max((2 - 1) ** 2, (0.5 - 1) ** 2)))


def test_remax_advantage_and_loss():
    logp, ref, mask = torch.tensor([[-1.0, -1.0]]), torch.tensor([[-2.0, -1.0]]), torch.ones(1, 2)
    r_sample = core.remax_returns(torch.tensor([3.0]), logp, ref, mask, kl_coef=0.5)  # 3 - 0.5 * 1
    r_greedy = core.remax_returns(torch.tensor([1.0]), ref, ref, mask, kl_coef=0.5)
    adv = r_sample - r_greedy
    assert torch.allclose(adv, torch.tensor([1.5]))
    assert torch.isclose(core.remax_loss(logp, adv, mask), torch.tensor(-1.5 * -2.0))


def test_adaptive_kl_moves_towards_target():
    up = core.AdaptiveKLController(0.2, target=6.0, horizon=10000)
    up.update(current_kl=9.0, n_steps=256)  # error clipped to +0.2
    assert up.value == pytest.approx(0.2 * (1 + 0.2 * 256 / 10000))
    down = core.AdaptiveKLController(0.2, target=6.0, horizon=10000)
    down.update(current_kl=5.4, n_steps=256)  # error -0.1
    assert down.value == pytest.approx(0.2 * (1 - 0.1 * 256 / 10000))
    fixed = core.FixedKLController(0.1)
    fixed.update(100.0, 256)
    assert fixed.value == 0.1


def test_running_moments_match_numpy():
    stats = core.RunningMoments()
    x = torch.tensor([1.0, 2.0, 3.0, 10.0, -4.0])
    stats.update(x[:2])
    stats.update(x[2:])
    assert stats.mean == pytest.approx(x.mean().item())
    assert stats.std == pytest.approx(x.std(unbiased=False).item())


def test_response_mask_keeps_the_first_eos_when_pad_is_eos():
    eos = 2
    resp = torch.tensor([[5, 6, eos, eos, eos], [5, 6, 7, 8, 9], [eos, eos, eos, eos, eos]])
    mask = response_mask_from_eos(resp, [eos])
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


# --- the stage on the tiny model --------------------------------------------------------------------------------

PROMPTS = ["Name a color.", "What is 2+2?", "Say something nice.", "Name an animal.", "Give me a fruit.",
           "What is the capital of France?", "Tell me a joke.", "Name a country.", "Write a haiku.",
           "Count to three.", "What day is it?", "Describe the sea."]


@pytest.fixture
def prompt_file(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    return str(path)


def low_half_reward(tiny_llama):
    """Fraction of response tokens from the lower half of the vocabulary: arbitrary for a random model, so any rise
    is learned. A low temperature (0.1) makes the random tiny model's sampling peaked enough to learn in a few steps."""
    from common.models import load_tokenizer

    tok = load_tokenizer(tiny_llama)

    def fn(prompts, responses):
        out = []
        for r in responses:
            ids = tok(r, add_special_tokens=False)["input_ids"] or [len(tok)]
            out.append(sum(i < len(tok) // 2 for i in ids) / len(ids))
        return out

    return FunctionReward(fn)


def _cfg(tiny_llama, prompt_file, out, **kw):
    base = {"model": tiny_llama, "dataset": prompt_file, "output_dir": str(out), "seed": 0, "rollout_batch_size": 8,
            "mini_batch_size": 4, "max_new_tokens": 6, "temperature": 0.1, "kl_coef": 0.05, "kl_target": 1.0,
            "kl_horizon": 50, "critic_learning_rate": 1e-3, "save_steps": 0}
    base.update(kw)
    return PPOConfig(**base)


def _rises(log):
    rewards = [r["reward"] for r in log]
    return sum(rewards[-3:]) / 3 - rewards[0]


def _kl_controller_followed_the_kl(log, target):
    for prev, nxt in itertools.pairwise(log):
        if prev["kl"] > target:
            assert nxt["kl_coef"] > prev["kl_coef"], (prev, nxt)
        elif prev["kl"] < target:
            assert nxt["kl_coef"] < prev["kl_coef"], (prev, nxt)


def test_ppo_raises_the_reward_and_adapts_the_kl_coefficient(tiny_llama, prompt_file, tmp_path):
    cfg = _cfg(tiny_llama, prompt_file, tmp_path / "ppo", algorithm="ppo", learning_rate=1e-3, ppo_epochs=4,
               total_steps=8)
    metrics = train_ppo(cfg, reward_source=low_half_reward(tiny_llama))
    log = read_jsonl(tmp_path / "ppo" / "log.jsonl")
    assert [r["step"] for r in log] == list(range(1, 9))
    assert _rises(log) > 0.15, [r["reward"] for r in log]
    assert log[0]["kl"] == pytest.approx(0.0, abs=1e-4)  # the first rollout comes from the reference itself
    _kl_controller_followed_the_kl(log, cfg.kl_target)
    assert metrics["kl_coef_last"] > cfg.kl_coef  # the policy drifted past the small target: β went up
    assert (tmp_path / "ppo" / "policy" / "config.json").exists()


def test_remax_raises_the_reward(tiny_llama, prompt_file, tmp_path):
    cfg = _cfg(tiny_llama, prompt_file, tmp_path / "remax", algorithm="remax", learning_rate=3e-3, ppo_epochs=1,
               kl_coef=0.005, total_steps=8)
    train_ppo(cfg, reward_source=low_half_reward(tiny_llama))
    log = read_jsonl(tmp_path / "remax" / "log.jsonl")
    assert _rises(log) > 0.15, [r["reward"] for r in log]
    assert all("reward_greedy" in r and "value_loss" not in r for r in log)
    _kl_controller_followed_the_kl(log, cfg.kl_target)


def test_resume_continues_from_the_latest_checkpoint(tiny_llama, prompt_file, tmp_path):
    out = tmp_path / "run"
    reward = FunctionReward(lambda p, r: [float(len(x)) / 10 for x in r])
    kw = {"algorithm": "ppo", "use_lora": True, "learning_rate": 1e-3, "ppo_epochs": 1, "save_steps": 1,
          "total_steps": 2}
    train_ppo(_cfg(tiny_llama, prompt_file, out, **kw), reward_source=reward)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000001", "step-000002"]
    with pytest.raises(UserError, match="overwrite true"):  # a second run into the folder must say what it does
        train_ppo(_cfg(tiny_llama, prompt_file, out, **{**kw, "total_steps": 3}), reward_source=reward)
    saved = torch.load(out / "checkpoints" / "step-000002" / "trainer_state.pt", weights_only=False)
    metrics = train_ppo(_cfg(tiny_llama, prompt_file, out, resume=True, **{**kw, "total_steps": 3}),
                        reward_source=reward)
    log = read_jsonl(out / "log.jsonl")
    assert [r["step"] for r in log] == [1, 2, 3]
    assert log[2]["kl_coef"] == pytest.approx(saved["kl_ctl"]["value"])  # the controller state came back
    assert metrics["steps"] == 3
    assert (out / "checkpoints" / "step-000003").is_dir() and not (out / "checkpoints" / "step-000001").exists()


# --- precision: fp32 master weights under a bf16 model -----------------------------------------------------------


def _optimizer_only_trainer(model, **kw):
    """A PPOTrainer with just what setup_optimizers / optimizer_step read (no tokenizer, data or reward)."""
    trainer = PPOTrainer.__new__(PPOTrainer)
    trainer.cfg = PPOConfig(model="unused", dataset="unused", **kw)
    trainer.policy, trainer.critic = model, None
    trainer.setup_optimizers(total_steps=1)
    return trainer


def _bf16_unit_weight() -> torch.nn.Linear:
    layer = torch.nn.Linear(1, 1, bias=False).to(torch.bfloat16)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    return layer


def test_tiny_updates_survive_in_the_fp32_master_and_reach_the_bf16_weight():
    # AdamW with a constant gradient moves a weight by lr per step: 1e-4 here, far below bf16's spacing at 1.0
    # (2^-8 below it), so each bf16 step rounds back to 1.0; the master accumulates them.
    lr, n = 1e-4, 100
    layer = _bf16_unit_weight()
    trainer = _optimizer_only_trainer(layer, learning_rate=lr)
    (master,) = trainer.masters[0].params
    assert master.dtype == torch.float32 and master is not layer.weight
    for _ in range(n):
        layer.weight.sum().backward()
        assert layer.weight.grad is None and master.grad.dtype == torch.float32  # the grad moved to the master
        trainer.optimizer_step()
    assert master.item() == pytest.approx(1.0 - n * lr, rel=1e-5)
    assert layer.weight.dtype == torch.bfloat16
    assert layer.weight.item() == master.to(torch.bfloat16).item() != 1.0  # the model got the rounded master
    assert layer.weight.item() == pytest.approx(1.0 - n * lr, abs=2**-8)

    plain = _bf16_unit_weight()  # what the optimiser did before: AdamW on the bf16 weight itself
    opt = torch.optim.AdamW(plain.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(n):
        plain.weight.sum().backward()
        opt.step()
        opt.zero_grad()
    assert plain.weight.item() == 1.0  # all n updates lost


def test_gradients_accumulate_in_fp32_and_lora_adapters_need_no_copy():
    layer = _bf16_unit_weight()
    trainer = _optimizer_only_trainer(layer, learning_rate=1e-4)
    (master,) = trainer.masters[0].params
    layer.weight.sum().backward()
    (layer.weight * 1e-3).sum().backward()  # in bf16, 1.0 + 0.001 rounds back to 1.0
    assert master.grad.item() == pytest.approx(1.0 + 1e-3, rel=1e-4)

    fp32_adapter = torch.nn.Linear(1, 1, bias=False)  # already float32: stepped directly, no master copy
    mixed = torch.nn.ModuleDict({"base": _bf16_unit_weight().requires_grad_(False), "adapter": fp32_adapter})
    trainer = _optimizer_only_trainer(mixed)
    assert trainer.masters[0].params == [fp32_adapter.weight] and trainer.masters[0].pairs == []


def _bf16_kw(**kw):
    return {"algorithm": "ppo", "dtype": "bfloat16", "learning_rate": 1e-3, "ppo_epochs": 1, "rollout_batch_size": 4,
            "mini_batch_size": 2, "max_new_tokens": 4, "save_steps": 1, **kw}


def _state(out, step):
    return torch.load(out / "checkpoints" / f"step-{step:06d}" / "trainer_state.pt", weights_only=False)


def _policy_weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_bf16_ppo_runs_and_resumes_exactly_from_its_master_weights(tiny_llama, prompt_file, tmp_path):
    import shutil

    reward = FunctionReward(lambda p, r: [float(len(x)) / 10 for x in r])
    a, b = tmp_path / "straight", tmp_path / "resumed"
    train_ppo(_cfg(tiny_llama, prompt_file, a, **_bf16_kw(total_steps=3)), reward_source=reward)
    train_ppo(_cfg(tiny_llama, prompt_file, b, **_bf16_kw(total_steps=2)), reward_source=reward)
    old = tmp_path / "old-checkpoint"  # as written before master weights existed
    shutil.copytree(b, old)
    state = _state(old, 2)
    del state["master_weights"]
    torch.save(state, old / "checkpoints" / "step-000002" / "trainer_state.pt")
    train_ppo(_cfg(tiny_llama, prompt_file, b, resume=True, **_bf16_kw(total_steps=3)), reward_source=reward)

    masters = _state(a, 3)["master_weights"]
    assert [len(m) for m in masters] == [20, 21]  # every trainable tensor of policy (tied embeddings) and critic
    assert all(t.dtype == torch.float32 for m in masters for t in m)
    assert any(not torch.equal(t, t.to(torch.bfloat16).float()) for t in masters[0])  # more than the bf16 model holds
    assert _policy_weights(a / "policy")["model.layers.0.self_attn.q_proj.weight"].dtype == torch.bfloat16
    assert read_jsonl(a / "log.jsonl") == read_jsonl(b / "log.jsonl")
    for x, y in zip(masters, _state(b, 3)["master_weights"], strict=True):
        assert all(torch.equal(s, t) for s, t in zip(x, y, strict=True))
    wa, wb = _policy_weights(a / "policy"), _policy_weights(b / "policy")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)

    # an older checkpoint (no master weights) still resumes: the masters start from its bf16 models
    train_ppo(_cfg(tiny_llama, prompt_file, old, resume=True, **_bf16_kw(total_steps=3)), reward_source=reward)
    assert [r["step"] for r in read_jsonl(old / "log.jsonl")] == [1, 2, 3]


def test_bf16_lora_ppo_steps_fp32_adapters_and_a_master_of_the_critic_head(tiny_llama, prompt_file, tmp_path):
    out = tmp_path / "lora"
    reward = FunctionReward(lambda p, r: [float(len(x)) / 10 for x in r])
    train_ppo(_cfg(tiny_llama, prompt_file, out, **_bf16_kw(use_lora=True, total_steps=2, save_steps=0)),
              reward_source=reward)
    state = _state(out, 2)
    policy_masters, critic_masters = state["master_weights"]
    assert policy_masters == []  # PEFT keeps the adapters in float32 over the bf16 base
    assert len(critic_masters) == 1 and critic_masters[0].shape[0] == 1  # the critic's score head (modules_to_save)
    assert all(v["exp_avg"].dtype == torch.float32 for o in state["optimizers"] for v in o["state"].values())


# --- optimiser and run length options (upstream settings: SER's Adafactor, SER's 4 passes over the prompts) -------


def test_adafactor_steps_with_factored_second_moments_at_the_scheduled_lr():
    # Adafactor at a fixed lr (relative_step / scale_parameter off): with a constant gradient the first update is
    # g / sqrt(g^2) = sign(g), RMS 1 (no clipping), so every weight moves by exactly lr; its state holds the row and
    # column factors of the second moment instead of Adam's two full-size moments.
    lr = 1e-2
    layer = torch.nn.Linear(3, 2, bias=False)
    start = layer.weight.detach().clone()
    trainer = _optimizer_only_trainer(layer, learning_rate=lr, optimizer="adafactor")
    layer.weight.sum().backward()
    trainer.optimizer_step()
    assert torch.allclose(start - layer.weight.detach(), torch.full((2, 3), lr), atol=1e-6)
    state = trainer.optimizers[0].state[layer.weight]
    assert state["exp_avg_sq_row"].shape == (2,) and state["exp_avg_sq_col"].shape == (3,)
    assert "exp_avg" not in state and "exp_avg_sq" not in state
    adamw = _optimizer_only_trainer(torch.nn.Linear(3, 2, bias=False), learning_rate=lr)
    assert isinstance(adamw.optimizers[0], torch.optim.AdamW)


def test_a_critic_from_an_rm_with_another_vocabulary_is_refused_before_anything_is_written(
        tiny_llama, minilm, prompt_file, tmp_path):
    cfg = _cfg(tiny_llama, prompt_file, tmp_path / "ppo", algorithm="ppo", value_model="reward_model",
               reward_models=[{"path": minilm, "template": "plain"}])
    with pytest.raises(ConfigError, match=r"rl\.value_model: 'reward_model' .*Set value_model: policy"):
        train_ppo(cfg)
    assert not (tmp_path / "ppo").exists()


def test_unknown_optimizer_is_refused_naming_the_key():
    with pytest.raises(UserError, match=r"rl\.optimizer: 'sgd'"):
        PPOConfig(model="m", dataset="d", optimizer="sgd")


def test_prompt_epochs_multiplies_the_passes_over_the_prompts():
    from common.train.ppo import _total_steps

    def steps(**kw):
        return _total_steps(PPOConfig(model="m", dataset="d", rollout_batch_size=8, **kw), n_prompts=12)

    assert steps() == 2  # ceil(12 / 8)
    assert steps(prompt_epochs=4) == 6  # ceil(4 x 12 / 8)
    assert steps(prompt_epochs=4, total_episodes=16) == 2 and steps(prompt_epochs=4, total_steps=3) == 3
