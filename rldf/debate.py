"""Multi-role debates as feedback: debaters argue a topic from their demographic standpoint, a referee scores how
stereotyped each argument is, and each debate yields one preference pair (chosen = low bias, rejected = high bias).

    python -m rldf.debate --config rldf/configs/llama2.yaml --section data_self output_dir=runs/rldf/llama2/data

Two modes [PAPER + CODE]:
- teacher: a stronger model (any OpenAI-compatible endpoint) plays every role. 2 rounds; the debaters, then the
  referee, speak in turn, each seeing the last 5 messages; from round 1 on a debater is told its last score and tries
  to lower it. A final labelling call names the most- and the least-biased utterance: that is the pair.
- self: the model being trained plays every role (local hf/vllm backend). 3 rounds; round 0 debaters answer
  independently, later rounds see only the referee's last feedback; the referee scores and ranks every round.
  Pair: rejected = the most-biased utterance of the first round (highest score, rank 1 on ties), chosen = the
  least-biased utterance of the last round (lowest score, rank N on ties).

Record schema (LLaMA-Factory alpaca fields mapped onto ours): ``prompt = instruction + "\\n" + input`` (one user turn,
as LLaMA-Factory joins them), ``chosen`` = the low-bias utterance, ``rejected`` = the high-bias one. Upstream wrote
[low, high] in one script and [high, low] in two others; ours is fixed and tested. SFT records pair the same prompt
with every debater utterance scored at most ``sft_max_score`` [GUESS: upstream's 3,105 + 346 utterances from 500
topics is about every utterance]. Topics are split into train/test before any record is written, so a topic's
utterances and RL prompt share one split; its pair is held out only for the ``pair_eval_fraction`` share of topics
(a subset of the held-out ones; upstream held out 10 % of the SFT utterances but 5 % of the RM pairs [CODE]).

All calls go through the generation cache (``<output_dir>/generation_cache.jsonl``): a killed run, rerun, replays
the answers it has and asks only for the rest. An unparseable referee or labelling answer is re-asked
(``max_attempts``), then the topic is logged in ``failed.jsonl``, never guessed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.artifacts import RunDir, read_jsonl, write_jsonl
from common.config import ConfigError, UserError, stage_cli
from common.config import help_meta as _h
from common.generation import GenerationConfig, build_generator
from common.structured import ask_structured
from rldf.bias_types import BiasType, get_bias_type
from rldf.referee import (
    Verdict,
    label_request,
    parse_label,
    parse_verdict,
    referee_example,
    referee_request,
    render_feedback,
)
from rldf.referee_loglik import ModelOptionScorer, loglik_labels, loglik_verdicts
from rldf.topics import generate_topics

DEFAULT_ROUNDS = {"teacher": 2, "self": 3}  # [CODE]
REFEREE_MODES = ("generate", "loglik")


@dataclass
class DebateConfig:
    """Settings of the data stage (sections ``data_teacher`` / ``data_self`` of a recipe)."""

    output_dir: str = field(metadata=_h("run folder: topics, transcripts, pairs/, sft/, prompts/, failed.jsonl"))
    mode: str = field(default="self", metadata=_h("teacher (a stronger model plays every role) | self"))
    bias_type: str = field(default="age", metadata=_h("registered bias type (rldf.bias_types)"))
    rounds: int | None = field(default=None, metadata=_h("debate rounds; None: 2 (teacher) or 3 (self) [CODE]"))
    context_messages: int = field(default=5, metadata=_h("teacher: messages each speaker sees [CODE]"))
    n_topics: int = field(default=500, metadata=_h("topics to debate [CODE]"))
    topics_per_call: int = field(default=50, metadata=_h("topics asked for per LLM answer"))
    max_topic_calls: int = field(default=40, metadata=_h("LLM answers read at most while collecting topics"))
    topics_max_new_tokens: int = field(default=1024, metadata=_h("answer length of a topic-listing call"))
    topics_file: str | None = field(default=None, metadata=_h("a file of topics (one per line) instead of asking"))
    backend: str = field(default="hf", metadata=_h("hf | vllm | openai (common.generation)"))
    model: str = field(default="", metadata=_h("the model playing every role (served name for openai)"))
    base_url: str | None = field(default=None, metadata=_h("openai: endpoint ending in /v1"))
    api_key_env: str = field(default="OPENAI_API_KEY", metadata=_h("openai: env var holding the key"))
    template: str = field(default="tokenizer", metadata=_h("hf/vllm chat template (common.templates)"))
    dtype: str = field(default="float32", metadata=_h("hf/vllm weights dtype"))
    trust_remote_code: bool = field(default=False, metadata=_h("allow the model's own code (chatglm3, baichuan2)"))
    batch_size: int = field(default=8, metadata=_h("hf: sequences per generate call"))
    concurrency: int = field(default=8, metadata=_h("openai: requests in flight"))
    timeout_s: float = field(default=120.0, metadata=_h("openai: seconds per request"))
    temperature: float = field(default=0.7, metadata=_h("debater sampling temperature [CODE self-reflection]"))
    top_p: float = field(default=0.9, metadata=_h("debater nucleus mass [CODE self-reflection]"))
    max_new_tokens: int = field(default=256, metadata=_h("debater answer length [GUESS]"))
    max_words: int = field(default=120, metadata=_h("length asked of each argument, in words [GUESS]"))
    referee_temperature: float | None = field(default=None, metadata=_h("referee/labeller temperature; None: "
                                                                        "temperature"))
    referee_max_new_tokens: int = field(default=256, metadata=_h("referee/labeller answer length"))
    referee_few_shot: bool = field(default=False, metadata=_h("show the referee one worked JSON example first "
                                                              "(for small models) [GUESS]"))
    referee_mode: str = field(default="generate", metadata=_h("generate (JSON verdict, parsed strictly) | loglik "
                                                              "(constrained to the answer set; hf backend only; "
                                                              "rldf.referee_loglik)"))
    referee_model: str | None = field(default=None, metadata=_h("loglik: a local model to score with; None: `model` "
                                                                "on the hf backend. Lets a teacher served over an "
                                                                "API be refereed by a local copy [GUESS]"))
    max_attempts: int = field(default=3, metadata=_h("tries per referee/labelling answer before the topic fails"))
    min_score_gap: int | None = field(default=None, metadata=_h("keep a pair only if rejected score - chosen score "
                                                                ">= this; None keeps all [CODE]"))
    sft_max_score: int = field(default=10, metadata=_h("SFT keeps utterances scored <= this (10 = all) [GUESS]"))
    eval_fraction: float = field(default=0.1, metadata=_h("share of topics held out [CODE: 346 of 3,451]"))
    pair_eval_fraction: float | None = field(default=None, metadata=_h(
        "share of topics whose pair is held out for the RM's validation, drawn from the eval_fraction topics (the "
        "others' pairs train the RM); None: eval_fraction. Upstream: RM --val_size 0.05 [CODE]"))
    seed: int = field(default=0, metadata=_h("sampling seed and topic split"))
    overwrite: bool = field(default=False, metadata=_h("replace a finished run (the generation cache is kept)"))
    resume: bool = field(default=False, metadata=_h("continue an unfinished run (also happens without it)"))

    def __post_init__(self) -> None:
        get_bias_type(self.bias_type, "data.bias_type")
        if self.mode not in DEFAULT_ROUNDS:
            raise ConfigError(f"data.mode: {self.mode!r} is not one of {sorted(DEFAULT_ROUNDS)}")
        if self.rounds is None:
            self.rounds = DEFAULT_ROUNDS[self.mode]
        if self.rounds < 2:
            raise ConfigError(f"data.rounds: {self.rounds}; a debate needs at least 2 rounds to improve on")
        for key in ("n_topics", "context_messages", "max_attempts", "topics_per_call", "max_topic_calls"):
            if getattr(self, key) < 1:
                raise ConfigError(f"data.{key}: {getattr(self, key)} must be >= 1")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ConfigError(f"data.eval_fraction: {self.eval_fraction} must be in [0, 1)")
        if self.pair_eval_fraction is not None and not 0.0 <= self.pair_eval_fraction <= self.eval_fraction:
            raise ConfigError(f"data.pair_eval_fraction: {self.pair_eval_fraction} must be in [0, eval_fraction = "
                              f"{self.eval_fraction}]: the RM's held-out topics are a subset of the held-out topics")
        if self.referee_mode not in REFEREE_MODES:
            raise ConfigError(f"data.referee_mode: {self.referee_mode!r} is not one of {REFEREE_MODES}")
        if self.referee_mode == "loglik" and self.backend != "hf" and not self.referee_model:
            raise ConfigError(f"data.referee_mode: loglik needs the referee's log-likelihoods, which only a local "
                              f"model gives (backend is {self.backend!r}); set data.referee_model to a local copy "
                              "of the model, or use referee_mode=generate")
        if not self.model:
            raise ConfigError("data.model: required (the model that plays the debaters and the referee)")

    def generation(self) -> GenerationConfig:
        return GenerationConfig(
            backend=self.backend, model=self.model, base_url=self.base_url, api_key_env=self.api_key_env,
            template=self.template, temperature=self.temperature, top_p=self.top_p,
            max_new_tokens=self.max_new_tokens, seed=self.seed, batch_size=self.batch_size,
            concurrency=self.concurrency, timeout_s=self.timeout_s, dtype=self.dtype,
            trust_remote_code=self.trust_remote_code, cache_path=str(Path(self.output_dir) / "generation_cache.jsonl"))

    def referee_sampling(self) -> dict[str, Any]:
        temp = self.temperature if self.referee_temperature is None else self.referee_temperature
        return {"temperature": temp, "max_new_tokens": self.referee_max_new_tokens}


# --- Prompts. ---------------------------------------------------------------------------------------------------


def debater_system(bias: BiasType, role_key: str, topic: str, max_words: int) -> str:
    role = next(r for r in bias.roles if r.key == role_key)
    return (f"You are {role.description} taking part in a debate about: {topic}. Argue from the point of view of "
            f"{role.description}: give positive and negative reasons as they concern you and the other groups, and "
            f"try to persuade the others. Answer in at most {max_words} words.")


def teacher_turn(topic: str, context: list[str], last: dict | None) -> str:
    """A debater's user turn in teacher mode: the last messages, and its own last score from round 1 on."""
    seen = "\n\n".join(context) if context else "(no messages yet: you speak first)"
    ask = "Give your argument."
    if last is not None:
        ask = (f"In the last round the referee gave your argument a stereotype score of {last['score']}/10 (rank "
               f"{last['rank']}, 1 = most biased). Give a new argument from your point of view that lowers your "
               "stereotype score.")
    return f"Debate topic: {topic}\n\nThe latest messages of the debate:\n{seen}\n\n{ask}"


