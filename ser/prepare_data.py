"""Write the policy-side data of a SER recipe from the same pairs and split as the loop (``ser`` section).

    python -m ser.prepare_data --config ser/configs/llama3.yaml --out runs/ser/llama3/hh/data

- ``sft.jsonl``: {prompt: "Question: {q}\\n\\nAnswer: ", response: chosen}. ``ser.sft_data: seed`` (default) takes the
  labelled seed only, so the pool's hidden human labels never reach the SFT model that the LM reward models start
  from; ``all`` adds the pool's chosen answers (more SFT data, but the RM's initialisation has then seen the pool's
  preferred answers). Upstream's SFT data is not specified beyond the dataset [GUESS];
- ``prompts.jsonl``: {prompt} of the seed and pool pairs, for PPO [CODE: prompt "Question: {q}\\n\\nAnswer: "];
- ``eval_prompts.jsonl``: {prompt} of the held-out pairs (never trained on, never used to pick the loop), for the
  responses the judge compares.
Templates downstream are ``plain``: the SER prompt format is already in the text.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common.artifacts import write_jsonl
from common.config import load_config, parse_overrides, run_cli
from ser.loop import SERConfig, load_cfg_pairs, split_for_loop
from ser.reward_backends import question_header


def prepare(cfg: SERConfig, out: Path, eval_limit: int = 500) -> dict:
    split, _ = split_for_loop(load_cfg_pairs(cfg), cfg)
    sft_pairs = split.seed if cfg.sft_data == "seed" else split.seed + split.pool_as_labelled()
    prompts = [r["prompt"] for r in split.seed] + [p["prompt"] for p in split.pool]
    sizes = {
        "sft": write_jsonl(out / "sft.jsonl", [{"prompt": question_header(r["prompt"]), "response": r["chosen"]}
                                              for r in sft_pairs]),
        "prompts": write_jsonl(out / "prompts.jsonl", [{"prompt": question_header(q)} for q in prompts]),
        "eval_prompts": write_jsonl(out / "eval_prompts.jsonl",
                                    [{"prompt": question_header(r["prompt"])} for r in split.heldout[:eval_limit]]),
    }
    print(f"wrote {sizes} into {out}", flush=True)
    return sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="SER recipe")
    parser.add_argument("--section", default="ser")
    parser.add_argument("--out", required=True, help="folder for sft.jsonl, prompts.jsonl, eval_prompts.jsonl")
    parser.add_argument("--eval_limit", type=int, default=500, help="held-out prompts the policies answer")
    args, rest = parser.parse_known_args(argv)
    overrides = {"output_dir": "unused", **parse_overrides(rest)}
    run_cli(lambda: prepare(load_config(SERConfig, args.config, args.section, overrides), Path(args.out),
                            args.eval_limit))


if __name__ == "__main__":
    main()
