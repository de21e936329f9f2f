"""pcrm.variants settings: which backbone every variant's RM starts from."""

import pytest

from common.config import ConfigError
from pcrm.variants import VariantsConfig

RM = {"model_name_or_path": "base-model", "template": "plain"}


def test_rm_init_sft_starts_every_rm_from_the_tasks_sft_model():
    cfg = VariantsConfig(rm=dict(RM), rm_init="sft", sft_model="runs/pcrm/m/dialogue/sft")
    assert cfg.rm["model_name_or_path"] == "runs/pcrm/m/dialogue/sft"
    assert VariantsConfig(rm=dict(RM), sft_model="runs/sft").rm["model_name_or_path"] == "base-model"  # rm_init config


def test_an_explicit_rm_model_wins_over_rm_init():
    cfg = VariantsConfig(rm=dict(RM), rm_init="sft", sft_model="runs/sft", rm_model="other")
    assert cfg.rm["model_name_or_path"] == "other"


@pytest.mark.parametrize("kw, key", [({"rm_init": "sft"}, "variants.sft_model"),
                                     ({"rm_init": "rm"}, "variants.rm_init")])
def test_rm_init_refusals_name_the_key(kw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        VariantsConfig(rm=dict(RM), **kw)