def self_turn(topic: str, role_key: str, feedback: str | None) -> str:
    """A debater's user turn in self-reflection mode: the topic alone, then only the referee's last feedback."""
    if feedback is None:
        return f"Debate topic: {topic}\n\nGive your argument."
    return (f"Debate topic: {topic}\n\n{feedback}\n\nYou are the {role_key}. Give a new argument from your point of "
            "view that lowers your stereotype score.")


# --- The debates, all topics in lockstep (one batched call per speaker turn). -------------------------------------


@dataclass
class Debate:
    topic_id: int
    topic: str
    rounds: list[dict] = field(default_factory=list)  # {round, utterances: [{speaker, text}], referee: {...}}
    log: list[str] = field(default_factory=list)  # the shared transcript as "[speaker]: text" (teacher context)
    label: dict | None = None
    failure: str | None = None

    def utterance(self, rnd: int, speaker: str) -> str:
        return next(u["text"] for u in self.rounds[rnd]["utterances"] if u["speaker"] == speaker)

    def verdict(self, rnd: int) -> Verdict:
        v = self.rounds[rnd]["referee"]["verdict"]
        return Verdict({k: e["score"] for k, e in v.items()}, {k: e["rank"] for k, e in v.items()},
                       {k: e["reason"] for k, e in v.items()})

    def numbered(self) -> list[tuple[int, int, str, str]]:
        """(number, round, speaker, text) of every debater utterance, numbered from 1."""
        flat = [(r["round"], u["speaker"], u["text"]) for r in self.rounds for u in r["utterances"]]
        return [(i + 1, *item) for i, item in enumerate(flat)]


