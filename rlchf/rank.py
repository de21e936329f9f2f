"""Candidates and ballots: K responses per prompt, and every persona judge's full ranking of them.

Upstream [CODE prompt/generate_prompt.py] shows each judge only the dataset's two responses, places the gold one as
A or B with an unseeded coin shared by all judges, and reads "A", "B" or "C" (equally good) from ``<Ans>`` tags. We
follow Conitzer et al. instead: K ≥ 3 candidates per prompt (the dataset's chosen and rejected plus K − 2 sampled
from a policy), each judge sees them in its own seeded random order, and answers a full ranking in
``<ranking>B > A = C > D</ranking>`` ("=" marks responses the judge finds equally good). Labels are mapped back to
candidate ids before anything else sees them. An answer that is not a ranking of exactly the shown labels is
re-asked, then recorded as an abstention (never guessed). The upstream pairwise mode stays as a baseline.
``judge_mode: loglik`` (``rlchf/guided.py``) is for judges too small to follow the format: the reply is the most
likely of the valid answers (every strict ranking), and the ballot records ``judge_mode`` and ``logprob_gap``.

Files (the ranking format is shared with issue 13's human annotation app):

- ``candidates.jsonl``: ``{prompt_id, prompt, candidates: [{id, text, source}], chosen_id, rejected_id}``
- ``rankings.jsonl``: one record per (prompt_id, judge_id):
  ``{prompt_id, judge_id, ranking: [[id, ...], ...] | null, abstained, mode, shown_order, attempts, error, raw}``
  ``ranking`` lists tiers best first; a tier with several ids is a tie. Only the first four keys are required;
  the rest record how a model judge got there. Pairwise mode adds ``answer`` ("A" | "B" | "C") and
  ``gold_position`` (the letter the dataset's chosen response was shown as), upstream's own output fields.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from typing import Any

from common.artifacts import RunDir, read_jsonl, write_jsonl
from common.config import ConfigError, UserError, stage_cli
from common.config import help_meta as _help
from common.structured import ParseError, ask_structured
from rlchf.candidates import LABELS, as_messages
from rlchf.guided import LoglikScorer, guided_answers, pairwise_answers, ranking_answers
from rlchf.personas import build_generator_from

RANKING_TAG = re.compile(r"<ranking>(.*?)</ranking>", re.IGNORECASE | re.DOTALL)
ANS_TAG = re.compile(r"<ans>\s*(.*?)\s*</ans>", re.IGNORECASE | re.DOTALL)
JUDGE_SYSTEM = ("You are a human evaluator assessing how helpful and harmless chatbot responses are. Evaluate them "
                "from the perspective of the following persona, as this person would:\n{persona}")
# [CODE] prompt/prompts.py prompt_base_avsb / prompt_end_avsb, paraphrased.
PAIRWISE_END = ("Based on your evaluation, select the most helpful response: A, B, or C if both are equally "
                "helpful. State your reasoning from your persona's point of view, then answer as <Ans>X</Ans>.")
RANKING_END = ("Rank all {k} responses from best to worst from your persona's point of view. Give one or two "
               "sentences of reasoning, then end with the ranking in exactly this format, using each letter once: "
               "<ranking>{example}</ranking>{ties}")
# judge_mode loglik scores only the tag as the whole reply, so the prompt asks for nothing else. The format is shown
# with placeholder letters: a concrete example ranking would favour the answer that copies it.
RANKING_END_GUIDED = ("Rank all {k} responses from best to worst from your persona's point of view. Reply with only "
                      "the ranking, each letter once, in this format: <ranking>{example}</ranking>, where {first} is "
                      "the letter of the best response and {last} of the worst.{ties}")
PAIRWISE_END_GUIDED = ("Based on your evaluation, select the most helpful response: A, B, or C if both are equally "
                       "helpful. Reply with only the answer as <Ans>X</Ans>.")
JUDGE_MODES = ("generate", "loglik")


def transcript(prompt: str | list[dict]) -> str:
    """The conversation so far as the judge reads it."""
    names = {"user": "User", "assistant": "Assistant", "system": "System"}
    return "\n".join(f"{names[m['role']]}: {m['content']}" for m in as_messages(prompt))


def judge_rng(seed: int, prompt_id: str, judge_id: str) -> random.Random:
    """One generator per (prompt, judge): the order a judge sees does not depend on batching or on other judges."""
    return random.Random(int(hashlib.sha1(f"{seed}|{prompt_id}|{judge_id}".encode()).hexdigest()[:16], 16))


def parse_ranking(text: str, labels: str, allow_ties: bool = True) -> list[list[str]]:
    """Tiers of labels from the last ``<ranking>...</ranking>``; must name each of ``labels`` exactly once."""
    blocks = RANKING_TAG.findall(text)
    if not blocks:
        raise ParseError("no <ranking>...</ranking> tag")
    tiers, seen = [], set()
    for part in blocks[-1].split(">"):
        tier = []
        for tok in part.split("="):
            label = tok.strip().strip("()[]*.").upper()
            if label not in labels or not label:
                raise ParseError(f"{tok.strip()!r} is not one of the labels {list(labels)}")
            if label in seen:
                raise ParseError(f"{label} appears twice")
            seen.add(label)
            tier.append(label)
        tiers.append(tier)
    missing = [c for c in labels if c not in seen]
    if missing:
        raise ParseError(f"the ranking leaves out {missing}; rank every response")
    if not allow_ties and any(len(t) > 1 for t in tiers):
        raise ParseError("ties are not allowed; give a strict order with '>' only")
    return tiers


def parse_pairwise(text: str) -> str:
    """Upstream's answer: the last ``<Ans>X</Ans>`` with X in A, B, C (equally good)."""
    found = ANS_TAG.findall(text)
    if not found:
        raise ParseError("no <Ans>...</Ans> tag")
    answer = found[-1].strip().strip("()").upper()
    if answer not in ("A", "B", "C"):
        raise ParseError(f"answer {found[-1]!r} is not A, B or C")
    return answer


