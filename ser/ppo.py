"""PPO against one of the SER loop's reward models: the seed-only RM, the SER RM (the loop kept) or the 100%-label RM.

    python -m ser.ppo --config ser/configs/llama3.yaml --section rl ser_loop=runs/ser/llama3/hh/ser_loop reward_from=ser

``common.train.ppo`` with the reward fields the loop wrote for that RM (``metrics.json`` → ``reward_models``), so
PPO scores exactly as the loop trained and scored: an LM RM (+ LoRA adapter) on ``"Question: {q}\\n\\nAnswer: {a}"``,
or the frozen encoder + head. The recipe's ``reward_combine: ser.ppo_reward:ser_sigmoid`` turns the raw score into
σ(r) − b [CODE].
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import UserError, stage_cli
from common.train.ppo import PPOConfig, train_ppo

REWARD_FROM = ("seed", "ser", "full")


@dataclass
class SERPPOConfig(PPOConfig):
    """``PPOConfig`` plus the SER loop run folder and which of its RMs gives the reward."""

    ser_loop: str = field(default="", metadata={"help": "run folder of ser.loop (its metrics.json names the RMs)"})
    reward_from: str = field(default="ser", metadata={"help": "seed (loop 0) | ser (the loop kept) | full (100% "
                                                              "human labels)"})

    def __post_init__(self) -> None:
        if self.ser_loop:
            self.__dict__.update(loop_reward_fields(self.ser_loop, self.reward_from))
        super().__post_init__()


def loop_reward_fields(ser_loop: str, reward_from: str) -> dict[str, Any]:
    if reward_from not in REWARD_FROM:
        raise UserError(f"rl.reward_from: {reward_from!r} is not one of {list(REWARD_FROM)}")
    path = Path(ser_loop) / "metrics.json"
    if not path.is_file():
        raise UserError(f"rl.ser_loop: {path} does not exist; run the SER loop (ser/scripts/02_ser_loop.sh) first")
    models = json.loads(path.read_text()).get("reward_models") or {}
    if reward_from not in models:
        raise UserError(f"{path}: no {reward_from!r} reward model (have {sorted(models)}); the 100%-label RM needs "
                        "ser.full_label_baseline true")
    return models[reward_from]["ppo_fields"]


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(SERPPOConfig, train_ppo, "rl", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()
