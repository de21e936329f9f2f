"""Any OpenAI-compatible chat endpoint (OpenAI, ``vllm serve``, ``common.serve``) over plain HTTP (stdlib only).

Bounded concurrency (a thread pool of ``concurrency``), one request per sample (``n=1``, with the sample's derived
seed, so every cached answer has its own exact token counts), retries with exponential backoff and jitter on
429/5xx/timeouts/connection errors (honouring ``Retry-After``), and an immediate ``GenerationError`` on 400/401/403/404
or a model the server does not list.

The key comes from ``$<api_key_env>`` and only ever goes into the Authorization header; messages are scrubbed of
it. Decision: a missing key is an error, except for a loopback endpoint (127.0.0.1, localhost, ::1), where local
servers usually need none; if such a server wants one, its 401 becomes the same clear error.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any

from common.generation.base import Emit, GenerationConfig, GenerationError, Generator, GenRequest

DEFAULT_BASE_URL = "https://api.openai.com/v1"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
HINTS = {
    400: "the server rejected the request; check the sampling settings and prompt length",
    401: "check the key in ${env}",
    403: "the key in ${env} lacks access to this model or endpoint",
    404: "check base_url (it usually ends in /v1) and the model name",
}


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class OpenAIGenerator(Generator):
    def __init__(self, cfg: GenerationConfig):
        super().__init__(cfg)
        self.base_url = (cfg.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        host = urllib.parse.urlparse(self.base_url).hostname or ""
        self._key = os.environ.get(cfg.api_key_env) or None
        if self._key is None and host not in LOOPBACK_HOSTS:
            raise GenerationError(f"no API key for {self.base_url} (model {cfg.model!r}): set the environment "
                                  f"variable {cfg.api_key_env} (or point generation.api_key_env at the one you use)")
        if cfg.check_model:
            self.check_model()

    # -- HTTP ---------------------------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _fail(self, method: str, url: str, what: str) -> GenerationError:
        return GenerationError(self._scrub(f"{method} {url} (model {self.cfg.model!r}): {what}"))

    def _once(self, method: str, url: str, body: dict | None) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        self.add_usage(http_calls=1)
        try:
            with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            if exc.code in (408, 409, 429) or exc.code >= 500:
                raise _Retryable(f"HTTP {exc.code}: {detail}", _retry_after(exc.headers)) from None
            hint = HINTS.get(exc.code, "").replace("${env}", f"${self.cfg.api_key_env}")
            raise self._fail(method, url, f"HTTP {exc.code}: {detail}" + (f"; {hint}" if hint else "")) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            kind = "timed out" if isinstance(reason, (TimeoutError, socket.timeout)) else "cannot connect"
            raise _Retryable(f"{kind}: {reason}") from None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise _Retryable(f"answer is not JSON: {raw[:120]!r}") from None

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        """One API call with retries; GenerationError once retries run out or on a non-retryable status."""
        url = self.base_url + path
        for attempt in range(self.cfg.max_retries + 1):
            try:
                return self._once(method, url, body)
            except _Retryable as exc:
                if attempt == self.cfg.max_retries:
                    hint = "; is the server running at that address?" if "cannot connect" in str(exc) else ""
                    raise self._fail(method, url, f"{exc} (gave up after {attempt + 1} tries){hint}") from None
                # exponential backoff with "equal jitter": half the delay fixed, half random
                delay = min(self.cfg.backoff_max_s, self.cfg.backoff_s * 2 ** attempt)
                delay = delay / 2 + random.uniform(0, delay / 2)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, 600.0))
                self.add_usage(retries=1)
                time.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    def check_model(self) -> list[str]:
        listing = self.call("GET", "/models")
        served = [m.get("id") for m in listing.get("data", []) if isinstance(m, dict)]
        if self.cfg.model not in served:
            raise self._fail("GET", self.base_url + "/models",
                             f"the server does not serve this model; it serves {served[:20]}")
        return served

    # -- generation ---------------------------------------------------------------------------------------------
    def _key_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "extra_body": self.cfg.extra_body} if self.cfg.extra_body else dict(params)

    def complete(self, req: GenRequest, params: dict[str, Any]) -> dict:
        body: dict[str, Any] = {"model": self.cfg.model, "messages": req.messages, "n": 1,
                                "temperature": params["temperature"], "top_p": params["top_p"],
                                "max_tokens": params["max_new_tokens"]}
        if req.seed is not None:
            body["seed"] = req.seed % 2**31  # some servers reject seeds beyond int32
        body.update(self.cfg.extra_body or {})
        out = self.call("POST", "/chat/completions", body)
        try:
            choice = out["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise self._fail("POST", self.base_url + "/chat/completions",
                             f"answer has no choices[0].message: {json.dumps(out)[:200]}") from None
        usage = out.get("usage") or {}
        self.add_usage(prompt_tokens=usage.get("prompt_tokens", 0),
                       completion_tokens=usage.get("completion_tokens", 0))
        return {"text": text, "finish_reason": choice.get("finish_reason"),
                "prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens")}

    def _generate(self, requests: list[GenRequest], params: dict[str, Any], emit: Emit) -> None:
        pool = ThreadPoolExecutor(max_workers=self.cfg.concurrency, thread_name_prefix="openai")
        try:
            pending: dict[Future, GenRequest] = {pool.submit(self.complete, r, params): r for r in requests}
            while pending:
                done, _ = wait(pending, return_when=FIRST_EXCEPTION)
                failed = [fut for fut in done if fut.exception() is not None]
                for fut in done:
                    req = pending.pop(fut)
                    if fut.exception() is None:
                        emit(req, fut.result())  # cache every answer that made it before raising
                if failed:
                    raise failed[0].exception()
        finally:
            # On an error or Ctrl-C, drop queued requests instead of waiting for them; answers already in are cached.
            pool.shutdown(wait=False, cancel_futures=True)


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
        err = body.get("error", body) if isinstance(body, dict) else body
        msg = err.get("message") if isinstance(err, dict) else err
        return str(msg or exc.reason)[:300]
    except (json.JSONDecodeError, OSError, ValueError):
        return str(exc.reason)


def _retry_after(headers) -> float | None:
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue  # an HTTP-date Retry-After; fall back to our own backoff
    return None
