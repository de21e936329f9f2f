"""Run inside verl's environment by tests/common/test_verl_engine.py: verl's own reward and prompt paths on our files.

    .venv-verl/bin/python tests/common/verl_probe.py jobs.json   -> one JSON line per job on stdout

jobs = a list of {"config": the hydra YAML common.train.verl_engine wrote, "tokenizer": a local tokenizer folder,
       "train_file": its parquet, "responses": [[token ids] per row of the parquet file]}

- prompt_ids: each parquet prompt through the chat template verl is configured with (custom_chat_template), with
  add_generation_prompt and no extra special tokens, as verl's agent loop tokenises it;
- scores: each row's response scored by verl's reward manager (verl.trainer.ppo.reward.load_reward_manager, the
  naive manager calling our custom reward function by file path), all rows concurrently as verl's workers do.
"""

import asyncio
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir
from transformers import AutoTokenizer
from verl import DataProto
from verl.trainer.ppo.reward import load_reward_manager


def main(jobs_path: str) -> None:
    for job in json.loads(Path(jobs_path).read_text()):
        probe(job)


def probe(job: dict) -> None:
    config = job["config"]
    folder, name = config.rsplit("/", 1)
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(folder, version_base=None):
        cfg = compose(name.removesuffix(".yaml"))
    tokenizer = AutoTokenizer.from_pretrained(job["tokenizer"])
    tokenizer.chat_template = cfg.actor_rollout_ref.model.custom_chat_template
    rows = pd.read_parquet(job["train_file"]).to_dict("records")
    prompt_ids = []
    for row in rows:
        ids = tokenizer.apply_chat_template(list(row["prompt"]), add_generation_prompt=True, tokenize=True)
        prompt_ids.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))

    manager = load_reward_manager(cfg, tokenizer)

    def item(row: dict, prompt: list[int], response: list[int]) -> DataProto:
        width = max(len(response), 1)
        responses = torch.full((1, width + 3), tokenizer.pad_token_id or 0, dtype=torch.long)  # right padding
        responses[0, :len(response)] = torch.tensor(response, dtype=torch.long)
        response_mask = torch.zeros(1, width + 3, dtype=torch.long)
        response_mask[0, :len(response)] = 1
        mask = torch.cat([torch.ones(1, len(prompt), dtype=torch.long), response_mask], dim=1)
        return DataProto.from_dict(
            tensors={"responses": responses, "attention_mask": mask},
            non_tensors={"data_source": np.array([row["data_source"]], dtype=object),
                         "reward_model": np.array([dict(row["reward_model"])], dtype=object),
                         "extra_info": np.array([dict(row["extra_info"])], dtype=object)})

    async def score_all() -> list[float]:
        outs = await asyncio.gather(*[manager.run_single(item(row, p, r))
                                      for row, p, r in zip(rows, prompt_ids, job["responses"])])
        return [float(o["reward_score"]) for o in outs]

    scores = manager.loop.run_until_complete(score_all())  # the manager's own loop runs its executor calls
    print(json.dumps({"prompt_ids": prompt_ids, "scores": scores}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