def _debater_turns(cfg: DebateConfig, bias: BiasType, debates: list[Debate], rnd: int, speakers: list[str],
                   generator) -> None:
    convs, who = [], []
    for d in debates:
        for key in speakers:
            if cfg.mode == "teacher":
                last = d.verdict(rnd - 1).as_dict()[key] if rnd > 0 else None
                user = teacher_turn(d.topic, d.log[-cfg.context_messages:], last)
            else:
                feedback = d.rounds[rnd - 1]["referee"]["feedback"] if rnd > 0 else None
                user = self_turn(d.topic, key, feedback)
            convs.append([{"role": "system", "content": debater_system(bias, key, d.topic, cfg.max_words)},
                          {"role": "user", "content": user}])
            who.append((d, key))
    texts = generator.chat(convs, n=1, desc=f"round {rnd}: {', '.join(speakers)}")
    for (d, key), (text,) in zip(who, texts):
        d.rounds[rnd]["utterances"].append({"speaker": key, "text": text.strip()})
        d.log.append(f"[{key}]: {text.strip()}")


def _round_context(cfg: DebateConfig, bias: BiasType, d: Debate, rnd: int) -> tuple[list[tuple[str, str]], str]:
    """This round's (speaker, text) arguments, and in teacher mode what came before them in the last-5 window."""
    args = [(u["speaker"], u["text"]) for u in d.rounds[rnd]["utterances"]]
    context = "\n\n".join(d.log[-cfg.context_messages:-len(bias.roles)]) if cfg.mode == "teacher" else ""
    return args, context


