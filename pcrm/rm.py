"""PCRM reward-model stage: common's RM trainer with the prior upper bound, and the upstream token-level objective.

    L = −log σ(d) − log σ(δ* − d),   d = r(chosen) − r(rejected),   δ* from the pair's ``delta_star`` column

``score_mode`` picks what d is [CODE vs GUESS]:

- ``last_token`` (default): d is the difference of the sequence scores (the head output at the last token), i.e.
  ``common.train.rm`` with ``pair_term: upper_bound``. The clean sequence-level form [GUESS: equivalent in spirit].
- ``divergent_mean``: what DeepSpeed-Chat (and so the authors' code) trains. The value head scores every token;
  with a = the first position where the chosen and rejected token ids differ and e = the longer of the two
  lengths, the pair's loss is the mean over t ∈ [a, e) of −log σ(v_c[t] − v_r[t]) − log σ(δ* − (v_c[t] − v_r[t])).
  Positions past the shorter sequence's end are padding whose values are still scored, as upstream does. Needs a
  decoder RM whose head is a module named ``score`` (Llama, Qwen, Mistral...). The objective lives in
  ``common.train.token_rm`` (RLLR trains it too); evaluation, PPO and every scorer still read the last-token score.

    python -m pcrm.rm --config pcrm/configs/llama2.yaml --section rm_dialogue dataset=... score_mode=divergent_mean
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.config import ConfigError, stage_cli
from common.train import rm as common_rm
from common.train.token_rm import make_token_trainer_class

SCORE_MODES = ("last_token", "divergent_mean")


@dataclass
class PCRMRMConfig(common_rm.RMConfig):
    """``common.train.rm.RMConfig`` plus where the pair's score difference is read."""

    score_mode: str = field(default="last_token", metadata={"help": f"one of {list(SCORE_MODES)}"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.score_mode not in SCORE_MODES:
            raise ConfigError(f"rm.score_mode: {self.score_mode!r} is not one of {list(SCORE_MODES)}")


def train_pcrm_rm(cfg: PCRMRMConfig) -> dict[str, Any]:
    """``common.train.rm.train_rm`` with the trainer class the score mode asks for."""
    if cfg.score_mode == "last_token":
        return common_rm.train_rm(cfg)
    return common_rm.train_rm(cfg, trainer_class=make_token_trainer_class())


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(PCRMRMConfig, train_pcrm_rm, "rm", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()
