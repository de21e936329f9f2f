"""The annotation database: tasks, annotators (hashed tokens), assignments and answers in one SQLite file (WAL).

Every statement uses bound parameters. Tokens are stored only as SHA-256 hashes, so a copied database does not
grant access; the links are printed (and written to ``invites.csv``) once, when they are made.

Task files (jsonl, one task per line):

- rank: ``{prompt_id, prompt, candidates: [{id, text}, ...]}`` with 2 ≤ K ≤ 10 candidates. ``candidates.jsonl`` of
  rlchf's candidates stage is such a file (its ``chosen_id`` / ``rejected_id`` / ``source`` are kept and exported).
- pairwise: ``{prompt_id, prompt, a: {system, text}, b: {system, text}}``, two different systems.

``prompt`` is a string (one user turn) or a list of ``{role, content}`` messages.

Display orders reuse :func:`rlchf.rank.judge_rng` with the annotator id as the judge id, so a human sees the
candidates in a seeded per-(prompt, annotator) order exactly as a persona judge does, and pairwise A/B sides are
drawn the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import secrets
import sqlite3
import stat
import sys
import time
from pathlib import Path
from typing import Any

from common.config import UserError
from rlchf.candidates import LABELS
from rlchf.personas import DEMOGRAPHIC_FIELDS, UPSTREAM_VALUES
from rlchf.rank import judge_rng

TASK_KINDS = ("rank", "pairwise")
PAIRWISE_ANSWERS = {"A": "Response A is better", "C": "Both are equally good", "B": "Response B is better"}
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, task_key TEXT NOT NULL, prompt_id TEXT NOT NULL,
    payload TEXT NOT NULL, UNIQUE (kind, task_key));
CREATE TABLE IF NOT EXISTS annotators (
    id INTEGER PRIMARY KEY, annotator_id TEXT NOT NULL UNIQUE, token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL, consent INTEGER NOT NULL DEFAULT 0, profile TEXT, profile_at REAL);
CREATE TABLE IF NOT EXISTS assignments (
    annotator INTEGER NOT NULL REFERENCES annotators(id), task INTEGER NOT NULL REFERENCES tasks(id),
    position INTEGER NOT NULL, PRIMARY KEY (annotator, task), UNIQUE (annotator, position));
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY, annotator INTEGER NOT NULL REFERENCES annotators(id),
    task INTEGER NOT NULL REFERENCES tasks(id), answer TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, revisions INTEGER NOT NULL DEFAULT 0, UNIQUE (annotator, task));
"""


class AnswerError(ValueError):
    """A submitted answer is not valid for the task it was shown for; the message is shown to the annotator."""


PRIVATE_MODE = 0o600  # the database holds annotators' demographic self-reports: owner only
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _make_private(path: Path) -> None:
    """Create the database file with mode 0600 before SQLite opens it (SQLite gives the -wal, -shm and -journal files
    it creates later the database file's mode); a database left group- or world-readable by an older version, and
    its side files, are set to 0600 once, with a note."""
    if not path.parent.is_dir():
        raise UserError(f"--db {path}: the folder {path.parent} does not exist; create it first "
                        f"(mkdir -m 700 {path.parent})")
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_MODE))
        os.chmod(path, PRIVATE_MODE)  # exactly 0600 whatever the umask
    except FileExistsError:
        pass
    for f in [path, *(path.with_name(path.name + s) for s in SQLITE_SIDE_FILES)]:
        try:
            st = f.stat()
        except FileNotFoundError:
            continue
        if st.st_mode & 0o077 and st.st_uid == os.getuid():
            os.chmod(f, PRIVATE_MODE)
            print(f"note: {f} was readable by other users (mode {stat.S_IMODE(st.st_mode):o}); set to 600 (it "
                  "holds annotators' self-reports)", file=sys.stderr, flush=True)


