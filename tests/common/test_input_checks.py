"""Input checks behind the one-line errors of tests/test_bad_inputs.py, in process: each stage config that has the
field refuses the bad value, naming its key; the accepted values still pass."""

from __future__ import annotations

import pytest

from common.config import ConfigError, UserError, build_dataclass
from common.train import LR_SCHEDULERS, lr_scheduler_names
from common.train.dpo import DPOConfig
from common.train.rm import RMConfig
from common.train.sft import SFTConfig

STAGES = [(SFTConfig, "sft"), (RMConfig, "rm"), (DPOConfig, "dpo")]
BASE = {"model_name_or_path": "embedded:tiny-llama", "dataset": "d.jsonl", "output_dir": "out", "report_to": "none"}


@pytest.mark.parametrize("cls, section", STAGES, ids=[s for _, s in STAGES])
@pytest.mark.parametrize("values, key", [
    ({"num_train_epochs": -1}, "num_train_epochs"),
    ({"num_train_epochs": 0}, "num_train_epochs"),
    ({"num_train_epochs": float("inf")}, "num_train_epochs"),
    ({"max_steps": 0}, "max_steps"),
    ({"max_steps": -2}, "max_steps"),
    ({"lr_scheduler_type": "cosine_decay"}, "lr_scheduler_type"),
], ids=["epochs-negative", "epochs-zero", "epochs-inf", "max-steps-zero", "max-steps-negative", "scheduler"])
def test_trainer_stages_refuse_a_run_length_or_schedule_that_trl_would_misread(cls, section, values, key):
    with pytest.raises(ConfigError, match=rf"^{section}\.{key}: "):
        cls(**BASE, **values)


@pytest.mark.parametrize("cls, section", STAGES, ids=[s for _, s in STAGES])
def test_max_steps_decides_when_set_and_every_transformers_scheduler_is_accepted(cls, section):
    assert cls(**BASE, num_train_epochs=0, max_steps=3).max_steps == 3  # epochs do not matter then
    for name in lr_scheduler_names():
        assert cls(**BASE, lr_scheduler_type=name).lr_scheduler_type == name


def test_the_fast_scheduler_list_is_transformers_own():
    assert set(LR_SCHEDULERS) <= set(lr_scheduler_names())


def test_the_unknown_scheduler_error_lists_the_known_names():
    with pytest.raises(ConfigError) as err:
        SFTConfig(**BASE, lr_scheduler_type="cosine_decay")
    assert all(name in str(err.value) for name in lr_scheduler_names())


def test_ppo_refuses_a_run_of_zero_steps():
    from common.train.ppo import PPOConfig

    base = {"model": "embedded:tiny-llama", "dataset": "p.jsonl", "value_model": "policy", "output_dir": "out"}
    for key in ("total_steps", "total_episodes"):
        with pytest.raises(ConfigError, match=rf"^rl\.{key}: "):
            PPOConfig(**base, **{key: 0})


@pytest.mark.parametrize("module, cls, key, base", [
    ("common.eval.bbq", "BBQEvalConfig", "n_per_category", {"model": "m", "data": "d"}),
    ("rldf.predict", "PredictConfig", "bbq_n_per_category", {"output_dir": "o", "before_model": "m"}),
    ("rlchf.evaluate", "EvaluateConfig", "bbq_n_per_category", {"base_model": "m", "bbq_data": "d"}),
])
def test_bbq_subsample_is_none_or_at_least_one(module, cls, key, base):
    import importlib

    config = getattr(importlib.import_module(module), cls)
    assert getattr(config(**base), key) is None  # the default: every item
    assert getattr(config(**base, **{key: 5}), key) == 5
    for bad in (0, -3):
        with pytest.raises(ConfigError, match=rf"\.{key}: {bad} must be >= 1"):
            config(**base, **{key: bad})


def test_load_bbq_refuses_a_negative_subsample(tmp_path):
    from common.eval.bbq import load_bbq

    with pytest.raises(UserError, match="n_per_category: -3"):
        load_bbq(str(tmp_path), n_per_category=-3)


def test_a_section_that_is_a_list_names_the_file_and_the_section(tmp_path):
    from common.config import load_config

    path = tmp_path / "r.yaml"
    path.write_text("sft:\n  - model_name_or_path\n  - m\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: section 'sft' must be a mapping"):
        load_config(SFTConfig, path, "sft")


def test_a_null_section_still_means_no_settings(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("sft:\n")
    from common.config import load_config

    cfg = load_config(SFTConfig, path, "sft", dict(BASE))
    assert cfg.model_name_or_path == BASE["model_name_or_path"]


def test_build_dataclass_still_reads_a_plain_mapping():
    assert build_dataclass(SFTConfig, dict(BASE), "sft").output_dir == "out"


def test_model_source_refuses_a_file_a_missing_folder_and_a_folder_without_a_model(tmp_path):
    from common.models import model_source

    (tmp_path / "weights.bin").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    for name, what in ((tmp_path / "weights.bin", "is a file"), (tmp_path / "nope", "no such folder"),
                       (tmp_path / "empty", "holds none of")):
        with pytest.raises(UserError, match=f"^model '{name}': .*{what}"):
            model_source(str(name))
    assert model_source("meta-llama/Llama-2-7b-chat-hf") == "meta-llama/Llama-2-7b-chat-hf"  # a hub id passes
    (tmp_path / "empty" / "config.json").write_text("{}")
    assert model_source(str(tmp_path / "empty")) == str(tmp_path / "empty")


def test_a_hub_id_that_cannot_load_offline_is_one_user_error(monkeypatch):
    from common.models import load_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=r"^model 'no-such-org/no-such-model': cannot load its tokenizer: .*"
                                        r"HF_HUB_OFFLINE"):
        load_tokenizer("no-such-org/no-such-model")