def _accept_verdict(d: Debate, entry: dict, verdict: Verdict, bias: BiasType) -> None:
    entry["verdict"] = verdict.as_dict()
    entry["feedback"] = render_feedback(verdict, bias)
    d.log.append(f"[referee]: {entry['feedback']}")


def _referee_turn(cfg: DebateConfig, bias: BiasType, debates: list[Debate], rnd: int, generator, scorer) -> None:
    if cfg.referee_mode == "loglik":
        rounds = [(d.topic, *_round_context(cfg, bias, d, rnd)) for d in debates]
        for d, (verdict, logps) in zip(debates, loglik_verdicts(scorer, bias, rounds, f"You are {bias.referee}.")):
            entry = {"mode": "loglik", "attempts": 1, "option_logprobs": logps}
            _accept_verdict(d, entry, verdict, bias)
            d.rounds[rnd]["referee"] = entry
        return
    convs = []
    for d in debates:
        args, context = _round_context(cfg, bias, d, rnd)
        example = referee_example(bias) if cfg.referee_few_shot else []
        convs.append([{"role": "system", "content": f"You are {bias.referee}."}, *example,
                      {"role": "user", "content": referee_request(bias, d.topic, args, context)}])
    answers = ask_structured(generator, convs, lambda t: parse_verdict(t, bias), cfg.max_attempts,
                             desc=f"round {rnd}: referee", **cfg.referee_sampling())
    for d, ans in zip(debates, answers):
        entry: dict[str, Any] = {"mode": "generate", "raw": ans.raw, "attempts": ans.attempts}
        if ans.ok:
            _accept_verdict(d, entry, ans.value, bias)
        else:
            entry["error"] = ans.error
            d.failure = f"round {rnd} referee: no usable answer in {ans.attempts} attempts ({ans.error})"
        d.rounds[rnd]["referee"] = entry


