"""common.serve speaks OpenAI's protocol: models list, chat completions with n/seed/usage, errors in OpenAI's shape;
its HTTP side (shared with common.reward_server) survives bursts and hostile requests."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from common.serve import MAX_BODY_BYTES, ChatService, JSONServer, LocalServer, make_server

KEY = "sk-serve-test"
MODEL = "embedded:tiny-llama"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def service(embedded_models):
    return ChatService(MODEL)


@pytest.fixture(scope="module")
def base_url(service):
    httpd = make_server(service, KEY)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def reward_url():
    """common.reward_server's handler on a stub scorer (score = response length): the same HTTP base class."""
    from common.reward_server import Batcher, make_handler

    httpd = JSONServer(("127.0.0.1", 0), make_handler(Batcher(lambda items: [float(len(i["response"]))
                                                                              for i in items]), ["stub"]))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
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


# -- hardening: bursts, bodies, methods, context length, port ----------------------------------------------------


def raw_request(url: str, method: str, headers: dict[str, str], body: bytes = b"",
                timeout: float = 10.0) -> tuple[int, dict, http.client.HTTPResponse]:
    """Send exactly these headers (Content-Length as given, even a lie) and ``body``; the status, JSON answer and
    response. A server that waits for an undelivered body makes this time out instead of answering."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    conn.putrequest(method, parts.path, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    if body:
        conn.send(body)
    resp = conn.getresponse()
    answer = json.loads(resp.read() or b"null")
    conn.close()
    return resp.status, answer, resp


def test_fifty_concurrent_requests_all_get_answers(embedded_models):
    """socketserver's listen backlog of 5 reset 25-36 of 50 simultaneous connects here; the server's backlog of 256
    holds them (the requests themselves still run one at a time)."""
    with LocalServer(MODEL) as srv:
        start = threading.Barrier(50)
        results: list[object] = []

        def one(i: int) -> None:
            body = json.dumps(chat_body(messages=[{"role": "user", "content": f"hi {i}"}], max_tokens=1)).encode()
            req = urllib.request.Request(srv.base_url + "/chat/completions", data=body, method="POST")
            start.wait()
            try:
                with urllib.request.urlopen(req, timeout=120) as resp:
                    results.append(resp.status)
            except Exception as exc:  # noqa: BLE001 -- every failure is collected and shown
                results.append(repr(exc))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == [200] * 50, [r for r in results if r != 200][:5]


def test_huge_body_is_refused_from_its_headers_before_any_of_it_is_read(base_url):
    huge = str(10 ** 12)  # never sent: a server that tried to read it would not answer within the timeout
    started = time.monotonic()
    status, answer, resp = raw_request(base_url + "/chat/completions", "POST", {"Content-Length": huge})
    assert status == 401 and answer["error"]["code"] == "invalid_api_key"  # the key first
    status, answer, resp = raw_request(base_url + "/chat/completions", "POST",
                                       {"Content-Length": str(MAX_BODY_BYTES + 1), "Authorization": f"Bearer {KEY}"})
    assert status == 413 and answer["error"]["code"] == "request_too_large" and str(MAX_BODY_BYTES) in \
        answer["error"]["message"]
    assert resp.getheader("Connection") == "close"  # the unread bytes must not be parsed as a next request
    assert time.monotonic() - started < 5


def test_expect_100_continue_gets_the_refusal_instead_of_an_invitation(base_url):
    status, _, _ = raw_request(base_url + "/chat/completions", "POST",
                               {"Content-Length": str(10 ** 9), "Expect": "100-continue"})
    assert status == 401


@pytest.mark.parametrize("length, fragment", [("-1", "'-1'"), ("abc", "'abc'"), ("1e3", "'1e3'")])
def test_bad_content_length_is_a_400_not_a_hang(base_url, length, fragment):
    status, answer, _ = raw_request(base_url + "/chat/completions", "POST",
                                    {"Content-Length": length, "Authorization": f"Bearer {KEY}"})
    assert status == 400 and "Content-Length" in answer["error"]["message"] and fragment in answer["error"]["message"]
    assert answer["error"]["type"] == "invalid_request_error"


def test_non_utf8_body_is_a_400(base_url):
    status, answer = call(base_url + "/chat/completions", b'{"model": "\xff\xfe"}')
    assert status == 400 and "not UTF-8" in answer["error"]["message"] and "0xff" in answer["error"]["message"]


def test_body_shorter_than_its_content_length_is_a_400(base_url):
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.putrequest("POST", parts.path + "/chat/completions")
    conn.putheader("Content-Length", "100")
    conn.putheader("Authorization", f"Bearer {KEY}")
    conn.endheaders()
    conn.send(b'{"model": 1}')
    conn.sock.shutdown(1)  # SHUT_WR: the client is done sending
    resp = conn.getresponse()
    assert resp.status == 400 and "12 of its 100" in json.loads(resp.read())["error"]["message"]


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH", "BREW"])
def test_other_methods_get_a_json_405(base_url, method):
    status, answer, resp = raw_request(base_url + "/chat/completions", method, {"Authorization": f"Bearer {KEY}"})
    assert status == 405 and resp.getheader("Allow") == "GET, POST"
    assert method in answer["error"]["message"] and answer["error"]["type"] == "invalid_request_error"


def test_server_keeps_serving_after_bad_requests(base_url):
    for length in ("-1", "abc", str(10 ** 12)):
        raw_request(base_url + "/chat/completions", "POST", {"Content-Length": length})
    assert call(base_url + "/chat/completions", chat_body(max_tokens=1))[0] == 200


def test_reward_server_shares_the_checks(reward_url):
    item = {"record": {"prompt": "p"}, "response": "four"}
    assert call(reward_url + "/score", {"items": [item]}, key=None) == (200, {"scores": [4.0]})
    assert call(reward_url + "/health", key=None)[1]["ok"] is True
    assert raw_request(reward_url + "/score", "POST", {"Content-Length": "-1"})[0] == 400
    assert raw_request(reward_url + "/score", "POST", {"Content-Length": str(64 * 1024 * 1024 + 1)})[0] == 413
    assert raw_request(reward_url + "/score", "DELETE", {})[0] == 405
    assert call(reward_url + "/score", b"\xff", key=None)[0] == 400


def test_prompt_past_the_models_positions_is_a_400_naming_the_lengths(service, base_url):
    assert service.context_length == 2048  # embedded:tiny-llama's max_position_embeddings
    words = 2100
    status, answer = call(base_url + "/chat/completions",
                          chat_body(messages=[{"role": "user", "content": "hello " * words}], max_tokens=5))
    assert status == 400 and answer["error"]["code"] == "context_length_exceeded"
    prompt_tokens = len(service.generator.prompt_ids([{"role": "user", "content": "hello " * words}]))
    assert f"{prompt_tokens} in the messages + max_tokens 5" in answer["error"]["message"]
    assert "2048" in answer["error"]["message"]


def test_context_limit_is_exact_and_the_default_max_tokens_shrinks_to_fit(service, base_url):
    def messages(n_words: int) -> list[dict]:
        return [{"role": "user", "content": "hello " * n_words}]

    n_words = 2030
    while len(service.generator.prompt_ids(messages(n_words))) > 2045:
        n_words -= 1
    prompt_tokens = len(service.generator.prompt_ids(messages(n_words)))
    room = 2048 - prompt_tokens
    url = base_url + "/chat/completions"
    assert call(url, chat_body(messages=messages(n_words), max_tokens=room + 1))[0] == 400
    status, answer = call(url, chat_body(messages=messages(n_words), max_tokens=room, temperature=0))
    assert status == 200 and answer["usage"]["prompt_tokens"] == prompt_tokens
    body = chat_body(messages=messages(n_words), temperature=0)
    del body["max_tokens"]  # default 256 does not fit: it becomes the room left
    status, answer = call(url, body)
    assert status == 200 and answer["usage"]["completion_tokens"] <= room


@pytest.mark.parametrize("module, args", [("common.serve", ["--model", MODEL]),
                                          ("common.reward_server", ["--spec", "no-such-spec.json"])])
def test_port_out_of_range_is_one_line_and_exit_2(module, args):
    out = subprocess.run([sys.executable, "-m", module, *args, "--port", "99999"], check=False, capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--port 99999" in lines[0], out.stderr
