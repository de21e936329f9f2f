"""How the SER loop trains and scores a reward model: a two-method backend, chosen by ``ser.backend``.

    train(pairs, out_dir, init_from) -> info dict      # pairs: [{prompt, chosen, rejected}]; the RM lands in out_dir
    score(model_dir, prompts, responses) -> (N,) raw rewards r(q, a)

The loop only ever calls these two, so tests inject a fast fake, the fidelity run a frozen encoder with a trained
head (``ser.encoder_head``), and real runs the shared RM stage (``common.train.rm``) with LoRA.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from common.artifacts import write_jsonl
from common.config import UserError, build_dataclass
from ser.encoder_head import QUESTION_ANSWER, EncoderHeadSettings, FrozenEncoderHead


class RewardBackend(Protocol):
    def train(self, pairs: list[dict], out_dir: Path, init_from: Path | None) -> dict: ...

    def score(self, model_dir: Path, prompts: list[str], responses: list[str]) -> np.ndarray: ...


def question_header(q: str) -> str:
    """SER's prompt up to the answer, "Question: {q}\\n\\nAnswer: " [CODE]; the response follows with template plain."""
    return QUESTION_ANSWER.format(q=q, a="")


def question_of(prompt: str) -> str:
    """The inverse of ``question_header``: ``{q}`` of a SER prompt; any other text is returned as it is."""
    head, tail = question_header("\0").split("\0")
    return prompt[len(head): -len(tail)] if prompt.startswith(head) and prompt.endswith(tail) else prompt


class CommonRMBackend:
    """``common.train.rm`` (BT, optional LoRA) for training; the trained model's own scorer for pointwise rewards.

    ``settings`` are RMConfig fields (``ser.rm``); dataset, output_dir, seed and the template are filled per loop.
    Pairs longer than ``max_length`` are dropped by the RM stage, which counts them.
    """

    def __init__(self, settings: dict, launcher: str | None = None):
        self.settings = dict(settings)
        if "model_name_or_path" not in self.settings:
            raise UserError("ser.rm.model_name_or_path is required for ser.backend common_rm (usually the SFT model)")
        self.launcher = launcher
        self._scorer: tuple[str, object] | None = None

    def train(self, pairs: list[dict], out_dir: Path, init_from: Path | None) -> dict:
        from common.config import build_dataclass
        from common.train.rm import RMConfig, train_rm

        out_dir = Path(out_dir)
        data = out_dir.parent / f"{out_dir.name}_train_pairs.jsonl"
        write_jsonl(data, [{"prompt": question_header(p["prompt"]), "chosen": p["chosen"],
                            "rejected": p["rejected"]} for p in pairs])
        # every loop is scored on the held-out pairs by the loop itself; the RM stage evaluates nothing
        values = {**{k: v for k, v in self.settings.items() if k not in ("eval_dataset", "eval_split", "eval_limit")},
                  "dataset": str(data), "output_dir": str(out_dir), "template": "plain",
                  "eval_fraction": 0.0, "overwrite": True}
        if init_from is not None:
            if self.settings.get("use_lora"):
                raise UserError("ser.retrain_from previous continues a full RM; with ser.rm.use_lora true use "
                                "retrain_from initial (or merge the adapter with common.merge_lora first)")
            values["model_name_or_path"] = str(init_from)
        cfg = build_dataclass(RMConfig, values, "ser.rm")  # checked here, before any process starts
        metrics = train_rm(cfg) if self.launcher is None else self._launch(values, out_dir)
        return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}

    def _launch(self, values: dict, out_dir: Path) -> dict:
        """The RM stage as its own process group (``ser.rm_launcher``, e.g. ``accelerate launch --num_processes 8``),
        so a loop driven from one process can train each RM on every GPU; the recipe goes through a YAML file."""
        import json
        import shlex
        import subprocess

        import yaml

        recipe = out_dir.parent / f"{out_dir.name}_rm.yaml"
        recipe.write_text(yaml.safe_dump({"rm": values}, sort_keys=False))
        command = [*shlex.split(self.launcher), "-m", "common.train.rm", "--config", str(recipe), "--section", "rm"]
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            raise UserError(f"ser.rm_launcher: {' '.join(command)} exited with {done.returncode} (its output is above)")
        return json.loads((out_dir / "metrics.json").read_text())

    def score(self, model_dir: Path, prompts: list[str], responses: list[str]) -> np.ndarray:
        """Raw rewards, encoded exactly as the RM stage encodes its training texts (``score_texts``)."""
        from common.rewards import RewardModelScorer
        from common.train.rm import format_rm_input, score_texts

        if self._scorer is None or self._scorer[0] != str(model_dir):
            base, adapter = (self.settings["model_name_or_path"], str(model_dir)) if self.settings.get("use_lora") \
                else (str(model_dir), None)
            self._scorer = (str(model_dir), RewardModelScorer(base, template="plain", adapter=adapter,
                                                              dtype=self.settings.get("dtype", "float32")))
        scorer = self._scorer[1]
        texts = [format_rm_input(question_header(q), a, "plain", scorer.tokenizer) for q, a in zip(prompts, responses)]
        return score_texts(scorer.model, scorer.tokenizer, texts, self.settings.get("per_device_eval_batch_size", 8),
                           self.settings.get("max_length", 512)).numpy()


REWARD_BACKENDS: dict[str, Callable[[dict], RewardBackend]] = {
    "frozen_encoder": FrozenEncoderHead,
    "common_rm": CommonRMBackend,
}


def ppo_reward_fields(backend: str, settings: dict, model_dir: str) -> dict:
    """The ``rl`` section fields that make ``common.train.ppo`` score with the loop's RM in ``model_dir``.

    common_rm: the RM folder (or the base model + the LoRA adapter in ``model_dir``), rendered with template plain on
    the SER prompt, as in training. frozen_encoder: the Python reward ``ser.encoder_head:ppo_reward`` over the same
    encoder and head. Either way the raw score goes to the ``ser_sigmoid`` combiner of the recipe.
    """
    if backend == "common_rm":
        rm = {"name": "ser_rm", "template": "plain", "max_length": int(settings.get("max_length", 512))}
        if settings.get("use_lora"):
            rm.update(path=settings["model_name_or_path"], adapter=model_dir)
        else:
            rm["path"] = model_dir
        return {"reward_models": [rm], "reward_function": None, "reward_function_kwargs": {}}
    if backend == "frozen_encoder":
        head = build_dataclass(EncoderHeadSettings, dict(settings), "ser.rm")
        return {"reward_models": [], "reward_function": "ser.encoder_head:ppo_reward",
                "reward_function_kwargs": {"head_dir": model_dir, "encoder": head.model_name_or_path,
                                           "max_length": head.max_length, "input_format": head.input_format}}
    raise UserError(f"ser.backend {backend!r} has no PPO reward; known: {sorted(REWARD_BACKENDS)}")


def build_backend(name: str, settings: dict, launcher: str | None = None) -> RewardBackend:
    if name not in REWARD_BACKENDS:
        raise UserError(f"ser.backend {name!r} is not one of {sorted(REWARD_BACKENDS)}")
    if launcher is None:
        return REWARD_BACKENDS[name](settings)
    if name != "common_rm":
        raise UserError(f"ser.rm_launcher starts the LM reward model stage; backend {name!r} trains in process")
    return CommonRMBackend(settings, launcher)
