"""Persona loading, trait validation, stratified panel proportions and the compose-mode stage."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from common.config import ConfigError, UserError
from rlchf.personas import (
    DEMOGRAPHIC_FIELDS,
    PersonaConfig,
    largest_remainder,
    load_seed_personas,
    parse_persona,
    run_personas,
    stratified_select,
)


def pool(n_per_cell: int) -> list[dict]:
    out = []
    for sex in ("female", "male"):
        for cls in ("lower", "middle", "upper"):
            for i in range(n_per_cell):
                out.append({"persona_id": f"{sex}-{cls}-{i}", "sex": sex, "social_class": cls})
    return out


def test_largest_remainder_allocates_exact_seats():
    assert largest_remainder(20, [0.15, 0.25, 0.1, 0.15, 0.25, 0.1]) == [3, 5, 2, 3, 5, 2]
    assert sum(largest_remainder(7, [1 / 3] * 3)) == 7


def test_stratified_panel_follows_the_target_joint_distribution():
    dists = {"sex": {"female": 0.5, "male": 0.5}, "social_class": {"lower": 0.3, "middle": 0.5, "upper": 0.2}}
    judges, info = stratified_select(pool(10), 20, ["sex", "social_class"], dists, seed=0)
    assert len({j["persona_id"] for j in judges}) == 20 and info["shortfall"] == 0
    assert Counter(j["sex"] for j in judges) == {"female": 10, "male": 10}
    assert Counter(j["social_class"] for j in judges) == {"lower": 6, "middle": 10, "upper": 4}
    assert Counter((j["sex"], j["social_class"]) for j in judges)[("male", "middle")] == 5


def test_stratified_panel_fills_an_empty_cell_from_the_rest_and_reports_it():
    people = [p for p in pool(10) if p["social_class"] != "upper"]
    dists = {"sex": {"female": 0.5, "male": 0.5}, "social_class": {"lower": 0.3, "middle": 0.5, "upper": 0.2}}
    judges, info = stratified_select(people, 20, ["sex", "social_class"], dists, seed=0)
    assert len(judges) == 20 and info["shortfall"] == 4
    with pytest.raises(UserError, match="only 40 valid personas"):
        stratified_select(people, 41, ["sex"], dists, seed=0)


def test_persona_parser_accepts_enum_values_and_rejects_off_list_ones():
    from common.structured import ParseError

    allowed = {name: list(PersonaConfig().distribution(name)) for name in DEMOGRAPHIC_FIELDS}
    good = json.dumps({"persona": "A nurse from Nairobi who loves chess.", "sex": "Female", "age": "adult",
                       "nationality": "Kenyan", "social_class": "middle"})
    assert parse_persona("Sure! " + good, allowed)["sex"] == "female"
    with pytest.raises(ParseError, match="age"):
        parse_persona(good.replace('"adult"', '"40s"'), allowed)
    with pytest.raises(ParseError, match="nationality"):
        parse_persona(good.replace('"Kenyan"', '"Martian"'), allowed)
    with pytest.raises(ParseError):
        parse_persona("not json at all", allowed)


def test_seed_personas_load_from_local_jsonl_gz_and_refuse_missing_field(tmp_path):
    path = tmp_path / "p.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("".join(json.dumps({"id": i, "persona": f"person {i}"}) + "\n" for i in range(10)))
    seeds = load_seed_personas(str(path), 4, seed=0)
    assert len({s["seed_id"] for s in seeds}) == 4 and all(s["seed_persona"].startswith("person") for s in seeds)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": 0, "text": "x"}) + "\n")
    with pytest.raises(UserError):
        load_seed_personas(str(bad), 1, seed=0)


def test_config_refuses_unknown_demographic_field():
    with pytest.raises(ConfigError, match="stratify_on"):
        PersonaConfig(stratify_on=["height"])


def test_compose_stage_writes_panel_and_table(tmp_path, shared_data):
    cfg = PersonaConfig(source=str(shared_data / "personahub" / "personas.jsonl.gz"), n_seed=60, n_judges=10,
                        stratify_on=["sex"], enrich="compose", output_dir=str(tmp_path / "personas"))
    metrics = run_personas(cfg)
    judges = [json.loads(line) for line in (tmp_path / "personas" / "judges.jsonl").read_text().splitlines()]
    assert metrics["n_valid"] == 60 and len(judges) == 10
    assert Counter(j["sex"] for j in judges) == {"female": 5, "male": 5}
    assert "| sex | female | 0.500 |" in (tmp_path / "personas" / "demographics.md").read_text()
