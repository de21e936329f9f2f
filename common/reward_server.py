"""Our reward sources behind HTTP, for RL engines that run in other processes (verl's reward workers).

    python -m common.reward_server --spec runs/x/rl/reward_spec.json [--host 127.0.0.1] [--port 0] [--device cuda:0]

The spec is the reward part of an RL config (``spec_from_config``): reward models, reward function, combiner,
template, dtype, clip. The server builds it with ``common.rewards.build_reward_source``, the very source
``engine: ours`` builds, so a rollout scores the same under both engines.

``POST /score`` ``{"items": [{"record": {...prompt record...}, "response": str}, ...]}`` -> ``{"scores": [...]}``
(the scores after ``reward_clip``, as ours feeds them to PPO). ``GET /health`` -> ``{"ok": true, "sources": [...]}``.
Concurrent requests (verl asks once per rollout) are gathered for up to ``--wait-ms`` into one batch of at most
``--max-batch`` items: the reward models see batches, not single rows. Bad requests get 400 with one line (bodies over
64 MiB 413, before they are read; other methods 405); a failure while scoring gets 500 naming it. The HTTP side
(listen backlog, body checks, JSON errors) is ``common.serve.JSONHandler``, shared with the chat server. The ready
line ``common.reward_server: ... at http://HOST:PORT`` gives the port.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.artifacts import atomic_write_json
from common.config import UserError, run_cli
from common.serve import APIError, JSONHandler, JSONServer, check_port, decode_json, serve_until_stopped

MAX_BODY_BYTES = 64 * 1024 * 1024
SPEC_KEYS = ("reward_models", "reward_function", "reward_function_kwargs", "combine", "combine_kwargs", "template",
             "dtype", "trust_remote_code", "reward_normalization", "reward_clip")


def spec_from_config(cfg: Any) -> dict[str, Any]:
    """The reward part of a PPOConfig (or a paper subclass, whose __post_init__ filled the reward fields)."""
    return {"reward_models": cfg.reward_models, "reward_function": cfg.reward_function,
            "reward_function_kwargs": cfg.reward_function_kwargs, "combine": cfg.reward_combine,
            "combine_kwargs": cfg.reward_combine_kwargs, "template": cfg.template, "dtype": cfg.dtype,
            "trust_remote_code": cfg.trust_remote_code, "reward_normalization": cfg.reward_normalization,
            "reward_clip": cfg.reward_clip}


class RewardScorer:
    """A reward source plus what PPO does to its scores (common.train.ppo.PPOTrainer.score): running normalisation,
    then the clip; ``__call__(items) -> list[float]``.

    The running statistics advance once per scored batch, as ours advances them once per rollout batch; here a
    batch is what the server gathered (up to ``max_batch`` concurrent rollouts), so a score is normalised with
    statistics that include its own batch either way, but the batch boundaries differ. ``state_file`` keeps the
    statistics across a restart (a resumed run), as ours keeps them in its checkpoint."""

    def __init__(self, spec: dict[str, Any], device: str = "cpu", state_file: str | None = None):
        from common.rewards import build_reward_source
        from common.train.ppo_core import RunningMoments

        unknown = sorted(set(spec) - set(SPEC_KEYS))
        if unknown:
            raise UserError(f"reward spec: unknown key {unknown[0]!r}; known: {list(SPEC_KEYS)}")
        self.clip = spec.get("reward_clip")
        self.normalise = bool(spec.get("reward_normalization"))
        self.stats = RunningMoments()
        self.state_file = Path(state_file) if state_file else None
        if self.state_file is not None and self.state_file.is_file():
            self.stats.load_state_dict(json.loads(self.state_file.read_text()))
        self.source = build_reward_source(spec, device=device, dtype=spec.get("dtype") or "float32",
                                          default_template=spec.get("template") or "tokenizer",
                                          trust_remote_code=bool(spec.get("trust_remote_code")))

    @property
    def names(self) -> list[str]:
        return sorted(getattr(self.source, "sources", {}) or [])

    def __call__(self, items: list[dict]) -> list[float]:
        records = [item["record"] for item in items]
        scores = self.source.score([r["prompt"] for r in records], [item["response"] for item in items], records)
        if self.normalise:
            self.stats.update(scores)
            scores = self.stats.normalise(scores)
            if self.state_file is not None:
                atomic_write_json(self.state_file, self.stats.state_dict())
        if self.clip is not None:
            scores = scores.clamp(-self.clip, self.clip)
        return [float(s) for s in scores]


def parse_items(raw: bytes) -> list[dict]:
    body = decode_json(raw)
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise APIError(400, "expected {\"items\": [{\"record\": {\"prompt\": ...}, \"response\": str}, ...]}")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("response"), str):
            raise APIError(400, f"items[{i}].response: expected a string", param=f"items[{i}].response")
        record = item.get("record")
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), (str, list)):
            raise APIError(400, f"items[{i}].record.prompt: expected a string or a list of messages",
                           param=f"items[{i}].record")
    return items


@dataclass
class _Job:
    items: list[dict]
    done: threading.Event = field(default_factory=threading.Event)
    scores: list[float] | None = None
    error: str | None = None


class Batcher:
    """One scoring thread; requests that arrive within ``wait_s`` of each other share a batch."""

    def __init__(self, scorer: Any, max_batch: int = 64, wait_s: float = 0.01):
        self.scorer, self.max_batch, self.wait_s = scorer, max_batch, wait_s
        self.jobs: queue.Queue[_Job] = queue.Queue()
        self.batches = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def score(self, items: list[dict]) -> list[float]:
        job = _Job(items)
        self.jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise APIError(500, job.error)
        assert job.scores is not None, "a finished job holds scores or an error"
        return job.scores

    def _loop(self) -> None:
        while True:
            jobs = [self.jobs.get()]
            size = len(jobs[0].items)
            while size < self.max_batch:
                try:
                    job = self.jobs.get(timeout=self.wait_s)
                except queue.Empty:
                    break
                jobs.append(job)
                size += len(job.items)
            items = [item for job in jobs for item in job.items]
            try:
                scores = self.scorer(items)
            except Exception as exc:  # noqa: BLE001 - reported to every waiting request, the server keeps going
                for job in jobs:
                    job.error = f"scoring failed: {type(exc).__name__}: {exc}"
                    job.done.set()
                continue
            self.batches += 1
            start = 0
            for job in jobs:
                job.scores = scores[start:start + len(job.items)]
                start += len(job.items)
                job.done.set()


def make_handler(batcher: Batcher, names: list[str]) -> type[JSONHandler]:
    """Routes on common.serve's JSONHandler (listen backlog, Content-Length checks before reading, JSON errors)."""
    routes = {("GET", "/health"): lambda raw: {"ok": True, "sources": names, "batches": batcher.batches},
              ("POST", "/score"): lambda raw: {"scores": batcher.score(parse_items(raw))}}

    class Handler(JSONHandler):
        max_body_bytes = MAX_BODY_BYTES
        log_name = None  # one line per rollout would drown the training log

        def route(self, method: str, path: str) -> Callable[[bytes], dict] | None:
            return routes.get((method, path))

    return Handler


