"""PPO against a PCRM reward model: ``common.train.ppo`` with the RM named by one path (set per variant).

    python -m pcrm.ppo --config pcrm/configs/llama2.yaml --section rl_dialogue reward_model=runs/.../len_rat/rm
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.config import stage_cli
from common.train.ppo import PPOConfig, train_ppo


@dataclass
class PCRMPPOConfig(PPOConfig):
    """``PPOConfig`` plus ``reward_model``: the RM folder, scored with ``reward_template`` (PCRM: plain)."""

    reward_model: str = field(default="", metadata={"help": "folder of the PCRM RM (pcrm.rm / pcrm.variants output)"})
    reward_template: str = field(default="plain", metadata={"help": "template the RM was trained with"})
    reward_max_length: int = field(default=1024, metadata={"help": "RM input tokens (the last ones are kept)"})

    def __post_init__(self) -> None:
        if self.reward_model:
            self.reward_models = [{"name": "pcrm_rm", "path": self.reward_model, "template": self.reward_template,
                                   "max_length": self.reward_max_length}]
        super().__post_init__()


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(PCRMPPOConfig, train_ppo, "rl", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()
