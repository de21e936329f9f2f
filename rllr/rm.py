"""RLLR reward models (RM_rat on rationale pairs, RM_label on label pairs): common's RM stage, one extra switch.

    python -m rllr.rm --config rllr/configs/llama2.yaml --section rm_label [loss=token] [--key value ...]

``loss: sequence`` (default) is ``common.train.rm``: Bradley-Terry on the last-token score, −log σ(r_c − r_r).
``loss: token`` is upstream's objective [CODE, inherited from DeepSpeed-Chat]: with d = the first token where the
chosen and rejected ids differ and e = max(len_c, len_r), the pair's loss is mean over t in [d, e) of
−log σ(v_c[t] − v_r[t]). PCRM's code trains the same objective, so the trainer is shared with it
(``common.train.token_rm.make_token_trainer_class`` with no pair term) rather than written twice. Either way the RM is scored at
its last token afterwards (evaluation, τ, PPO).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.config import ConfigError, stage_cli
from common.train.rm import RMConfig, train_rm

LOSSES = ("sequence", "token")


def start_model(recipe: dict, section: str, sft_model: str) -> str:
    """What an RM section fine-tunes: the SFT-with-rationales model [PAPER], unless the recipe's section names another
    backbone (a small encoder RM, as the MiniLM measurement in rllr/README.md)."""
    named = (recipe.get(section) or {}).get("model_name_or_path")
    return str(sft_model) if named in (None, "", "REPLACED_BY_SCRIPT") else str(named)


@dataclass
class RLLRRMConfig(RMConfig):
    loss: str = field(default="sequence", metadata={"help": f"{list(LOSSES)}: last-token BT or upstream's "
                                                            "token-level loss over the divergent span"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss not in LOSSES:
            raise ConfigError(f"rm.loss: {self.loss!r} is not one of {list(LOSSES)}")
        if self.loss == "token" and self.padding_free:  # the span loss lines chosen and rejected up token by token
            raise ConfigError("rm.padding_free: the token loss compares chosen and rejected position by position in "
                              "padded rows; set padding_free: false with loss: token")
        if self.loss == "token" and self.pair_term != "none":
            raise ConfigError(f"rm.pair_term: {self.pair_term!r} is not part of RLLR's loss; leave it 'none'")


def train_rllr_rm(cfg: RLLRRMConfig) -> dict[str, Any]:
    if cfg.loss == "sequence":
        return train_rm(cfg)
    from common.train.token_rm import make_token_trainer_class

    return train_rm(cfg, trainer_class=make_token_trainer_class())


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(RLLRRMConfig, train_rllr_rm, "rm", "Train an RLLR reward model (sequence or token-level BT).",
                     argv)


if __name__ == "__main__":
    main()
