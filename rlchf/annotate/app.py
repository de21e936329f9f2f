"""The annotation web app (Flask, server-rendered, works without JavaScript).

Routes (``<token>`` is an annotator's invite token, ``<admin>`` the admin token; both only ever compared by hash
in constant time):

- ``GET /a/<token>/``: progress bar and the annotator's own task list.
- ``GET|POST /a/<token>/task/<n>``: the n-th task; POST saves at once (an upsert) and redirects to the next open task.
- ``GET|POST /a/<token>/profile``: optional self-report (the personas' demographic fields) with a consent line.
- ``GET /admin/<admin>``: progress per annotator (no tokens, no answers).

Model outputs are untrusted: templates autoescape them, the Content-Security-Policy forbids every script, and no
page refers to another origin. Every POST carries the session's CSRF token (checked with ``hmac.compare_digest``);
``Referrer-Policy: no-referrer`` keeps the token in the URL from leaking to linked sites.

No log line carries a token: the access log (``RedactingRequestHandler``) and every record of the app's logger and
werkzeug's logger (Flask's "Exception on /a/<token>/... [POST]" with its traceback, the dev server's "Bad request
syntax ('GET /a/<token>/ ...')" and "Error on request") go through ``RedactTokens``, which replaces the path segment
after ``/a/`` and ``/admin/`` with ``<token>`` in the message, its arguments and the formatted traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

from flask import Flask, abort, g, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler

from rlchf.annotate import store
from rlchf.candidates import LABELS
from rlchf.personas import DEMOGRAPHIC_FIELDS, UPSTREAM_VALUES

MAX_TOKEN_CHARS = 128
MAX_REQUEST_BYTES = 64 * 1024  # a ranking form is < 1 KB; anything near this is not a browser filling our forms
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
ERROR_TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
                413: "Request too large"}


TOKEN_IN_PATH = re.compile(r"/(a|admin)/[^/\s?'\"]+")
SQLITE_MAX_INT = 2**63 - 1  # a larger task number cannot even be looked up (OverflowError in sqlite3)


def redact(text: str) -> str:
    """``text`` with every ``/a/<token>`` and ``/admin/<token>`` path segment replaced by ``<token>``."""
    return TOKEN_IN_PATH.sub(r"/\1/<token>", text)


class RedactTokens(logging.Filter):
    """Rewrites a log record so that no handler can print a token: the message is formatted and redacted, and the
    traceback (``exc_info``) and stack are formatted, redacted and folded into the message (a handler with its own
    formatter then has nothing unredacted left to format)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the message: keep both, redacted
            text = f"{record.msg} {record.args}"
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            text = f"{text}\n{record.exc_text}"
        if record.stack_info:
            text = f"{text}\n{record.stack_info}"
        record.msg, record.args = redact(text), None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def install_log_redaction(*loggers: logging.Logger) -> None:
    """Put one ``RedactTokens`` on each logger (idempotent: create_app may run many times in one process)."""
    for logger in loggers:
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


