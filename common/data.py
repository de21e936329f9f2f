"""Datasets as canonical records (plain dicts), from local files or the hub, with validation that names row and field.

Record kinds (see common/README.md):

- ``preference``: ``{"prompt": str | messages, "chosen": str, "rejected": str, "margin"?: float, ...extras}``
- ``sft``: ``{"prompt": str | messages, "response": str}`` or ``{"messages": messages}`` (ending with an assistant turn)
- ``prompt``: ``{"prompt": str | messages, ...extras}`` (RL prompts)

``source`` is a local ``.jsonl/.json/.parquet/.csv/.tsv`` file (optionally ``.gz``), a folder holding
``<split>.<ext>`` (e.g. ``mirror:hh-rlhf/helpful-base``, a folder of the shared mirror, with split ``test``), or a
hub id read through ``common.hub_data.load_hub`` (``datasets.load_dataset``; a loading-script repo through its parquet
conversion). ``mirror:`` references resolve in ``common.hub_data``. ``columns`` maps canonical names to source columns
(``{"prompt": "question", "chosen": "response_j"}``); every other column is kept as an extra.
``source_format: hh_rlhf`` turns Anthropic HH-RLHF rows (two full transcripts) into canonical preference records
(``sft`` kind: prompt + the chosen reply; ``prompt`` kind: the dialogue up to the final reply). This module holds the
one HH-RLHF transcript parser of the project (``split_hh_dialogue``, ``parse_hh_pair``); ``common.preference_sets``
and ``ser.pairs`` call it. Malformed HH rows are skipped and counted per reason (``HH_SKIP_REASONS``), or fatal with
``on_bad_row: error``.

A file that cannot be read (not UTF-8, a truncated or non-gzip ``.gz``, a broken parquet file) is a ``DataError``
naming the file, and the line where it is known.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import random
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from common.config import ConfigError, UserError
from common.hub_data import load_hub_rows, local_source

Kind = Literal["preference", "sft", "prompt"]
log = logging.getLogger(__name__)
KINDS = ("preference", "sft", "prompt")
FILE_TYPES = (".jsonl", ".json", ".parquet", ".csv", ".tsv")
SOURCE_FORMATS = ("canonical", "hh_rlhf")
ON_BAD_ROW = ("skip", "error")
# help text of the ``on_bad_row`` field of the stage configs that load data through this module (SFT, RM/DPO, RL)
ON_BAD_ROW_HELP = ("source_format hh_rlhf: skip a malformed row (counted per reason in metrics.json: data_rows, "
                   "data_skipped) or error (stop at the first, naming file:row)")


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
    on_bad_row: str = field(default="skip", metadata={"help": "skip (count and report) or error on a malformed "
                                                              "HH-RLHF row"})

    @classmethod
    def from_fields(cls, source: str, split: str = "train", subset: str | None = None,
                    columns: dict[str, str] | None = None, limit: int | None = None,
                    source_format: str = "canonical", on_bad_row: str = "skip") -> DataSpec:
        return cls(source=source, split=split, subset=subset, columns=columns, limit=limit,
                   source_format=source_format, on_bad_row=on_bad_row)

    def load(self, kind: Kind, seed: int = 0, stats: dict | None = None) -> list[dict]:
        return load_records(self.source, kind, split=self.split, subset=self.subset, columns=self.columns,
                            limit=self.limit, seed=seed, source_format=self.source_format,
                            on_bad_row=self.on_bad_row, stats=stats)


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


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it ends in ``.gz``; a missing, truncated or non-gzip file is a DataError."""
    gz = path.suffix.lower() == ".gz"
    try:
        if not gz:
            return path.read_bytes()
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except gzip.BadGzipFile as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc}); recompress it with gzip or drop the .gz "
                        "suffix") from None
    except EOFError:
        raise DataError(f"{path}: the gzip stream is truncated (the file ends before its end marker); copy or "
                        "download it again") from None
    except zlib.error as exc:
        raise DataError(f"{path}: corrupt gzip data ({exc}); copy or download it again") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def _utf8_lines(path: Path, raw: bytes) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of each line; a line that is not UTF-8 is a DataError naming it."""
    for line_no, line in enumerate(raw.split(b"\n"), start=1):
        try:
            yield line_no, line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path} line {line_no}: not valid UTF-8 (byte 0x{line[exc.start]:02x} at column "
                            f"{exc.start + 1}); save the file as UTF-8") from None


def _text_stream(path: Path, raw: bytes) -> io.TextIOBase:
    """The bytes as a text file (universal newlines, as ``open`` gives), after checking every line is UTF-8."""
    for _ in _utf8_lines(path, raw):
        pass
    return io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8")


def _read_parquet(path: Path, raw: bytes) -> list[dict]:
    import pandas as pd

    try:
        return pd.read_parquet(io.BytesIO(raw)).to_dict(orient="records")
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: not a readable parquet file ({first})") from None


def read_table(path: str | Path) -> list[dict]:
    """Rows of one local file as dicts, in file order. Blank jsonl lines are skipped; an unreadable file (not
    UTF-8, a truncated or non-gzip ``.gz``, a broken parquet file, bad JSON) is a DataError naming the file and,
    where it is known, the line."""
    path = Path(path)
    ext = _file_type(path)
    raw = _read_bytes(path)
    if ext == ".parquet":
        return _read_parquet(path, raw)
    if ext == ".jsonl":
        rows = []
        for line_no, line in _utf8_lines(path, raw):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path} row {line_no}: not valid JSON ({exc.msg})") from None
        return rows
    with _text_stream(path, raw) as fh:
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
    """The local file ``source`` names (a file, or ``<split>.<ext>`` in a folder; ``mirror:`` resolved), or None
    for a hub id."""
    try:
        source = local_source(source)
    except UserError as exc:
        raise DataError(str(exc)) from None
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
        return load_hub_rows(source, subset, split)
    except UserError as exc:
        raise DataError(str(exc)) from None


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
                 source_format: str = "canonical", on_bad_row: str = "skip",
                 stats: dict | None = None) -> list[dict]:
    """Canonical records of ``kind`` from a local file/folder or a hub dataset, validated.

    ``limit`` keeps a seeded random subset of that many rows, in their original order (so a tiny run sees a
    spread of the data, not only its first rows). Validation runs before the subset, so row numbers in errors are
    the file's.

    ``source_format: hh_rlhf``: malformed rows (``HH_SKIP_REASONS``) are skipped, counted per reason and reported
    in one warning line (``on_bad_row: skip``), or stop the load with a DataError naming ``file:row`` and the reason
    (``on_bad_row: error``). Canonical records are always validated strictly. ``stats``, when given, receives
    ``{"rows": rows read, "kept": records kept before ``limit``, "skipped": {reason: count}}`` (added to what it
    holds, so one dict can sum several loads).
    """
    if kind not in KINDS:
        raise DataError(f"unknown record kind {kind!r}; known: {list(KINDS)}")
    if source_format not in SOURCE_FORMATS:
        raise DataError(f"{source}: source_format {source_format!r} is not one of {list(SOURCE_FORMATS)}")
    check_on_bad_row(on_bad_row, source)
    if limit is not None and limit < 1:
        raise DataError(f"{source}: limit must be a positive number of rows, got {limit}")
    path = resolve_local(source, split)
    where = str(path) if path is not None else f"{source}[{subset or 'default'}:{split}]"
    rows = read_table(path) if path is not None else _load_hub(source, subset, split)
    rows = apply_columns(rows, columns, where)
    if source_format == "hh_rlhf":
        rows = hh_rlhf_to_preference(rows, where, on_bad_row=on_bad_row, stats=stats)
        if kind != "preference":  # sft trains on the chosen reply; RL prompts keep only the dialogue so far
            rows = [{**{k: v for k, v in r.items() if k not in ("chosen", "rejected")},
                     **({"response": r["chosen"]} if kind == "sft" else {})} for r in rows]
    elif stats is not None:
        add_skip_stats(stats, len(rows), len(rows), {})
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


# --- Anthropic HH-RLHF ("\n\nHuman: ...\n\nAssistant: ..."): the one transcript parser. -------------------------

# A turn starts at "\n\nHuman:" or "\n\nAssistant:": the blank line is part of the marker, as in Anthropic's own
# prompt format (its Text Completions API refuses "\nAssistant:" with one newline as a turn). "Human:" or
# "Assistant:" after anything else (one newline, a space, mid-sentence) is text of the current turn: HH replies
# quote or invent such lines ("Assistant: Human: ..."). Only the very first marker may stand at the start of the
# text without its blank line (the API accepts that too).
_HH_TURN = re.compile(r"(?:\A|\n\n)(Human|Assistant):")
HH_SKIP_REASONS = {
    "unparseable": "not an HH-RLHF transcript pair (a field missing or not a string, text before the first "
                   "'\\n\\nHuman:' turn, or a transcript opening with the Assistant)",
    "no_final_assistant": "a transcript ends with a Human turn, so there is no final Assistant reply to compare",
    "prompt_mismatch": "the chosen and rejected transcripts differ before the final reply",
    "empty_reply": "a final Assistant reply is empty",
    "identical_replies": "the chosen and rejected replies are identical (no preference)",
}
# Rows that are malformed, as opposed to well-formed pairs that carry no preference (identical replies): only these
# stop a load under on_bad_row: error; identical replies are always skipped and counted.
HH_MALFORMED = ("unparseable", "no_final_assistant", "prompt_mismatch", "empty_reply")


class HHRowError(DataError):
    """One HH-RLHF row or transcript that cannot give a preference pair; ``reason`` is a key of HH_SKIP_REASONS."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{detail} [{reason}]")
        self.reason, self.detail = reason, detail