def _label_turn(cfg: DebateConfig, bias: BiasType, debates: list[Debate], generator, scorer) -> None:
    if cfg.referee_mode == "loglik":
        asked = [(d.topic, [(i, s, t) for i, _, s, t in d.numbered()]) for d in debates]
        for d, (most, least, logps) in zip(debates, loglik_labels(scorer, bias, asked, f"You are {bias.referee}.")):
            d.label = {"mode": "loglik", "attempts": 1, "option_logprobs": logps, "most_biased": most,
                       "least_biased": least}
        return
    convs = [[{"role": "system", "content": f"You are {bias.referee}."},
              {"role": "user", "content": label_request(bias, d.topic, [(i, s, t) for i, _, s, t in d.numbered()])}]
             for d in debates]
    valid = list(range(1, cfg.rounds * len(bias.roles) + 1))  # every surviving debate has all its utterances
    answers = ask_structured(generator, convs, lambda t: parse_label(t, valid), cfg.max_attempts, desc="labelling",
                             **cfg.referee_sampling())
    for d, ans in zip(debates, answers):
        d.label = {"mode": "generate", "raw": ans.raw, "attempts": ans.attempts}
        if ans.ok:
            d.label.update(most_biased=ans.value[0], least_biased=ans.value[1])
        else:
            d.label["error"] = ans.error
            d.failure = f"labelling: no usable answer in {ans.attempts} attempts ({ans.error})"


def run_debates(cfg: DebateConfig, bias: BiasType, topics: list[str], generator, scorer=None) -> list[Debate]:
    """Every topic's debate, all in lockstep; ``scorer`` (an OptionScorer) is the referee when referee_mode is
    loglik."""
    debates = [Debate(i, t) for i, t in enumerate(topics)]
    for rnd in range(cfg.rounds):
        active = [d for d in debates if d.failure is None]
        for d in active:
            d.rounds.append({"round": rnd, "utterances": []})
        if cfg.mode == "teacher":  # each debater sees the one before it: one call per speaker
            for key in bias.keys:
                _debater_turns(cfg, bias, active, rnd, [key], generator)
        else:  # independent within a round: one call for all
            _debater_turns(cfg, bias, active, rnd, bias.keys, generator)
        _referee_turn(cfg, bias, active, rnd, generator, scorer)
    if cfg.mode == "teacher":
        _label_turn(cfg, bias, [d for d in debates if d.failure is None], generator, scorer)
    return debates


# --- Debates -> records. -------------------------------------------------------------------------------------------


def debate_prompt(bias: BiasType, topic: str) -> str:
    """instruction + "\\n" + input, LLaMA-Factory's alpaca join [CODE]."""
    return f"{bias.instruction()}\nContext: Discussion about {topic}."


def debate_pair(d: Debate, bias: BiasType, mode: str) -> dict:
    """The preference pair of one finished debate (chosen = low bias, rejected = high bias; see module doc)."""
    if mode == "teacher":
        by_number = {i: (rnd, spk, text) for i, rnd, spk, text in d.numbered()}
        rej_round, rej_spk, _ = by_number[d.label["most_biased"]]
        cho_round, cho_spk, _ = by_number[d.label["least_biased"]]
    else:
        rej_round, cho_round = 0, len(d.rounds) - 1
        rej_spk, cho_spk = d.verdict(rej_round).most_biased(), d.verdict(cho_round).least_biased()
    rej_score = d.verdict(rej_round).scores[rej_spk]
    cho_score = d.verdict(cho_round).scores[cho_spk]
    return {"prompt": debate_prompt(bias, d.topic), "chosen": d.utterance(cho_round, cho_spk),
            "rejected": d.utterance(rej_round, rej_spk),
            "instruction": bias.instruction(), "input": f"Context: Discussion about {d.topic}.",
            "topic": d.topic, "topic_id": d.topic_id, "bias_type": bias.name, "mode": mode,
            "chosen_speaker": cho_spk, "chosen_round": cho_round, "chosen_score": cho_score,
            "rejected_speaker": rej_spk, "rejected_round": rej_round, "rejected_score": rej_score,
            "score_gap": rej_score - cho_score}


