"""verl's custom reward function for ``engine: verl``: each rollout is scored by our reward server.

verl loads this file by path (``reward.custom_reward_function.path``) inside its reward workers, in verl's own
environment and possibly on another node, so it imports only the standard library. The URL comes from
``reward.custom_reward_function.reward_kwargs.url`` (common.verl_bridge writes it). verl calls ``compute_score`` once
per rollout, many concurrently; the server gathers concurrent calls into batches (common.reward_server).

The prompt record travels in ``extra_info["record"]`` (the JSON line common.train.verl_engine wrote into the
parquet file), so a reward that needs a gold label or a reference answer gets the same record as under
``engine: ours``. ``solution_str`` is the response verl decoded with special tokens skipped, as ours decodes it.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

TIMEOUT_S = 600.0
RETRIES = 5


def _post(url: str, payload: dict) -> dict:
    body = json.dumps(payload).encode()
    last = ""
    for attempt in range(RETRIES):
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            if exc.code < 500:  # a bad request stays bad: say what the server said
                raise RuntimeError(f"reward server {url}: HTTP {exc.code}: {detail}") from None
            last = f"HTTP {exc.code}: {detail}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last = str(getattr(exc, "reason", exc))
        time.sleep(min(2**attempt, 10))
    raise RuntimeError(f"reward server {url}: no answer after {RETRIES} tries ({last})")


def score_items(url: str, items: list[dict]) -> list[float]:
    """POST ``{"items": [{"record", "response"}]}`` to ``<url>/score``; one float per item."""
    answer = _post(url.rstrip("/") + "/score", {"items": items})
    scores = answer.get("scores")
    if not isinstance(scores, list) or len(scores) != len(items):
        raise RuntimeError(f"reward server {url}: expected {len(items)} scores, got {answer!r:.200}")
    return [float(s) for s in scores]


async def compute_score(data_source, solution_str, ground_truth, extra_info=None, url: str | None = None,
                        **_: object) -> float:
    if not url:
        raise RuntimeError("common/verl_reward.py: no reward server URL; set "
                           "reward.custom_reward_function.reward_kwargs.url")
    record = json.loads((extra_info or {}).get("record") or "{}")
    item = {"record": record, "response": solution_str}
    (score,) = await asyncio.to_thread(score_items, url, [item])
    return score