def serve(spec_path: str, host: str = "127.0.0.1", port: int = 0, device: str = "auto", max_batch: int = 64,
          wait_ms: float = 10.0, state_file: str | None = None) -> None:
    check_port(port)  # before the reward models load
    path = Path(spec_path)
    if not path.is_file():
        raise UserError(f"--spec: {path} does not exist")
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"--spec: {path} is not valid JSON ({exc})") from None
    if device == "auto":
        import torch

        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    scorer = RewardScorer(spec, device=device, state_file=state_file)
    batcher = Batcher(scorer, max_batch=max_batch, wait_s=wait_ms / 1000)
    try:
        server = JSONServer((host, port), make_handler(batcher, scorer.names))
    except (OSError, OverflowError) as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc}; pick another --port") from None
    print(f"common.reward_server: {scorer.names} on {device} at http://{host}:{server.server_address[1]}",
          flush=True)
    serve_until_stopped(server)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m common.reward_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, help="reward spec JSON (common.train.verl_engine writes one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (a node IP when verl spans nodes)")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free one, printed in the ready line)")
    parser.add_argument("--device", default="auto", help="auto (cuda:0 if present) | cpu | cuda:N | shard (every "
                        "visible GPU, device_map=auto)")
    parser.add_argument("--max-batch", type=int, default=64, help="most items scored in one forward pass")
    parser.add_argument("--wait-ms", type=float, default=10.0, help="how long to gather concurrent requests")
    parser.add_argument("--state", default=None, help="file keeping the reward-normalisation statistics across "
                        "restarts")
    args = parser.parse_args(argv)
    run_cli(lambda: serve(args.spec, args.host, args.port, args.device, args.max_batch, args.wait_ms, args.state))


if __name__ == "__main__":
    sys.exit(main())
