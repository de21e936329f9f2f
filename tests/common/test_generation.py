"""Generation backends and the resumable cache: a real local server, real retries, a real SIGKILL."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from common.config import ConfigError, UserError
from common.generation import GenerationCache, GenerationConfig, GenerationError, Generator, build_generator
from common.serve import LocalServer

KEY_ENV = "RLHF_REPRO_TEST_KEY"
SERVER_KEY = "sk-test-server-key-123"
REPO_ROOT = Path(__file__).resolve().parents[2]


def convs(k: int, prefix: str = "Question") -> list[list[dict]]:
    return [[{"role": "user", "content": f"{prefix} {i}: " + "why? " * (i % 4)}] for i in range(k)]


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def server(embedded_models):
    with LocalServer("embedded:tiny-llama", api_key=SERVER_KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def tiny_hf(embedded_models):
    return build_generator(GenerationConfig(backend="hf", model="embedded:tiny-llama", max_new_tokens=6,
                                            temperature=0.0, batch_size=4, progress=False))


def api_cfg(base_url: str, **kw) -> GenerationConfig:
    defaults = {"backend": "openai", "model": "embedded:tiny-llama", "base_url": base_url, "api_key_env": KEY_ENV,
                "max_new_tokens": 6, "temperature": 0.0, "max_retries": 2, "backoff_s": 0.01, "progress": False}
    return GenerationConfig(**{**defaults, **kw})


# -- hf backend ---------------------------------------------------------------------------------------------------


def test_hf_batched_and_single_greedy_answers_are_identical(tiny_hf):
    batched = tiny_hf.chat(convs(5))
    single = build_generator(GenerationConfig(backend="hf", model="embedded:tiny-llama", max_new_tokens=6,
                                              temperature=0.0, batch_size=1, progress=False)).chat(convs(5))
    assert batched == single
    assert all(len(a) == 1 and a[0] for a in batched)


def test_hf_seeded_samples_do_not_depend_on_batch_and_differ_across_sample_index(tiny_hf):
    one_by_one = [tiny_hf.chat([c], n=2, temperature=1.0)[0] for c in convs(3)]
    together = tiny_hf.chat(convs(3), n=2, temperature=1.0)
    assert one_by_one == together
    assert all(a != b for a, b in together)


def test_bad_sampling_override_is_refused(tiny_hf):
    with pytest.raises(UserError, match="unknown sampling override 'max_tokens'"):
        tiny_hf.chat(convs(1), max_tokens=3)
    with pytest.raises(ConfigError, match="temperature"):
        tiny_hf.chat(convs(1), temperature=-1.0)


# -- cache --------------------------------------------------------------------------------------------------------


def test_cache_never_writes_a_key_twice_and_serves_reruns(tmp_path, embedded_models):
    path = tmp_path / "cache.jsonl"
    gen = build_generator(GenerationConfig(backend="hf", model="embedded:tiny-llama", max_new_tokens=4,
                                           temperature=1.0, cache_path=str(path), progress=False))
    same = convs(1) * 3  # three copies of one conversation: one request per sample index
    first = gen.chat(same, n=2)
    assert len(lines_of(path)) == 2 and first[0] == first[1] == first[2]
    again = gen.chat(convs(1), n=3)
    assert again[0][:2] == first[0] and len(lines_of(path)) == 3
    assert gen.usage.generated == 3 and gen.usage.cached == 4 + 2


def test_torn_last_line_is_dropped_and_the_file_repaired(tmp_path, embedded_models):
    path = tmp_path / "cache.jsonl"
    cfg = GenerationConfig(backend="hf", model="embedded:tiny-llama", max_new_tokens=4, temperature=1.0,
                           cache_path=str(path), progress=False)
    gen = build_generator(cfg)
    full = gen.chat(convs(4))
    text = path.read_text()
    path.write_text(text[: len(text) - 25])  # the last record cut mid-line, as a SIGKILL mid-write leaves it
    again = gen.chat(convs(4))
    assert again == full
    records = lines_of(path)  # every line parses again
    assert len(records) == 4 and len({r["key"] for r in records}) == 4
    assert gen.cache.repaired_bytes > 0


def test_a_corrupt_middle_line_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "cache.jsonl"
    path.write_text('{"key": "a", "text": "x"}\nnot json\n{"key": "b", "text": "y"}\n')
    with pytest.raises(UserError, match=r"cache.jsonl:2: not a valid cache record"):
        GenerationCache(path).open()


def test_a_cache_in_use_by_another_job_is_refused(tmp_path):
    path = tmp_path / "cache.jsonl"
    with GenerationCache(path), pytest.raises(UserError, match="in use by another running job"):
        GenerationCache(path).open()


KILL_JOB = """
import sys
from common.generation import GenerationConfig, build_generator
convs = [[{"role": "user", "content": f"Question {i}"}] for i in range(int(sys.argv[2]))]
gen = build_generator(GenerationConfig(backend="hf", model="embedded:tiny-llama", max_new_tokens=8,
                                       temperature=1.0, batch_size=1, cache_path=sys.argv[1], progress=False))
