"""Synthetic annotators: PersonaHub seeds enriched into demographic personas, then a stratified panel of judges.

Upstream [CODE scripts/generate_personas.py] draws sex, age group, nationality and social class uniformly per seed,
asks Llama-3.3-70B (guided JSON, temperature 0.7) to rewrite the seed into a persona with those traits, and ships
1,000 personas of which 20 "stratified" ones judge (the stratification script is not released). Upstream's output
drifted from its own enums (45 nationalities instead of 31, ages such as "40s"). We validate each JSON answer
against the enums (re-asking through common.structured when a field is missing or off-list), then skip and count
both the seeds that never validate and those whose answer changed a drawn trait ("drifted").

Stratification rule (ours): the joint target distribution over ``stratify_on`` is the product of the configured
marginals; the N seats are allocated to the cells by largest remainder, and each cell is filled by a seeded draw
from the valid personas in it. Seats a cell cannot fill go to a seeded draw from the remaining pool and are
reported as ``shortfall``.

Outputs (``output_dir``): ``personas.jsonl`` (every valid enriched persona), ``judges.jsonl`` (the panel, with
``judge_id``), ``demographics.md`` (target share, pool count and panel count per field value), ``metrics.json``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.artifacts import RunDir, atomic_write_text, write_jsonl
from common.config import ConfigError, UserError, build_dataclass, stage_cli
from common.config import help_meta as _help
from common.hub_data import hub_id, local_source

DEMOGRAPHIC_FIELDS = ("sex", "age", "nationality", "social_class")
# [CODE] scripts/generate_personas.py: the value lists upstream draws from, each uniformly.
UPSTREAM_VALUES = {
    "sex": ["female", "male"],
    "age": ["child", "teenager", "young adult", "adult", "elderly"],
    "nationality": [
        "Brazilian", "Nigerian", "Japanese", "Egyptian", "Canadian", "Mexican", "Swedish", "Indian", "Turkish",
        "Kenyan", "Vietnamese", "French", "Filipino", "Peruvian", "Ethiopian", "South Korean", "German", "Australian",
        "South African", "Jamaican", "Russian", "Indonesian", "Argentinian", "Moroccan", "Italian", "Bangladeshi",
        "Lebanese", "Chinese", "Chilean", "Spanish", "American",
    ],
    "social_class": ["lower", "middle", "upper"],
}
ENRICH_PROMPT = (
    "Write a persona description based on the following information.\n\n"
    "Seed description: {seed}\nSex: {sex}\nAge group: {age}\nNationality: {nationality}\n"
    "Social class: {social_class}\n\n"
    "In a few sentences, describe this person's background, interests, values, attitudes and behaviour, keeping "
    "every trait above. If the seed conflicts with a trait, keep the trait.\n"
    "Answer with only a JSON object with the keys \"persona\" (the description), \"sex\", \"age\", \"nationality\" "
    "and \"social_class\" (the traits exactly as given above)."
)


@dataclass
class PersonaConfig:
    """Stage ``personas``: seeds -> enriched personas -> a stratified judge panel."""

    source: str = field(default=hub_id("personahub"), metadata=_help(
        "hub id or local jsonl(.gz) whose rows have a `persona` field [CODE]"))
    subset: str | None = field(default="persona", metadata=_help("hub config name (ignored for local files)"))
    split: str = field(default="train", metadata=_help("hub split (ignored for local files)"))
    n_seed: int = field(default=1000, metadata=_help("seed personas to enrich [CODE: 1,000 ship]"))
    n_judges: int = field(default=20, metadata=_help("size of the judge panel [CODE]"))
    stratify_on: list[str] = field(default_factory=lambda: ["sex", "age", "social_class"], metadata=_help(
        "demographic fields whose joint distribution the panel follows [GUESS: nationality has 31 values, too many "
        "for 20 seats]"))
    distributions: dict = field(default_factory=dict, metadata=_help(
        "field -> {value: weight}; a missing field uses upstream's uniform list (UPSTREAM_VALUES)"))
    enrich: str = field(default="llm", metadata=_help(
        "llm: rewrite each seed with the generator (JSON, validated); compose: no LLM, the description is "
        "'<traits>. <seed>' (for quick runs)"))
    generator: dict = field(default_factory=dict, metadata=_help(
        "common.generation.GenerationConfig fields for the enriching model (temperature 0.7 [CODE])"))
    max_attempts: int = field(default=3, metadata=_help("answers per seed before it is skipped"))
    seed: int = field(default=1, metadata=_help("seed for the seed sample, the trait draws and the panel [CODE: 1]"))
    output_dir: str = field(default="runs/rlchf/personas", metadata=_help("run folder"))
    overwrite: bool = field(default=False, metadata=_help("replace a finished run in output_dir"))

    def __post_init__(self) -> None:
        unknown = sorted(set(self.stratify_on) - set(DEMOGRAPHIC_FIELDS))
        if unknown:
            raise ConfigError(f"personas.stratify_on: {unknown[0]!r} is not one of {list(DEMOGRAPHIC_FIELDS)}")
        bad = sorted(set(self.distributions) - set(DEMOGRAPHIC_FIELDS))
        if bad:
            raise ConfigError(f"personas.distributions.{bad[0]}: not a demographic field {list(DEMOGRAPHIC_FIELDS)}")
        for name, dist in self.distributions.items():
            if not isinstance(dist, dict) or not dist or any(float(w) < 0 for w in dist.values()) or \
                    sum(float(w) for w in dist.values()) <= 0:
                raise ConfigError(f"personas.distributions.{name}: expected {{value: weight >= 0}} with a positive "
                                  f"total, got {dist!r}")
        if self.enrich not in ("llm", "compose"):
            raise ConfigError(f"personas.enrich = {self.enrich!r}: must be 'llm' or 'compose'")
        if self.n_seed < 1 or self.n_judges < 1 or self.max_attempts < 1:
            raise ConfigError("personas.n_seed, n_judges and max_attempts must all be >= 1")

    def distribution(self, name: str) -> dict[str, float]:
        """Normalised {value: probability} of one demographic field."""
        raw = self.distributions.get(name) or {v: 1.0 for v in UPSTREAM_VALUES[name]}
        total = sum(float(w) for w in raw.values())
        return {str(v): float(w) / total for v, w in raw.items()}


def load_seed_personas(source: str, n: int, seed: int, subset: str | None = None, split: str = "train") -> list[dict]:
    """``n`` seeded seed personas ``{seed_id, seed_persona}`` from a local jsonl(.gz) or a hub dataset."""
    from common.data import load_records

    # load_records validates one required text column; PersonaHub's is `persona`, read here as the "prompt".
    local = Path(local_source(source)).exists()  # a mirror: reference resolves to its file in the shared mirror
    rows = load_records(source, "prompt", split=split, subset=None if local else subset,
                        columns={"prompt": "persona"})
    if n > len(rows):
        raise UserError(f"{source}: asked for {n} seed personas but it holds {len(rows)}; lower personas.n_seed")
    picked = random.Random(seed).sample(range(len(rows)), n)
    return [{"seed_id": rows[i].get("id", i), "seed_persona": rows[i]["prompt"]} for i in picked]


def draw_traits(cfg: PersonaConfig, n: int, rng: random.Random) -> list[dict[str, str]]:
    dists = {name: cfg.distribution(name) for name in DEMOGRAPHIC_FIELDS}
    return [{name: rng.choices(list(d), weights=list(d.values()))[0] for name, d in dists.items()} for _ in range(n)]


def parse_persona(text: str, allowed: dict[str, list[str]]) -> dict[str, str]:
    """A parse function for common.structured: one JSON object, a description, every trait one of its allowed
    values (matched case-insensitively, returned in the configured spelling). Raises ParseError otherwise."""
    from common.structured import ParseError, parse_json_object

    obj = parse_json_object(text)
    description = obj.get("persona")
    if not isinstance(description, str) or len(description.split()) < 3:
        raise ParseError("'persona' must be a description of at least a few words")
    out = {"persona": description.strip()}
    for name, values in allowed.items():
        got = obj.get(name)
        match = [v for v in values if isinstance(got, str) and got.strip().lower() == v.lower()]
        if not match:
            raise ParseError(f"{name!r} must be one of {values}, got {got!r}")
        out[name] = match[0]
    return out


def compose_persona(seed_persona: str, traits: dict[str, str]) -> str:
    return (f"A {traits['age']} {traits['sex']} {traits['nationality']} person from the {traits['social_class']} "
            f"class. {seed_persona}")


def enrich_personas(cfg: PersonaConfig, seeds: list[dict], generator: Any = None) -> tuple[list[dict], dict]:
    """Enriched personas ``{persona_id, persona, sex, age, nationality, social_class, seed_id, seed_persona}`` and
    counts {valid, skipped, attempts}. A seed whose answers never validate is skipped, never repaired by hand."""
    traits = draw_traits(cfg, len(seeds), random.Random(cfg.seed))
    if cfg.enrich == "compose":
        values = [{"persona": compose_persona(s["seed_persona"], t), **t} for s, t in zip(seeds, traits)]
        attempts = [0] * len(seeds)
    else:
        from common.structured import ask_structured

        allowed = {name: list(cfg.distribution(name)) for name in DEMOGRAPHIC_FIELDS}
        conversations = [[{"role": "user", "content": ENRICH_PROMPT.format(seed=s["seed_persona"], **t)}]
                         for s, t in zip(seeds, traits)]
        answers = ask_structured(generator, conversations, lambda text: parse_persona(text, allowed),
                                 max_attempts=cfg.max_attempts, desc="personas")
        # A valid answer that changed a drawn trait is skipped (counted as drifted), never repaired: keeping it would
        # move the pool away from the configured distributions, which is how upstream ended up with 45 nationalities.
        values = [a.value if a.ok and all(a.value[k] == t[k] for k in t) else None for a, t in zip(answers, traits)]
        attempts = [a.attempts for a in answers]
        drifted = sum(a.ok and v is None for a, v in zip(answers, values))
    personas = [{"persona_id": f"p{s['seed_id']}", **v, "seed_id": s["seed_id"], "seed_persona": s["seed_persona"]}
                for s, v in zip(seeds, values) if v is not None]
    return personas, {"valid": len(personas), "skipped": len(seeds) - len(personas), "attempts": sum(attempts),
                      "drifted": drifted if cfg.enrich == "llm" else 0}


def largest_remainder(n: int, probs: list[float]) -> list[int]:
    """Integer seats summing to ``n`` proportional to ``probs`` (Hamilton's method; ties go to the earlier cell)."""
    quotas = [n * p for p in probs]
    seats = [int(q) for q in quotas]
    order = sorted(range(len(probs)), key=lambda i: (-(quotas[i] - seats[i]), i))
    for i in order[: n - sum(seats)]:
        seats[i] += 1
    return seats


def stratified_select(personas: list[dict], n: int, fields: list[str], dists: dict[str, dict[str, float]],
                      seed: int) -> tuple[list[dict], dict]:
    """``n`` judges whose joint distribution over ``fields`` follows the product of the marginals ``dists``."""
    if n > len(personas):
        raise UserError(f"asked for {n} judges but only {len(personas)} valid personas exist; raise personas.n_seed "
                        "or lower personas.n_judges")
    rng = random.Random(seed)
    cells = list(itertools.product(*(list(dists[f]) for f in fields)))
    probs = [math.prod(dists[f][v] for f, v in zip(fields, cell)) for cell in cells]
    seats = largest_remainder(n, probs)
    by_cell: dict[tuple, list[dict]] = {cell: [] for cell in cells}
    for p in personas:
        by_cell.setdefault(tuple(p[f] for f in fields), []).append(p)
    chosen, shortfall = [], 0
    for cell, k in zip(cells, seats):
        pool = sorted(by_cell[cell], key=lambda p: p["persona_id"])
        take = rng.sample(pool, min(k, len(pool)))
        chosen += take
        shortfall += k - len(take)
    if shortfall:
        taken = {p["persona_id"] for p in chosen}
        rest = sorted((p for p in personas if p["persona_id"] not in taken), key=lambda p: p["persona_id"])
        chosen += rng.sample(rest, shortfall)
    judges = [{"judge_id": f"j{i:02d}", **p} for i, p in enumerate(chosen)]
    return judges, {"cells": len(cells), "shortfall": shortfall,
                    "target_seats": {"|".join(c): k for c, k in zip(cells, seats) if k}}


def demographic_table(judges: list[dict], pool: list[dict], dists: dict[str, dict[str, float]]) -> str:
    """Markdown: per field and value, the target share, the pool count and the panel count."""
    lines = ["| field | value | target share | pool | judges |", "|---|---|---|---|---|"]
    for name in DEMOGRAPHIC_FIELDS:
        in_pool, in_panel = Counter(p[name] for p in pool), Counter(j[name] for j in judges)
        for value, share in dists[name].items():
            if in_pool[value] or in_panel[value] or share:
                lines.append(f"| {name} | {value} | {share:.3f} | {in_pool[value]} | {in_panel[value]} |")
    return "\n".join(lines) + "\n"


def build_generator_from(spec: dict, where: str, default_cache: Path):
    from common.generation import GenerationConfig, build_generator

    values = dict(spec)
    values.setdefault("cache_path", str(default_cache))
    return build_generator(build_dataclass(GenerationConfig, values, where))


def run_personas(cfg: PersonaConfig) -> dict:
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite, resume=False)
    seeds = load_seed_personas(cfg.source, cfg.n_seed, cfg.seed, cfg.subset, cfg.split)
    generator = None
    if cfg.enrich == "llm":
        generator = build_generator_from(cfg.generator, "personas.generator", run.path / "generation_cache.jsonl")
    personas, counts = enrich_personas(cfg, seeds, generator)
    dists = {name: cfg.distribution(name) for name in DEMOGRAPHIC_FIELDS}
    judges, strat = stratified_select(personas, cfg.n_judges, cfg.stratify_on, dists, cfg.seed)
    write_jsonl(run.path / "personas.jsonl", personas)
    write_jsonl(run.path / "judges.jsonl", judges)
    table = demographic_table(judges, personas, dists)
    atomic_write_text(run.path / "demographics.md", "# Judge panel demographics\n\n" + table)
    print(table)
    metrics = {"n_seed": len(seeds), "n_valid": counts["valid"], "n_skipped": counts["skipped"],
               "valid_rate": counts["valid"] / len(seeds), "enrich_attempts": counts["attempts"],
               "n_drifted": counts["drifted"],
               "n_judges": len(judges), "strata_cells": strat["cells"], "strata_shortfall": strat["shortfall"]}
    return run.finish(metrics, key_metric="valid_rate")


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(PersonaConfig, run_personas, "personas", "Enrich seed personas and pick a stratified judge "
                     "panel (RLCHF).", argv)


if __name__ == "__main__":
    main()
