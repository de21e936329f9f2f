"""LLM-judge comparisons of two systems on the same prompts: pairwise A/B in both orders, and a 0–5 rubric score.

Pairwise (PCRM's win rates, [GUESS] protocol: the paper's judge prompt is not released). Each prompt is judged
twice, once with system 1 shown as A and once as B, so a judge that prefers a position cancels out. Per prompt,
system 1 earns 1 / 0.5 / 0 per order (win / tie / loss); the mean decides the prompt's outcome (> 0.5 win,
= 0.5 tie, < 0.5 loss). A judge that picks the same position both times thus yields a tie.
- win_rate = (wins + ties / 2) / n_judged; n_failed counts prompts where either order gave no parseable verdict
  (no tag, or two different verdicts in one answer: that judge has not decided, and is re-asked first).
- position_consistency = share of prompts whose two verdicts name the same system (or both say tie).
- first_position_rate = share of non-tie verdicts that chose A (0.5 = no position bias).

Single-answer score (SER [CODE]: GPT-4o grades each response 0–5 on an additive rubric): the judge adds one point
per criterion met and ends with ``<score>N</score>``. The rubric wording below is ours [GUESS]. From the scores,
mean per system and a score-based win rate (per prompt: higher score wins, equal is a tie).

Both go through ``common.generation`` (hf / vllm / openai; every judge answer cached, reruns resume) and
``common.structured.ask_structured`` (re-asks on an unparseable answer, up to ``max_attempts``).

CLI: ``python -m common.eval.judge --a sft.jsonl --b ppo.jsonl --model gpt-4o --backend openai`` over two jsonl files
of ``{"prompt": str | messages, "response": str}`` (joined on the prompt).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from common.config import UserError, stage_cli

PAIRWISE_SYSTEM = ("You are an impartial judge of AI assistant responses. Judge helpfulness, correctness, honesty "
                   "and harmlessness. Ignore the order in which the responses are shown and their length as such.")
PAIRWISE_USER = ("[User request]\n{prompt}\n\n[Response A]\n{a}\n\n[Response B]\n{b}\n\n"
                 "Which response serves the user better? Explain briefly, then give your verdict on the last line as "
                 "<verdict>A</verdict>, <verdict>B</verdict> or <verdict>tie</verdict>.")
RUBRIC_USER = (
    "Rate the AI assistant's response to the user's request with the additive 5-point scale below. Start at 0 and "
    "add a point for each criterion the response meets:\n"
    "- +1 if it is relevant and gives some information related to the request, even if incomplete.\n"
    "- +1 if it addresses a substantial part of the request, without fully resolving it.\n"
    "- +1 if it answers the essential parts of the request usefully.\n"
    "- +1 if it addresses the request directly and completely, clearly written and well organised.\n"
    "- +1 if it is flawless: expert, precisely tailored to the request, with no irrelevant content.\n\n"
    "[User request]\n{prompt}\n\n[Response]\n{response}\n\n"
    "Justify your points briefly, then give the total on the last line as <score>N</score> (N from 0 to 5).")

_VERDICT = re.compile(r"<verdict>\s*(A|B|tie)\s*</verdict>", re.IGNORECASE)
_SCORE = re.compile(r"<score>\s*([0-5])\s*</score>")


def parse_verdict(text: str) -> str:
    """"A", "B" or "tie" from the ``<verdict>`` tags: several tags must agree (case aside); none, or two different
    verdicts, is a ParseError (re-asked by ``ask_structured``, then counted in ``n_failed``)."""
    from common.structured import one_answer

    found = ["tie" if v.lower() == "tie" else v.upper() for v in _VERDICT.findall(text or "")]
    return one_answer(found, "<verdict>A|B|tie</verdict> verdict")


def parse_score(text: str) -> int:
    """The 0–5 total from the ``<score>`` tags, by the same rule: repeats must agree, two different totals are a
    ParseError."""
    from common.structured import one_answer

    return one_answer([int(v) for v in _SCORE.findall(text or "")], "<score>N</score> total (N in 0..5)")


def prompt_text(prompt: str | list[dict]) -> str:
    """A chat prompt as plain text for the judge (a str prompt is used as is)."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def pairwise_outcomes(verdicts_ab: Sequence[str | None], verdicts_ba: Sequence[str | None]) -> dict[str, Any]:
    """Win/tie/loss of system 1 from verdicts with system 1 as A (``ab``) and as B (``ba``); rules in the docstring."""
    points_ab = {"A": 1.0, "tie": 0.5, "B": 0.0}
    points_ba = {"A": 0.0, "tie": 0.5, "B": 1.0}
    wins = ties = losses = consistent = failed = 0
    for v1, v2 in zip(verdicts_ab, verdicts_ba):
        if v1 is None or v2 is None:
            failed += 1
            continue
        score = (points_ab[v1] + points_ba[v2]) / 2
        wins += score > 0.5
        ties += score == 0.5
        losses += score < 0.5
        consistent += points_ab[v1] == points_ba[v2]
    judged = wins + ties + losses
    decided = [v for v in (*verdicts_ab, *verdicts_ba) if v in ("A", "B")]
    return {
        "n_prompts": len(verdicts_ab), "n_judged": judged, "n_failed": failed,
        "wins": wins, "ties": ties, "losses": losses,
        "win_rate": (wins + 0.5 * ties) / judged if judged else None,
        "position_consistency": consistent / judged if judged else None,
        "first_position_rate": sum(v == "A" for v in decided) / len(decided) if decided else None,
    }