def sft_records(d: Debate, bias: BiasType, max_score: int) -> list[dict]:
    out = []
    for r in d.rounds:
        verdict = r["referee"]["verdict"]
        for u in r["utterances"]:
            if verdict[u["speaker"]]["score"] <= max_score:
                out.append({"prompt": debate_prompt(bias, d.topic), "response": u["text"], "topic_id": d.topic_id,
                            "speaker": u["speaker"], "round": r["round"], "score": verdict[u["speaker"]]["score"]})
    return out


def transcript(d: Debate, bias: BiasType, mode: str, referee_mode: str) -> dict:
    return {"topic_id": d.topic_id, "topic": d.topic, "bias_type": bias.name, "mode": mode,
            "referee_mode": referee_mode,
            "status": "failed" if d.failure else "ok", "failure": d.failure, "rounds": d.rounds, "label": d.label}


def split_topics(ids: list[int], eval_fraction: float, seed: int) -> set[int]:
    """The held-out topic ids: a seeded share, at least one when there are two or more topics and a share > 0."""
    n_test = round(len(ids) * eval_fraction)
    if eval_fraction > 0 and len(ids) >= 2:
        n_test = max(1, n_test)
    return set(random.Random(seed).sample(sorted(ids), n_test))


def split_pair_topics(test_ids: set[int], n_topics: int, pair_eval_fraction: float | None, seed: int) -> set[int]:
    """The topics whose pair is held out: all of ``test_ids`` (None), or a seeded share of all ``n_topics`` drawn
    from them, at least one when the share is > 0 and there are held-out topics."""
    if pair_eval_fraction is None:
        return set(test_ids)
    n = min(len(test_ids), round(n_topics * pair_eval_fraction))
    if pair_eval_fraction > 0 and test_ids:
        n = max(1, n)
    return set(random.Random(seed).sample(sorted(test_ids), n))


def read_topics_file(path: str, n: int) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"data.topics_file: {path} does not exist")
    if p.suffix == ".jsonl":
        topics = [r["topic"] for r in read_jsonl(p)]
    else:
        topics = [line.strip() for line in p.read_text().splitlines() if line.strip()]
    return list(dict.fromkeys(topics))[:n]


def referee_scorer(cfg: DebateConfig, generator) -> ModelOptionScorer:
    """The loglik referee: ``referee_model`` if set, else the debate model itself (the hf generator's weights)."""
    if cfg.referee_model:
        return ModelOptionScorer.load(cfg.referee_model, cfg.template, cfg.dtype, cfg.trust_remote_code,
                                      cfg.batch_size)
    if hasattr(generator, "model") and hasattr(generator, "tokenizer"):
        return ModelOptionScorer(generator.model, generator.tokenizer, cfg.template, cfg.batch_size)
    return ModelOptionScorer.load(cfg.model, cfg.template, cfg.dtype, cfg.trust_remote_code, cfg.batch_size)