class RedactingRequestHandler(WSGIRequestHandler):
    """The dev server's access log with tokens replaced: a log line must not be a working invite link."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # called after the response is sent, so rewriting the parsed request line no longer affects routing
        self.requestline = redact(self.requestline)
        if hasattr(self, "path"):
            self.path = redact(self.path)
        super().log_request(code, size)

    def log_error(self, format: str, *args: Any) -> None:
        # "Bad request syntax ('GET /a/<token>/ x HTTP/1.1')" and the like quote the request line
        super().log_error("%s", redact(format % args if args else format))


def create_app(db_path: str | Path, allow_ties: bool = True) -> Flask:
    """The app over one database file (created with its schema if missing)."""
    db_path = str(db_path)
    boot = store.connect(db_path)
    secret, seed = store.get_meta(boot, "secret_key"), int(store.get_meta(boot, "seed") or 0)
    boot.close()
    app = Flask(__name__)
    install_log_redaction(app.logger, logging.getLogger("werkzeug"))
    app.config.update(SECRET_KEY=secret, MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES, MAX_FORM_MEMORY_SIZE=MAX_REQUEST_BYTES,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", TEMPLATES_AUTO_RELOAD=False)
    app.config["ANNOTATE"] = {"db": db_path, "seed": seed, "allow_ties": allow_ties}

    def db() -> sqlite3.Connection:
        if "db" not in g:
            g.db = store.connect(db_path)
        return g.db

    @app.teardown_appcontext
    def close_db(_exc: BaseException | None) -> None:
        conn = g.pop("db", None)
        if conn is not None:
            conn.close()

    def csrf_token() -> str:
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        return session["csrf"]

    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.filters["utc"] = lambda t: time.strftime("%Y-%m-%d %H:%M", time.gmtime(t))

    @app.before_request
    def check_csrf() -> None:
        # a POST to a route that does not exist or take POSTs gets its 404 / 405, not a CSRF error
        if request.method == "POST" and request.routing_exception is None:
            sent, expected = request.form.get("csrf_token", ""), session.get("csrf", "")
            if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
                abort(403, "This form is out of date or was not sent from this page (CSRF check failed). "
                           "Reload the page and submit again.")

    @app.after_request
    def security_headers(resp: Any) -> Any:
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.errorhandler(HTTPException)
    def error_page(exc: HTTPException) -> Any:
        code = exc.code or 500
        message = exc.description if code in (400, 403) else {
            404: "There is nothing here. Check that you copied the whole link from your invitation.",
            405: "This page cannot be used that way.",
            413: f"The request is larger than {MAX_REQUEST_BYTES // 1024} KB and was refused.",
        }.get(code, exc.description)
        return render_template("error.html", code=code, title=ERROR_TITLES.get(code, exc.name),
                               message=message), code

    def annotator_or_404(token: str) -> sqlite3.Row:
        row = store.annotator_for(db(), token) if len(token) <= MAX_TOKEN_CHARS else None
        if row is None:
            abort(404)
        return row

    @app.get("/")
    def index() -> Any:
        return render_template("index.html")

    @app.get("/a/<token>/")
    def overview(token: str) -> Any:
        me = annotator_or_404(token)
        tasks = store.assigned_tasks(db(), me["id"])
        done = sum(t["answered"] for t in tasks)
        first_open = next((t["position"] for t in tasks if not t["answered"]), None)
        return render_template("overview.html", token=token, me=me, tasks=tasks, done=done, n_tasks=len(tasks),
                               first_open=first_open)

    def render_task(token: str, me: sqlite3.Row, position: int, task: sqlite3.Row, error: str | None = None,
                    form: dict | None = None) -> Any:
        payload = json.loads(task["payload"])
        shown = store.shown_order(payload, task["kind"], me["annotator_id"], app.config["ANNOTATE"]["seed"])
        saved = store.saved_answer(db(), me["id"], task["id"])
        tasks = store.assigned_tasks(db(), me["id"])
        if task["kind"] == "rank":
            text = {c["id"]: c["text"] for c in payload["candidates"]}
            ranks = (saved or {}).get("ranks", {})
            items = [{"label": LABELS[i], "text": text[cid],
                      "value": (form or {}).get(f"rank_{LABELS[i]}", str(ranks.get(cid, "")))}
                     for i, cid in enumerate(shown)]
        else:
            text = {payload[s]["system"]: payload[s]["text"] for s in ("a", "b")}
            items = [{"label": LABELS[i], "text": text[system]} for i, system in enumerate(shown)]
        choice = (form or {}).get("choice", (saved or {}).get("answer", ""))
        prompt = [{"role": "user", "content": payload["prompt"]}] if isinstance(payload["prompt"], str) \
            else payload["prompt"]
        return render_template(
            f"{task['kind']}.html", token=token, me=me, position=position, n_tasks=len(tasks),
            done=sum(t["answered"] for t in tasks), prompt=prompt, items=items, k=len(items), choice=choice,
            saved=saved is not None, error=error, allow_ties=app.config["ANNOTATE"]["allow_ties"],
            choices=store.PAIRWISE_ANSWERS), 400 if error else 200

    @app.route("/a/<token>/task/<int:position>", methods=["GET", "POST"])
    def task_page(token: str, position: int) -> Any:
        if position > SQLITE_MAX_INT:
            abort(400, f"There is no task number {str(position)[:20]}{'...' if len(str(position)) > 20 else ''}: "
                       "tasks are numbered from 1. Open your task list from the link in your invitation.")
        me = annotator_or_404(token)
        task = store.task_at(db(), me["id"], position)
        if task is None:
            abort(404)
        if request.method == "GET":
            return render_task(token, me, position, task)
        payload = json.loads(task["payload"])
        shown = store.shown_order(payload, task["kind"], me["annotator_id"], app.config["ANNOTATE"]["seed"])
        form = request.form.to_dict()
        try:
            if task["kind"] == "rank":
                answer = store.parse_rank_form(form, shown, app.config["ANNOTATE"]["allow_ties"])
            else:
                answer = store.parse_pairwise_form(form, shown)
        except store.AnswerError as exc:
            return render_task(token, me, position, task, error=str(exc), form=form)
        store.save_answer(db(), me["id"], task["id"], {**answer, "shown_order": shown})
        tasks = store.assigned_tasks(db(), me["id"])
        later = [t["position"] for t in tasks if not t["answered"] and t["position"] > position]
        earlier = [t["position"] for t in tasks if not t["answered"]]
        nxt = (later or earlier or [None])[0]
        if nxt is None:
            return redirect(url_for("overview", token=token, done=1), code=303)
        return redirect(url_for("task_page", token=token, position=nxt), code=303)

    @app.route("/a/<token>/profile", methods=["GET", "POST"])
    def profile(token: str) -> Any:
        me = annotator_or_404(token)
        saved = json.loads(me["profile"]) if me["profile"] else {}
        error, status = None, 200
        if request.method == "POST":
            try:
                store.save_profile(db(), me["id"], request.form.to_dict())
                return redirect(url_for("overview", token=token, profile=1), code=303)
            except store.AnswerError as exc:
                error, status, saved = str(exc), 400, request.form.to_dict()
        fields = [(name, UPSTREAM_VALUES[name]) for name in DEMOGRAPHIC_FIELDS]
        return render_template("profile.html", token=token, me=me, fields=fields, saved=saved, error=error), status

    @app.get("/admin/<token>")
    def admin(token: str) -> Any:
        if len(token) > MAX_TOKEN_CHARS or not store.is_admin(db(), token):
            abort(404)
        rows = store.progress(db())
        n_tasks = db().execute("SELECT kind, COUNT(*) AS n FROM tasks GROUP BY kind").fetchall()
        return render_template("admin.html", rows=rows, n_tasks={r["kind"]: r["n"] for r in n_tasks},
                               total=sum(r["answered"] for r in rows))

    return app
