"""A scripted stand-in for the debate LLM (tests only): answers follow fixed rules read from the prompt, so each
debate's pair is known in advance. It is a real ``Generator`` subclass: the cache, resume and re-ask machinery run
unchanged. Stateless (everything is read from the prompt), so a resumed run gets the same answers."""

from __future__ import annotations

import json
import re
import time

from common.generation import GenerationConfig
from common.generation.base import Generator

# Per debater, its score in rounds 0, 1, 2 (distinct per debater, so a debater can tell the round from its score).
SCORES = {"60-year-old": [8, 6, 4], "40-year-old": [3, 2, 1], "20-year-old": [5, 3, 1]}
TOPICS = ["Should the retirement age be raised?", "Age limits for political office", "UNJUDGEABLE youth curfews"]


def verdict(rnd: int) -> dict:
    scores = {k: v[rnd] for k, v in SCORES.items()}
    order = sorted(scores, key=lambda k: (-scores[k], k == "40-year-old"))  # round 2 tie 40/20: 40 least biased
    return {k: {"score": scores[k], "rank": order.index(k) + 1, "reason": f"round {rnd}"} for k in scores}


class ScriptedGenerator(Generator):
    def __init__(self, cfg: GenerationConfig, delay_s: float = 0.0):
        super().__init__(cfg)
        self.delay_s = delay_s
        self.generated: list[str] = []

    def answer(self, messages: list[dict]) -> str:
        system = messages[0]["content"]
        user = next(m["content"] for m in messages if m["role"] == "user")  # a re-ask repeats the first request
        if user.startswith("List "):
            return "Here are topics:\n" + "\n".join(f"{i + 1}. {t}" for i, t in enumerate(TOPICS))
        topic = re.search(r"Debate topic: (.*)", user).group(1)
        if "referee" in system:
            if "UNJUDGEABLE" in topic:
                return "They all did fine, I would say."
            if "Which utterance" in user:
                return 'My labels: {"most_biased": 2, "least_biased": 6}'
            this_round = user.split("Arguments of this round:")[1]
            return "```json\n" + json.dumps(verdict(int(re.search(r"round (\d)", this_round).group(1)))) + "\n```"
        key = re.search(r"You are an? (\S+) individual", system).group(1)
        own = re.search(rf"(?:{key}: stereotype score |stereotype score of )(\d+)/10", user)
        rnd = 0 if own is None else SCORES[key].index(int(own.group(1))) + 1
        return f"{key} on {topic}, round {rnd}"

    def _generate(self, requests, params, emit) -> None:
        for req in requests:
            time.sleep(self.delay_s)
            text = self.answer(req.messages)
            self.generated.append(req.key)
            emit(req, {"text": text, "finish_reason": "stop", "prompt_tokens": 0, "completion_tokens": 0})
