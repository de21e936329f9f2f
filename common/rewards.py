"""Reward sources for RL: a reward model, a Python function, or several sources combined by a named rule.

Every source maps a batch of (prompt, response) to one score per response:
``score(prompts, responses, records=None) -> Tensor (B,)``. ``prompts`` are canonical prompts (a string or a list of
messages), ``responses`` the decoded response texts without the end-of-turn token, ``records`` the prompt records
with their extra columns (a gold label, a reference answer) for sources that need them.

Papers plug in here instead of forking the RL stage: RLLR registers ``rllr_mixed`` (min(r_label, τ) + r_rat) in
``REWARD_COMBINERS``; a rule-based reward is a ``FunctionReward("pkg.module:function")``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from common.config import ConfigError, UserError


@runtime_checkable
class RewardSource(Protocol):
    def score(self, prompts: list, responses: list[str], records: list[dict] | None = None) -> Tensor:
        """One float score per response, (B,)."""
        ...


def import_callable(spec: str, where: str) -> Callable:
    """``"package.module:function"`` -> the function; a clear error when the module or name is missing."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError(f"{where}: {spec!r} is not of the form 'package.module:function'")
    module_name, attr = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import module {module_name!r} ({exc})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"{where}: module {module_name!r} has no callable {attr!r}")
    return fn


class FunctionReward:
    """A Python reward ``f(prompts, responses, **kwargs) -> list[float]``; gets ``records=`` when it accepts it."""

    def __init__(self, fn: str | Callable, name: str | None = None, **kwargs: Any):
        self.fn = import_callable(fn, "reward_function") if isinstance(fn, str) else fn
        self.name = name or getattr(self.fn, "__name__", "function")
        self.kwargs = kwargs
        params = inspect.signature(self.fn).parameters.values()
        self.takes_records = any(p.name == "records" or p.kind is p.VAR_KEYWORD for p in params)

    def score(self, prompts: list, responses: list[str], records: list[dict] | None = None) -> Tensor:
        kwargs = dict(self.kwargs, records=records) if self.takes_records else self.kwargs
        out = self.fn(prompts, responses, **kwargs)
        scores = torch.as_tensor(out, dtype=torch.float32).flatten()
        if scores.shape[0] != len(responses):
            raise UserError(f"reward function {self.name!r} returned {scores.shape[0]} scores for "
                            f"{len(responses)} responses; it must return one float per response")
        return scores


def adapter_and_base(path: str) -> tuple[str, str | None]:
    """(model, adapter) for an RM named by one path: a LoRA run folder (adapter_config.json) becomes its recorded
    base model + itself as the adapter; anything else is a whole model, (path, None)."""
    if not (Path(path) / "adapter_config.json").is_file():
        return path, None
    from common.merge_lora import read_adapter_config

    info = read_adapter_config(path)
    base = info.get("base_model_name_or_path")
    if not base:
        raise UserError(f"{path}/adapter_config.json names no base model; pass the base as path and this folder as "
                        "adapter")
    if info.get("task_type") != "SEQ_CLS":
        raise UserError(f"{path}: a LoRA adapter of task {info.get('task_type')!r}, not a reward model (SEQ_CLS)")
    return base, path


class RewardModelScorer:
    """A sequence-classification reward model: the score of the last non-pad token of prompt + response.

    The text is ``common.train.rm.format_rm_input`` (the same rendering the RM was trained on), scored in batches
    without gradients. ``adapter`` is a LoRA adapter folder on top of ``model_name_or_path`` (score head included).
    A LoRA RM run folder may also be named as ``model_name_or_path`` itself: its adapter_config.json names the base.
    """

    def __init__(self, model_name_or_path: str, template: str = "tokenizer", max_length: int = 1024,
                 batch_size: int = 8, dtype: str = "float32", device: str | torch.device = "cpu",
                 trust_remote_code: bool = False, adapter: str | None = None, name: str | None = None):
        from common.models import load_reward_model, load_tokenizer

        if adapter is None:
            model_name_or_path, adapter = adapter_and_base(model_name_or_path)
        self.name = name or model_name_or_path
        self.template = template
        self.max_length = max_length
        self.batch_size = batch_size
        # "shard": spread the model over every visible GPU (accelerate's device_map="auto"), for an RM larger than
        # one card (SER's 70B RM behind common.reward_server)
        shard = device == "shard"
        self.device = None if shard else torch.device(device)
        self.tokenizer = load_tokenizer(model_name_or_path, trust_remote_code, padding_side="right")
        model = load_reward_model(model_name_or_path, dtype, trust_remote_code,
                                  pad_token_id=self.tokenizer.pad_token_id, **({"device_map": "auto"} if shard else {}))
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        self.model = (model if shard else model.to(self.device)).eval().requires_grad_(False)

    def texts(self, prompts: list, responses: list[str]) -> list[str]:
        from common.train.rm import format_rm_input

        return [format_rm_input(p, r, self.template, self.tokenizer) for p, r in zip(prompts, responses)]

    @torch.no_grad()
    def score(self, prompts: list, responses: list[str], records: list[dict] | None = None) -> Tensor:
        from common.train.rm import score_texts  # the RM stage's own encoding (BOS, truncation, padding)

        return score_texts(self.model, self.tokenizer, self.texts(prompts, responses), self.batch_size,
                           self.max_length)


