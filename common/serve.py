"""A small OpenAI-compatible server over a local HF model, so API-mode pipelines and their tests run offline.

    python -m common.serve --model embedded:smollm2-135m-instruct --port 8000 [--api-key KEY]
    # then: generation backend: openai, base_url: http://127.0.0.1:8000/v1, model: embedded:smollm2-135m-instruct

Endpoints: ``GET /v1/models`` and non-streaming ``POST /v1/chat/completions`` (n, temperature, top_p, max_tokens,
seed; usage counts). Errors have OpenAI's JSON shape and status codes (400 bad request, 401 bad key, 404 unknown
model or path, 405 other methods, 413 body over 16 MiB). The key is checked, and Content-Length validated, before
any of the body is read; a prompt whose tokens plus max_tokens exceed the model's positions is refused (400,
``context_length_exceeded``). Model calls are serialised with a lock; the server is for tests and small jobs. For real
runs use ``vllm serve <model>``, which speaks the same protocol.

``JSONServer`` / ``JSONHandler`` (listen backlog, body checks, JSON errors) are shared with ``common.reward_server``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.config import UserError, run_cli

if TYPE_CHECKING:
    from typing import Self

MAX_N = 16
MAX_BODY_BYTES = 16 * 1024 * 1024  # a chat request is a few KiB; refused from its Content-Length, before reading
LISTEN_BACKLOG = 256  # socketserver's default of 5 reset 5-7 of 20 simultaneous connects (measured here: ~30 of 50)
BODY_READ_TIMEOUT_S = 60.0  # a client that stops sending its declared body frees the thread after this long
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length")


class APIError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.code, self.param = status, code, param

    def body(self) -> dict:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": str(self), "type": kind, "param": self.param, "code": self.code}}


def _number(body: dict, name: str, default: Any, kind: type, lo: float, hi: float) -> Any:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and int(value) != value):
        raise APIError(400, f"{name} must be a{'n integer' if kind is int else ' number'}, got {value!r}",
                       param=name)
    if not lo <= value <= hi:
        raise APIError(400, f"{name} = {value!r} is outside [{lo}, {hi}]", param=name)
    return kind(value)


class ChatService:
    """Validates a request body and answers it with an hf Generator (one model call at a time)."""

    def __init__(self, model: str, served_name: str | None = None, template: str = "tokenizer",
                 max_tokens_limit: int = 2048, dtype: str = "float32", batch_size: int = 8):
        from common.generation import GenerationConfig, build_generator

        self.name = served_name or model
        self.max_tokens_limit = max_tokens_limit
        self.generator = build_generator(GenerationConfig(
            backend="hf", model=model, template=template, cache_path=None, dtype=dtype, batch_size=batch_size,
            progress=False))
        self.lock = threading.Lock()
        self.created = int(time.time())
        config = getattr(getattr(self.generator, "model", None), "config", None)
        self.context_length = next((int(v) for v in (getattr(config, k, None) for k in CONTEXT_KEYS)
                                    if isinstance(v, int) and v > 0), None)  # None: unknown, not checked

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": self.name, "object": "model", "created": self.created,
                                            "owned_by": "common.serve"}]}

    def chat(self, body: Any) -> dict:
        if not isinstance(body, dict):
            raise APIError(400, "the request body must be a JSON object")
        if body.get("model") != self.name:
            raise APIError(404, f"The model {body.get('model')!r} does not exist; this server serves {self.name!r}",
                           code="model_not_found", param="model")
        if body.get("stream"):
            raise APIError(400, "stream=true is not supported by common.serve", param="stream")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str) for m in messages):
            raise APIError(400, "messages must be a non-empty list of {role: system|user|assistant, content: str}",
                           param="messages")
        n = _number(body, "n", 1, int, 1, MAX_N)
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        sampling = {
            "temperature": _number(body, "temperature", 1.0, float, 0.0, 2.0),
            "top_p": _number(body, "top_p", 1.0, float, 1e-6, 1.0),
            "max_new_tokens": _number({"max_tokens": max_tokens}, "max_tokens", 256, int, 1, self.max_tokens_limit),
            # no seed = fresh randomness, as with OpenAI
            "seed": _number(body, "seed", secrets.randbits(31), int, -2**63, 2**63 - 1),
        }
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        with self.lock:  # the tokenizer is not safe to share between threads either
            self._fit_context(messages, sampling, explicit=max_tokens is not None)
            records = self.generator.chat_records([messages], n=n, **sampling)[0]
        choices = [{"index": i, "message": {"role": "assistant", "content": r["text"]},
                    "finish_reason": r["finish_reason"], "logprobs": None} for i, r in enumerate(records)]
        prompt_tokens = records[0]["prompt_tokens"]  # the prompt is counted once, as OpenAI does for n > 1
        completion_tokens = sum(r["completion_tokens"] for r in records)
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": self.name, "choices": choices,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}

    def _fit_context(self, messages: list[dict], sampling: dict, explicit: bool) -> None:
        """Refuse (400) a prompt whose tokens plus max_tokens exceed the model's positions: past them a model with
        learned or RoPE positions still answers, with garbage. Without an explicit max_tokens the default shrinks
        to what fits, as OpenAI's does."""
        if self.context_length is None:
            return
        prompt_tokens = len(self.generator.prompt_ids(messages))
        room = self.context_length - prompt_tokens
        if not explicit and room > 0:
            sampling["max_new_tokens"] = min(sampling["max_new_tokens"], room)
        if prompt_tokens + sampling["max_new_tokens"] > self.context_length:
            raise APIError(400, f"This model's maximum context length is {self.context_length} tokens, but the "
                                f"request needs {prompt_tokens + sampling['max_new_tokens']} ({prompt_tokens} in the "
                                f"messages + max_tokens {sampling['max_new_tokens']}); shorten the messages or lower "
                                "max_tokens", code="context_length_exceeded", param="messages")


