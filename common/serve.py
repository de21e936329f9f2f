"""A small OpenAI-compatible server over a local HF model, so API-mode pipelines and their tests run offline.

    python -m common.serve --model embedded:smollm2-135m-instruct --port 8000 [--api-key KEY]
    # then: generation backend: openai, base_url: http://127.0.0.1:8000/v1, model: embedded:smollm2-135m-instruct

Endpoints: ``GET /v1/models`` and non-streaming ``POST /v1/chat/completions`` (n, temperature, top_p, max_tokens,
seed; usage counts). Errors have OpenAI's JSON shape and status codes (400 bad request, 401 bad key, 404 unknown
model or path). Model calls are serialised with a lock; the server is for tests and small jobs. For real runs use
``vllm serve <model>``, which speaks the same protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.config import UserError, run_cli

if TYPE_CHECKING:
    from typing import Self

MAX_N = 16


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
        with self.lock:
            records = self.generator.chat_records([messages], n=n, **sampling)[0]
        choices = [{"index": i, "message": {"role": "assistant", "content": r["text"]},
                    "finish_reason": r["finish_reason"], "logprobs": None} for i, r in enumerate(records)]
        prompt_tokens = records[0]["prompt_tokens"]  # the prompt is counted once, as OpenAI does for n > 1
        completion_tokens = sum(r["completion_tokens"] for r in records)
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": self.name, "choices": choices,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}


def make_handler(service: ChatService, api_key: str | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # one short line per request, never headers
            sys.stderr.write(f"common.serve: {self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")

        def _send(self, status: int, obj: dict) -> None:
            data = json.dumps(obj).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, route: dict) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if api_key is not None and self.headers.get("Authorization") != f"Bearer {api_key}":
                    raise APIError(401, "Incorrect or missing API key", code="invalid_api_key")
                path = self.path.split("?", 1)[0].rstrip("/")
                if path not in route:
                    raise APIError(404, f"no route {self.command} {path}", code="not_found")
                self._send(200, route[path](raw))
            except APIError as exc:
                self._send(exc.status, exc.body())
            except Exception as exc:  # noqa: BLE001 -- a bug or a model failure: answer 500, keep serving
                self._send(500, APIError(500, f"{type(exc).__name__}: {exc}").body())

        def do_GET(self) -> None:
            self._handle({"/v1/models": lambda raw: service.models()})

        def do_POST(self) -> None:
            def chat(raw: bytes) -> dict:
                try:
                    body = json.loads(raw or b"null")
                except json.JSONDecodeError as exc:
                    raise APIError(400, f"the request body is not valid JSON: {exc}") from None
                return service.chat(body)

            self._handle({"/v1/chat/completions": chat})

    return Handler


def serve(model: str, host: str = "127.0.0.1", port: int = 8000, template: str = "tokenizer",
          served_name: str | None = None, api_key: str | None = None, dtype: str = "float32") -> None:
    service = ChatService(model, served_name=served_name, template=template, dtype=dtype)
    try:
        server = ThreadingHTTPServer((host, port), make_handler(service, api_key))
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port") from None
    # The ready line: LocalServer (and people) read the real port from it (useful with --port 0).
    print(f"common.serve: serving {service.name!r} at http://{host}:{server.server_address[1]}/v1", flush=True)
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