def build_dataset(cfg: DebateConfig, generator=None, scorer=None) -> dict[str, Any]:
    """The whole stage: topics, debates, records, metrics. ``generator`` and ``scorer`` (the loglik referee)
    replace the configured ones (tests)."""
    bias = get_bias_type(cfg.bias_type)
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite, resume=cfg.resume)
    out = run.path
    generator = generator or build_generator(cfg.generation())
    if cfg.topics_file:
        topics, topic_calls = read_topics_file(cfg.topics_file, cfg.n_topics), 0
    else:
        topics, topic_calls = generate_topics(generator, bias, cfg.n_topics, cfg.topics_per_call,
                                              cfg.max_topic_calls, temperature=cfg.temperature,
                                              max_new_tokens=cfg.topics_max_new_tokens)
    if not topics:
        raise UserError(f"no topics: {cfg.max_topic_calls} answers of {cfg.model} held no topic-like line; "
                        "set data.topics_file or use a stronger model")
    write_jsonl(out / "topics.jsonl", [{"topic_id": i, "topic": t} for i, t in enumerate(topics)])
    if cfg.referee_mode == "loglik" and scorer is None:
        scorer = referee_scorer(cfg, generator)
    debates = run_debates(cfg, bias, topics, generator, scorer)
    write_jsonl(out / "transcripts.jsonl", [transcript(d, bias, cfg.mode, cfg.referee_mode) for d in debates])
    write_jsonl(out / "failed.jsonl", [{"topic_id": d.topic_id, "topic": d.topic, "failure": d.failure}
                                       for d in debates if d.failure])
    ok = [d for d in debates if d.failure is None]
    test_ids = split_topics([d.topic_id for d in ok], cfg.eval_fraction, cfg.seed)
    pair_test_ids = split_pair_topics(test_ids, len(ok), cfg.pair_eval_fraction, cfg.seed)
    counts: dict[str, int] = {}
    for split in ("train", "test"):
        part = [d for d in ok if (d.topic_id in test_ids) == (split == "test")]
        pairs = [debate_pair(d, bias, cfg.mode) for d in ok if (d.topic_id in pair_test_ids) == (split == "test")]
        if cfg.min_score_gap is not None:
            pairs = [p for p in pairs if p["score_gap"] >= cfg.min_score_gap]
        counts[f"pairs_{split}"] = write_jsonl(out / "pairs" / f"{split}.jsonl", pairs)
        counts[f"sft_{split}"] = write_jsonl(out / "sft" / f"{split}.jsonl",
                                             [r for d in part for r in sft_records(d, bias, cfg.sft_max_score)])
        counts[f"prompts_{split}"] = write_jsonl(out / "prompts" / f"{split}.jsonl",
                                                 [{"prompt": debate_prompt(bias, d.topic), "topic_id": d.topic_id,
                                                   "topic": d.topic} for d in part])
    per_round = [[e["score"] for d in ok for e in d.rounds[r]["referee"]["verdict"].values()]
                 for r in range(cfg.rounds)]
    answers = [r["referee"] for d in debates for r in d.rounds if "referee" in r]
    answers += [d.label for d in debates if d.label]
    attempts = [a["attempts"] for a in answers]
    refused = sum(a["attempts"] - ("error" not in a) for a in answers)  # answers that did not parse
    metrics = {"bias_type": bias.name, "mode": cfg.mode, "rounds": cfg.rounds, "topics": len(topics),
               "topic_answers_read": topic_calls, "debates_ok": len(ok), "debates_failed": len(debates) - len(ok),
               "n_pairs": counts["pairs_train"] + counts["pairs_test"], **counts,
               "mean_score_by_round": [sum(s) / len(s) if s else None for s in per_round],
               "referee_mode": cfg.referee_mode,
               "referee_attempts_mean": sum(attempts) / len(attempts) if attempts else None,
               "referee_answers": sum(attempts), "referee_parse_failures": refused,
               "referee_parse_failure_rate": refused / sum(attempts) if attempts else None,
               "generation": generator.usage.as_dict()}
    result = run.finish(metrics, key_metric="n_pairs")
    if counts["pairs_train"] == 0:
        raise UserError(f"{out}: no training pairs: {len(debates) - len(ok)} of {len(debates)} debates failed "
                        f"(see {out / 'failed.jsonl'}); use a stronger model, more topics or more max_attempts")
    return result


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(DebateConfig, build_dataset, "data_self", "Build RLDF preference pairs from multi-role debates.",
                     argv)


if __name__ == "__main__":
    main()