def connect(path: str | Path) -> sqlite3.Connection:
    """One connection (per thread / request) in WAL mode with the schema in place and a fresh secret on creation.
    The database file (and with it SQLite's side files) is private to its owner: mode 0600."""
    if str(path) != ":memory:":
        _make_private(Path(path))
    conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed answer survives an app crash
    if conn.execute("SELECT name FROM sqlite_master WHERE name='meta'").fetchone() is None:
        with conn:
            conn.executescript(SCHEMA)
    with conn:
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('secret_key', ?)", (secrets.token_hex(32),))
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('seed', '0')")
    return conn


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else row["value"]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# --- tasks -----------------------------------------------------------------------------------------------------


def _check_prompt(prompt: Any, where: str) -> None:
    ok = isinstance(prompt, str) and prompt.strip() or isinstance(prompt, list) and prompt and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in prompt)
    if not ok:
        raise UserError(f"{where}.prompt: expected a non-empty string or a list of {{role, content}} messages")


def validate_task(kind: str, row: Any, where: str) -> str:
    """The task's unique key within its kind; UserError naming file:line.field on a malformed row."""
    if not isinstance(row, dict) or not isinstance(row.get("prompt_id"), (str, int)):
        raise UserError(f"{where}: expected an object with a prompt_id (string)")
    _check_prompt(row.get("prompt"), where)
    if kind == "rank":
        cands = row.get("candidates")
        if not isinstance(cands, list) or not 2 <= len(cands) <= len(LABELS):
            raise UserError(f"{where}.candidates: expected a list of 2 to {len(LABELS)} {{id, text}} objects")
        ids = [c.get("id") if isinstance(c, dict) else None for c in cands]
        if any(not isinstance(i, str) or not i for i in ids) or len(set(ids)) != len(ids):
            raise UserError(f"{where}.candidates: every candidate needs a unique non-empty string id, got {ids}")
        if any(not isinstance(c.get("text"), str) for c in cands):
            raise UserError(f"{where}.candidates: every candidate needs a string text")
        return str(row["prompt_id"])
    for side in ("a", "b"):
        sub = row.get(side)
        if not isinstance(sub, dict) or not isinstance(sub.get("system"), str) or not sub["system"] or \
                not isinstance(sub.get("text"), str):
            raise UserError(f"{where}.{side}: expected {{system: str, text: str}}")
    if row["a"]["system"] == row["b"]["system"]:
        raise UserError(f"{where}: a.system and b.system are both {row['a']['system']!r}; compare two systems")
    return f"{row['prompt_id']}|{row['a']['system']}|{row['b']['system']}"


def load_tasks(conn: sqlite3.Connection, path: str | Path, kind: str) -> dict[str, int]:
    """Add the tasks of a jsonl file; an identical task already present is skipped, a changed one is refused."""
    if kind not in TASK_KINDS:
        raise UserError(f"task kind {kind!r}: must be one of {list(TASK_KINDS)}")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"task file {path} does not exist")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        key = validate_task(kind, row, f"{path}:{n}")
        row["prompt_id"] = str(row["prompt_id"])
        rows.append((key, row, n))
    added = same = 0
    with conn:
        for key, row, n in rows:
            payload = json.dumps(row, ensure_ascii=False, sort_keys=True)
            old = conn.execute("SELECT payload FROM tasks WHERE kind = ? AND task_key = ?", (kind, key)).fetchone()
            if old is not None and old["payload"] != payload:
                raise UserError(f"{path}:{n}: a different {kind} task {key!r} is already loaded; answers refer to "
                                "the loaded text, so give the changed task a new prompt_id")
            if old is None:
                conn.execute("INSERT INTO tasks (kind, task_key, prompt_id, payload) VALUES (?, ?, ?, ?)",
                             (kind, key, row["prompt_id"], payload))
                added += 1
            else:
                same += 1
    return {"added": added, "already_loaded": same}


# --- annotators and tokens --------------------------------------------------------------------------------------


