"""PCRM's data: AlpacaFarm (dialogue) and TL;DR / summarize-from-feedback (summarization) in the upstream prompt frame,
plus the two small real sets of a local data root (HH-RLHF, SST-2 sentiment pairs) for tiny and CPU runs.

Prompt formats [CODE] (wangclnlp/DeepSpeed-Chat-Extension, PCRM branch, ``raw_datasets.py``); every stage then uses
template ``plain`` (the frame is already in the prompt text):

- dialogue:       "\\n\\nHuman: {instruction}{input}\\n\\nAssistant: "  (instruction and input are joined with no
  separator, as upstream does)
- summarization:  "\\n\\nHuman: Your task is to generate a short summary of a post.\\n\\nPost: {post}\\n\\nSummary: "
  "\\n\\nAssistant: "

Sources (``source`` of ``DataConfig``), each -> canonical records of one kind:

| source              | hub id / files                                               | kind       |
|---------------------|--------------------------------------------------------------|------------|
| alpaca_sft          | tatsu-lab/alpaca_farm, alpaca_instructions, split sft         | sft        |
| alpaca_preference   | tatsu-lab/alpaca_farm, alpaca_human_preference, preference    | preference |
| alpaca_unlabeled    | tatsu-lab/alpaca_farm, alpaca_instructions, split unlabeled   | prompt     |
| tldr_sft            | CarperAI/openai_summarize_tldr, train                         | sft        |
| tldr_comparisons    | openai/summarize_from_feedback, comparisons, train/validation | preference |
| tldr_prompts        | CarperAI/openai_summarize_tldr, train (prompts only)          | prompt     |
| hh_rlhf             | <data_root>/hh-rlhf/*/test.jsonl.gz (common.preference_sets)  | preference |
| sst2_pairs          | <data_root>/glue/sst2 (common.preference_sets)                | preference |

Hub ids come from the registry ``common.hub_data`` (AlpacaFarm and summarize_from_feedback are loading scripts there,
read from their parquet conversion). ``local_path`` reads a local json/jsonl/parquet file holding the hub rows instead
(offline machines). ``data_root`` defaults to the shared mirror (``mirror:``, see common.hub_data); the tiny recipe
points it at the shipped ``common/tiny_data``.

CLI: ``python -m pcrm.data --config pcrm/configs/tiny.yaml --section data source=hh_rlhf output_dir=...`` writes
``train.jsonl`` and ``eval.jsonl`` (a seeded split) into ``output_dir``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import hub_data
from common.artifacts import RunDir, write_jsonl
from common.config import ConfigError, UserError, stage_cli
from common.data import read_table, split_records, validate_records
from common.hub_data import MIRROR_PREFIX, hub_id
from common.preference_sets import hh_rlhf_pairs, sst2_sentiment_pairs

ALPACA_PROMPT = "\n\nHuman: {instruction}{input}\n\nAssistant: "
TLDR_PROMPT = ("\n\nHuman: Your task is to generate a short summary of a post.\n\nPost: {post}\n\nSummary: "
               "\n\nAssistant: ")


def alpaca_prompt(row: dict) -> str:
    return ALPACA_PROMPT.format(instruction=row["instruction"], input=row.get("input") or "")


def tldr_prompt(post: str) -> str:
    return TLDR_PROMPT.format(post=post.strip())


def alpaca_sft(row: dict) -> dict:
    return {"prompt": alpaca_prompt(row), "response": row["output"]}


def alpaca_preference(row: dict) -> dict:
    """AlpacaFarm human comparisons: ``preference`` is 1 when output_1 won, 2 when output_2 won."""
    if row["preference"] not in (1, 2):
        raise ValueError(f"preference must be 1 or 2, got {row['preference']!r}")
    first_wins = row["preference"] == 1
    return {"prompt": alpaca_prompt(row), "chosen": row["output_1"] if first_wins else row["output_2"],
            "rejected": row["output_2"] if first_wins else row["output_1"]}


def alpaca_unlabeled(row: dict) -> dict:
    return {"prompt": alpaca_prompt(row)}


_TLDR_POST = re.compile(r"POST:\s*(.*?)\s*(?:TL;DR:\s*)?$", re.DOTALL)


def _tldr_post(prompt_text: str) -> str:
    """The post body of a CarperAI TL;DR prompt ("SUBREDDIT: ...\\nTITLE: ...\\nPOST: ...\\nTL;DR:") [GUESS: the
    upstream summarization frame shows only the post]."""
    match = _TLDR_POST.search(prompt_text)
    if match is None:
        raise ValueError("no 'POST:' field in the TL;DR prompt")
    return match.group(1)


def tldr_sft(row: dict) -> dict:
    return {"prompt": tldr_prompt(_tldr_post(row["prompt"])), "response": row["label"].strip()}


def tldr_prompts(row: dict) -> dict:
    return {"prompt": tldr_prompt(_tldr_post(row["prompt"]))}


def tldr_comparison(row: dict) -> dict:
    """summarize_from_feedback comparisons: two summaries and ``choice`` (0 or 1) = index of the preferred one."""
    texts = [s["text"].strip() for s in row["summaries"]]
    choice = int(row["choice"])
    if choice not in (0, 1) or len(texts) != 2:
        raise ValueError(f"expected two summaries and choice 0/1, got {len(texts)} summaries and choice {choice}")
    return {"prompt": tldr_prompt(row["info"]["post"]), "chosen": texts[choice], "rejected": texts[1 - choice]}


@dataclass(frozen=True)
class HubSource:
    hub_id: str
    subset: str | None
    split: str
    kind: str
    convert: Callable[[dict], dict]


HUB_SOURCES: dict[str, HubSource] = {
    "alpaca_sft": HubSource(hub_id("alpaca_farm"), "alpaca_instructions", "sft", "sft", alpaca_sft),
    "alpaca_preference": HubSource(hub_id("alpaca_farm"), "alpaca_human_preference", "preference", "preference",
                                   alpaca_preference),
    "alpaca_unlabeled": HubSource(hub_id("alpaca_farm"), "alpaca_instructions", "unlabeled", "prompt",
                                  alpaca_unlabeled),
    "tldr_sft": HubSource(hub_id("tldr"), None, "train", "sft", tldr_sft),
    "tldr_comparisons": HubSource(hub_id("tldr_comparisons"), "comparisons", "train", "preference", tldr_comparison),
    "tldr_prompts": HubSource(hub_id("tldr"), None, "train", "prompt", tldr_prompts),
}
SHARED_SOURCES = ("hh_rlhf", "sst2_pairs")
DEFAULT_DATA_ROOT = MIRROR_PREFIX  # the shared mirror's root (common.hub_data.shared_data_root)


@dataclass
class DataConfig:
    """Build one PCRM data set as canonical jsonl: ``train.jsonl`` and ``eval.jsonl`` in ``output_dir``."""

    source: str = field(default="hh_rlhf", metadata={"help": f"{sorted(HUB_SOURCES) + list(SHARED_SOURCES)}"})
    output_dir: str = field(default="runs/pcrm/data", metadata={"help": "run folder for train.jsonl / eval.jsonl"})
    split: str | None = field(default=None, metadata={"help": "hub split (default: the source's own)"})
    local_path: str | None = field(default=None, metadata={"help": "local file of hub rows instead of the hub"})
    data_root: str = field(default=DEFAULT_DATA_ROOT, metadata={
        "help": "data root holding hh-rlhf/ and glue/sst2/, or that folder itself (hh_rlhf, sst2_pairs); mirror: = "
                "the shared mirror"})
    limit: int | None = field(default=None, metadata={"help": "keep this many records (seeded) before splitting"})
    eval_limit: int | None = field(default=None, metadata={"help": "cap on eval.jsonl records"})
    eval_fraction: float = field(default=0.1, metadata={"help": "share of records written to eval.jsonl"})
    sst2_split: str = field(default="train", metadata={"help": "sst2_pairs: train | heldout | dev"})
    sst2_eval_split: str | None = field(default="heldout", metadata={"help": "sst2_pairs: eval from this file "
                                                                              "(disjoint reviews); None: split"})
    hh_subsets: list[str] = field(default_factory=lambda: ["helpful-base", "harmless-base"],
                                  metadata={"help": "hh_rlhf subsets"})
    seed: int = field(default=0, metadata={"help": "seed for subsets, pairing and the split"})
    on_bad_row: str = field(default="skip", metadata={"help": "hh_rlhf: skip (count per reason, in metrics.json) "
                                                              "or error on a malformed row"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished run in output_dir"})

    def __post_init__(self) -> None:
        if self.source not in HUB_SOURCES and self.source not in SHARED_SOURCES:
            known = sorted(HUB_SOURCES) + list(SHARED_SOURCES)
            raise ConfigError(f"data.source: {self.source!r} is not one of {known}")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ConfigError(f"data.eval_fraction: {self.eval_fraction} must be in [0, 1)")
        if self.on_bad_row not in ("skip", "error"):
            raise ConfigError(f"data.on_bad_row: {self.on_bad_row!r} is not one of ['skip', 'error']")


def convert_rows(rows: list[dict], convert: Callable[[dict], dict], where: str) -> list[dict]:
    """Apply a row converter, naming the row when a field is missing or malformed."""
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(convert(row))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{where} row {i + 1}: cannot convert ({type(exc).__name__}: {exc})") from None
    return out


def load_hub_rows(src: HubSource, split: str, local_path: str | None) -> tuple[list[dict], str]:
    if local_path:
        if not Path(local_path).is_file():
            raise UserError(f"data.local_path: {local_path} does not exist")
        return read_table(local_path), local_path
    return hub_data.load_hub_rows(src.hub_id, src.subset, split), f"{src.hub_id}:{split}"


def build_records(cfg: DataConfig, stats: dict | None = None) -> tuple[str, dict[str, list[dict]]]:
    """(record kind, {"train": [...], "eval": [...]}) for ``cfg.source``; ``stats`` receives the hh_rlhf rows read,
    kept and skipped per reason (``common.preference_sets.hh_rlhf_pairs``)."""
    if cfg.source == "sst2_pairs":
        n = cfg.limit or 1000
        train = sst2_sentiment_pairs(cfg.data_root, n, seed=cfg.seed, split=cfg.sst2_split)
        if cfg.sst2_eval_split:
            n_eval = cfg.eval_limit or max(1, int(n * cfg.eval_fraction))
            return "preference", {"train": train, "eval": sst2_sentiment_pairs(cfg.data_root, n_eval, seed=cfg.seed,
                                                                              split=cfg.sst2_eval_split)}
        records, kind = train, "preference"
    elif cfg.source == "hh_rlhf":
        records = hh_rlhf_pairs(cfg.data_root, cfg.hh_subsets, cfg.limit, seed=cfg.seed, prompt_format="hh_text",
                                on_bad_row=cfg.on_bad_row, stats=stats)
        kind = "preference"
    else:
        src = HUB_SOURCES[cfg.source]
        rows, where = load_hub_rows(src, cfg.split or src.split, cfg.local_path)
        records, kind = convert_rows(rows, src.convert, where), src.kind
        if cfg.limit is not None:
            records = split_records(records, {"keep": min(1.0, cfg.limit / max(1, len(records)))}, cfg.seed)["keep"]
    if cfg.eval_fraction == 0:
        parts = {"train": records, "eval": []}
    else:
        parts = split_records(records, {"eval": cfg.eval_fraction, "train": 1 - cfg.eval_fraction}, cfg.seed)
    if cfg.eval_limit is not None:
        parts["eval"] = parts["eval"][:cfg.eval_limit]
    return kind, parts


def run_data(cfg: DataConfig) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    kind, parts = build_records(cfg, stats)
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite)
    metrics: dict[str, Any] = {"kind": kind}
    if stats:  # hh_rlhf: rows read and rows skipped per reason (common.data.HH_SKIP_REASONS)
        metrics.update(source_rows=stats["rows"], skipped_rows=stats["skipped"])
    for name, records in parts.items():
        if records:
            validate_records(records, kind, f"{cfg.source}:{name}")
        write_jsonl(run.path / f"{name}.jsonl", records)
        metrics[f"n_{name}"] = len(records)
    return run.finish(metrics)


def main(argv: list[str] | None = None) -> None:
    stage_cli(DataConfig, run_data, "data", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()