def decode_json(raw: bytes) -> Any:
    """A request body as JSON (UTF-8, RFC 8259 §8.1); an empty body is None. APIError 400 otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise APIError(400, f"the request body is not UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start})"
                       ) from None
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}") from None


def check_port(port: int) -> None:
    """One line instead of bind()'s OverflowError traceback for a port outside 0..65535."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: a TCP port is 0..65535 (0 = any free port)")


class JSONServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a listen backlog for bursts of connections (clients that open one per request at
    once: the openai backend's concurrency, verl's reward workers) and daemon handler threads."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG


class JSONHandler(BaseHTTPRequestHandler):
    """JSON-only request handling shared by common.serve and common.reward_server.

    A subclass names its endpoints in ``route(method, path) -> fn(raw_body) -> dict | None`` (``do_GET``/``do_POST``
    exist; other methods get 405). Per request, in this order and before any of the body is read: the API key (when
    ``api_key`` is set; 401), the route (404), Content-Length (400 when not a non-negative integer, 413 above
    ``max_body_bytes``, 411 for chunked bodies). Every error, the HTTP library's own included, is OpenAI-shaped JSON;
    an answer sent before the body was read closes the connection (the unread bytes cannot start the next request).
    """

    protocol_version = "HTTP/1.1"
    api_key: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    allowed_methods: tuple[str, ...] = ("GET", "POST")
    log_name: str | None = "common.serve"  # None: no per-request log line

    def route(self, method: str, path: str) -> Callable[[bytes], dict] | None:
        raise NotImplementedError

    def log_message(self, fmt: str, *args: Any) -> None:  # one short line per request, never headers
        if self.log_name:
            status = args[1] if len(args) > 1 else ""
            sys.stderr.write(f"{self.log_name}: {self.command} {getattr(self, 'path', '')} {status}\n")

    def _send(self, status: int, obj: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The library's own errors (bad request line, unknown method, ...) as JSON; an unknown method is 405."""
        self.close_connection = True
        headers = {}
        if code == 501 and self.command:  # http.server: "Unsupported method"
            code, message = 405, f"method {self.command} is not allowed; use {' or '.join(self.allowed_methods)}"
            headers["Allow"] = ", ".join(self.allowed_methods)
        self._send(code, APIError(code, message or HTTPStatus(code).phrase).body(), headers)

    def _checked(self) -> tuple[Callable[[bytes], dict], int]:
        """The route's function and the body length, or APIError; reads nothing."""
        if self.command not in self.allowed_methods:
            raise APIError(405, f"method {self.command} is not allowed; use {' or '.join(self.allowed_methods)}")
        if self.api_key is not None and self.headers.get("Authorization") != f"Bearer {self.api_key}":
            raise APIError(401, "Incorrect or missing API key", code="invalid_api_key")
        path = self.path.split("?", 1)[0].rstrip("/")
        fn = self.route(self.command, path)
        if fn is None:
            raise APIError(404, f"no route {self.command} {path}", code="not_found")
        if self.headers.get("Transfer-Encoding"):
            raise APIError(411, "chunked request bodies are not supported; send the body with a Content-Length")
        values = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if len(values) > 1:
            raise APIError(400, f"several different Content-Length headers: {sorted(values)}")
        value = values.pop() if values else "0"
        if not re.fullmatch(r"[0-9]{1,20}", value):
            raise APIError(400, f"Content-Length {value!r} is not a non-negative integer")
        length = int(value)
        if length > self.max_body_bytes:
            raise APIError(413, f"the request body ({length} bytes) is over this server's limit of "
                                f"{self.max_body_bytes} bytes", code="request_too_large")
        return fn, length

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue``: answer the checks (401, 413, ...) instead of inviting the body."""
        try:
            self._checked()
        except APIError as exc:
            self.close_connection = True
            self._send(exc.status, exc.body())
            return False
        return super().handle_expect_100()

    def _read_body(self, length: int) -> bytes:
        self.connection.settimeout(BODY_READ_TIMEOUT_S)
        try:
            raw = self.rfile.read(length) if length else b""
        except TimeoutError:
            raise APIError(408, f"the request body did not arrive within {BODY_READ_TIMEOUT_S:g} s") from None
        finally:
            self.connection.settimeout(None)
        if len(raw) < length:
            raise APIError(400, f"the request body ended after {len(raw)} of its {length} declared bytes")
        return raw

    def _dispatch(self) -> None:
        body_read = False
        try:
            fn, length = self._checked()
            raw = self._read_body(length)
            body_read = True
            result = fn(raw)
        except APIError as exc:
            self.close_connection = self.close_connection or not body_read
            self._send(exc.status, exc.body())
            return
        except Exception as exc:  # noqa: BLE001 -- a bug or a model failure: answer 500, keep serving
            self._send(500, APIError(500, f"{type(exc).__name__}: {exc}").body())
            return
        self._send(200, result)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()


def make_handler(service: ChatService, api_key: str | None) -> type[JSONHandler]:
    def chat(raw: bytes) -> dict:
        return service.chat(decode_json(raw))

    routes = {("GET", "/v1/models"): lambda raw: service.models(), ("POST", "/v1/chat/completions"): chat}

    class Handler(JSONHandler):
        def route(self, method: str, path: str) -> Callable[[bytes], dict] | None:
            return routes.get((method, path))

    Handler.api_key = api_key
    return Handler


def make_server(service: ChatService, api_key: str | None = None, host: str = "127.0.0.1",
                port: int = 0) -> JSONServer:
    """The server, bound (port 0: any free one; ``server.server_address[1]`` says which); ``serve_forever`` it."""
    check_port(port)
    try:
        return JSONServer((host, port), make_handler(service, api_key))
    except (OSError, OverflowError) as exc:
        raise UserError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}; "
                        "pick another --port") from None


def serve(model: str, host: str = "127.0.0.1", port: int = 8000, template: str = "tokenizer",
          served_name: str | None = None, api_key: str | None = None, dtype: str = "float32") -> None:
    check_port(port)  # before the model loads
    service = ChatService(model, served_name=served_name, template=template, dtype=dtype)
    server = make_server(service, api_key, host, port)
    # The ready line: LocalServer (and people) read the real port from it (useful with --port 0).
    print(f"common.serve: serving {service.name!r} at http://{host}:{server.server_address[1]}/v1", flush=True)
    serve_until_stopped(server)


def serve_until_stopped(server: JSONServer) -> None:
    """Serve until Ctrl-C or SIGTERM's KeyboardInterrupt, then close the socket."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class LocalServer:
    """``python -m common.serve`` in a subprocess on a free port, for tests and offline API-mode runs.

        with LocalServer("embedded:tiny-llama") as srv:
            GenerationConfig(backend="openai", model=srv.model, base_url=srv.base_url)
    """

    def __init__(self, model: str, api_key: str | None = None, template: str = "tokenizer",
                 startup_timeout_s: float = 300.0, env: dict[str, str] | None = None):
        self.model, self.api_key, self.template, self.env = model, api_key, template, env or {}
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None
        self.base_url = ""

    def __enter__(self) -> Self:
        cmd = [sys.executable, "-m", "common.serve", "--model", self.model, "--port", "0",
               "--template", self.template]
        env = {"HF_HUB_OFFLINE": "1", **self.env}
        if self.api_key is not None:
            env["COMMON_SERVE_API_KEY"] = self.api_key  # via the environment, not argv (visible in `ps`)
        self.proc, self.base_url = spawn_server(cmd, env, self.startup_timeout_s, f"common.serve for {self.model}")
        return self

    def __exit__(self, *exc: object) -> None:
        stop_server(self.proc)


def spawn_server(cmd: list[str], env: dict[str, str], timeout_s: float, what: str) -> tuple[subprocess.Popen, str]:
    """Start a server subprocess in the repository root and wait for its ready line ("... at http://HOST:PORT...");
    returns the process and the URL. A server that exits or stays silent is stopped and reported in one line."""
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(cmd, cwd=root, env=dict(os.environ, PYTHONUNBUFFERED="1", **env),
                            stdout=subprocess.PIPE, text=True)

    def ready_line() -> list[str]:
        assert proc.stdout is not None, "server process must have a stdout pipe"
        for line in proc.stdout:
            if " at http://" in line:
                return [line.rsplit(" at ", 1)[1].strip()]
        return []

    found: list[str] = []
    reader = threading.Thread(target=lambda: found.extend(ready_line()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not found:
        status = proc.poll()
        stop_server(proc)
        why = f"exited with status {status} (see its stderr above)" if status is not None else (
            f"did not start within {timeout_s}s")
        raise RuntimeError(f"{what} {why}")
    return proc, found[0]


def stop_server(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="hub id, local folder or embedded:<name>")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (0 = any free port; printed at start)")
    parser.add_argument("--template", default="tokenizer", help="chat template name from common.templates, or "
                        "'tokenizer' (default) for the tokenizer's own")
    parser.add_argument("--served-model-name", default=None, help="name clients use (default: --model)")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' (default: "
                        "$COMMON_SERVE_API_KEY, else no key needed)")
    parser.add_argument("--dtype", default="float32", help="weights dtype (float32, bfloat16, float16)")
    args = parser.parse_args(argv)
    api_key = args.api_key or os.environ.get("COMMON_SERVE_API_KEY") or None
    run_cli(lambda: serve(args.model, args.host, args.port, args.template, args.served_model_name, api_key,
                          args.dtype))


if __name__ == "__main__":
    main()