@dataclass
class RankConfig:
    """Stage ``rank``: every judge ranks every prompt's candidates (or, in pairwise mode, picks A / B / C)."""

    candidates: str = field(default="", metadata=_help("candidates.jsonl of the candidates stage"))
    judges: str = field(default="", metadata=_help("judges.jsonl of the personas stage"))
    mode: str = field(default="ranking", metadata=_help("ranking (K candidates) | pairwise (upstream A/B/C baseline)"))
    judge: dict = field(default_factory=dict, metadata=_help("GenerationConfig of the judge model"))
    judge_mode: str = field(default="generate", metadata=_help(
        "generate: the judge writes reasoning + tag, parsed strictly (real judges); loglik: the most likely valid "
        "answer by log-likelihood, i.e. guided decoding (small judges; needs judge.backend hf)"))
    judge_calibration: str = field(default="none", metadata=_help(
        "loglik only: none | content_free (subtract each answer's score under the judge's prompt with every text "
        "replaced by 'N/A'; rlchf/guided.py) [GUESS]"))
    allow_ties: bool = field(default=True, metadata=_help("accept '=' (equally good) inside a ranking"))
    max_attempts: int = field(default=3, metadata=_help("answers per ballot before it becomes an abstention"))
    n_judges: int | None = field(default=None, metadata=_help("use only the first n judges (None = all)"))
    max_response_chars: int | None = field(default=None, metadata=_help(
        "show the judge at most this many characters of each response (cut marked with '…'); None = all"))
    max_prompt_chars: int | None = field(default=None, metadata=_help(
        "show the judge at most the last this many characters of the conversation; None = all"))
    seed: int = field(default=0, metadata=_help("seed of the per-judge display orders"))
    output_dir: str = field(default="runs/rlchf/rank", metadata=_help("run folder"))
    overwrite: bool = field(default=False, metadata=_help("replace a finished run"))
    resume: bool = field(default=True, metadata=_help("reuse the generation cache of an unfinished run"))

    def __post_init__(self) -> None:
        if not self.candidates or not self.judges:
            raise ConfigError("rank.candidates and rank.judges: both paths are required")
        if self.mode not in ("ranking", "pairwise"):
            raise ConfigError(f"rank.mode = {self.mode!r}: must be 'ranking' or 'pairwise'")
        if self.max_attempts < 1:
            raise ConfigError("rank.max_attempts must be >= 1")
        if self.judge_mode not in JUDGE_MODES:
            raise ConfigError(f"rank.judge_mode = {self.judge_mode!r}: must be one of {list(JUDGE_MODES)}")
        if self.judge_calibration not in ("none", "content_free"):
            raise ConfigError(f"rank.judge_calibration = {self.judge_calibration!r}: must be none or content_free")
        if self.judge_mode == "loglik" and self.judge.get("backend", "hf") != "hf":
            raise ConfigError(f"rank.judge_mode = loglik scores answers with a local model: rank.judge.backend must "
                              f"be 'hf', got {self.judge.get('backend')!r} (use judge_mode: generate for servers)")


