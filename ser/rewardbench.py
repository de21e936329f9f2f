"""RewardBench for the SER loop's reward models (seed-only, SER, 100%-label), scored the way the loop scores them.

    python -m ser.rewardbench --config ser/configs/llama3.yaml --section rewardbench \
        ser_loop=runs/ser/llama3/hh/ser_loop reward_from=ser output_dir=runs/ser/llama3/hh/rewardbench/ser

Both responses of a pair go through the loop's own backend (``ser.reward_backends``: ``score(model_dir, prompts,
responses)``): ``"Question: {q}\\n\\nAnswer: {a}"`` [CODE] with template plain for an LM RM (``common_rm``), or the
frozen encoder and its head (``frozen_encoder``), so RewardBench sees each RM exactly as the loop and PPO do. The
pairs, section scores, cache and metrics are ``common.eval.rewardbench``'s; ``data: ''`` skips the step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import ConfigError, UserError, build_dataclass, read_yaml, stage_cli
from common.config import help_meta as _h
from common.eval.rewardbench import RewardBenchConfig, evaluate_rewardbench, model_identity
from ser.encoder_head import QUESTION_ANSWER
from ser.ppo import REWARD_FROM


@dataclass
class SERRewardBenchConfig(RewardBenchConfig):
    """``RewardBenchConfig`` whose model is one of a SER loop run's reward models."""

    model: str = field(default="", metadata=_h("RM folder; default: the loop's `reward_from` RM (metrics.json)"))
    ser_loop: str = field(default="", metadata=_h("run folder of ser.loop: its config picks the scoring backend"))
    reward_from: str = field(default="ser", metadata=_h(f"which loop RM: {' | '.join(REWARD_FROM)}"))

    def __post_init__(self) -> None:
        if not self.ser_loop:
            raise ConfigError("rewardbench.ser_loop: name the SER loop run folder (ser/scripts/02_ser_loop.sh's "
                              "$OUT/ser_loop)")
        if self.dpo_ref is not None:
            raise ConfigError("rewardbench.dpo_ref: the SER loop's RMs are reward models, not DPO policies; unset it")
        if not self.model and self.data:
            self.model = loop_model_dir(self.ser_loop, self.reward_from)
        super().__post_init__()


def loop_model_dir(ser_loop: str, reward_from: str) -> str:
    """The folder of the loop's ``reward_from`` RM, as its metrics.json names it."""
    if reward_from not in REWARD_FROM:
        raise ConfigError(f"rewardbench.reward_from: {reward_from!r} is not one of {list(REWARD_FROM)}")
    path = Path(ser_loop) / "metrics.json"
    if not path.is_file():
        raise UserError(f"rewardbench.ser_loop: {path} does not exist; run the SER loop (ser/scripts/02_ser_loop.sh) "
                        "first")
    models = json.loads(path.read_text()).get("reward_models") or {}
    if reward_from not in models:
        raise UserError(f"{path}: no {reward_from!r} reward model (have {sorted(models)})")
    return str(models[reward_from]["model_dir"])


class LoopRMScorer:
    """``common.eval.rewardbench.PairScorer`` over the loop's backend; the loop's embedding cache is left alone."""

    def __init__(self, ser_loop: str, model_dir: str):
        from ser.config import SERConfig
        from ser.loop import backend_settings
        from ser.reward_backends import build_backend

        loop = build_dataclass(SERConfig, read_yaml(Path(ser_loop) / "config.yaml"), f"{ser_loop}/config.yaml")
        settings = backend_settings(loop, Path(ser_loop))
        if loop.backend == "frozen_encoder":
            settings["cache_path"] = None  # RewardBench texts stay out of the loop's cache file
        self.backend = build_backend(loop.backend, settings)
        self.model_dir = Path(model_dir)
        self.fingerprint = {"scoring": f"ser_{loop.backend}", "model": model_identity(model_dir),
                            "input_format": QUESTION_ANSWER}

    def score_pairs(self, records: list[dict]) -> tuple[list[float], list[float]]:
        prompts = [r["prompt"] for r in records]
        r = self.backend.score(self.model_dir, prompts + prompts,
                               [x["chosen"] for x in records] + [x["rejected"] for x in records]).tolist()
        return r[: len(records)], r[len(records):]


def evaluate_loop_rm(cfg: SERRewardBenchConfig) -> dict[str, Any]:
    scorer = LoopRMScorer(cfg.ser_loop, cfg.model) if cfg.data else None
    return evaluate_rewardbench(cfg, scorer=scorer)


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(SERRewardBenchConfig, evaluate_loop_rm, "rewardbench", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()
