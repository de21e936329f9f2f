"""Settings of the SER loop (section ``ser`` of a recipe); ``ser.loop`` runs them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from common.config import ConfigError
from common.config import help_meta as _h
from common.data import check_on_bad_row_setting
from ser.filter import STATUS_SCHEDULES, FilterThresholds

POOL_SOURCES = ("pairs", "generate")


@dataclass
class SERConfig:
    """Settings of the SER loop (section ``ser`` of a recipe)."""

    output_dir: str = field(metadata=_h("run folder: data/, loop_<k>/, state.json, table, plot, metrics.json"))
    dataset: str = field(default="hh", metadata=_h("hh | ultrafeedback | summarize | stackexchange | hh_local | "
                                                   "sst2 | jsonl"))
    data_path: str | None = field(default=None, metadata=_h("hub id override, or the local file/folder"))
    data_split: str | None = field(default=None, metadata=_h("split to read (default: the set's training split)"))
    limit: int | None = field(default=None, metadata=_h("use at most this many pairs in all (seeded shuffle)"))
    on_bad_row: str = field(default="skip", metadata=_h("hh / hh_local: skip a malformed HH-RLHF row (counted per "
                                                        "reason in metrics.json: data_rows, data_skipped) or "
                                                        "error (stop at the first, naming file:row)"))
    seed_fraction: float = field(default=0.15, metadata=_h("labelled share of the non-held-out pairs [SECONDARY]"))
    heldout_size: int = field(default=1500, metadata=_h("held-out pairs, only reported, never used to steer the "
                                                        "loop [CODE] 1,500 eval pairs"))
    selection_size: int = field(default=500, metadata=_h("labelled pairs held apart to stop on plateau and pick the "
                                                         "loop kept [GUESS]"))
    t_low: float = field(default=0.45, metadata=_h("t_L of status 1 [CODE]"))
    t_high: float = field(default=0.55, metadata=_h("t_R of status 1 [CODE]"))
    margin: float = field(default=0.3, metadata=_h("p_j - p_k gap of status 2 [CODE]"))
    status_schedule: str = field(default="both", metadata=_h("both (upstream code) | alternate (1 then 2) "
                                                             "[SECONDARY]"))
    max_loops: int = field(default=4, metadata=_h("self-labelling loops after loop 0 [GUESS] 3-4"))
    patience: int = field(default=1, metadata=_h("stop after this many loops without a held-out gain"))
    min_delta: float = field(default=0.0, metadata=_h("a gain must exceed this to count"))
    min_selected: int = field(default=16, metadata=_h("stop when fewer pool pairs pass the filter [GUESS]"))
    retrain_from: str = field(default="initial", metadata=_h("initial (base/SFT model) | previous (RM_{k-1}) [GUESS]"))
    full_label_baseline: bool = field(default=True, metadata=_h("also train the RM on 100% human labels"))
    full_label_from: str | None = field(default=None, metadata=_h("baseline_full folder of another run on the same "
                                                                  "pairs to reuse (checked by fingerprint)"))
    backend: str = field(default="common_rm", metadata=_h("common_rm (common.train.rm) | frozen_encoder"))
    rm: dict = field(default_factory=dict, metadata=_h("backend settings: RMConfig fields, or EncoderHeadSettings"))
    rm_launcher: str | None = field(default=None, metadata=_h("common_rm: command that starts each loop's RM stage "
                                                              "as its own processes, e.g. 'accelerate launch "
                                                              "--num_processes 8'; null = in this process"))
    rm_model: str | None = field(default=None, metadata=_h("common_rm: replaces rm.model_name_or_path (the scripts "
                                                           "pass the SFT run); frozen_encoder keeps its encoder"))
    pool_source: str = field(default="pairs", metadata=_h("pairs (re-score the dataset's pairs, upstream code) | "
                                                          "generate (two new responses per pool prompt) [SECONDARY]"))
    generator: dict = field(default_factory=dict, metadata=_h("pool_source generate: common.generation settings "
                                                              "(model, template, temperature, max_new_tokens, ...)"))
    sft_data: str = field(default="seed", metadata=_h("ser.prepare_data: SFT on the chosen answers of the labelled "
                                                      "seed only (pool labels stay hidden) | all (seed + pool)"))
    seed: int = field(default=42, metadata=_h("seed of the split and the pool order"))
    data_seed: int | None = field(default=None, metadata=_h("seed of the pair sample (limit); None = seed. Fix it "
                                                            "to redo one sample with other splits"))
    overwrite: bool = field(default=False, metadata=_h("discard an earlier run in output_dir and start over"))

    def __post_init__(self) -> None:
        check_on_bad_row_setting(self.on_bad_row, "ser.on_bad_row")
        if self.status_schedule not in STATUS_SCHEDULES:
            raise ConfigError(f"ser.status_schedule: {self.status_schedule!r} is not one of {list(STATUS_SCHEDULES)}")
        for key, allowed in (("pool_source", POOL_SOURCES), ("sft_data", ("seed", "all"))):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"ser.{key}: {getattr(self, key)!r} is not one of {list(allowed)}")
        if self.pool_source == "generate" and not self.generator.get("model"):
            raise ConfigError("ser.generator.model: pool_source generate needs the model that writes the new "
                              "responses (usually the SFT run)")
        if self.selection_size < 1:
            raise ConfigError(f"ser.selection_size: {self.selection_size} must be >= 1 (the loop needs labelled "
                              "pairs apart from the held-out ones to decide when to stop)")
        if self.retrain_from not in ("initial", "previous"):
            raise ConfigError(f"ser.retrain_from: {self.retrain_from!r} is not one of ['initial', 'previous']")
        for key in ("max_loops", "patience", "min_selected"):
            if getattr(self, key) < (0 if key == "max_loops" else 1):
                raise ConfigError(f"ser.{key}: {getattr(self, key)} is too small")
        try:
            FilterThresholds(self.t_low, self.t_high, self.margin)
        except ValueError as exc:
            raise ConfigError(f"ser.t_low/t_high/margin: {exc}") from None

    @property
    def thresholds(self) -> FilterThresholds:
        return FilterThresholds(self.t_low, self.t_high, self.margin)

    def fingerprint(self) -> str:
        """Hash of the settings a resumed run must share with the interrupted one (not output/overwrite).
        ``on_bad_row`` is left out: it changes no pair (a malformed row is skipped, or the load stops)."""
        keep = {k: v for k, v in asdict(self).items()
                if k not in ("output_dir", "overwrite", "sft_data", "on_bad_row")}
        return hashlib.sha1(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:12]
