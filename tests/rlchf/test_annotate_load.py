"""Bounded load test: 50 annotators submit 20 answers each at once to a real threaded server on 127.0.0.1."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

import pytest
import requests
from werkzeug.serving import make_server

from common.artifacts import write_jsonl
from rlchf.annotate import store
from rlchf.annotate.app import RedactingRequestHandler, create_app

N_ANNOTATORS, N_TASKS = 50, 20
DEADLINE_S = 120  # the whole run; each request also has its own timeout


def test_fifty_concurrent_annotators_leave_exactly_one_row_per_answer(tmp_path):
    rank = [{"prompt_id": f"p{i}", "prompt": f"question {i}",
             "candidates": [{"id": c, "text": f"answer {c} to {i}"} for c in ("x", "y", "z")]} for i in range(15)]
    pairwise = [{"prompt_id": f"q{i}", "prompt": f"q {i}", "a": {"system": "sft", "text": "a"},
                 "b": {"system": "dpo", "text": "b"}} for i in range(N_TASKS - 15)]
    write_jsonl(tmp_path / "rank.jsonl", rank)
    write_jsonl(tmp_path / "pairwise.jsonl", pairwise)
    conn = store.connect(tmp_path / "load.db")
    store.load_tasks(conn, tmp_path / "rank.jsonl", "rank")
    store.load_tasks(conn, tmp_path / "pairwise.jsonl", "pairwise")
    tokens = [token for _, token in store.create_annotators(conn, N_ANNOTATORS)]
    kinds = {token: [t["kind"] for t in store.assigned_tasks(conn, store.annotator_for(conn, token)["id"])]
             for token in tokens}
    conn.close()

    server = make_server("127.0.0.1", 0, create_app(tmp_path / "load.db"), threaded=True,
                         request_handler=RedactingRequestHandler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{server.port}"
    start = threading.Barrier(N_ANNOTATORS, timeout=30)

    def annotate(token: str) -> list[int]:
        with requests.Session() as http:
            page = http.get(f"{base}/a/{token}/task/1", timeout=10).text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            start.wait()
            codes = []
            for pos, kind in enumerate(kinds[token], start=1):
                form = {"rank_A": "2", "rank_B": "1", "rank_C": "3"} if kind == "rank" else {"choice": "B"}
                resp = http.post(f"{base}/a/{token}/task/{pos}", data={**form, "csrf_token": csrf},
                                 allow_redirects=False, timeout=10)
                codes.append(resp.status_code)
            return codes

    t0 = time.monotonic()
    pool = ThreadPoolExecutor(N_ANNOTATORS)
    try:
        futures = [pool.submit(annotate, token) for token in tokens]
        _, pending = wait(futures, timeout=DEADLINE_S)
        if pending:
            start.abort()
            pytest.fail(f"{len(pending)} annotators did not finish within {DEADLINE_S} s")
        codes = [code for f in futures for code in f.result()]
    finally:
        # stopping the server first makes any straggling client fail fast instead of holding the pool open
        server.shutdown()
        server.server_close()
        pool.shutdown(wait=False, cancel_futures=True)
    elapsed = time.monotonic() - t0
    assert codes == [303] * (N_ANNOTATORS * N_TASKS), sorted(set(codes))
    db = sqlite3.connect(tmp_path / "load.db")
    assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == N_ANNOTATORS * N_TASKS
    assert db.execute("SELECT COUNT(DISTINCT annotator || '/' || task) FROM answers").fetchone()[0] == 1000
    assert db.execute("SELECT MAX(revisions) FROM answers").fetchone()[0] == 0
    print(f"{N_ANNOTATORS * N_TASKS} answers from {N_ANNOTATORS} concurrent annotators in {elapsed:.1f} s")
