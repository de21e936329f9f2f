"""Write the policy-side data of a SER recipe from the same pairs and split as the loop (``ser`` section).

    python -m ser.prepare_data --config ser/configs/llama3.yaml --out runs/ser/llama3/data

- ``sft.jsonl``: {prompt: "Question: {q}\\n\\nAnswer: ", response: chosen} over the non-held-out pairs (SFT on the
  preferred answers [GUESS: upstream's SFT data is not specified beyond the dataset]);
- ``prompts.jsonl``: {prompt} of the non-held-out pairs, for PPO [CODE: prompt "Question: {q}\\n\\nAnswer: "];
- ``seed_pairs.jsonl`` / ``heldout_pairs.jsonl``: the labelled seed and the held-out pairs (prompt already in the
  SER format), for the standalone seed-only RM (02_rm_seed.sh) and its evaluation;
- ``eval_prompts.jsonl``: {prompt} of the held-out pairs, for the judge evaluation.
Templates downstream are ``plain``: the SER prompt format is already in the text.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common.artifacts import write_jsonl
from common.config import load_config, parse_overrides, run_cli
from ser.loop import SERConfig
from ser.pairs import load_pairs, split_seed_pool_heldout
from ser.reward_backends import question_header


def prepare(cfg: SERConfig, out: Path, eval_limit: int = 500) -> dict:
    split = split_seed_pool_heldout(load_pairs(cfg.dataset, cfg.data_path, cfg.data_split, cfg.limit, cfg.seed),
                                    cfg.seed_fraction, cfg.heldout_size, cfg.seed)
    train = split.seed + split.pool_as_labelled()

    def pair(r: dict) -> dict:
        return {"prompt": question_header(r["prompt"]), "chosen": r["chosen"], "rejected": r["rejected"]}

    sizes = {
        "seed_pairs": write_jsonl(out / "seed_pairs.jsonl", [pair(r) for r in split.seed]),
        "heldout_pairs": write_jsonl(out / "heldout_pairs.jsonl", [pair(r) for r in split.heldout]),
        "sft": write_jsonl(out / "sft.jsonl", [{"prompt": question_header(r["prompt"]), "response": r["chosen"]}
                                              for r in train]),
        "prompts": write_jsonl(out / "prompts.jsonl", [{"prompt": question_header(r["prompt"])} for r in train]),
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
    parser.add_argument("--eval_limit", type=int, default=500)
    args, rest = parser.parse_known_args(argv)
    overrides = {"output_dir": "unused", **parse_overrides(rest)}
    run_cli(lambda: prepare(load_config(SERConfig, args.config, args.section, overrides), Path(args.out),
                            args.eval_limit))


if __name__ == "__main__":
    main()
