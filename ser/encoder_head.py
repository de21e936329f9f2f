"""A cheap CPU reward model for fidelity runs: a frozen sentence encoder with a trained linear head.

r(x, y) = w · e(text(q, a)), e = the frozen encoder's normalised mean-pooled embedding (384-d for MiniLM), text =
SER's RM input "Question: {q}\\n\\nAnswer: {a}" (``input_format: qa_frame``, [CODE]) or the answer alone
(``bare``). The frame's fixed tokens are a large share of a short text's tokens, so they make a large part of every
mean-pooled embedding the same across texts; ``bare`` embeds only what differs between the two answers of a pair.
The head is trained with the Bradley-Terry loss on the pairs, −log σ(r_c − r_r), plus an L2 penalty λ‖w‖², full
batch with Adam. Embeddings are computed once per text and cached on disk, so each SER loop retrains in
seconds. Not the paper's RM (a LoRA-tuned 7–70B LM): it is a stand-in that lets the loop's logic run on real data
within minutes on two CPU cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.artifacts import atomic_write_json
from common.config import ConfigError, build_dataclass
from common.models import resolve_model

QUESTION_ANSWER = "Question: {q}\n\nAnswer: {a}"  # [CODE] SER's RM input
ANSWER_CUE = "\n\nAnswer: "
INPUT_FORMATS = ("qa_frame", "bare")


def rm_text(q: str, a: str, input_format: str = "qa_frame") -> str:
    """The text the frozen encoder embeds for answer ``a`` to question ``q``."""
    if input_format == "qa_frame":
        return QUESTION_ANSWER.format(q=q, a=a)
    if input_format == "bare":
        return a
    raise ConfigError(f"ser.rm.input_format: {input_format!r} is not one of {list(INPUT_FORMATS)}")


@dataclass
class EncoderHeadSettings:
    """Settings of the frozen-encoder backend (the ``ser.rm`` mapping when ``ser.backend: frozen_encoder``)."""

    model_name_or_path: str = "embedded:all-minilm-l6-v2"
    max_length: int = 128  # tokens per "Question/Answer" text; longer ones lose their start (the answer is at the end)
    embed_batch_size: int = 64
    steps: int = 300  # full-batch Adam steps on the head
    learning_rate: float = 0.05
    l2: float = 1e-3  # λ in λ‖w‖²
    seed: int = 0
    cache_path: str | None = None  # .npz of text-hash -> embedding; None keeps the cache in memory only
    # qa_frame: "Question: {q}\n\nAnswer: {a}" [CODE]; bare: the answer alone (the question is not embedded)
    input_format: str = "qa_frame"

    def __post_init__(self) -> None:
        rm_text("", "", self.input_format)  # a typo is one line naming the key, before any encoding


class FrozenEncoderHead:
    """``train``/``score`` backend for ``ser.loop`` (see ``ser.reward_backends.RewardBackend``)."""

    def __init__(self, settings: dict):
        self.s = build_dataclass(EncoderHeadSettings, dict(settings), "ser.rm")
        self._encoder = None
        self._cache: dict[str, np.ndarray] = {}
        if self.s.cache_path and Path(self.s.cache_path).exists():
            with np.load(self.s.cache_path) as z:
                self._cache = dict(zip(z["keys"].tolist(), z["vectors"]))

    def encode(self, texts: list[str]) -> np.ndarray:
        if self._encoder is None:
            from sentence_transformers import SentenceTransformer

            self._encoder = SentenceTransformer(resolve_model(self.s.model_name_or_path), device="cpu")
            self._encoder.max_seq_length = self.s.max_length
            self._encoder.tokenizer.truncation_side = "left"
        return self._encoder.encode(texts, batch_size=self.s.embed_batch_size, convert_to_numpy=True,
                                    show_progress_bar=len(texts) > 500)

    def embed(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        """(N, d) embeddings of the SER texts, computing only the ones not cached yet."""
        texts = [rm_text(q, a, self.s.input_format) for q, a in zip(prompts, responses, strict=True)]
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        missing = {k: t for k, t in zip(keys, texts) if k not in self._cache}
        if missing:
            vectors = self.encode(list(missing.values()))
            self._cache.update(zip(missing.keys(), vectors.astype(np.float32)))
            self._save_cache()
        return np.stack([self._cache[k] for k in keys])

    def _save_cache(self) -> None:
        if not self.s.cache_path:
            return
        path = Path(self.s.cache_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        os.close(fd)
        np.savez(tmp, keys=np.array(list(self._cache)), vectors=np.stack(list(self._cache.values())))
        os.replace(tmp, path)

    def train(self, pairs: list[dict], out_dir: Path, init_from: Path | None) -> dict:
        import torch

        prompts = [p["prompt"] for p in pairs]
        x_c = torch.from_numpy(self.embed(prompts, [p["chosen"] for p in pairs]))
        x_r = torch.from_numpy(self.embed(prompts, [p["rejected"] for p in pairs]))
        torch.manual_seed(self.s.seed)
        w = torch.zeros(x_c.shape[1]) if init_from is None else torch.tensor(_load_head(init_from))
        w.requires_grad_(True)
        opt = torch.optim.Adam([w], lr=self.s.learning_rate)
        diff = x_c - x_r  # (N, d): r_c − r_r = diff · w
        for _ in range(self.s.steps):
            opt.zero_grad()
            loss = -torch.nn.functional.logsigmoid(diff @ w).mean() + self.s.l2 * (w @ w)
            loss.backward()
            opt.step()
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / "head.json", {"w": w.detach().tolist(), "encoder": self.s.model_name_or_path,
                                                 "input_format": self.s.input_format})
        with torch.no_grad():
            train_acc = float(((diff @ w) > 0).float().mean())
        return {"train_loss": float(loss.detach()), "train_accuracy": train_acc, "dropped_overlong": 0}

    def score(self, model_dir: Path, prompts: list[str], responses: list[str]) -> np.ndarray:
        return self.embed(prompts, responses) @ _load_head(model_dir)


def _load_head(model_dir: Path) -> np.ndarray:
    return np.asarray(json.loads((Path(model_dir) / "head.json").read_text())["w"], dtype=np.float32)


_PPO_HEADS: dict[tuple, tuple[FrozenEncoderHead, np.ndarray]] = {}


def ppo_reward(prompts: list[str], responses: list[str], head_dir: str, encoder: str = "embedded:all-minilm-l6-v2",
               max_length: int = 128, input_format: str = "qa_frame") -> list[float]:
    """Raw head score r(q, a) of policy samples, for ``common.train.ppo`` (``reward_function``).

    PPO prompts are already ``"Question: {q}\\n\\nAnswer: "`` (``ser.prepare_data``), so prompt + response is the exact
    text the head was trained on; a bare question is wrapped in that format first. The encoder and the head are loaded
    once per process (this runs every PPO step); policy samples are not cached (they are new every step). With
    ``input_format: bare`` the head was trained on answers alone, so only the response is embedded.
    """
    key = (encoder, max_length, head_dir, input_format)
    if key not in _PPO_HEADS:
        _PPO_HEADS[key] = (FrozenEncoderHead({"model_name_or_path": encoder, "max_length": max_length,
                                              "input_format": input_format}), _load_head(Path(head_dir)))
    head, w = _PPO_HEADS[key]
    if input_format == "bare":
        texts = list(responses)
    else:
        texts = [p + a if p.endswith(ANSWER_CUE) else QUESTION_ANSWER.format(q=p, a=a)
                 for p, a in zip(prompts, responses, strict=True)]
    return (head.encode(texts) @ w).tolist()
