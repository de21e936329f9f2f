import dataclasses
from typing import Literal

import pytest

from common.config import ConfigError, load_config, parse_overrides, stage_cli


@dataclasses.dataclass
class ToyConfig:
    model: str = "embedded:tiny-llama"
    learning_rate: float = 1e-5
    epochs: int = 1
    use_lora: bool = True
    target_modules: list[str] = dataclasses.field(default_factory=lambda: ["q_proj", "v_proj"])
    loss: Literal["sigmoid", "ipo"] = "sigmoid"
    max_steps: int | None = None


def write(tmp_path, text):
    p = tmp_path / "recipe.yaml"
    p.write_text(text)
    return p


def test_section_values_are_cast_to_field_types(tmp_path):
    p = write(tmp_path, "rm:\n  learning_rate: 3e-4\n  epochs: 2\n  use_lora: false\n")
    cfg = load_config(ToyConfig, p, "rm")
    assert cfg.learning_rate == pytest.approx(3e-4) and cfg.epochs == 2 and cfg.use_lora is False


def test_overrides_win_over_the_file_and_are_cast(tmp_path):
    p = write(tmp_path, "rm:\n  learning_rate: 3e-4\n")
    over = parse_overrides(["--learning_rate", "1e-4", "epochs=3", "--target_modules", "q_proj,k_proj",
                            "--max_steps=none"])
    cfg = load_config(ToyConfig, p, "rm", over)
    assert cfg.learning_rate == pytest.approx(1e-4)
    assert cfg.epochs == 3 and cfg.target_modules == ["q_proj", "k_proj"] and cfg.max_steps is None


def test_a_list_override_may_be_a_yaml_flow_list(tmp_path):
    cfg = load_config(ToyConfig, None, None, parse_overrides(["target_modules=[q_proj, 'o_proj']"]))
    assert cfg.target_modules == ["q_proj", "o_proj"]

    @dataclasses.dataclass
    class WithMappings:
        sources: list[dict] = dataclasses.field(default_factory=list)

    cfg = load_config(WithMappings, None, None, {"sources": "[{name: rm, path: runs/x, max_length: 512}]"})
    assert cfg.sources == [{"name": "rm", "path": "runs/x", "max_length": 512}]


def test_yaml_anchors_share_settings_between_sections(tmp_path):
    p = write(tmp_path, "base: &base\n  model: org/m\nsft:\n  <<: *base\n  epochs: 3\n")
    assert load_config(ToyConfig, p, "sft").model == "org/m"


def test_unknown_key_names_its_full_path(tmp_path):
    p = write(tmp_path, "rm:\n  lora_rr: 8\n")
    with pytest.raises(ConfigError, match=r"recipe.yaml:rm\.lora_rr: unknown key"):
        load_config(ToyConfig, p, "rm")


def test_bad_value_names_key_and_value(tmp_path):
    p = write(tmp_path, "rm:\n  epochs: three\n")
    with pytest.raises(ConfigError, match=r"rm\.epochs: cannot read 'three' as int"):
        load_config(ToyConfig, p, "rm")


def test_literal_rejects_values_outside_the_choices():
    with pytest.raises(ConfigError, match="not one of"):
        load_config(ToyConfig, None, None, {"loss": "hinge"})


def test_missing_section_and_missing_file_are_clear(tmp_path):
    p = write(tmp_path, "sft: {}\n")
    with pytest.raises(ConfigError, match="no section 'rm'"):
        load_config(ToyConfig, p, "rm")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(ToyConfig, tmp_path / "nope.yaml", "rm")


def test_stage_cli_prints_one_line_and_exits_2_on_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        stage_cli(ToyConfig, lambda c: c, "rm", "toy", ["--epochs", "x"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_stage_cli_help_lists_every_field(capsys):
    with pytest.raises(SystemExit):
        stage_cli(ToyConfig, lambda c: c, "rm", "toy", ["--help"])
    out = capsys.readouterr().out
    for f in dataclasses.fields(ToyConfig):
        assert f"--{f.name}" in out
