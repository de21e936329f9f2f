"""Datasets as canonical records (plain dicts), from local files or the hub, with validation that names row and field.

Record kinds (see common/README.md):

- ``preference``: ``{"prompt": str | messages, "chosen": str, "rejected": str, "margin"?: float, ...extras}``
- ``sft``: ``{"prompt": str | messages, "response": str}`` or ``{"messages": messages}`` (ending with an assistant turn)
- ``prompt``: ``{"prompt": str | messages, ...extras}`` (RL prompts)

``source`` is a local ``.jsonl/.json/.parquet/.csv/.tsv`` file (optionally ``.gz``), a folder holding
``<split>.<ext>`` (e.g. ``/work/shared/data/hh-rlhf/helpful-base`` with split ``test``), or a hub id read with
``datasets.load_dataset(source, subset, split=split)``. ``columns`` maps canonical names to source columns
(``{"prompt": "question", "chosen": "response_j"}``); every other column is kept as an extra.
``source_format: hh_rlhf`` turns Anthropic HH-RLHF rows (two full transcripts) into canonical preference records
(``sft`` kind: prompt + the chosen reply; ``prompt`` kind: the dialogue up to the final reply).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from common.config import UserError

Kind = Literal["preference", "sft", "prompt"]
log = logging.getLogger(__name__)
KINDS = ("preference", "sft", "prompt")
FILE_TYPES = (".jsonl", ".json", ".parquet", ".csv", ".tsv")
SOURCE_FORMATS = ("canonical", "hh_rlhf")


class DataError(UserError):
    """A dataset cannot be used as given; the message names the file, the row (1-based) and the field."""


@dataclass
class DataSpec:
    """Where one stage's data comes from. Stage configs are flat, so they hold these as ``dataset*`` fields and call
    ``DataSpec.from_fields(...)``."""

    source: str = field(metadata={"help": "local file/folder (.jsonl/.json/.parquet/.csv/.tsv[.gz]) or hub id"})
    split: str = field(default="train", metadata={"help": "split name (hub) or file stem inside a folder source"})
    subset: str | None = field(default=None, metadata={"help": "hub config name (load_dataset's second argument)"})
    columns: dict[str, str] | None = field(default=None, metadata={"help": "canonical name -> source column"})
    limit: int | None = field(default=None, metadata={"help": "seeded random subset of this many rows (file order)"})
    source_format: str = field(default="canonical", metadata={"help": f"one of {list(SOURCE_FORMATS)}"})

    @classmethod
    def from_fields(cls, source: str, split: str = "train", subset: str | None = None,
                    columns: dict[str, str] | None = None, limit: int | None = None,
                    source_format: str = "canonical") -> DataSpec:
        return cls(source=source, split=split, subset=subset, columns=columns, limit=limit,
                   source_format=source_format)

    def load(self, kind: Kind, seed: int = 0) -> list[dict]:
        return load_records(self.source, kind, split=self.split, subset=self.subset, columns=self.columns,
                            limit=self.limit, seed=seed, source_format=self.source_format)


# --- Reading files. ------------------------------------------------------------------------------------------


def _file_type(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext not in FILE_TYPES:
        raise DataError(f"{path}: unsupported file type {ext or '(none)'!r}; use one of {list(FILE_TYPES)} "
                        "(optionally .gz)")
    return ext


def _open_text(path: Path) -> io.TextIOBase:
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix.lower() == ".gz" else path.open(encoding="utf-8")


def read_table(path: str | Path) -> list[dict]:
    """Rows of one local file as dicts, in file order."""
    path = Path(path)
    ext = _file_type(path)
    if ext == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict(orient="records")
    with _open_text(path) as fh:
        if ext == ".jsonl":
            rows = []
            for i, line in enumerate(fh):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path} row {i + 1}: not valid JSON ({exc.msg})") from None
            return rows
        if ext == ".json":
            try:
                data = json.load(fh)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
            if isinstance(data, dict) and isinstance(data.get("data"), list):
                data = data["data"]
            if not isinstance(data, list):
                raise DataError(f"{path}: expected a JSON list of records (or {{'data': [...]}})")
            return data
        # csv/tsv: every value stays a string. GLUE-style .tsv files hold bare quotes, so no quoting there.
        if ext == ".tsv":
            return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
        return list(csv.DictReader(fh))


def resolve_local(source: str, split: str) -> Path | None:
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.name.split(".")[0] == split
                       and any(s.lower() in FILE_TYPES for s in p.suffixes))
        if not found:
            raise DataError(f"{path}: no file for split {split!r} (looked for {split}.jsonl/.json/.parquet/.csv/.tsv"
                            "[.gz]); set the split to one of the file stems there")
        return found[0]
    looks_local = source.startswith((".", "/", "~")) or any(
        source.lower().endswith(ext) or source.lower().endswith(ext + ".gz") for ext in FILE_TYPES)
    if looks_local:
        raise DataError(f"{source}: no such file or folder")
    return None


def _load_hub(source: str, subset: str | None, split: str) -> list[dict]:
    try:
        import datasets
    except ImportError:
        raise DataError(f"{source}: reading a hub dataset needs the `datasets` package") from None
    try:
        ds = datasets.load_dataset(source, subset, split=split)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as exc:
        raise DataError(f"{source} (subset {subset!r}, split {split!r}): cannot load from the hub: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return [dict(r) for r in ds]


# --- Canonical records. --------------------------------------------------------------------------------------


def _required(kind: str) -> tuple[str, ...]:
    return {"preference": ("prompt", "chosen", "rejected"), "sft": ("prompt", "response"), "prompt": ("prompt",)}[kind]


def apply_columns(rows: list[dict], columns: dict[str, str] | None, where: str) -> list[dict]:
    """Rename source columns to canonical names; every other column is kept as it is."""
    if not columns:
        return rows
    out = []
    for i, row in enumerate(rows):
        rec = dict(row)
        for canonical, src in columns.items():
            if src not in row:
                raise DataError(f"{where} row {i + 1}: field {src!r} (mapped to {canonical!r}) is missing; "
                                f"columns there: {sorted(row)}")
            rec.pop(src)
            rec[canonical] = row[src]
        out.append(rec)
    return out


def _check_messages(value: Any, where: str, last_role: str | None) -> None:
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: expected a non-empty list of messages, got {type(value).__name__}")
    for j, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                or not isinstance(m.get("content"), str):
            raise DataError(f"{where}[{j}]: expected {{'role': system|user|assistant, 'content': str}}, got {m!r}")
    if last_role is not None and value[-1]["role"] != last_role:
        raise DataError(f"{where}: the last message must be a turn of role {last_role!r}, got {value[-1]['role']!r}")


def validate_records(records: list[dict], kind: Kind, where: str) -> None:
    """Refuse an empty dataset, a missing field, a non-string text field, bad messages or chosen == rejected."""
    if kind not in KINDS:
        raise DataError(f"{where}: unknown record kind {kind!r}; known: {list(KINDS)}")
    if not records:
        raise DataError(f"{where}: the dataset is empty (0 rows); check the path, split and limit")
    for i, rec in enumerate(records):
        at = f"{where} row {i + 1}"
        if not isinstance(rec, dict):
            raise DataError(f"{at}: expected a record (mapping), got {type(rec).__name__}")
        if kind == "sft" and "messages" in rec and "prompt" not in rec:
            _check_messages(rec["messages"], f"{at}, field 'messages'", last_role="assistant")
            continue
        for name in _required(kind):
            if name not in rec or rec[name] is None:
                raise DataError(f"{at}: field {name!r} is missing; fields there: {sorted(rec)}. "
                                "Map a source column onto it with `columns`")
        if not isinstance(rec["prompt"], str):
            _check_messages(rec["prompt"], f"{at}, field 'prompt'", last_role="user")
        for name in _required(kind)[1:]:
            if not isinstance(rec[name], str):
                raise DataError(f"{at}, field {name!r}: expected a string, got {type(rec[name]).__name__} "
                                f"({rec[name]!r:.60})")
        if kind == "preference":
            if rec["chosen"] == rec["rejected"]:
                raise DataError(f"{at}, field 'rejected': identical to 'chosen'; drop the pair or fix the data")
            margin = rec.get("margin")
            if margin is not None and (isinstance(margin, bool) or not isinstance(margin, (int, float))):
                raise DataError(f"{at}, field 'margin': expected a number, got {margin!r}")


def load_records(source: str, kind: Kind, split: str = "train", subset: str | None = None,
                 columns: dict[str, str] | None = None, limit: int | None = None, seed: int = 0,
                 source_format: str = "canonical") -> list[dict]:
    """Canonical records of ``kind`` from a local file/folder or a hub dataset, validated.

    ``limit`` keeps a seeded random subset of that many rows, in their original order (so a tiny run sees a
    spread of the data, not only its first rows). Validation runs before the subset, so row numbers in errors are
    the file's.
    """
    if kind not in KINDS:
        raise DataError(f"unknown record kind {kind!r}; known: {list(KINDS)}")
    if source_format not in SOURCE_FORMATS:
        raise DataError(f"{source}: source_format {source_format!r} is not one of {list(SOURCE_FORMATS)}")
    if limit is not None and limit < 1:
        raise DataError(f"{source}: limit must be a positive number of rows, got {limit}")
    path = resolve_local(source, split)
    where = str(path) if path is not None else f"{source}[{subset or 'default'}:{split}]"
    rows = read_table(path) if path is not None else _load_hub(source, subset, split)
    rows = apply_columns(rows, columns, where)
    if source_format == "hh_rlhf":
        rows = hh_rlhf_to_preference(rows, where)
        if kind != "preference":  # sft trains on the chosen reply; RL prompts keep only the dialogue so far
            rows = [{**{k: v for k, v in r.items() if k not in ("chosen", "rejected")},
                     **({"response": r["chosen"]} if kind == "sft" else {})} for r in rows]
    validate_records(rows, kind, where)
    if limit is not None and limit < len(rows):
        keep = sorted(random.Random(seed).sample(range(len(rows)), limit))
        rows = [rows[i] for i in keep]
    return rows


def split_records(records: list[dict], fractions: dict[str, float], seed: int = 0) -> dict[str, list[dict]]:
    """Seeded random disjoint splits, e.g. ``{"train": 0.9, "eval": 0.1}``. Fractions must sum to at most 1; when
    they sum to 1 the last split takes the rounding remainder, so every record lands somewhere."""
    if not fractions or any(not 0 < f <= 1 for f in fractions.values()):
        raise DataError(f"split fractions must each lie in (0, 1], got {fractions}")
    total = sum(fractions.values())
    if total > 1 + 1e-9:
        raise DataError(f"split fractions sum to {total:.4f} > 1: {fractions}")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    out, start = {}, 0
    names = list(fractions)
    for k, name in enumerate(names):
        last = k == len(names) - 1
        n = len(records) - start if last and abs(total - 1) < 1e-9 else int(len(records) * fractions[name])
        out[name] = [records[i] for i in order[start:start + n]]
        start += n
    return out


# --- Anthropic HH-RLHF ("\n\nHuman: ...\n\nAssistant: ..."). --------------------------------------------------

_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def split_hh_dialogue(text: str) -> tuple[list[dict[str, str]], str]:
    """(prompt messages ending with the user's last turn, final assistant reply) of one HH-RLHF transcript.

    Turns are the text after each ``\\n\\nHuman:`` / ``\\n\\nAssistant:`` marker, stripped. A few upstream transcripts
    have two turns of one speaker in a row (a marker lost its blank line); those are joined with a blank line so the
    messages alternate. The final reply may be empty (some HH rows end with a bare ``Assistant:``).
    """
    parts = _HH_TURN.split(text)
    if len(parts) < 3 or parts[0].strip():
        raise DataError(f"not an HH-RLHF transcript (expected it to start with '\\n\\nHuman:'): {text[:80]!r}")
    messages: list[dict[str, str]] = []
    for speaker, content in zip(parts[1::2], parts[2::2]):
        role = "user" if speaker == "Human" else "assistant"
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n\n" + content.strip()
        else:
            messages.append({"role": role, "content": content.strip()})
    if messages[0]["role"] != "user" or messages[-1]["role"] != "assistant":
        raise DataError(f"HH-RLHF transcript must start with Human and end with Assistant: {text[:80]!r}")
    return messages[:-1], messages[-1]["content"]


def hh_rlhf_to_preference(rows: list[dict], where: str) -> list[dict]:
    """HH rows ``{chosen, rejected}`` (two full transcripts) -> ``{prompt: messages, chosen, rejected}``.

    Pairs whose two final replies are identical (2 of the 2,354 helpful-base test rows) carry no preference and are
    dropped with a log line. Pairs whose transcripts disagree before the final reply are kept with the chosen side's
    prompt and flagged ``hh_prompt_mismatch: true`` (none in the shared test splits once turns are normalised).
    """
    out, ties = [], []
    for i, row in enumerate(rows):
        for name in ("chosen", "rejected"):
            if not isinstance(row.get(name), str):
                raise DataError(f"{where} row {i + 1}, field {name!r}: expected an HH-RLHF transcript string")
        try:
            prompt, chosen = split_hh_dialogue(row["chosen"])
            prompt_r, rejected = split_hh_dialogue(row["rejected"])
        except DataError as exc:
            raise DataError(f"{where} row {i + 1}: {exc}") from None
        extras = {k: v for k, v in row.items() if k not in ("chosen", "rejected")}
        rec = {**extras, "prompt": prompt, "chosen": chosen, "rejected": rejected}
        if prompt_r != prompt:
            rec["hh_prompt_mismatch"] = True
        if chosen == rejected:
            ties.append(i + 1)
            continue
        out.append(rec)
    if ties:
        log.warning("%s: dropped %d HH-RLHF pairs whose chosen and rejected replies are identical (rows %s)",
                    where, len(ties), ties[:10])
    return out
