"""PPO throughput: our ``common.train.ppo.PPOTrainer`` against ``trl==1.12.0``'s ``trl.experimental.ppo.PPOTrainer``.

Both get four random-init models of the same size (policy, frozen reference, critic = sequence classifier, reward
model = sequence classifier), the same prompts, ``batch`` prompts per step, ``gen_len`` sampled tokens (temperature
1, no top-k/top-p; random models practically never sample EOS, so every response has ``gen_len`` tokens), 4 PPO
epochs over one minibatch of the whole rollout. Our reward path is the real one: responses are decoded to text and
re-tokenised by the reward scorer (``format_rm_input`` + ``score_texts``); TRL scores the token ids directly.

TRL 1.12 cannot be imported next to TRL 1.16, so it runs in a child process whose ``PYTHONPATH`` starts with
``.cache/bench/trl-1.12.0/`` (``pip install --no-deps --target``; TRL 1.12 needs accelerate>=1.4, datasets>=4.7,
transformers>=4.56.2, which the project's environment already has, so torch is the project's own). The child's
timings come back as JSON on its last stdout line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench.shapes import build_model, build_tokenizer
from bench.spec import BenchSpec
from bench.synthetic import prompt_rows
from bench.timing import peak_memory_gb, reset_peak_memory, sync

TRL_PPO_VERSION = "1.12.0"
REPO_ROOT = Path(__file__).resolve().parent.parent
OVERLAY = REPO_ROOT / ".cache" / "bench" / f"trl-{TRL_PPO_VERSION}"


class Stopwatch:
    """Seconds per phase (generation, scoring), counting only events after ``start_counting``."""

    def __init__(self, device: str):
        self.device, self.counting, self.seconds = device, False, {"generation": 0.0, "scoring": 0.0}

    def wrap(self, phase: str, fn):
        def timed(*args, **kwargs):
            sync(self.device)
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            sync(self.device)
            if self.counting:
                self.seconds[phase] += time.perf_counter() - t0
            return out

        return timed


def _result(spec: BenchSpec, seconds: float, watch: Stopwatch, episodes: int, tokens: int) -> dict:
    gen, score = watch.seconds["generation"], watch.seconds["scoring"]
    return {"episodes": episodes, "seconds": round(seconds, 4), "episodes_per_s": round(episodes / seconds, 4),
            "tokens": tokens, "tokens_per_s": round(tokens / seconds, 2),
            "generation_s": round(gen, 4), "scoring_s": round(score, 4),
            "training_s": round(seconds - gen - score, 4),
            "peak_mem_gb": round(peak_memory_gb(spec.device), 3)}


# ---------------------------------------------------------------------------------------------------------------
# Ours


class TokenTextRewardModel:
    """The reward path of ``common.rewards.RewardModelScorer`` on an in-memory reward model."""

    def __init__(self, model, tokenizer, batch_size: int):
        self.model, self.tokenizer, self.batch_size = model.eval().requires_grad_(False), tokenizer, batch_size

    def score(self, prompts: list, responses: list[str], records: list[dict] | None = None) -> torch.Tensor:
        from common.train.rm import format_rm_input, score_texts

        texts = [format_rm_input(p, r, "plain", self.tokenizer) for p, r in zip(prompts, responses)]
        return score_texts(self.model, self.tokenizer, texts, self.batch_size)


def run_ours(spec: BenchSpec) -> dict:
    from common.train.ppo import PPOConfig, PPOTrainer

    tok = build_tokenizer(spec.size)
    cfg = PPOConfig(model="bench", dataset="bench", output_dir=spec.work_dir, seed=spec.seed, template="plain",
                    rollout_batch_size=spec.batch, mini_batch_size=spec.batch, ppo_epochs=spec.ppo_epochs,
                    max_new_tokens=spec.gen_len, max_prompt_length=spec.max_len, dtype=spec.dtype_name,
                    device=spec.device, temperature=1.0)
    dev = torch.device(spec.device)
    policy = build_model(spec.size, "causal", spec.dtype, spec.device, spec.seed)
    ref = build_model(spec.size, "causal", spec.dtype, spec.device, spec.seed).eval().requires_grad_(False)
    critic = build_model(spec.size, "seq_cls", spec.dtype, spec.device, spec.seed)
    reward = TokenTextRewardModel(build_model(spec.size, "seq_cls", spec.dtype, spec.device, spec.seed + 1), tok,
                                  spec.batch)
    trainer = PPOTrainer(cfg, tok, policy.train(), ref, critic.train(), reward, dev)
    n_steps = spec.warmup + spec.steps
    trainer.setup_optimizers(n_steps)
    watch = Stopwatch(spec.device)
    trainer.generate = watch.wrap("generation", trainer.generate)
    trainer.score = watch.wrap("scoring", trainer.score)
    prompts = prompt_rows(spec.batch * n_steps, spec.size, spec.lengths)
    reset_peak_memory(spec.device)
    seconds, tokens = 0.0, 0
    for step in range(n_steps):
        ids = prompts[step * spec.batch: (step + 1) * spec.batch]
        records = [{"prompt": tok.decode(p) + " "} for p in ids]  # the space keeps the response a separate word
        watch.counting = step >= spec.warmup
        sync(spec.device)
        t0 = time.perf_counter()
        stats = trainer.step(records, ids, spec.gen_len)
        sync(spec.device)
        if watch.counting:
            seconds += time.perf_counter() - t0
            tokens += sum(len(p) for p in ids) + round(stats["response_length"] * spec.batch)
    return _result(spec, seconds, watch, spec.batch * spec.steps, tokens)


# ---------------------------------------------------------------------------------------------------------------
# TRL 1.12 (child process)


def ensure_trl_overlay(wheel_dir: str | None = None) -> Path:
    """``.cache/bench/trl-1.12.0/`` holding trl 1.12.0 only (no deps); from ``wheel_dir`` offline when given."""
    if (OVERLAY / "trl" / "experimental" / "ppo").is_dir():
        return OVERLAY
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(OVERLAY)]
    cmd += ["--no-index", "--find-links", wheel_dir] if wheel_dir else []
    proc = subprocess.run([*cmd, f"trl=={TRL_PPO_VERSION}"], check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pip could not install trl=={TRL_PPO_VERSION} into {OVERLAY}: "
                           f"{proc.stderr.strip().splitlines()[-1:] or proc.stdout}")
    return OVERLAY


def run_trl(spec: BenchSpec) -> dict:
    overlay = ensure_trl_overlay(os.environ.get("BENCH_WHEELS"))
    path = os.pathsep.join([str(overlay), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    payload = json.dumps({**spec.to_json(), "work_dir": spec.work_dir})
    proc = subprocess.run([sys.executable, "-m", "bench.ppo", payload], check=False, cwd=REPO_ROOT,
                          env=dict(os.environ, PYTHONPATH=path), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"TRL {TRL_PPO_VERSION} PPO run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _trl_child(spec: BenchSpec) -> dict:
    """Runs inside the child: TRL 1.12's PPOTrainer, timed by wrapping its module-level helpers."""
    import importlib.metadata as md

    import trl
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl.experimental.ppo import PPOConfig, PPOTrainer
    from trl.experimental.ppo import ppo_trainer as trl_ppo

    assert trl.__version__ == TRL_PPO_VERSION, f"child imported trl {trl.__version__}, not {TRL_PPO_VERSION}"
    tok = build_tokenizer(spec.size)
    tok.padding_side = "left"
    n_steps = spec.warmup + spec.steps
    best = {"gradient_checkpointing": False} if spec.trl_mode == "best" else {}
    args = PPOConfig(output_dir=spec.work_dir, per_device_train_batch_size=spec.batch, gradient_accumulation_steps=1,
                     num_mini_batches=1, num_ppo_epochs=spec.ppo_epochs, total_episodes=spec.batch * n_steps,
                     response_length=spec.gen_len, local_rollout_forward_batch_size=spec.batch, temperature=1.0,
                     num_sample_generations=0, report_to="none", save_strategy="no", logging_steps=10**6,
                     bf16=spec.on_cuda, seed=spec.seed, learning_rate=1e-5, disable_tqdm=True, **best)
    policy = build_model(spec.size, "causal", spec.dtype, spec.device, spec.seed)
    ref = build_model(spec.size, "causal", spec.dtype, spec.device, spec.seed)
    critic = build_model(spec.size, "seq_cls", spec.dtype, spec.device, spec.seed)
    reward_model = build_model(spec.size, "seq_cls", spec.dtype, spec.device, spec.seed + 1)
    prompts = prompt_rows(spec.batch * n_steps, spec.size, spec.lengths)
    dataset = Dataset.from_list([{"input_ids": p} for p in prompts])

    watch = Stopwatch(spec.device)
    trl_ppo.batch_generation = watch.wrap("generation", trl_ppo.batch_generation)
    get_reward, score_reward = trl_ppo.get_reward, watch.wrap("scoring", trl_ppo.get_reward)
    trl_ppo.get_reward = lambda model, *a, **k: (score_reward if model is reward_model else get_reward)(model, *a, **k)
    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            sync(spec.device)
            marks.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            sync(spec.device)
            marks.append(time.perf_counter())
            watch.counting = len(marks) - 1 >= spec.warmup

    watch.counting = spec.warmup == 0
    trainer = PPOTrainer(args=args, processing_class=tok, model=policy, ref_model=ref, reward_model=reward_model,
                         train_dataset=dataset, value_model=critic, callbacks=[Clock()])
    reset_peak_memory(spec.device)
    trainer.train()
    seconds = marks[-1] - marks[spec.warmup]
    tokens = sum(len(p) + spec.gen_len for p in prompts[spec.batch * spec.warmup:])
    out = _result(spec, seconds, watch, spec.batch * spec.steps, tokens)
    out["versions"] = {name: md.version(name) for name in ("torch", "transformers", "accelerate", "datasets")}
    out["versions"]["trl"] = trl.__version__
    return out


def run_ppo(spec: BenchSpec) -> dict:
    return run_ours(spec) if spec.impl == "ours" else run_trl(spec)


if __name__ == "__main__":  # the TRL 1.12 child: argv[1] is the spec as JSON
    fields = json.loads(sys.argv[1])
    child_spec = BenchSpec(**fields)
    print(json.dumps(_trl_child(child_spec)), flush=True)