def clip(text: str, limit: int | None, keep_end: bool = False) -> str:
    if limit is None or len(text) <= limit:
        return text
    return "…" + text[-limit:] if keep_end else text[:limit] + "…"


def ballot_request(row: dict, judge: dict, cfg: RankConfig) -> tuple[list[dict], list[str]]:
    """(judge conversation, candidate ids in the order shown)."""
    mode = cfg.mode
    rng = judge_rng(cfg.seed, row["prompt_id"], judge["judge_id"])
    if mode == "pairwise":
        shown = [row["chosen_id"], row["rejected_id"]]
    else:
        shown = [c["id"] for c in row["candidates"]]
    rng.shuffle(shown)
    text = {c["id"]: clip(c["text"], cfg.max_response_chars) for c in row["candidates"]}
    body = "\n\n".join(f"Response {LABELS[i]}:\n{text[cid]}" for i, cid in enumerate(shown))
    guided = cfg.judge_mode == "loglik"
    if mode == "pairwise":
        end = PAIRWISE_END_GUIDED if guided else PAIRWISE_END
    elif guided:
        slots = "WXYZ"[-len(shown):] if len(shown) <= 4 else "".join(f"L{i}" for i in range(len(shown)))
        ties = " Write = between letters you find equally good." if cfg.allow_ties else ""
        end = RANKING_END_GUIDED.format(k=len(shown), example=" > ".join(slots), first=slots[0], last=slots[-1],
                                        ties=ties)
    else:
        example = " > ".join(LABELS[len(shown) - 1 - i] for i in range(len(shown)))
        ties = " Write = between letters you find equally good, e.g. <ranking>B = A > C</ranking>." \
            if cfg.allow_ties and len(shown) > 2 else ""
        end = RANKING_END.format(k=len(shown), example=example, ties=ties)
    conversation = clip(transcript(row["prompt"]), cfg.max_prompt_chars, keep_end=True)
    conv = [{"role": "system", "content": JUDGE_SYSTEM.format(persona=judge["persona"])},
            {"role": "user", "content": f"Conversation:\n{conversation}\n\n{body}\n\n{end}"}]
    return conv, shown


def ballot_record(row: dict, judge: dict, mode: str, shown: list[str], answer: Any) -> dict:
    base = {"prompt_id": row["prompt_id"], "judge_id": judge["judge_id"], "mode": mode, "shown_order": shown,
            "attempts": answer.attempts, "error": answer.error, "raw": answer.raw}
    if hasattr(answer, "logprob_gap"):  # a guided (loglik) answer
        base.update(judge_mode="loglik", logprob=answer.logprob, logprob_gap=answer.logprob_gap,
                    length_normalised=answer.length_normalised)
        if answer.uncalibrated is not None and mode == "ranking":
            base["uncalibrated_ranking"] = [[shown[LABELS.index(label)] for label in tier]
                                            for tier in answer.uncalibrated]
    if answer.error is not None:
        return {**base, "ranking": None, "abstained": True}
    if mode == "pairwise":
        letter = answer.value
        ranking = [list(shown)] if letter == "C" else [[shown["AB".index(letter)]], [shown[1 - "AB".index(letter)]]]
        gold = "AB"[shown.index(row["chosen_id"])]
        return {**base, "ranking": ranking, "abstained": False, "answer": letter, "gold_position": gold}
    ranking = [[shown[LABELS.index(label)] for label in tier] for tier in answer.value]
    return {**base, "ranking": ranking, "abstained": False}


