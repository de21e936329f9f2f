"""The annotation app under failure: a 500 leaves no invite token in any log, annotator input that used to crash it
is a 400 with a message, and the database (demographic self-reports) is readable by its owner only."""

from __future__ import annotations

import logging
import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from common.artifacts import write_jsonl
from common.config import UserError
from rlchf.annotate import store
from rlchf.annotate.app import RedactTokens, create_app

REPO = Path(__file__).resolve().parents[2]
TASKS = [{"prompt_id": f"p{i}", "prompt": f"Question {i}?",
          "candidates": [{"id": c, "text": f"answer {c}"} for c in ("x", "y", "z")]} for i in range(2)]


@pytest.fixture
def project(tmp_path):
    """A database with 2 rank tasks and 2 annotators: (db path, {annotator: token}, admin token)."""
    write_jsonl(tmp_path / "rank.jsonl", TASKS)
    db = tmp_path / "annotate.db"
    conn = store.connect(db)
    store.load_tasks(conn, tmp_path / "rank.jsonl", "rank")
    tokens = dict(store.create_annotators(conn, 2))
    admin = store.new_admin_token(conn)
    conn.close()
    return db, tokens, admin


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


# --- a 500 leaves no token in the logs ----------------------------------------------------------------------------


def test_error_log_of_a_500_names_the_route_and_traceback_but_not_the_token(project, monkeypatch, caplog, capfd):
    db, tokens, admin = project
    app = create_app(db)  # not TESTING: Flask logs the exception and answers 500, as when served
    client = app.test_client()
    own = logging.StreamHandler(sys.stderr)  # a handler with its own formatter, as a deployment may add
    own.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    app.logger.addHandler(own)

    def broken(*_args, **_kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(store, "task_at", broken)
    monkeypatch.setattr(store, "is_admin", broken)
    caplog.set_level(logging.DEBUG)
    try:
        assert client.get(f"/a/{tokens['h01']}/task/1").status_code == 500
        assert client.get(f"/admin/{admin}").status_code == 500
    finally:
        app.logger.removeHandler(own)
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert "Exception on /a/<token>/task/1 [GET]" in caplog.text and "Exception on /admin/<token> [GET]" in caplog.text
    assert "RuntimeError: database went away" in caplog.text and "Traceback" in caplog.text  # nothing else is lost
    assert "Exception on /a/<token>/task/1" in err  # our own handler got the redacted record too
    for secret in [*tokens.values(), admin]:
        assert secret not in logged


def test_redaction_covers_arguments_tracebacks_and_stacks():
    token = "Zq3_kd-9sLmN0pQrStUvWxYz12345678"
    try:
        raise ValueError(f"cannot open http://h:8000/a/{token}/task/2")
    except ValueError:
        import sys as _sys

        exc_info = _sys.exc_info()
    record = logging.LogRecord("werkzeug", logging.ERROR, __file__, 1, "%s - %s", ("GET", f"/admin/{token}"),
                               exc_info, sinfo=f"Stack (most recent call last): /a/{token}/")
    assert RedactTokens().filter(record) is True
    text = logging.Formatter().format(record)
    assert token not in text
    assert "GET - /admin/<token>" in text and "http://h:8000/a/<token>/task/2" in text and "Stack" in text


def _wait_for_port(proc: subprocess.Popen, deadline: float) -> int:
    line = ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        if match := re.search(r"on http://127\.0\.0\.1:(\d+)/", line):
            return int(match.group(1))
        assert proc.poll() is None, f"serve exited: {line}{proc.stderr.read()}"
    raise AssertionError("serve did not start within its deadline")


def test_served_app_prints_no_token_on_a_500_or_a_malformed_request_line(project):
    """The real CLI server: its stderr (access log, Flask's error log with traceback, the dev server's error log)."""
    db, tokens, admin = project
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rlchf.annotate", "serve", "--db", str(db), "--port", "0"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = _wait_for_port(proc, time.time() + 60)
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/a/{tokens['h01']}/", timeout=10).status_code == 200
        with sqlite3.connect(db) as conn:  # the database loses a table under the running app: every task page fails
            conn.execute("DROP TABLE assignments")
        assert requests.get(f"{base}/a/{tokens['h01']}/", timeout=10).status_code == 500
        assert requests.get(f"{base}/a/{tokens['h02']}/task/1", timeout=10).status_code == 500
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:  # 4 words: "Bad request syntax"
            sock.sendall(f"GET /a/{tokens['h02']}/ x HTTP/1.1\r\nHost: h\r\n\r\n".encode())
            assert b" 400 " in sock.recv(4096).split(b"\r\n")[0]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"GET /admin/{admin} HTTP/1.1 junk\r\nHost: h\r\n\r\n".encode())
            sock.recv(4096)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    logged = out + err
    assert "Exception on /a/<token>/ [GET]" in err and "Exception on /a/<token>/task/1 [GET]" in err
    assert "OperationalError: no such table: assignments" in err  # the traceback itself is kept
    assert "Bad request syntax" in err and '"GET /a/<token>/' in err
    for secret in [*tokens.values(), admin]:
        assert secret not in logged, f"a token leaked into the server's output:\n{logged}"