# ---------------------------------------------------------------------------------------------------------------
# Combining several sources: f({name: (B,) scores}, **kwargs) -> (B,) scores, registered by name.

REWARD_COMBINERS: dict[str, Callable[..., Tensor]] = {}


def register_reward_combiner(name: str) -> Callable[[Callable], Callable]:
    """Decorator: ``@register_reward_combiner("rllr_mixed")``. A name can be registered once."""

    def deco(fn: Callable) -> Callable:
        if name in REWARD_COMBINERS:
            raise KeyError(f"reward combiner {name!r} is already registered (by "
                           f"{REWARD_COMBINERS[name].__module__}); pick another name")
        REWARD_COMBINERS[name] = fn
        return fn

    return deco


def get_reward_combiner(combine: str | Callable) -> Callable[..., Tensor]:
    """A registered name, or ``"package.module:function"`` (importing the module also registers its combiners)."""
    if callable(combine):
        return combine
    if combine in REWARD_COMBINERS:
        return REWARD_COMBINERS[combine]
    if ":" in combine:
        return import_callable(combine, "reward_combine")
    raise ConfigError(f"reward_combine: {combine!r} is not a registered reward combiner; known: "
                      f"{sorted(REWARD_COMBINERS)}. Register it with common.rewards.register_reward_combiner, "
                      "or name it as 'package.module:function'")


@register_reward_combiner("sum")
def combine_sum(scores: dict[str, Tensor], weights: dict[str, float] | None = None) -> Tensor:
    """r = Σ_k w_k r_k (w_k = 1 unless given)."""
    weights = weights or {}
    return sum(float(weights.get(k, 1.0)) * v for k, v in scores.items())


@register_reward_combiner("mean")
def combine_mean(scores: dict[str, Tensor]) -> Tensor:
    """r = (1/K) Σ_k r_k."""
    return torch.stack(list(scores.values())).mean(0)


class CombinedReward:
    """Scores every source, then combines them: ``combine({name: (B,)}, **combine_kwargs) -> (B,)``."""

    def __init__(self, sources: dict[str, RewardSource], combine: str | Callable = "sum",
                 combine_kwargs: dict | None = None):
        if not sources:
            raise ConfigError("reward: no reward source given; set reward_models and/or reward_function")
        self.sources = sources
        self.combine = get_reward_combiner(combine)
        self.combine_kwargs = dict(combine_kwargs or {})
        self.last_components: dict[str, Tensor] = {}

    def score(self, prompts: list, responses: list[str], records: list[dict] | None = None) -> Tensor:
        self.last_components = {k: s.score(prompts, responses, records).float() for k, s in self.sources.items()}
        out = torch.as_tensor(self.combine(self.last_components, **self.combine_kwargs), dtype=torch.float32)
        if out.shape != (len(responses),):
            raise UserError(f"reward combiner returned shape {tuple(out.shape)}; expected ({len(responses)},)")
        return out


def build_reward_source(spec: dict[str, Any], device: str | torch.device = "cpu", dtype: str = "float32",
                        default_template: str = "tokenizer", trust_remote_code: bool = False) -> CombinedReward:
    """From config fields to a source.

    spec = {"reward_models": [{"name", "path", "adapter"?, "template"?, "max_length"?, "batch_size"?}, ...],
            "reward_function": "pkg.module:fn" | None, "reward_function_kwargs": {...},
            "combine": "sum" | registered name | "pkg.module:fn", "combine_kwargs": {...}}
    The function source is named ``function``; RMs by their ``name`` (default ``rm0``, ``rm1``...).
    """
    known_rm_keys = {"name", "path", "adapter", "template", "max_length", "batch_size"}
    sources: dict[str, RewardSource] = {}
    for i, rm in enumerate(spec.get("reward_models") or []):
        where = f"reward_models[{i}]"
        if isinstance(rm, str):
            rm = {"path": rm}
        if not isinstance(rm, dict) or "path" not in rm:
            raise ConfigError(f"{where}: expected a mapping with at least 'path', got {rm!r}")
        unknown = sorted(set(rm) - known_rm_keys)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown key; known: {sorted(known_rm_keys)}")
        name = str(rm.get("name") or f"rm{i}")
        if name in sources:
            raise ConfigError(f"{where}.name: {name!r} is used twice; give each reward model its own name")
        sources[name] = RewardModelScorer(
            rm["path"], template=rm.get("template") or default_template, max_length=int(rm.get("max_length", 1024)),
            batch_size=int(rm.get("batch_size", 8)), dtype=dtype, device=device,
            trust_remote_code=trust_remote_code, adapter=rm.get("adapter"), name=name,
        )
    if spec.get("reward_function"):
        sources["function"] = FunctionReward(spec["reward_function"], **(spec.get("reward_function_kwargs") or {}))
    return CombinedReward(sources, spec.get("combine") or "sum", spec.get("combine_kwargs"))