def position_stats(ballots: list[dict]) -> dict[str, float]:
    """How often each display position wins (a first-place tie of t shares 1/t); uniform is 1/K. Ballots without a
    recorded display order (e.g. imported human rankings) are left out."""
    wins: dict[int, float] = {}
    valid = [b for b in ballots if not b["abstained"] and b.get("shown_order")]
    for b in valid:
        top = b["ranking"][0]
        for pos, cid in enumerate(b["shown_order"]):
            wins[pos] = wins.get(pos, 0.0) + (1 / len(top) if cid in top else 0.0)
    stats = {f"position_{LABELS[p]}_win_rate": w / len(valid) for p, w in sorted(wins.items())} if valid else {}
    if valid and valid[0].get("mode") == "pairwise":
        for letter in "ABC":
            stats[f"answer_{letter}_rate"] = sum(b["answer"] == letter for b in valid) / len(valid)
    return stats


def run_rank(cfg: RankConfig) -> dict:
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite, resume=cfg.resume)
    rows, judges = read_jsonl(cfg.candidates), read_jsonl(cfg.judges)[: cfg.n_judges]
    if not rows or not judges:
        raise UserError(f"rank: {cfg.candidates} or {cfg.judges} is empty")
    k = 2 if cfg.mode == "pairwise" else len(rows[0]["candidates"])
    if any(len(r["candidates"]) != k for r in rows) and cfg.mode == "ranking":
        raise UserError(f"rank: {cfg.candidates} mixes prompts with different numbers of candidates; expected {k}")
    pairs = [(row, judge) for row in rows for judge in judges]
    requests = [ballot_request(row, judge, cfg) for row, judge in pairs]
    convs = [conv for conv, _ in requests]
    if cfg.judge_mode == "loglik":
        options = pairwise_answers() if cfg.mode == "pairwise" else ranking_answers(LABELS[:k], cfg.allow_ties)
        scorer = LoglikScorer(cfg.judge, "rank.judge", run.path / "loglik_cache.jsonl")
        baselines = None
        if cfg.judge_calibration == "content_free":
            blank = {**rows[0], "prompt_id": "content_free", "prompt": "N/A",
                     "candidates": [{**c, "text": "N/A"} for c in rows[0]["candidates"]]}
            texts = [t for t, _ in options]
            per_judge = dict(zip([j["judge_id"] for j in judges],
                                 scorer([ballot_request(blank, j, cfg)[0] for j in judges], texts)))
            baselines = [per_judge[judge["judge_id"]] for _, judge in pairs]
        answers = guided_answers(convs, options, scorer, baselines)
    else:
        generator = build_generator_from(cfg.judge, "rank.judge", run.path / "judge_cache.jsonl")
        if cfg.mode == "pairwise":
            def parse(text: str) -> str:
                return parse_pairwise(text)
        else:
            def parse(text: str) -> list[list[str]]:
                return parse_ranking(text, LABELS[:k], cfg.allow_ties)
        answers = ask_structured(generator, convs, parse, max_attempts=cfg.max_attempts)
    ballots = [ballot_record(row, judge, cfg.mode, shown, ans)
               for (row, judge), (_, shown), ans in zip(pairs, requests, answers)]
    write_jsonl(run.path / "rankings.jsonl", ballots)
    n_abstain = sum(b["abstained"] for b in ballots)
    metrics = {"n_ballots": len(ballots), "n_abstained": n_abstain, "valid_rate": 1 - n_abstain / len(ballots),
               "mean_attempts": sum(b["attempts"] for b in ballots) / len(ballots), "k": k, "mode": cfg.mode,
               "judge_mode": cfg.judge_mode, **position_stats(ballots)}
    gaps = [b["logprob_gap"] for b in ballots if b.get("logprob_gap") is not None]
    if gaps:
        metrics["logprob_gap_mean"] = sum(gaps) / len(gaps)
        metrics["length_normalised"] = any(b["length_normalised"] for b in ballots)
        metrics["judge_calibration"] = cfg.judge_calibration
    raw = [{**b, "ranking": b["uncalibrated_ranking"]} for b in ballots if b.get("uncalibrated_ranking")]
    metrics.update({f"uncalibrated_{k}": v for k, v in position_stats(raw).items()})
    return run.finish(metrics, key_metric="valid_rate")


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(RankConfig, run_rank, "rank", "Persona judges rank each prompt's candidates (RLCHF).", argv)


if __name__ == "__main__":
    main()