gen.chat(convs)
"""


def test_a_job_killed_mid_way_resumes_to_the_same_cache_without_duplicates(tmp_path, embedded_models):
    path, total = tmp_path / "cache.jsonl", 40
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-c", KILL_JOB, str(path), str(total)], cwd=REPO_ROOT, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if path.exists() and path.read_text().count("\n") >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait() == -signal.SIGKILL, "the job must be killed while it runs"
    before = path.read_text().splitlines(keepends=True)
    assert 3 <= len(before) < total

    cfg = GenerationConfig(backend="hf", model="embedded:tiny-llama", max_new_tokens=8, temperature=1.0,
                           batch_size=4, cache_path=str(path), progress=False)
    resumed = build_generator(cfg)
    answers = resumed.chat([[{"role": "user", "content": f"Question {i}"}] for i in range(total)])
    after = path.read_text().splitlines(keepends=True)
    assert after[: len(before) - 1] == before[:-1]  # nothing written before the kill was lost (last may be torn)
    records = [json.loads(line) for line in after]
    assert len(records) == total and len({r["key"] for r in records}) == total
    assert resumed.usage.generated == total - resumed.usage.cached

    fresh = build_generator(dataclasses.replace(cfg, cache_path=str(tmp_path / "fresh.jsonl")))
    assert fresh.chat([[{"role": "user", "content": f"Question {i}"}] for i in range(total)]) == answers


# -- openai backend against common.serve ----------------------------------------------------------------------------


def test_openai_backend_gets_answers_from_local_server_and_counts_usage(server, tiny_hf, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SERVER_KEY)
    path = tmp_path / "api.jsonl"
    gen = build_generator(api_cfg(server.base_url, cache_path=str(path), concurrency=3))
    answers = gen.chat(convs(3), n=2)
    assert [len(a) for a in answers] == [2, 2, 2]
    assert answers == [[a[0], a[0]] for a in tiny_hf.chat(convs(3))]  # greedy over HTTP == greedy in process
    assert gen.usage.generated == 6 and len(lines_of(path)) == 6
    assert gen.usage.prompt_tokens > 6 and 6 <= gen.usage.completion_tokens <= 6 * 6
    calls = gen.usage.http_calls
    assert gen.chat(convs(3), n=2) == answers and gen.usage.http_calls == calls and gen.usage.cached == 6
    assert SERVER_KEY not in path.read_text()


def test_unknown_model_name_is_a_clear_error(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SERVER_KEY)
    with pytest.raises(GenerationError) as err:
        build_generator(api_cfg(server.base_url, model="gpt-9-nonexistent"))
    msg = str(err.value)
    assert "gpt-9-nonexistent" in msg and server.base_url in msg and "embedded:tiny-llama" in msg
    assert SERVER_KEY not in msg


def test_wrong_key_is_a_401_error_that_does_not_show_the_key(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-456")
    start = time.time()
    with pytest.raises(GenerationError, match="HTTP 401") as err:
        build_generator(api_cfg(server.base_url, max_retries=5, backoff_s=1.0))
    assert time.time() - start < 3, "401 is not retried"
    assert "sk-wrong-key-456" not in str(err.value) and KEY_ENV in str(err.value)


def test_missing_key_for_a_remote_endpoint_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(GenerationError, match=f"set the environment variable {KEY_ENV}"):
        build_generator(api_cfg("https://api.example.invalid/v1"))


def test_wrong_port_fails_fast_after_configured_retries(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-x")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    start = time.time()
    with pytest.raises(GenerationError, match=r"cannot connect.*gave up after 3 tries") as err:
        build_generator(api_cfg(f"http://127.0.0.1:{port}/v1"))
    assert time.time() - start < 5
    assert f"127.0.0.1:{port}" in str(err.value)


# -- retries against a scripted HTTP server -------------------------------------------------------------------------


class ScriptedServer:
    """Answers POST /v1/chat/completions with the next scripted (status, headers) and then 200s."""

    def __init__(self, script: list[tuple[int, dict]]):
        self.script, self.posts = list(script), 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status, obj, headers=None):
                data = json.dumps(obj).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts += 1
                if outer.script:
                    status, headers = outer.script.pop(0)
                    return self._json(status, {"error": {"message": f"scripted {status}"}}, headers)
                self._json(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"},
                                              "finish_reason": "stop"}],
                                 "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_two_500s_then_success_takes_three_tries(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)  # loopback: no key needed
    with ScriptedServer([(500, {}), (503, {})]) as srv:
        gen = build_generator(api_cfg(srv.base_url, model="scripted", max_retries=3))
        assert gen.chat(convs(1)) == [["fine"]]
    assert srv.posts == 3 and gen.usage.retries == 2 and gen.usage.completion_tokens == 1


def test_429_waits_for_retry_after(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with ScriptedServer([(429, {"Retry-After": "1"})]) as srv:
        gen = build_generator(api_cfg(srv.base_url, model="scripted"))
        start = time.time()
        assert gen.chat(convs(1)) == [["fine"]]
        assert time.time() - start >= 0.95
    assert srv.posts == 2 and gen.usage.retries == 1


def test_500s_beyond_the_retry_budget_are_a_clear_error(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with ScriptedServer([(500, {})] * 5) as srv:
        gen = build_generator(api_cfg(srv.base_url, model="scripted", max_retries=2))
        with pytest.raises(GenerationError, match=r"HTTP 500: scripted 500 \(gave up after 3 tries\)"):
            gen.chat(convs(1))


def test_config_system_message_is_prepended_only_where_a_conversation_has_none():
    class Echo(Generator):
        def _generate(self, requests, params, emit):
            for req in requests:
                emit(req, {"text": " | ".join(m["content"] for m in req.messages)})

    gen = Echo(GenerationConfig(model="echo", system="Be brief.", progress=False))
    own = [{"role": "system", "content": "Be verbose."}, {"role": "user", "content": "hi"}]
    assert gen.chat([[{"role": "user", "content": "hi"}], own]) == [["Be brief. | hi"], ["Be verbose. | hi"]]
