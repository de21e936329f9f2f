"""Responses of one policy to held-out prompts, as ``{prompt, response}`` jsonl for the judge (common.eval.judge).

    python -m common.respond model=runs/<paper>/<model>/ppo prompts=<eval prompts>.jsonl output_dir=... [template=plain]

Used by every paper whose policies are judged (PCRM, SER) or inspected after RL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.artifacts import RunDir, read_jsonl, write_jsonl
from common.config import UserError, stage_cli


@dataclass
class RespondConfig:
    """Greedy or sampled answers of ``model`` to the unique prompts of a jsonl file."""

    model: str = field(default="", metadata={"help": "policy folder, hub id or embedded:<name>"})
    prompts: str = field(default="", metadata={"help": "jsonl with a 'prompt' column (preference or prompt records)"})
    output_dir: str = field(default="runs/respond", metadata={"help": "run folder; responses.jsonl goes here"})
    template: str = field(default="tokenizer", metadata={"help": "chat template the policy was trained with"})
    limit: int | None = field(default=None, metadata={"help": "answer at most this many unique prompts"})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy"})
    max_new_tokens: int = field(default=256, metadata={"help": "answer length limit"})
    batch_size: int = field(default=8, metadata={"help": "sequences per generate call"})
    dtype: str = field(default="float32", metadata={"help": "policy dtype"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished run"})
    resume: bool = field(default=False, metadata={"help": "reuse cached answers of an interrupted run"})

    def __post_init__(self) -> None:
        if not self.model or not self.prompts:
            raise UserError("respond: set model=<policy> and prompts=<jsonl with prompts>")


def respond(cfg: RespondConfig) -> dict[str, Any]:
    from common.generation import GenerationConfig, build_generator

    if not Path(cfg.prompts).is_file():
        raise UserError(f"respond.prompts: {cfg.prompts} does not exist")
    seen, prompts = set(), []
    for rec in read_jsonl(cfg.prompts):
        key = str(rec["prompt"])
        if key not in seen:
            seen.add(key)
            prompts.append(rec["prompt"])
    prompts = prompts[:cfg.limit] if cfg.limit else prompts
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite, resume=cfg.resume)
    generator = build_generator(GenerationConfig(
        backend="hf", model=cfg.model, template=cfg.template, temperature=cfg.temperature,
        max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, batch_size=cfg.batch_size, dtype=cfg.dtype,
        cache_path=str(run.path / "cache.jsonl")))
    conversations = [[{"role": "user", "content": p}] if isinstance(p, str) else p for p in prompts]
    answers = generator.chat(conversations, desc="responses")
    write_jsonl(run.path / "responses.jsonl", [{"prompt": p, "response": a[0]} for p, a in zip(prompts, answers)])
    return run.finish({"n_prompts": len(prompts)})


def main(argv: list[str] | None = None) -> None:
    stage_cli(RespondConfig, respond, "respond", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()