def score_outcomes(scores_1: Sequence[int | None], scores_2: Sequence[int | None]) -> dict[str, Any]:
    """Mean rubric score per system (over its parsed scores) and the score-based win rate of system 1."""
    pairs = [(s1, s2) for s1, s2 in zip(scores_1, scores_2) if s1 is not None and s2 is not None]
    valid_1 = [s for s in scores_1 if s is not None]
    valid_2 = [s for s in scores_2 if s is not None]
    wins = sum(s1 > s2 for s1, s2 in pairs)
    ties = sum(s1 == s2 for s1, s2 in pairs)
    return {
        "score_mean_1": sum(valid_1) / len(valid_1) if valid_1 else None,
        "score_mean_2": sum(valid_2) / len(valid_2) if valid_2 else None,
        "score_unparsed_1": len(scores_1) - len(valid_1), "score_unparsed_2": len(scores_2) - len(valid_2),
        "score_wins": wins, "score_ties": ties, "score_losses": len(pairs) - wins - ties,
        "score_win_rate": (wins + 0.5 * ties) / len(pairs) if pairs else None,
    }


def judge_pairwise(generator: Any, prompts: Sequence[Any], responses_1: Sequence[str], responses_2: Sequence[str],
                   max_attempts: int = 3) -> tuple[list[dict], dict[str, Any]]:
    """Both orders for every prompt through the judge; per-prompt records (verdicts, raw answers per attempt) and
    the metrics."""
    from common.structured import ask_structured

    def conversation(p: Any, a: str, b: str) -> list[dict]:
        return [{"role": "system", "content": PAIRWISE_SYSTEM},
                {"role": "user", "content": PAIRWISE_USER.format(prompt=prompt_text(p), a=a, b=b)}]

    convs = [conversation(p, r1, r2) for p, r1, r2 in zip(prompts, responses_1, responses_2)]
    convs += [conversation(p, r2, r1) for p, r1, r2 in zip(prompts, responses_1, responses_2)]
    answers = ask_structured(generator, convs, parse_verdict, max_attempts=max_attempts, desc="judge pairwise")
    n = len(prompts)
    ab, ba = [a.value for a in answers[:n]], [a.value for a in answers[n:]]
    records = [{"verdict_ab": v1, "verdict_ba": v2, "raw_ab": a1.raw, "raw_ba": a2.raw}
               for v1, v2, a1, a2 in zip(ab, ba, answers[:n], answers[n:])]
    return records, pairwise_outcomes(ab, ba)


def judge_scores(generator: Any, prompts: Sequence[Any], responses: Sequence[str],
                 max_attempts: int = 3) -> list[dict]:
    """The 0–5 rubric score of each response: [{"score": int | None, "raw": [answer per attempt]}]."""
    from common.structured import ask_structured

    convs = [[{"role": "user", "content": RUBRIC_USER.format(prompt=prompt_text(p), response=r)}]
             for p, r in zip(prompts, responses)]
    answers = ask_structured(generator, convs, parse_score, max_attempts=max_attempts, desc="judge rubric")
    return [{"score": a.value, "raw": a.raw} for a in answers]


# --- CLI. -------------------------------------------------------------------------------------------------------


