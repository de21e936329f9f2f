"""Debate topics for a bias type: an LLM lists them one per line; we parse, de-duplicate and keep the first N.

Upstream asked gpt-3.5-turbo for 500 age topics [CODE]. One answer rarely holds hundreds of lines, so we ask for
``per_call`` topics at a time, drawing further samples (sample index s = 0, 1, ...: each is its own cache entry, so
a rerun replays them) until N unique topics are found or ``max_calls`` answers were read.
"""

from __future__ import annotations

import re

from rldf.bias_types import BiasType

_BULLET = re.compile(r"^\s*(?:[-*•·]+|\(?\d{1,4}[.):\]]|\(?[a-zA-Z][.)]|#+)\s*")
_LABEL = re.compile(r"^\s*(?:topic|debate topic)\s*\d*\s*[:\-]\s*", re.IGNORECASE)
MIN_WORDS, MAX_WORDS = 3, 40  # [GUESS] a topic is a short phrase or question; longer lines are prose


def topic_request(bias: BiasType, n: int) -> str:
    return (f"List {n} different debate topics about {bias.label} that people of different {bias.label} groups may "
            f"see differently. Write one topic per line, with no numbering and no other text.")


def parse_topic_lines(text: str) -> list[str]:
    """Topic-like lines of an answer: bullets, numbering, "Topic 3:" labels, quotes and markdown bold removed;
    a line with fewer than 3 or more than 40 words, or ending in ':' (a heading), is dropped."""
    out = []
    for line in text.splitlines():
        if line.strip().endswith(":"):
            continue
        line = _LABEL.sub("", _BULLET.sub("", line))
        line = line.replace("**", "").strip().strip("\"'`“”").strip()
        if MIN_WORDS <= len(line.split()) <= MAX_WORDS:
            out.append(line)
    return out


def topic_key(topic: str) -> str:
    """Duplicate test: case, punctuation and spacing ignored."""
    return re.sub(r"[^a-z0-9]+", " ", topic.lower()).strip()


def unique_topics(answers: list[str], n: int) -> list[str]:
    """The first ``n`` distinct topics, in the order the answers listed them."""
    seen, out = set(), []
    for answer in answers:
        for topic in parse_topic_lines(answer):
            key = topic_key(topic)
            if key and key not in seen:
                seen.add(key)
                out.append(topic)
                if len(out) == n:
                    return out
    return out


def generate_topics(generator, bias: BiasType, n: int, per_call: int = 50, max_calls: int = 40,
                    system: str | None = None, **sampling) -> tuple[list[str], int]:
    """Up to ``n`` unique topics and the number of answers read. Samples are requested in growing batches of
    sample indices of one conversation, so the cache holds each answer once."""
    conv = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": topic_request(bias, per_call)}]
    answers: list[str] = []
    while len(answers) < max_calls:
        want = min(max_calls, max(len(answers) + 1, 2 * len(answers), -(-n // per_call)))
        answers = generator.chat([conv], n=want, desc=f"topics ({bias.name})", **sampling)[0]
        topics = unique_topics(answers, n)
        if len(topics) >= n:
            return topics, len(answers)
    return unique_topics(answers, n), len(answers)