def check_on_bad_row(on_bad_row: str, where: str) -> None:
    if on_bad_row not in ON_BAD_ROW:
        raise DataError(f"{where}: on_bad_row {on_bad_row!r} is not one of {list(ON_BAD_ROW)}")


def check_on_bad_row_setting(on_bad_row: str, key: str) -> None:
    """A stage config's ``on_bad_row`` (``key`` its full name, e.g. ``sft.on_bad_row``): a one-line ConfigError."""
    if on_bad_row not in ON_BAD_ROW:
        raise ConfigError(f"{key}: {on_bad_row!r} is not one of {list(ON_BAD_ROW)} (skip: count malformed HH-RLHF "
                          "rows per reason in metrics.json; error: stop at the first, naming file:row)")


def data_metrics(stats: dict) -> dict:
    """A stage's load ``stats`` (add_skip_stats: summed over the files it read) as metrics.json entries:
    ``data_rows`` (rows read) and ``data_skipped`` ({reason: count}, HH_SKIP_REASONS); {} when nothing was counted."""
    if not stats:
        return {}
    return {"data_rows": stats.get("rows", 0), "data_skipped": dict(stats.get("skipped", {}))}


def split_hh_dialogue(text: str) -> tuple[list[dict[str, str]], str]:
    """(prompt messages ending with the user's last turn, final assistant reply) of one HH-RLHF transcript.

    Turns are the text after each ``\\n\\nHuman:`` / ``\\n\\nAssistant:`` marker (see ``_HH_TURN`` for the rule on
    markers without their blank line), stripped. Two turns of one speaker in a row (a few upstream transcripts) are
    joined with a blank line so the messages alternate. The final reply may be empty here (``parse_hh_pair`` skips
    such pairs). Raises HHRowError ``unparseable`` (no Human turn at the start) or ``no_final_assistant``.
    """
    parts = _HH_TURN.split(text)
    if len(parts) < 3 or parts[0].strip():
        raise HHRowError("unparseable", f"not an HH-RLHF transcript (expected it to start with '\\n\\nHuman:'): "
                                        f"{text[:60]!r}")
    messages: list[dict[str, str]] = []
    for speaker, content in zip(parts[1::2], parts[2::2]):
        role = "user" if speaker == "Human" else "assistant"
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n\n" + content.strip()
        else:
            messages.append({"role": role, "content": content.strip()})
    if messages[0]["role"] != "user":
        raise HHRowError("unparseable", f"the transcript opens with an Assistant turn, not a Human one: {text[:60]!r}")
    if messages[-1]["role"] != "assistant":
        raise HHRowError("no_final_assistant", f"the transcript ends with a Human turn, not the compared Assistant "
                                               f"reply: ...{text[-60:]!r}")
    return messages[:-1], messages[-1]["content"]


