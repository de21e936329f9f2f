"""PPO for one RLLR mode: ``common.train.ppo`` with the reward that ``mode`` names (rllr/reward.py).

    python -m rllr.ppo --config rllr/configs/llama2.yaml --section rl mode=rllr_mixed output_dir=runs/...

The recipe names both reward models once (``label_rm``, ``rat_rm``: {path, adapter?}; an ``rllr.rm`` run folder as
path is read as it was trained, see ``resolve_trained_rm``); ``mode`` picks which of
them are loaded and how they are combined, so the three runs differ by one word. The critic starts from the first
reward model in the list (``value_model: reward_model`` [CODE]): RM_rat for rlhf, RM_label for rllr and rllr_mixed
[GUESS: upstream loads one RM as value head; which one in the mixed run is not stated].
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import ConfigError, read_yaml, stage_cli
from common.rewards import CombinedReward, RewardSource
from common.train.ppo import PPOConfig, train_ppo
from rllr.reward import MODES, SOURCES_BY_MODE, combine_rllr


@dataclass
class RLLRPPOConfig(PPOConfig):
    """``common.train.ppo.PPOConfig`` plus the RLLR mode, τ and the two reward models."""

    mode: str = field(default="rllr", metadata={"help": f"reward mode: {list(MODES)}"})
    tau: float | None = field(default=None, metadata={"help": "cap on the label reward in rllr_mixed [CODE per model]"})
    tau_file: str | None = field(default=None, metadata={"help": "json from `python -m rllr.tau` (used when tau is "
                                                                 "null)"})
    label_rm: dict = field(default_factory=dict, metadata={"help": "RM_label: {path, adapter?, template?...}"})
    rat_rm: dict = field(default_factory=dict, metadata={"help": "RM_rat: {path, adapter?, template?...}"})
    learning_rate_by_mode: dict = field(default_factory=dict, metadata={"help": "{mode: lr} replacing learning_rate "
                                                                                "(bloom-7b1 RLLR: 1e-5 [CODE])"})

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"rl.mode: {self.mode!r} is not one of {list(MODES)}")
        if self.mode in self.learning_rate_by_mode:
            self.learning_rate = float(self.learning_rate_by_mode[self.mode])
        if self.mode == "rllr_mixed" and self.tau is None:
            self.tau = read_tau(self.tau_file)
        self.label_rm, self.rat_rm = resolve_trained_rm(self.label_rm), resolve_trained_rm(self.rat_rm)
        rms = {"label": self.label_rm, "rat": self.rat_rm}
        if not self.reward_models:
            self.reward_models = [{**rms[name], "name": name} for name in SOURCES_BY_MODE[self.mode]
                                  if rms[name].get("path")]
        self.reward_combine = "rllr.reward:combine_rllr"
        self.reward_combine_kwargs = {"mode": self.mode, "tau": self.tau}
        super().__post_init__()


def resolve_trained_rm(spec: dict) -> dict:
    """An RM run folder of ``rllr.rm`` named as ``path`` is read the way it was trained (its logged config.yaml): a
    LoRA adapter on its start model, or a whole model (another backbone, fully fine-tuned), with its template and
    max length. Keys the spec sets itself win; a spec that names an adapter, or any other path, is left as it is."""
    folder = Path(str(spec.get("path") or ""))
    if not spec.get("path") or spec.get("adapter") or not (folder / "config.yaml").is_file():
        return spec
    trained = read_yaml(folder / "config.yaml")
    resolved = {key: trained[key] for key in ("template", "max_length") if trained.get(key)}
    resolved.update(spec)
    if (folder / "adapter_config.json").is_file():
        resolved.update(path=str(trained["model_name_or_path"]), adapter=str(folder))
    return resolved


def read_tau(tau_file: str | None) -> float:
    if not tau_file:
        raise ConfigError("rl.tau: mode rllr_mixed needs tau; set rl.tau, or rl.tau_file to the json written by "
                          "`python -m rllr.tau`")
    path = Path(tau_file)
    if not path.is_file():
        raise ConfigError(f"rl.tau_file: {path} does not exist; run `python -m rllr.tau` on the label RM first")
    return float(json.loads(path.read_text())["tau"])


def train_rllr_ppo(cfg: RLLRPPOConfig, sources: dict[str, RewardSource] | None = None) -> dict[str, Any]:
    """Run PPO; ``sources`` ({"label": ..., "rat": ...}) replaces the reward models named in the config."""
    reward = None
    if sources is None:
        have = {rm.get("name") for rm in cfg.reward_models}
        for name in SOURCES_BY_MODE[cfg.mode]:
            if name not in have:
                raise ConfigError(f"rl.{name}_rm.path: mode {cfg.mode!r} needs the {name} reward model")
    else:
        reward = CombinedReward({k: sources[k] for k in SOURCES_BY_MODE[cfg.mode]}, combine_rllr,
                                {"mode": cfg.mode, "tau": cfg.tau})
    return train_ppo(cfg, reward_source=reward)


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(RLLRPPOConfig, train_rllr_ppo, "rl", "PPO with the RLHF, RLLR or RLLR-mixed reward.", argv)


if __name__ == "__main__":
    main()