# --- annotator input that used to be a 500 ---------------------------------------------------------------------


def test_rank_written_with_a_superscript_or_other_non_ascii_digit_is_a_400_not_a_500(project):
    db, tokens, _ = project
    client = create_app(db).test_client()
    url = f"/a/{tokens['h01']}/task/1"
    csrf = csrf_of(client.get(url).get_data(as_text=True))
    for bad in ("²", "①", "١", "9" * 5000):
        resp = client.post(url, data={"rank_A": bad, "rank_B": "1", "rank_C": "2", "csrf_token": csrf})
        assert resp.status_code == 400, bad
        assert "is not a whole number from 1 to 3" in resp.get_data(as_text=True)
    with pytest.raises(store.AnswerError, match="not a whole number"):
        store.parse_rank_form({"rank_A": "²", "rank_B": "1"}, ["x", "y"])
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 0
    ok = client.post(url, data={"rank_A": "1", "rank_B": "2", "rank_C": "3", "csrf_token": csrf})
    assert ok.status_code == 303


def test_task_number_beyond_sqlites_integers_is_a_400_with_a_message(project):
    db, tokens, _ = project
    client = create_app(db).test_client()
    for position in (2**63, 10**30):
        resp = client.get(f"/a/{tokens['h01']}/task/{position}")
        assert resp.status_code == 400
        assert "tasks are numbered from 1" in resp.get_data(as_text=True)
    assert client.post(f"/a/{tokens['h01']}/task/{2**63}", data={}).status_code in (400, 403)
    assert client.get(f"/a/{tokens['h01']}/task/{2**63 - 1}").status_code == 404  # the largest lookup: no such task
    assert client.get(f"/a/{tokens['h01']}/task/2").status_code == 200


# --- the database is private -----------------------------------------------------------------------------------


def test_database_and_its_wal_and_shm_files_are_created_owner_only(tmp_path):
    old = os.umask(0o022)  # the usual umask, under which files are created world-readable
    try:
        db = tmp_path / "new.db"
        conn = store.connect(db)
        with conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('probe', '1')")
        app_db = tmp_path / "served.db"
        create_app(app_db).test_client().get("/")
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), app_db]  # (the app's WAL goes when its connection closes)
        assert all(f.exists() for f in files)
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        conn.close()
    finally:
        os.umask(old)


def test_a_world_readable_database_of_an_older_version_is_made_private_with_a_note(tmp_path, capsys):
    db = tmp_path / "old.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.commit()
    os.chmod(db, 0o644)
    store.connect(db).close()
    assert mode(db) == 0o600
    assert f"note: {db} was readable by other users (mode 644); set to 600" in capsys.readouterr().err
    store.connect(db).close()
    assert capsys.readouterr().err == ""  # said once


def test_database_in_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(UserError, match=r"the folder .*nope does not exist; create it first"):
        store.connect(tmp_path / "nope" / "a.db")