def create_annotators(conn: sqlite3.Connection, n: int, per_annotator: int | None = None,
                      seed: int = 0) -> list[tuple[str, str]]:
    """``n`` new annotators, each with a fresh token and ``per_annotator`` tasks (all when None) in a seeded order."""
    if n < 1:
        raise UserError(f"invite --n {n}: must be >= 1")
    task_ids = [r["id"] for r in conn.execute("SELECT id FROM tasks ORDER BY id")]
    if not task_ids:
        raise UserError("no tasks are loaded; run `python -m rlchf.annotate load --tasks FILE --kind rank` first")
    k = len(task_ids) if per_annotator is None else per_annotator
    if not 1 <= k <= len(task_ids):
        raise UserError(f"invite --per-annotator {per_annotator}: must be between 1 and {len(task_ids)} tasks")
    out = []
    with conn:
        start = conn.execute("SELECT COUNT(*) FROM annotators").fetchone()[0]
        for i in range(start + 1, start + n + 1):
            annotator_id, token = f"h{i:02d}", secrets.token_urlsafe(24)
            cur = conn.execute("INSERT INTO annotators (annotator_id, token_hash, created_at) VALUES (?, ?, ?)",
                               (annotator_id, token_hash(token), time.time()))
            mine = random.Random(f"{seed}|{annotator_id}").sample(task_ids, k)
            conn.executemany("INSERT INTO assignments (annotator, task, position) VALUES (?, ?, ?)",
                             [(cur.lastrowid, t, pos) for pos, t in enumerate(mine, start=1)])
            out.append((annotator_id, token))
    return out


def new_admin_token(conn: sqlite3.Connection) -> str:
    """A fresh admin token (the previous one stops working)."""
    token = secrets.token_urlsafe(24)
    with conn:
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('admin_token_hash', ?)", (token_hash(token),))
    return token


def is_admin(conn: sqlite3.Connection, token: str) -> bool:
    stored = get_meta(conn, "admin_token_hash")
    return stored is not None and hmac.compare_digest(stored, token_hash(token))


def annotator_for(conn: sqlite3.Connection, token: str) -> sqlite3.Row | None:
    """The annotator whose token this is, or None. The lookup is by hash; the final check is constant-time."""
    digest = token_hash(token)
    row = conn.execute("SELECT * FROM annotators WHERE token_hash = ?", (digest,)).fetchone()
    return row if row is not None and hmac.compare_digest(row["token_hash"], digest) else None


def save_profile(conn: sqlite3.Connection, annotator: int, form: dict[str, str]) -> dict[str, str]:
    """Self-report with the personas' demographic fields; every field optional, consent required."""
    if form.get("consent") != "yes":
        raise AnswerError("Please tick the consent box to save this form (or skip the form: it is optional).")
    profile = {}
    for name in DEMOGRAPHIC_FIELDS:
        value = form.get(name, "")
        if value and value not in UPSTREAM_VALUES[name]:
            raise AnswerError(f"{name.replace('_', ' ')}: {value!r} is not one of the listed options")
        profile[name] = value or None
    with conn:
        conn.execute("UPDATE annotators SET consent = 1, profile = ?, profile_at = ? WHERE id = ?",
                     (json.dumps(profile), time.time(), annotator))
    return profile


# --- what an annotator sees and answers -------------------------------------------------------------------------


def assigned_tasks(conn: sqlite3.Connection, annotator: int) -> list[sqlite3.Row]:
    """The annotator's tasks in their order, each with ``answered`` (0/1)."""
    return conn.execute(
        "SELECT t.id, t.kind, t.prompt_id, s.position, (a.id IS NOT NULL) AS answered FROM assignments s "
        "JOIN tasks t ON t.id = s.task LEFT JOIN answers a ON a.annotator = s.annotator AND a.task = s.task "
        "WHERE s.annotator = ? ORDER BY s.position", (annotator,)).fetchall()


def task_at(conn: sqlite3.Connection, annotator: int, position: int) -> sqlite3.Row | None:
    """The annotator's task at ``position`` (1-based), or None: other tasks are not reachable."""
    return conn.execute("SELECT t.* FROM assignments s JOIN tasks t ON t.id = s.task "
                        "WHERE s.annotator = ? AND s.position = ?", (annotator, position)).fetchone()


def shown_order(task: dict, kind: str, annotator_id: str, seed: int) -> list[str]:
    """Candidate ids (rank) or systems (pairwise) in the order this annotator sees them, labelled A, B, ..."""
    items = [c["id"] for c in task["candidates"]] if kind == "rank" else [task["a"]["system"], task["b"]["system"]]
    judge_rng(seed, task["prompt_id"], annotator_id).shuffle(items)
    return items


