"""common.serve speaks OpenAI's protocol: models list, chat completions with n/seed/usage, errors in OpenAI's shape."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from common.serve import ChatService, make_handler

KEY = "sk-serve-test"
MODEL = "embedded:tiny-llama"


@pytest.fixture(scope="module")
def base_url(embedded_models):
    from http.server import ThreadingHTTPServer

    service = ChatService(MODEL)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(service, KEY))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def call(url: str, body: dict | bytes | None = None, key: str | None = KEY) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def chat_body(**kw) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 5, **kw}


def test_models_lists_the_served_model(base_url):
    status, body = call(base_url + "/models")
    assert status == 200 and [m["id"] for m in body["data"]] == [MODEL]


def test_chat_returns_n_choices_with_usage(base_url):
    status, body = call(base_url + "/chat/completions", chat_body(n=3, temperature=1.0, seed=1))
    assert status == 200 and body["object"] == "chat.completion"
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert all(c["finish_reason"] in ("stop", "length") for c in body["choices"])
    usage = body["usage"]
    assert 3 <= usage["completion_tokens"] <= 15 and usage["prompt_tokens"] > 3
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert len({c["message"]["content"] for c in body["choices"]}) > 1  # n distinct draws


def test_same_seed_gives_same_answers_and_another_seed_differs(base_url):
    texts = [[c["message"]["content"] for c in call(base_url + "/chat/completions",
                                                     chat_body(n=2, temperature=1.0, seed=s))[1]["choices"]]
             for s in (7, 7, 8)]
    assert texts[0] == texts[1] and texts[0] != texts[2]


@pytest.mark.parametrize("body, status, fragment", [
    (chat_body(model="gpt-4o"), 404, "does not exist"),
    (b"{not json", 400, "not valid JSON"),
    (chat_body(messages=[]), 400, "messages"),
    (chat_body(messages=[{"role": "robot", "content": "x"}]), 400, "messages"),
    (chat_body(n=0), 400, "n = 0"),
    (chat_body(temperature="hot"), 400, "temperature"),
    (chat_body(max_tokens=1.5), 400, "max_tokens"),
    (chat_body(stream=True), 400, "stream"),
])
def test_bad_requests_get_openai_shaped_errors(base_url, body, status, fragment):
    got, answer = call(base_url + "/chat/completions", body)
    assert got == status
    assert fragment in answer["error"]["message"] and answer["error"]["type"] == "invalid_request_error"


def test_unknown_model_error_has_the_openai_code(base_url):
    _, answer = call(base_url + "/chat/completions", chat_body(model="gpt-4o"))
    assert answer["error"]["code"] == "model_not_found" and answer["error"]["param"] == "model"


def test_missing_or_wrong_key_is_401(base_url):
    assert call(base_url + "/models", key=None)[0] == 401
    status, answer = call(base_url + "/chat/completions", chat_body(), key="sk-wrong")
    assert status == 401 and answer["error"]["code"] == "invalid_api_key"


def test_unknown_path_is_404(base_url):
    assert call(base_url + "/completions", chat_body())[0] == 404


def test_cli_help_names_its_options():
    out = subprocess.run([sys.executable, "-m", "common.serve", "--help"], check=False, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert out.returncode == 0 and "--model" in out.stdout and "--api-key" in out.stdout
