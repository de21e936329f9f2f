"""Where every dataset of the project comes from: one registry of hub ids, and the shared mirror.

A data source (a stage's ``dataset``, ``source``, ``bbq_data``, ``local_dir``, ``data_root``...) is one of:

- a local file or folder, read as it is (the tiny targets read the shipped ``common/tiny_data``);
- ``mirror:<name>[/<path>]``: ``<path>`` inside dataset ``<name>``'s folder of the *shared mirror*, a local copy of
  some hub sets that the fidelity targets and some tests read (``mirror:bbq``, ``mirror:hh-rlhf/harmless-base``;
  ``mirror:`` alone is the mirror's root). The mirror is found by ``shared_data_root()`` only: the environment
  variable ``RLHF_SHARED_DATA`` (``make ... DATA_ROOT=<folder>`` sets it), else ``shared/data`` in the folder that
  holds the repository. Nothing reads it unless a source names it.
- a hub id, read with ``datasets.load_dataset`` (``load_hub``). Datasets that the hub still serves as a loading
  script (``script=True`` below; ``datasets`` >= 4 refuses to run scripts) are read from the hub's own parquet
  conversion of that repository instead: branch ``refs/convert/parquet``, files
  ``hf://datasets/<id>@~parquet/<config>/<split>/*.parquet`` (the documented alias of that branch,
  https://huggingface.co/docs/dataset-viewer/parquet). A hub id outside the registry gets the same fallback when
  ``datasets`` reports a script.

``DATASETS`` names each set once (hub id, how its subsets are chosen, default split, mirror folder); the loaders of
``common``, the papers and the doc table in common/README.md use these names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from common.config import UserError

MIRROR_ENV = "RLHF_SHARED_DATA"
MIRROR_PREFIX = "mirror:"
REPO_ROOT = Path(__file__).resolve().parent.parent
# The hub's parquet conversion of a dataset repo (branch refs/convert/parquet, alias "@~parquet"); tests point it at
# a local folder in the same layout.
PARQUET_BASE = "hf://datasets"
SCRIPT_ERROR = "Dataset scripts are no longer supported"  # datasets >= 4 (load.py) on a repo holding a loading script


@dataclass(frozen=True)
class HubDataset:
    """One dataset: the hub repo a real run reads, and its folder in the shared mirror (if the mirror has one)."""

    name: str
    hub_id: str
    split: str  # the split the project reads by default
    subsets: Literal["config", "data_dir", "none"] = "none"  # how a subset is chosen: load_dataset's config name,
    # its data_dir (Anthropic/hh-rlhf keeps each subset in a folder of one config), or not at all
    mirror: str | None = None  # folder under the shared mirror holding a local copy (files, not the hub layout)
    script: bool = False  # the hub repo is a loading script: read its parquet conversion
    used_by: str = ""


DATASETS: dict[str, HubDataset] = {d.name: d for d in [
    HubDataset("bbq", "heegyu/bbq", "test", "config", mirror="bbq", script=True,
               used_by="common.eval.bbq (rldf predict, rlchf evaluate); one config per BBQ category"),
    HubDataset("hh-rlhf", "Anthropic/hh-rlhf", "train", "data_dir", mirror="hh-rlhf",
               used_by="ser (hh), common.preference_sets.hh_rlhf_pairs (mirror: test splits only)"),
    HubDataset("hh-golden", "Unified-Language-Model-Alignment/Anthropic_HH_Golden", "train",
               used_by="rlchf candidates (HH harmless with GPT-4-rewritten chosen replies)"),
    HubDataset("glue", "nyu-mll/glue", "validation", "config", mirror="glue",
               used_by="rllr tasks sst2 mrpc qqp mnli stsb rte; common.preference_sets.sst2_sentiment_pairs (mirror)"),
    HubDataset("rotten_tomatoes", "cornell-movie-review-data/rotten_tomatoes", "test", used_by="rllr task mr"),
    HubDataset("ag_news", "fancyzhx/ag_news", "test", used_by="rllr task ag_news"),
    HubDataset("app_reviews", "sealuzh/app_reviews", "train", used_by="rllr task app_reviews"),
    HubDataset("personahub", "proj-persona/PersonaHub", "train", "config", mirror="personahub",
               used_by="rlchf personas (config persona)"),
    HubDataset("alpaca_farm", "tatsu-lab/alpaca_farm", "sft", "config", script=True,
               used_by="pcrm alpaca_sft / alpaca_preference / alpaca_unlabeled"),
    HubDataset("tldr", "CarperAI/openai_summarize_tldr", "train", used_by="pcrm tldr_sft / tldr_prompts"),
    HubDataset("tldr_comparisons", "openai/summarize_from_feedback", "train", "config", script=True,
               used_by="pcrm tldr_comparisons (config comparisons)"),
    HubDataset("summarize", "HuggingFaceH4/summarize-from-feedback", "train", used_by="ser (summarize)"),
    HubDataset("ultrafeedback", "HuggingFaceH4/ultrafeedback_binarized", "train_prefs", used_by="ser (ultrafeedback)"),
    HubDataset("stackexchange", "HuggingFaceH4/stack-exchange-preferences", "train", used_by="ser (stackexchange)"),
    HubDataset("rewardbench", "allenai/reward-bench", "filtered", used_by="common.eval.rewardbench"),
]}
_BY_HUB_ID = {d.hub_id: d for d in DATASETS.values()}


def dataset(name: str) -> HubDataset:
    """The registry entry ``name``; an unknown name is a one-line UserError listing the known ones."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; registered (common/hub_data.py): {sorted(DATASETS)}")
    return DATASETS[name]


