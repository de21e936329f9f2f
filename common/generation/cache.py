"""The resumable jsonl cache every generation job writes: one line per (model, messages, sampling, sample index).

A record is appended, flushed and fsynced the moment its answer arrives, so a job killed at any point loses at most
the request in flight. On the next run the file is read back, only the missing keys are requested, and a key already
present is never written twice. A writer killed mid-line leaves a torn last line: it is dropped with a warning and
the file is truncated back to its last whole record. Any other unreadable line is real corruption and an error.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.config import UserError

if TYPE_CHECKING:
    from typing import Self

log = logging.getLogger(__name__)


def request_key(model: str, messages: list[dict], params: dict[str, Any], sample: int) -> str:
    """sha256 of the canonical JSON of everything that decides an answer; ``sample`` tells apart the n draws."""
    blob = json.dumps({"model": model, "messages": messages, "params": params, "sample": sample},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def seed_from_key(key: str) -> int:
    """A per-request sampling seed (< 2**60) derived from its key, so a sample does not depend on its batch."""
    return int(key[:15], 16)


class GenerationCache:
    """Records by key, backed by an append-only jsonl file (or by nothing when ``path`` is None).

    Use as ``with cache: ...``: that takes an exclusive lock on the file (two jobs appending to one cache would
    interleave), re-reads it, repairs a torn tail, and keeps the file open for ``add``.
    """

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        self.records: dict[str, dict] = {}
        self._fh = None
        self.repaired_bytes = 0

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def open(self) -> Self:
        if self._fh is not None:
            return self  # already open (and locked) by this object
        if self.path is None:
            self.records = {}  # no cache: answers live only for the call that asked for them
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+b")  # noqa: SIM115 -- held open across calls until close()
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise UserError(f"generation cache {self.path} is in use by another running job; wait for it to finish "
                            "or give this job another cache_path") from None
        self._fh = fh
        self._load()
        return self

    def close(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def _load(self) -> None:
        assert self._fh is not None, "load needs the open cache file"
        self._fh.seek(0)
        data = self._fh.read()
        self.records = {}
        good_end = 0  # byte offset just past the last whole, valid record
        lines = data.split(b"\n")
        # Every complete line ends in "\n"; the piece after the last "\n" is empty unless a write was torn.
        for i, line in enumerate(lines):
            last = i == len(lines) - 1
            if not line.strip():
                if not last:
                    good_end += len(line) + 1
                continue
            record = _parse_record(line)
            complete = not last
            if record is None or not complete:
                if i >= len(lines) - 2 and _only_blank(lines[i + 1:]):
                    break  # a torn tail: the writer died mid-line
                raise UserError(f"{self.path}:{i + 1}: not a valid cache record (the file is corrupt in the middle); "
                                "delete that line, or the whole file to regenerate")
            self.records.setdefault(record["key"], record)
            good_end += len(line) + 1
        if good_end < len(data):
            self.repaired_bytes = len(data) - good_end
            log.warning("%s: dropped a torn last line (%d bytes) left by a killed writer; it will be regenerated",
                        self.path, self.repaired_bytes)
            self._fh.truncate(good_end)
            self._fh.flush()
            os.fsync(self._fh.fileno())
        self._fh.seek(0, os.SEEK_END)

    def add(self, record: dict) -> bool:
        """Store ``record`` (it must carry ``key``); append it to the file durably. False if the key was present."""
        key = record["key"]
        if key in self.records:
            return False
        self.records[key] = record
        if self.path is not None:
            if self._fh is None:
                raise RuntimeError(f"generation cache {self.path} is not open; use `with cache:`")
            self._fh.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            self._fh.flush()
            os.fsync(self._fh.fileno())
        return True

    def __iter__(self) -> Iterator[dict]:
        return iter(self.records.values())


def _only_blank(lines: list[bytes]) -> bool:
    return all(not line.strip() for line in lines)


def _parse_record(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("key"), str) or not isinstance(
            record.get("text"), str):
        return None
    return record
