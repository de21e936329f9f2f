"""Rationales for a given label, their validation, and the judge that ranks two rationales for the same label.

The authors' data (GPT-4-written rationales [SECONDARY]) is not public, so prompts and judge are ours [GUESS]:

- writer prompt: the input, the label to justify, "write 2-3 sentences explaining why, then a final line
  ``Label: <label>``" (``writer_prompt``). The same prompt asks for the gold label and for a wrong one;
- a rationale is accepted only if its last line is ``Label: <x>`` with x the label asked for (``check_rationale``);
  otherwise it is rejected with a reason (``missing_label_line``, ``wrong_label``, ``empty_rationale``) and counted;
- judge prompt: the input, the label, rationales A and B: "which justifies the label better, A or B?"; the pair's
  order is a seeded coin flip per example (against position bias), the answer parsed strictly and re-asked.

Two writer/judge backends:

- ``llm``: any ``common.generation`` backend (openai-compatible API, vllm, hf), cached and resumable through the
  generator's jsonl cache, so an interrupted build re-requests only what is missing.
- ``lexicon``: an offline stand-in for CPU runs (tiny and fidelity) where a 135M model cannot write rationales that
  end in the asked label [ours]. Word log-odds per label are counted on the training split; sample 0 cites the three
  input words that most favour the label, later samples cite one or two random input words. Its judge prefers the
  rationale whose cited words favour the label more. It is a deterministic function of (example, label, sample).
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from typing import Protocol

from common.eval.nlu import parse_label
from rllr.tasks import Task, get_task, response_text

REJECT_REASONS = ("missing_label_line", "wrong_label", "empty_rationale")
FINAL_LABEL_LINE = re.compile(r"^[\s*#>_-]*label\s*[:：]\s*(.+?)[\s*.]*$", re.IGNORECASE)
WORD = re.compile(r"[a-z][a-z']+")
_STOPWORD_TEXT = (
    "the a an and or but of to in on at for with by from as is are was were be been it its this that these those "
    "he she they we you i his her their our your not no so than then there here what which who whom whose how why "
    "when where all any some can could would should will just very has have had do does did also into about more "
    "most such only over out up down off s 's")
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def writer_prompt(task: Task, example: dict, label: str) -> list[dict]:
    """The conversation asking for a rationale that supports ``label`` (gold or not) [GUESS: our wording]."""
    shown = "\n".join(f"{name}: {example['fields'][col]}" for col, name in task.fields)
    return [{"role": "user", "content": (
        f"Task: decide {task.description}. Options: {', '.join(task.labels)}.\n\n{shown}\n\n"
        f"The answer is \"{label}\". Write a short rationale (2-3 sentences) that explains, from the text above, "
        f"why the answer is \"{label}\". Then write a final line exactly: Label: {label}")}]


def judge_prompt(task: Task, example: dict, label: str, first: str, second: str) -> list[dict]:
    """The conversation asking which of two rationales for the same label is better [GUESS: our wording]."""
    shown = "\n".join(f"{name}: {example['fields'][col]}" for col, name in task.fields)
    return [{"role": "user", "content": (
        f"Task: decide {task.description}.\n\n{shown}\n\nThe correct answer is \"{label}\". Two rationales "
        f"explain it.\n\nRationale A:\n{first}\n\nRationale B:\n{second}\n\nWhich rationale justifies the answer "
        "better: more faithful to the text, more specific, more convincing? Answer with the single letter A or B.")}]


def check_rationale(text: str, task: Task, asked: str) -> tuple[str | None, str | None]:
    """(normalised response ``<rationale>\\nLabel: <asked>``, None) or (None, reject reason)."""
    lines = [line.rstrip() for line in (text or "").strip().splitlines() if line.strip()]
    m = FINAL_LABEL_LINE.match(lines[-1]) if lines else None
    if m is None:
        return None, "missing_label_line"
    if parse_label(m.group(1), task.labels, task.verbaliser or None) != asked:
        return None, "wrong_label"
    body = "\n".join(lines[:-1]).strip()
    if not body:
        return None, "empty_rationale"
    return response_text(body, asked), None


class RationaleWriter(Protocol):
    def write(self, requests: list[tuple[dict, str]], n: int) -> list[list[str]]:
        """For each (example, label), ``n`` raw rationale texts (validated afterwards by ``check_rationale``)."""
        ...


class RationaleJudge(Protocol):
    def better_first(self, items: list[tuple[dict, str, str, str]]) -> list[bool | None]:
        """For each (example, label, rationale_1, rationale_2): is rationale_1 the better one (None: no verdict)."""
        ...


class LLMRationaleWriter:
    """Rationales from a ``common.generation`` Generator (sampled; its cache makes the build resumable)."""

    def __init__(self, generator):
        self.generator = generator

    def write(self, requests: list[tuple[dict, str]], n: int) -> list[list[str]]:
        convs = [writer_prompt(get_task(ex["task"]), ex, label) for ex, label in requests]
        return self.generator.chat(convs, n=n, desc=f"rationales (x{n})") if convs else []


class LLMRationaleJudge:
    """A judge model answering A or B, each pair shown in a seeded random order; re-asked when unparseable."""

    def __init__(self, generator, seed: int = 0, max_attempts: int = 3):
        self.generator, self.seed, self.max_attempts = generator, seed, max_attempts

    def better_first(self, items: list[tuple[dict, str, str, str]]) -> list[bool | None]:
        from common.structured import ask_structured, parse_choice

        swaps = [random.Random(f"{self.seed}-{ex['id']}").random() < 0.5 for ex, *_ in items]
        convs = [judge_prompt(get_task(ex["task"]), ex, label, *((r2, r1) if swap else (r1, r2)))
                 for (ex, label, r1, r2), swap in zip(items, swaps)]
        answers = ask_structured(self.generator, convs, lambda t: parse_choice(t, ["A", "B"]),
                                 max_attempts=self.max_attempts, desc="judge") if convs else []
        return [None if a.value is None else (a.value == "A") != swap for a, swap in zip(answers, swaps)]


def _words(ex: dict) -> list[str]:
    return [w for text in ex["fields"].values() for w in WORD.findall(text.lower()) if w not in STOPWORDS]


class LexiconRationaleWriter:
    """Offline rationales citing input words by their label log-odds (module docstring). Also the lexicon judge."""

    PHRASES = ("The text mentions {words}, which point to {label}.",
               "Words such as {words} suggest that the answer is {label}.",
               "Because of {words}, the example reads as {label}.")

    def __init__(self, train_examples: list[dict], smoothing: float = 1.0):
        self.counts: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        for ex in train_examples:
            self.counts[ex["task"]][ex["label"]].update(set(_words(ex)))
        self.smoothing = smoothing

    def log_odds(self, task: str, word: str, label: str) -> float:
        """log P(word | label) - log P(word | other labels), add-``smoothing`` document frequencies."""
        by_label = self.counts[task]
        here = by_label[label][word] + self.smoothing
        n_here = sum(by_label[label].values()) + self.smoothing
        rest = sum(c[word] for lab, c in by_label.items() if lab != label) + self.smoothing
        n_rest = sum(sum(c.values()) for lab, c in by_label.items() if lab != label) + self.smoothing
        return math.log(here / n_here) - math.log(rest / n_rest)

    def rationale(self, ex: dict, label: str, sample: int) -> str:
        words = list(dict.fromkeys(_words(ex))) or ["the wording"]
        rng = random.Random(f"{ex['id']}-{label}-{sample}")
        if sample == 0:
            cited = sorted(words, key=lambda w: -self.log_odds(ex["task"], w, label))[:3]
        else:
            cited = rng.sample(words, min(len(words), rng.choice((1, 2))))
        quoted = [f'"{w}"' for w in cited]
        listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" and {quoted[-1]}"
        return response_text(rng.choice(self.PHRASES).format(words=listed, label=label), label)

    def write(self, requests: list[tuple[dict, str]], n: int) -> list[list[str]]:
        return [[self.rationale(ex, label, s) for s in range(n)] for ex, label in requests]

    def support(self, ex: dict, label: str, rationale: str) -> float:
        """Mean log-odds towards ``label`` of the words a rationale quotes."""
        cited = re.findall(r'"([^"]+)"', rationale)
        return sum(self.log_odds(ex["task"], w, label) for w in cited) / max(1, len(cited))

    def better_first(self, items: list[tuple[dict, str, str, str]]) -> list[bool | None]:
        out: list[bool | None] = []
        for ex, label, r1, r2 in items:
            s1, s2 = self.support(ex, label, r1), self.support(ex, label, r2)
            out.append(None if s1 == s2 else s1 > s2)
        return out