def hub_id(name: str) -> str:
    return dataset(name).hub_id


def by_hub_id(source: str) -> HubDataset | None:
    """The registry entry of a hub id, or None for a hub id the registry does not list."""
    return _BY_HUB_ID.get(source)


# --- The shared mirror. ------------------------------------------------------------------------------------------


def shared_data_root() -> Path:
    """The shared mirror: $RLHF_SHARED_DATA, else shared/data in the folder that holds the repository. The one place
    that knows where it is; it may not exist (a fresh clone has none)."""
    env = os.environ.get(MIRROR_ENV, "").strip()
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared" / "data"


def is_mirror(source: Any) -> bool:
    return isinstance(source, str) and source.startswith(MIRROR_PREFIX)


def resolve_mirror(ref: str) -> Path:
    """``mirror:<name>[/<path>]`` -> that path in the shared mirror. A missing mirror, an unknown or unmirrored
    dataset name, or a path the mirror does not hold is a one-line UserError saying how to point at the mirror."""
    rest = ref[len(MIRROR_PREFIX):].strip().strip("/")
    root = shared_data_root()
    if not root.is_dir():
        raise UserError(f"{ref}: the shared mirror {root} does not exist; point at it with DATA_ROOT=<folder> (make) "
                        f"or {MIRROR_ENV}=<folder>, or name a hub id or a local path instead")
    if not rest:
        return root
    name, _, sub = rest.partition("/")
    mirrored = sorted(n for n, d in DATASETS.items() if d.mirror)
    if name not in DATASETS or not DATASETS[name].mirror:
        what = "has no mirror folder" if name in DATASETS else "is not a registered dataset"
        raise UserError(f"{ref}: {name!r} {what}; mirror sources are mirror:<name>[/<path>] with <name> one of "
                        f"{mirrored}")
    path = root / DATASETS[name].mirror / sub
    if not path.exists():
        raise UserError(f"{ref}: {path} does not exist in the shared mirror {root}")
    return path


def local_source(source: str) -> str:
    """``source`` with a ``mirror:`` reference resolved to its path (str); anything else unchanged."""
    return str(resolve_mirror(source)) if is_mirror(source) else source


# --- The hub. ----------------------------------------------------------------------------------------------------


def hub_call(source: str, subset: str | None, split: str) -> tuple[tuple, dict[str, Any]]:
    """The ``datasets.load_dataset(*args, **kwargs)`` that reads ``split`` of hub id ``source`` (and ``subset``)."""
    entry = by_hub_id(source)
    if entry is not None and entry.subsets == "data_dir":
        return (source,), {"data_dir": subset, "split": split} if subset else {"split": split}
    return (source, subset), {"split": split}


def parquet_files(source: str, subset: str | None, split: str) -> str:
    """The hub's parquet conversion of one split (config ``default`` when the repo has no config names)."""
    return f"{PARQUET_BASE}/{source}@~parquet/{subset or 'default'}/{split}/*.parquet"


def parquet_call(source: str, subset: str | None, split: str) -> tuple[tuple, dict[str, Any]]:
    return ("parquet",), {"data_files": {split: parquet_files(source, subset, split)}, "split": split}


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def load_hub(source: str, subset: str | None = None, split: str = "train"):
    """``split`` of hub dataset ``source`` (a ``datasets.Dataset``), read directly or, for a loading-script repo,
    from its parquet conversion. Any failure is a one-line UserError naming the id, subset and split."""
    try:
        import datasets
    except ImportError:
        raise UserError(f"{source}: reading a hub dataset needs the `datasets` package") from None
    where = f"{source} (subset {subset!r}, split {split!r})"
    entry = by_hub_id(source)
    if entry is None or not entry.script:
        args, kwargs = hub_call(source, subset, split)
        try:
            return datasets.load_dataset(*args, **kwargs)
        except RuntimeError as exc:
            if SCRIPT_ERROR not in str(exc):
                raise UserError(f"{where}: cannot load from the hub: {_first_line(exc)}") from None
        except (FileNotFoundError, ValueError, ConnectionError, OSError) as exc:
            raise UserError(f"{where}: cannot load from the hub: {_first_line(exc)}") from None
    args, kwargs = parquet_call(source, subset, split)
    try:
        return datasets.load_dataset(*args, **kwargs)
    except (FileNotFoundError, ValueError, ConnectionError, OSError, RuntimeError) as exc:
        raise UserError(f"{where}: a loading-script dataset, read from its parquet conversion "
                        f"{parquet_files(source, subset, split)}, which cannot be loaded: {_first_line(exc)}; "
                        "pass a local copy instead") from None


def load_hub_rows(source: str, subset: str | None = None, split: str = "train") -> list[dict]:
    return [dict(r) for r in load_hub(source, subset, split)]
