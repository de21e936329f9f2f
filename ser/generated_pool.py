"""The "two new responses per prompt" pool: fresh answers from the policy instead of the dataset's own pair.

A review of the paper reads it as generating two new responses for each unlabelled prompt and letting the RM rank
them, while the upstream code re-scores the dataset's existing pairs [SECONDARY]. ``ser.pool_source: generate``
selects this reading: every pool prompt gets two sampled answers from ``ser.generator`` (usually the SFT model) to
``"Question: {q}\\n\\nAnswer: "``, the SER prompt the policy is trained and run on [CODE]. Answers go through the
shared generation cache, so a crash mid-pool resumes where it stopped. A prompt whose two answers are identical (or
empty) cannot make a pair and is dropped.
"""

from __future__ import annotations

from pathlib import Path

from common.config import build_dataclass
from ser.reward_backends import question_header

DEFAULT_SAMPLING = {"template": "plain", "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 128}  # [CODE] top_p 1


def generate_pool(pool: list[dict], generator: dict, cache_path: Path, seed: int) -> list[dict]:
    """Pool items ``{id: "g<original id>", prompt, response_a, response_b, generated: true}``.

    The ids differ from the original pairs' so that no human label of the dataset's pair is ever read as the label of
    the generated one."""
    from common.generation import GenerationConfig, build_generator

    settings = {**DEFAULT_SAMPLING, "seed": seed, **generator, "cache_path": str(cache_path)}
    gen = build_generator(build_dataclass(GenerationConfig, settings, "ser.generator"))
    conversations = [[{"role": "user", "content": question_header(p["prompt"])}] for p in pool]
    answers = gen.chat(conversations, n=2, desc="SER pool: two new responses per prompt")
    items = []
    for item, (a, b) in zip(pool, answers):
        a, b = a.strip(), b.strip()
        if a and b and a != b:
            items.append({"id": f"g{item['id']}", "prompt": item["prompt"], "response_a": a, "response_b": b,
                          "generated": True})
    print(f"[ser] generated pool: {len(items)} of {len(pool)} prompts kept (two distinct non-empty answers)",
          flush=True)
    return items
