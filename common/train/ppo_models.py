"""The models of an RL run: policy, frozen reference, critic; their forwards, generation, and checkpoints.

- Policy: a causal LM, fully trained, or with a LoRA adapter (``use_lora``). With LoRA the reference policy is the
  same network with the adapter disabled, so no second copy of the weights is held (the memory saver).
- Critic (PPO only): a separate sequence-classification model (backbone + linear ``score`` head) read at every
  token instead of only at the last one, so V(x, y_<t) comes from the same architecture as a reward model. It is
  initialised from the policy's weights (new head), from the first reward model (RLLR), or from a path.
- Dropout is switched off everywhere: with dropout, π_old and π differ before any update and the PPO ratio is noise.

Sequences are ``[left-padded prompt | right-padded response]``; position ids count only attended tokens, as
``generate`` does with left padding, so the training forward sees the positions the sampler saw.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from torch import Tensor, nn

from common.config import ConfigError, UserError
from common.models import load_causal_lm, load_reward_model


def disable_dropout(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model under a PEFT wrapper (LoRA layers stay injected in it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def lora_config(task_type: str, r: int, alpha: int, target_modules: list[str]):
    from peft import LoraConfig

    targets: list[str] | str = "all-linear" if target_modules == ["all-linear"] else list(target_modules)
    return LoraConfig(task_type=task_type, r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets)


def build_policy(cfg, resume_dir: Path | None) -> tuple[nn.Module, nn.Module | None]:
    """(policy, reference). The reference is None with LoRA: use ``reference_context`` on the policy instead."""
    from peft import PeftModel, get_peft_model

    if cfg.use_lora:
        base = load_causal_lm(cfg.model, cfg.dtype, cfg.trust_remote_code)
        if resume_dir is not None:
            policy = PeftModel.from_pretrained(base, resume_dir / "policy", is_trainable=True)
        else:
            policy = get_peft_model(base, lora_config("CAUSAL_LM", cfg.lora_r, cfg.lora_alpha,
                                                      cfg.lora_target_modules))
        ref = None
    else:
        policy = load_causal_lm(str(resume_dir / "policy") if resume_dir else cfg.model, cfg.dtype,
                                cfg.trust_remote_code)
        ref = load_causal_lm(cfg.model, cfg.dtype, cfg.trust_remote_code).eval().requires_grad_(False)
        disable_dropout(ref)
    if cfg.gradient_checkpointing:
        unwrap(policy).gradient_checkpointing_enable()
        unwrap(policy).config.use_cache = False
    return disable_dropout(policy), ref


def _critic_init(cfg, pad_token_id: int) -> nn.Module:
    if cfg.value_model == "policy":
        return load_reward_model(cfg.model, cfg.dtype, cfg.trust_remote_code, pad_token_id=pad_token_id)
    if cfg.value_model == "reward_model":
        rm = cfg.reward_models[0]
        rm = {"path": rm} if isinstance(rm, str) else rm
        model = load_reward_model(rm["path"], cfg.dtype, cfg.trust_remote_code, pad_token_id=pad_token_id)
        if rm.get("adapter"):
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, rm["adapter"]).merge_and_unload()
        return model
    return load_reward_model(cfg.value_model, cfg.dtype, cfg.trust_remote_code, pad_token_id=pad_token_id)


def check_critic_vocabulary(cfg, tokenizer) -> None:
    """``value_model: reward_model`` reads the policy's token ids with the RM's embeddings: an RM with another
    vocabulary (a BERT RM, another model family) would read them as other tokens, silently. Refuse it up front."""
    if cfg.algorithm != "ppo" or cfg.value_model != "reward_model" or not cfg.reward_models:
        return
    from common.models import load_tokenizer

    rm = cfg.reward_models[0]
    path = rm if isinstance(rm, str) else rm["path"]
    if load_tokenizer(path, cfg.trust_remote_code).get_vocab() != tokenizer.get_vocab():
        raise ConfigError(f"rl.value_model: 'reward_model' starts the critic from {path}, whose vocabulary is not the "
                          f"policy's ({cfg.model}); the critic reads the policy's tokens. Set value_model: policy")


def build_critic(cfg, pad_token_id: int, resume_dir: Path | None) -> nn.Module:
    from peft import PeftModel, get_peft_model

    if cfg.use_lora:
        base = _critic_init(cfg, pad_token_id)
        if resume_dir is not None:
            critic = PeftModel.from_pretrained(base, resume_dir / "critic", is_trainable=True)
        else:  # SEQ_CLS LoRA keeps the score head fully trainable (modules_to_save)
            critic = get_peft_model(base, lora_config("SEQ_CLS", cfg.lora_r, cfg.lora_alpha, cfg.lora_target_modules))
    elif resume_dir is not None:
        critic = load_reward_model(str(resume_dir / "critic"), cfg.dtype, cfg.trust_remote_code,
                                   pad_token_id=pad_token_id)
    else:
        critic = _critic_init(cfg, pad_token_id)
    if not hasattr(unwrap(critic), "score"):
        raise UserError(f"value model {cfg.value_model!r} ({type(unwrap(critic)).__name__}) has no `score` head; "
                        "the critic reads per-token values from a *ForSequenceClassification model's score layer")
    if cfg.gradient_checkpointing:
        unwrap(critic).gradient_checkpointing_enable()
    return disable_dropout(critic)


def sequence_inputs(query_ids: Tensor, query_mask: Tensor, response_ids: Tensor,
                    response_mask: Tensor) -> dict[str, Tensor]:
    """Concatenate prompt (B, P) and response (B, T) into model inputs (B, P + T) with matching position ids."""
    attention_mask = torch.cat([query_mask, response_mask], dim=1)
    return {
        "input_ids": torch.cat([query_ids, response_ids], dim=1),
        "attention_mask": attention_mask,
        "position_ids": (attention_mask.cumsum(-1) - 1).clamp(min=0),
    }


def response_logits(policy: nn.Module, query_ids: Tensor, query_mask: Tensor, response_ids: Tensor,
                    response_mask: Tensor, temperature: float) -> Tensor:
    """Logits that predict each response token, scaled by the sampling temperature. -> (B, T, V)."""
    T = response_ids.shape[1]
    out = policy(**sequence_inputs(query_ids, query_mask, response_ids, response_mask), use_cache=False,
                 logits_to_keep=T + 1)
    # positions P-1 .. P+T-2 predict y_0 .. y_{T-1}; the final position predicts past the response
    return out.logits[:, :-1].float() / temperature  # (B, T, V)


def response_values(critic: nn.Module, query_ids: Tensor, query_mask: Tensor, response_ids: Tensor,
                    response_mask: Tensor) -> Tensor:
    """V(x, y_<t) for each response token t: the score head on the hidden state that precedes y_t. -> (B, T)."""
    model = unwrap(critic)
    backbone = getattr(model, model.base_model_prefix)
    T = response_ids.shape[1]
    hidden = backbone(**sequence_inputs(query_ids, query_mask, response_ids, response_mask),
                      use_cache=False).last_hidden_state  # (B, P + T, H)
    return model.score(hidden[:, -T - 1:-1]).squeeze(-1).float()  # (B, T)


def reference_context(policy: nn.Module, ref: nn.Module | None):
    """Context in which ``policy`` acts as the reference: adapter disabled (LoRA); a no-op with a separate ref."""
    import contextlib

    return policy.disable_adapter() if ref is None else contextlib.nullcontext()


def response_mask_from_eos(response_ids: Tensor, eos_ids: list[int]) -> Tensor:
    """1 on each token up to and including the first EOS, 0 after (B, T). Pad == EOS is fine: only the first counts."""
    is_eos = torch.isin(response_ids, torch.tensor(eos_ids, device=response_ids.device)).long()
    eos_before = is_eos.cumsum(-1) - is_eos
    return (eos_before == 0).long()


@torch.no_grad()
def hf_generate(policy: nn.Module, query_ids: Tensor, query_mask: Tensor, *, max_new_tokens: int, greedy: bool,
                temperature: float, top_p: float, top_k: int, pad_token_id: int, eos_ids: list[int]) -> Tensor:
    """Responses (B, T) from transformers' ``generate`` on left-padded prompts; rows end in pad after EOS.

    This is the one place RL samples. A vLLM backend would go here: push the current policy weights to the engine,
    generate token ids for the same prompts, and return them padded the same way.
    """
    from transformers import GenerationConfig

    sampling = {} if greedy else {"temperature": temperature, "top_p": top_p, "top_k": top_k}
    gen_cfg = GenerationConfig(do_sample=not greedy, max_new_tokens=max_new_tokens, min_new_tokens=1,
                               pad_token_id=pad_token_id, eos_token_id=eos_ids, **sampling)
    was_training = policy.training
    policy.eval()
    out = policy.generate(input_ids=query_ids, attention_mask=query_mask, generation_config=gen_cfg)
    policy.train(was_training)
    return out[:, query_ids.shape[1]:]


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints: output_dir/checkpoints/step-NNNNNN/{policy/, critic/, trainer_state.pt (step, optimisers, schedulers,
# KL controller, reward statistics, RNG states)}, written to a temporary folder and renamed, so a kill leaves a
# checkpoint folder either complete or absent; a folder being replaced or rotated out is renamed away before it is
# deleted, so a kill mid-delete never leaves a partial step-N either. Resume still checks every file
# (common.train.checkpoint_problem: a copy, a full disk or a crash before the data reached the disk can truncate one)
# and sets an incomplete folder aside as checkpoints/incomplete-step-N.


def scan_checkpoints(output_dir: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(complete checkpoints by step, [(incomplete one, why)])."""
    from common.train import scan_checkpoints as scan

    return scan(output_dir / "checkpoints", prefix="step-", state_file="trainer_state.pt", weight_dirs=("policy",))


def checkpoint_dirs(output_dir: Path) -> list[Path]:
    """The complete checkpoints, oldest first."""
    return scan_checkpoints(output_dir)[0]


def _discard(path: Path) -> None:
    """Delete a checkpoint folder without ever leaving a partial one under its name: rename, then delete."""
    trash = path.with_name(f".{path.name}.deleting")
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def save_checkpoint(output_dir: Path, step: int, models: dict[str, nn.Module], state: dict,
                    keep: int) -> Path:
    root = output_dir / "checkpoints"
    final = root / f"step-{step:06d}"
    tmp = root / f".step-{step:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, model in models.items():
        model.save_pretrained(tmp / name)
    torch.save(state, tmp / "trainer_state.pt")
    if final.exists():
        _discard(final)
    os.replace(tmp, final)
    for old in checkpoint_dirs(output_dir)[:-keep] if keep > 0 else []:
        _discard(old)
    return final