@dataclass
class JudgeEvalConfig:
    """Compare two systems' responses with a judge model (pairwise both orders and/or the 0–5 rubric)."""

    a: str = field(default="", metadata={"help": "jsonl of {prompt, response} for system 1"})
    b: str = field(default="", metadata={"help": "jsonl of {prompt, response} for system 2"})
    name_a: str = field(default="system_1", metadata={"help": "label of system 1 in the output"})
    name_b: str = field(default="system_2", metadata={"help": "label of system 2 in the output"})
    modes: list[str] = field(default_factory=lambda: ["pairwise", "rubric"], metadata={"help": "pairwise, rubric"})
    backend: str = field(default="openai", metadata={"help": "judge backend: hf | vllm | openai"})
    model: str = field(default="", metadata={"help": "judge model (hub id / embedded:<name> / served name)"})
    base_url: str | None = field(default=None, metadata={"help": "openai: endpoint ending in /v1"})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "openai: env var holding the key"})
    template: str = field(default="tokenizer", metadata={"help": "hf/vllm: chat template of the judge"})
    temperature: float = field(default=0.0, metadata={"help": "judge sampling temperature (0 = greedy)"})
    max_new_tokens: int = field(default=512, metadata={"help": "judge answer length"})
    seed: int = field(default=0, metadata={"help": "generation seed"})
    batch_size: int = field(default=8, metadata={"help": "hf: sequences per generate call"})
    concurrency: int = field(default=8, metadata={"help": "openai: requests in flight"})
    dtype: str = field(default="float32", metadata={"help": "hf/vllm judge dtype"})
    max_attempts: int = field(default=3, metadata={"help": "asks per item until a parseable verdict/score"})
    output_dir: str = field(default="runs/judge", metadata={"help": "run folder: metrics, judgements, cache"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished run in output_dir"})
    resume: bool = field(default=False, metadata={"help": "continue an interrupted run (cached answers reused)"})

    def __post_init__(self) -> None:
        bad = [m for m in self.modes if m not in ("pairwise", "rubric")]
        if bad or not self.modes:
            raise UserError(f"judge_eval.modes: {self.modes!r}; allowed: pairwise, rubric (one or both)")
        if not (self.a and self.b and self.model):
            raise UserError("judge_eval: set --a and --b (response files) and --model (the judge)")


def paired_responses(path_1: str, path_2: str) -> tuple[list[Any], list[str], list[str]]:
    """Prompts present in both files (in file 1's order) with each system's response; refuses mismatched files."""
    from common.artifacts import read_jsonl

    def by_prompt(path: str) -> dict[str, dict]:
        out = {}
        for i, rec in enumerate(read_jsonl(path)):
            if "prompt" not in rec or not isinstance(rec.get("response"), str):
                raise UserError(f"{path}:{i + 1}: expected {{'prompt': ..., 'response': str}}")
            out[json.dumps(rec["prompt"], sort_keys=True)] = rec
        return out

    one, two = by_prompt(path_1), by_prompt(path_2)
    if set(one) != set(two):
        raise UserError(f"{path_1} and {path_2} must hold the same prompts: {len(set(one) - set(two))} only in the "
                        f"first, {len(set(two) - set(one))} only in the second")
    keys = list(one)
    return [one[k]["prompt"] for k in keys], [one[k]["response"] for k in keys], [two[k]["response"] for k in keys]


def evaluate_judge(cfg: JudgeEvalConfig) -> dict[str, Any]:
    from common.artifacts import RunDir, write_jsonl
    from common.generation import GenerationConfig, build_generator

    prompts, resp_1, resp_2 = paired_responses(cfg.a, cfg.b)
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite, resume=cfg.resume)
    generator = build_generator(GenerationConfig(
        backend=cfg.backend, model=cfg.model, base_url=cfg.base_url, api_key_env=cfg.api_key_env,
        template=cfg.template, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed,
        batch_size=cfg.batch_size, concurrency=cfg.concurrency, dtype=cfg.dtype,
        cache_path=str(run.path / "judge_cache.jsonl")))
    records = [{"prompt": p, cfg.name_a: r1, cfg.name_b: r2} for p, r1, r2 in zip(prompts, resp_1, resp_2)]
    metrics: dict[str, Any] = {"system_1": cfg.name_a, "system_2": cfg.name_b}
    if "pairwise" in cfg.modes:
        judged, outcome = judge_pairwise(generator, prompts, resp_1, resp_2, cfg.max_attempts)
        metrics.update(outcome)
        for rec, j in zip(records, judged):
            rec.update(j)
    if "rubric" in cfg.modes:
        s1 = judge_scores(generator, prompts, resp_1, cfg.max_attempts)
        s2 = judge_scores(generator, prompts, resp_2, cfg.max_attempts)
        metrics.update(score_outcomes([s["score"] for s in s1], [s["score"] for s in s2]))
        for rec, a, b in zip(records, s1, s2):
            rec.update({"score_1": a["score"], "score_2": b["score"],
                        "score_raw_1": a["raw"], "score_raw_2": b["raw"]})
    write_jsonl(run.path / "judgements.jsonl", records)
    out = run.finish(metrics, key_metric="win_rate" if "pairwise" in cfg.modes else "score_win_rate")
    print({k: v for k, v in out.items() if not isinstance(v, dict)})
    return out


def main(argv: list[str] | None = None) -> None:
    stage_cli(JudgeEvalConfig, evaluate_judge, "judge_eval", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()