def parse_hh_pair(row: Any) -> dict:
    """One HH-RLHF row ``{chosen, rejected, ...}`` (two full transcripts) -> ``{...extras, prompt: messages,
    chosen, rejected}``, or HHRowError with the reason (checked in the order of HH_SKIP_REASONS)."""
    if not isinstance(row, dict):
        raise HHRowError("unparseable", f"expected a record with 'chosen' and 'rejected', got {type(row).__name__}")
    parsed = {}
    for name in ("chosen", "rejected"):
        text = row.get(name)
        if not isinstance(text, str):
            raise HHRowError("unparseable", f"field {name!r}: expected an HH-RLHF transcript string, got "
                                            f"{type(text).__name__}")
        try:
            parsed[name] = split_hh_dialogue(text)
        except HHRowError as exc:
            raise HHRowError(exc.reason, f"field {name!r}: {exc.detail}") from None
    (prompt, chosen), (prompt_r, rejected) = parsed["chosen"], parsed["rejected"]
    if prompt_r != prompt:
        turn = next((j for j, (a, b) in enumerate(zip(prompt, prompt_r)) if a != b), min(len(prompt), len(prompt_r)))
        raise HHRowError("prompt_mismatch", f"field 'rejected': its dialogue differs from 'chosen' before the final "
                                            f"reply (from turn {turn + 1} on)")
    for name, reply in (("chosen", chosen), ("rejected", rejected)):
        if not reply:
            raise HHRowError("empty_reply", f"field {name!r}: the final Assistant reply is empty")
    if chosen == rejected:
        raise HHRowError("identical_replies", "field 'rejected': the final reply is identical to 'chosen'")
    extras = {k: v for k, v in row.items() if k not in ("chosen", "rejected")}
    return {**extras, "prompt": prompt, "chosen": chosen, "rejected": rejected}