def parse_rank_form(form: dict[str, str], shown: list[str], allow_ties: bool = True) -> dict[str, Any]:
    """``rank_<label>`` -> 1..K per shown response -> ``{ranks: {id: n}, ranking: tiers of ids, best first}``.

    Equal numbers mean "equally good" (a tie, as in rlchf.rank's ``=``); gaps are fine (1, 1, 3 and 1, 1, 2 are the
    same weak order). Anything that does not rank exactly the shown responses is refused.
    """
    k = len(shown)
    labels = LABELS[:k]
    extra = sorted(f for f in form if f.startswith("rank_") and f[5:] not in labels)
    if extra:
        raise AnswerError(f"{extra[0]} does not name a response shown here (A to {labels[-1]}); reload the page")
    ranks = {}
    for label, cid in zip(labels, shown):
        raw = (form.get(f"rank_{label}") or "").strip()
        if not raw:
            raise AnswerError(f"Response {label} has no rank; give every response a rank from 1 to {k}.")
        # ASCII digits only: str.isdigit() also accepts '²' or '①', which int() then refuses (was a 500)
        if not (len(raw) <= 3 and raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= k:
            raise AnswerError(f"Response {label}: rank {raw[:20]!r} is not a whole number from 1 to {k}.")
        ranks[cid] = int(raw)
    if not allow_ties and len(set(ranks.values())) != k:
        raise AnswerError(f"Each rank from 1 to {k} must be used exactly once (ties are switched off).")
    if len(set(ranks.values())) == 1:
        raise AnswerError("All responses have the same rank; mark at least one as better than another.")
    tiers = [[cid for cid in shown if ranks[cid] == r] for r in sorted(set(ranks.values()))]
    return {"ranks": ranks, "ranking": tiers}


def parse_pairwise_form(form: dict[str, str], shown: list[str]) -> dict[str, Any]:
    """``choice`` in A / B / C (C = equally good, upstream's letter) -> the winning system or None for a tie."""
    choice = (form.get("choice") or "").strip()
    if choice not in PAIRWISE_ANSWERS:
        raise AnswerError("Choose one of: Response A is better, both are equally good, Response B is better.")
    return {"answer": choice, "winner": None if choice == "C" else shown["AB".index(choice)]}


def save_answer(conn: sqlite3.Connection, annotator: int, task: int, answer: dict[str, Any]) -> None:
    """Insert, or update the annotator's earlier answer to the same task (never a second row)."""
    now = time.time()
    with conn:
        conn.execute(
            "INSERT INTO answers (annotator, task, answer, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (annotator, task) DO UPDATE SET answer = excluded.answer, updated_at = excluded.updated_at, "
            "revisions = answers.revisions + 1", (annotator, task, json.dumps(answer, ensure_ascii=False), now, now))


def saved_answer(conn: sqlite3.Connection, annotator: int, task: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT answer FROM answers WHERE annotator = ? AND task = ?", (annotator, task)).fetchone()
    return None if row is None else json.loads(row["answer"])


def progress(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Per annotator: assigned, answered, last activity, whether a consented self-report exists."""
    rows = conn.execute(
        "SELECT n.annotator_id, n.consent, n.profile IS NOT NULL AS has_profile, "
        "(SELECT COUNT(*) FROM assignments s WHERE s.annotator = n.id) AS assigned, "
        "(SELECT COUNT(*) FROM answers a WHERE a.annotator = n.id) AS answered, "
        "(SELECT MAX(updated_at) FROM answers a WHERE a.annotator = n.id) AS last_at "
        "FROM annotators n ORDER BY n.id").fetchall()
    return [dict(r) for r in rows]


def all_answers(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every answer joined with its task and annotator, in a stable order (task, annotator)."""
    rows = conn.execute(
        "SELECT t.kind, t.payload, n.annotator_id, a.answer, a.created_at, a.updated_at, a.revisions "
        "FROM answers a JOIN tasks t ON t.id = a.task JOIN annotators n ON n.id = a.annotator "
        "ORDER BY t.id, n.id").fetchall()
    return [{**dict(r), "payload": json.loads(r["payload"]), "answer": json.loads(r["answer"])} for r in rows]
