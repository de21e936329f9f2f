"""Greedy predictions of a policy that is a small change of another model: reuse that model's answers where greedy
decoding would repeat them, generate only the rest. Same output files as ``rllr.predict``.

    python -m rllr.greedy_reuse --config rllr/configs/fidelity.yaml --section predict \
        model=runs/.../ppo_rllr/policy_merged start=runs/.../predict/sft_wrat \
        data=runs/.../data/eval.jsonl output_dir=runs/.../predict/ppo_rllr

Why it is exact: greedy decoding emits, at each step, the argmax token given the prompt and the tokens so far. If the
start model's answer y (re-tokenised) is the policy's argmax at every position, and after it the policy's argmax is a
stop token (or y already has ``max_new_tokens`` tokens), the policy's greedy decoding writes exactly y: one teacher-
forced pass checks that, instead of ``max_new_tokens`` decoding steps. Every other item is generated as
``rllr.predict`` does. (Left- vs right-padding can move logits by float rounding, so an exact tie could resolve
differently; such an item would be checked, not assumed.) A few PPO steps leave most greedy answers unchanged, so
this costs a fraction of generating all of them; ``predictions.jsonl`` marks the reused rows (``reused``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.artifacts import RunDir, read_jsonl, write_jsonl
from common.config import ConfigError, UserError, stage_cli
from common.config import help_meta as _h
from rllr.predict import PredictConfig, score_predictions


@dataclass
class ReuseConfig(PredictConfig):
    start: str = field(default="", metadata=_h("rllr.predict output folder of the start model (predictions.jsonl)"))

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.start:
            raise ConfigError("greedy_reuse: start=<predict folder of the start model> is required")


def greedy_repeats(model: Any, tokenizer: Any, prompts: list[list[int]], answers: list[list[int]], stops: set[int],
                   max_new_tokens: int, batch_size: int) -> list[bool]:
    """Per item: would greedy decoding of ``model`` from ``prompts[i]`` write exactly ``answers[i]`` and stop?"""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = [False] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(answers[i]))
    model.eval()
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        seqs = [prompts[i] + answers[i] for i in chunk]
        width = max(len(s) for s in seqs)
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])  # (B, T), right-padded
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
        with torch.no_grad():
            best = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)  # (B, T): argmax of the next token
        for row, i in enumerate(chunk):
            p, a = len(prompts[i]), answers[i]
            if len(a) > max_new_tokens:
                continue
            predicted = best[row, p - 1: p - 1 + len(a)].tolist()  # position t predicts token t + 1
            ends = len(a) == max_new_tokens or int(best[row, p - 1 + len(a)]) in stops
            out[i] = predicted == a and ends
    return out


def predict_reusing(cfg: ReuseConfig) -> dict[str, Any]:
    from common.generation import GenerationConfig, build_generator
    from common.generation.hf import encode_prompt, render_chat, stop_token_ids
    from common.models import load_causal_lm, load_tokenizer

    records = read_jsonl(cfg.data)[: cfg.limit]
    start_rows = {r["id"]: r for r in read_jsonl(Path(cfg.start) / "predictions.jsonl")}
    missing = [r["id"] for r in records if r["id"] not in start_rows]
    if missing:
        raise UserError(f"greedy_reuse.start: {cfg.start} has no answer for {len(missing)} item(s), e.g. {missing[0]}")
    run = RunDir.start(cfg.output_dir, cfg, overwrite=cfg.overwrite)
    tokenizer = load_tokenizer(cfg.model)
    model = load_causal_lm(cfg.model, cfg.dtype)
    prompts = [encode_prompt(render_chat([{"role": "user", "content": r["prompt"]}], cfg.template, tokenizer),
                             tokenizer) for r in records]
    answers = [tokenizer(start_rows[r["id"]]["output"], add_special_tokens=False)["input_ids"] for r in records]
    same = greedy_repeats(model, tokenizer, prompts, answers, set(stop_token_ids(tokenizer, model.generation_config)),
                          cfg.max_new_tokens, cfg.batch_size)
    del model
    todo = [i for i, s in enumerate(same) if not s]
    print(f"greedy_reuse: {len(records) - len(todo)} of {len(records)} answers repeat the start model's; "
          f"generating {len(todo)}", flush=True)
    outputs = [start_rows[r["id"]]["output"] for r in records]
    if todo:
        gen = build_generator(GenerationConfig(
            backend=cfg.backend, model=cfg.model, template=cfg.template, temperature=0.0,
            max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, dtype=cfg.dtype,
            trust_remote_code=cfg.trust_remote_code, cache_path=str(Path(cfg.output_dir) / "answers_cache.jsonl")))
        new = gen.chat([[{"role": "user", "content": records[i]["prompt"]}] for i in todo], desc="predict")
        for i, o in zip(todo, new):
            outputs[i] = o[0]
    metrics, rows = score_predictions(records, outputs)
    for row, s in zip(rows, same):
        row["reused"] = s
    write_jsonl(Path(cfg.output_dir) / "predictions.jsonl", rows)
    metrics["n_reused"] = sum(same)
    print({k: v for k, v in metrics.items() if k != "tasks"}, flush=True)
    return run.finish(metrics, key_metric="accuracy")


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(ReuseConfig, predict_reusing, "predict", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()