def add_skip_stats(stats: dict, rows: int, kept: int, skipped: dict[str, int]) -> dict:
    """Add one load's counts to ``stats`` = ``{"rows", "kept", "skipped": {reason: count}}`` (created if empty)."""
    stats["rows"] = stats.get("rows", 0) + rows
    stats["kept"] = stats.get("kept", 0) + kept
    total = stats.setdefault("skipped", {})
    for reason, n in skipped.items():
        total[reason] = total.get(reason, 0) + n
    return stats


class BadRows:
    """Skipped rows of one file per reason. ``on_bad_row: error`` turns a malformed row (HH_MALFORMED) into a
    DataError ``<where>:<row>: <detail> [<reason>]``; ``report`` logs one warning line with the counts."""

    def __init__(self, where: str, on_bad_row: str = "skip"):
        check_on_bad_row(on_bad_row, where)
        self.where, self.on_bad_row = where, on_bad_row
        self.rows: dict[str, list[int]] = {}

    def skip(self, row_no: int, exc: HHRowError) -> None:
        if self.on_bad_row == "error" and exc.reason in HH_MALFORMED:
            raise DataError(f"{self.where}:{row_no}: {exc.detail} [{exc.reason}]; set on_bad_row: skip to skip and "
                            "count such rows") from None
        self.rows.setdefault(exc.reason, []).append(row_no)

    @property
    def counts(self) -> dict[str, int]:
        return {reason: len(self.rows[reason]) for reason in HH_SKIP_REASONS if reason in self.rows}

    def report(self, n_rows: int, kept: int, stats: dict | None = None) -> None:
        """One warning line with the counts per reason (and the first rows of each); a DataError instead when every
        row was skipped, since nothing of the file can then be used."""
        if self.rows:
            parts = [f"{reason} {len(rows)} (rows {', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''})"
                     for reason, rows in ((r, self.rows[r]) for r in HH_SKIP_REASONS if r in self.rows)]
            if kept == 0:
                raise DataError(f"{self.where}: none of its {n_rows} HH-RLHF rows gives a preference pair (skipped: "
                                f"{'; '.join(parts)}); check that it holds HH-RLHF transcripts")
            log.warning("%s: skipped %d of %d HH-RLHF rows: %s", self.where, n_rows - kept, n_rows, "; ".join(parts))
        if stats is not None:
            add_skip_stats(stats, n_rows, kept, self.counts)


def hh_rlhf_to_preference(rows: list[dict], where: str, on_bad_row: str = "skip",
                          stats: dict | None = None) -> list[dict]:
    """HH rows ``{chosen, rejected}`` (two full transcripts) -> ``{prompt: messages, chosen, rejected}``.

    Rows that give no pair (HH_SKIP_REASONS: e.g. 2 of the 2,354 helpful-base test rows have identical replies, 4
    an empty one) are skipped, counted per reason and reported in one warning line; ``on_bad_row: error`` makes a
    malformed one (HH_MALFORMED) a DataError naming ``where:row``. ``stats`` receives the counts (add_skip_stats).
    """
    bad = BadRows(where, on_bad_row)
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(parse_hh_pair(row))
        except HHRowError as exc:
            bad.skip(i + 1, exc)
    bad.report(len(rows), len(out), stats)
    return out
