"""GPU memory plan of every full-scale target: per stage, the model, LoRA or full, engine, sharding and GPUs needed.

    python -m common.gpu_plan [--gpu-mem 80] [--headroom 0.25] [--out plan.md] [--update-readme README.md]

Reads each full-scale config (<paper>/configs/*.yaml except tiny, fidelity, policy_fidelity) and prints a markdown
table. Nothing is downloaded and nothing runs on a GPU:

- Parameter counts are exact: each hub model is built on the meta device (accelerate ``init_empty_weights`` +
  transformers) from the architecture values of its hub config.json, written out in ``ARCHS`` below. ChatGLM3 and
  Baichuan2 ship their own modelling code (trust_remote_code), so their counts come from their architecture's formula
  (``_chatglm3_counts``, ``_baichuan2_counts``; tests check the formulas against the shape-identical transformers
  classes Glm and Llama).
- Model states (weights, gradients, optimizer) per GPU come from DeepSpeed's own estimators,
  ``deepspeed.runtime.zero.stage_1_and_2.estimate_zero2_model_states_mem_needs`` and
  ``deepspeed.runtime.zero.stage3.estimate_zero3_model_states_mem_needs`` (the functions behind DeepSpeed's
  ``estimate_zero{2,3}_model_states_mem_needs_all_cold`` printers; no offload), when deepspeed is installed (the
  ``gpu`` extra). Without it, the same published formulas (ZeRO paper, Rajbhandari et al. 2020, sec. 3; copied from
  those functions) are used and the header says so.
  - ZeRO-2: 2 P + 18 P / N bytes per GPU (16-bit params everywhere; 16-bit + fp32 grads, fp32 params and Adam
    moments partitioned). ZeRO-3: 4 L + 18 P / N (L = the largest layer's params, gathered whole).
  - LoRA under ZeRO: the estimator on the trainable params T, plus the frozen base in bf16, 2 F per GPU under ZeRO-2
    (replicated) or 2 F / N under ZeRO-3 (partitioned). The estimators assume every parameter trains.
  - verl shards actor, critic, reference and reward models with FSDP, which holds the same model states as ZeRO-3:
    the ZeRO-3 estimator is used as verl's FSDP figure (verl has no estimator of its own). Its vLLM rollout engine
    adds the policy's bf16 weights / rollout tensor-parallel size; its KV cache lives in the headroom (verl frees it
    while training).
  - engine ``ours`` (common.train.ppo) and trainers without DeepSpeed (plain HF Trainer, DDP) hold whole models on
    every GPU: 2 bytes per frozen bf16 parameter; 16 per trainable fp32 one (weight 4 + grad 4 + Adam moments 8: LoRA
    adapters, and full fine-tuning without DeepSpeed, which loads float32 and autocasts); 18 per trainable bf16
    parameter of engine ours (bf16 weight 2 + fp32 master 4 + fp32 grad 4 + Adam 8: ppo.MasterWeights). PPO holds
    policy, reference (the LoRA-disabled policy under LoRA), critic and reward models; ReMax the same without the
    critic.
  - vLLM generation: bf16 weights / tensor-parallel size.
- "GPUs needed": the smallest count among 1, 2, 4, 8, then whole nodes of 8, whose per-GPU model states fit in
  ``gpu_mem x (1 - headroom)``; the headroom (default 25 %: 20 of 80 GiB) is left for activations (with gradient
  checkpointing), the vLLM KV cache, the CUDA context and allocator fragmentation. GiB = 2^30 bytes, as DeepSpeed
  prints. One-process stages (engine ours, trainers without DeepSpeed) run on 1 GPU or do not fit.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.config import UserError, run_cli
from common.models import split_revision

ROOT = Path(__file__).resolve().parent.parent
PAPERS = ("rldf", "rllr", "rlchf", "pcrm", "ser")
NOT_FULL_SCALE = {"tiny", "fidelity", "policy_fidelity"}
GiB = 2**30
NODE = 8
GPU_COUNTS = (1, 2, 4, 8, *(NODE * k for k in range(2, 65)))  # then whole nodes of 8, up to 64 nodes
TP_SIZES = (1, 2, 4, 8)  # tensor parallelism stays inside one node
TRAINABLE_BYTES = 16  # an fp32 trainable param: weight 4 + grad 4 + Adam m, v 8 (LoRA adapters; no-ZeRO trainers)
MASTER_BYTES = 18  # a bf16 trainable param of engine ours: bf16 weight 2 + fp32 master 4 + fp32 grad 4 + Adam 8

# ---------------------------------------------------------------------------------------------------------------
# Architectures: the values of each hub model's config.json that decide its parameter count.

ARCHS: dict[str, tuple[str, dict[str, Any]]] = {}


def _arch(family: str, *hub_ids: str, **values: Any) -> None:
    for hub_id in hub_ids:
        ARCHS[hub_id] = (family, values)


_arch("llama", "meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-chat-hf", hidden_size=4096,
      intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, vocab_size=32000)
_arch("llama", "meta-llama/Llama-2-13b-hf", "meta-llama/Llama-2-13b-chat-hf", hidden_size=5120,
      intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40, num_key_value_heads=40, vocab_size=32000)
_arch("llama", "meta-llama/Llama-2-70b-hf", hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
      num_attention_heads=64, num_key_value_heads=8, vocab_size=32000)
_arch("llama", "meta-llama/Meta-Llama-3-8B", "meta-llama/Llama-3.1-8B-Instruct", hidden_size=4096,
      intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, vocab_size=128256)
_arch("llama", "meta-llama/Llama-3.3-70B-Instruct", hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
      num_attention_heads=64, num_key_value_heads=8, vocab_size=128256)
_arch("mistral", "mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-Instruct-v0.2", hidden_size=4096,
      intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, vocab_size=32000)
_arch("qwen2", "Qwen/Qwen1.5-7B-Chat", hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
      num_attention_heads=32, num_key_value_heads=32, vocab_size=151936, tie_word_embeddings=False)
_arch("qwen2", "Qwen/Qwen2.5-7B-Instruct", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
      num_attention_heads=28, num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False)
_arch("bloom", "bigscience/bloom-3b", hidden_size=2560, n_layer=30, n_head=32, vocab_size=250880)
_arch("bloom", "bigscience/bloom-7b1", hidden_size=4096, n_layer=30, n_head=32, vocab_size=250880)
_arch("gemma3", "google/gemma-3-27b-it", vocab_size=262208, mm_tokens_per_image=256,
      text={"hidden_size": 5376, "intermediate_size": 21504, "num_hidden_layers": 62, "num_attention_heads": 32,
            "num_key_value_heads": 16, "head_dim": 128},
      vision={"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304, "num_attention_heads": 16,
              "num_hidden_layers": 27, "patch_size": 14, "vision_use_head": False})
# remote code (trust_remote_code): counted by formula
_arch("chatglm3", "THUDM/chatglm3-6b", hidden_size=4096, num_layers=28, ffn_hidden_size=13696,
      num_attention_heads=32, kv_channels=128, multi_query_group_num=2, padded_vocab_size=65024)
_arch("baichuan2", "baichuan-inc/Baichuan2-7B-Chat", hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
      num_attention_heads=32, vocab_size=125696)
_arch("baichuan2", "baichuan-inc/Baichuan2-13B-Chat", hidden_size=5120, intermediate_size=13696,
      num_hidden_layers=40, num_attention_heads=40, vocab_size=125696)

MODEL_TYPE = {"llama": "llama", "mistral": "mistral", "qwen2": "qwen2", "bloom": "bloom", "gemma3": "gemma3",
              "chatglm3": "chatglm", "baichuan2": "baichuan"}


@dataclass(frozen=True)
class Counts:
    """Parameter counts of one model: causal LM, its reward-model form (1-output head), largest layer, LoRA shapes."""

    total: int
    largest_layer: int  # params of the biggest single module (DeepSpeed's model_to_params rule)
    rm_total: int | None  # the *ForSequenceClassification form with num_labels=1; None when not used
    hidden: int
    lora_io: dict[str, int]  # linear-module name -> sum over layers of (in_features + out_features)
    model_type: str
    how: str


def _transformers_counts(family: str, values: dict[str, Any]) -> Counts:
    import torch
    from accelerate import init_empty_weights
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        BloomConfig,
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        LlamaConfig,
        MistralConfig,
        Qwen2Config,
    )

    if family == "gemma3":
        config = Gemma3Config(text_config={**values["text"], "vocab_size": values["vocab_size"]},
                              vision_config=values["vision"], mm_tokens_per_image=values["mm_tokens_per_image"])
        build = Gemma3ForConditionalGeneration
    else:
        config = {"llama": LlamaConfig, "mistral": MistralConfig, "qwen2": Qwen2Config, "bloom": BloomConfig}[
            family](**values)
        build = AutoModelForCausalLM.from_config
    with init_empty_weights():
        lm = build(config)
    lm.tie_weights()
    total = sum(p.numel() for p in lm.parameters())  # parameters() yields a tied tensor once
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in lm.modules())
    lora_io: dict[str, int] = {}
    for name, module in lm.named_modules():
        if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head"):
            key = name.rsplit(".", 1)[-1]
            lora_io[key] = lora_io.get(key, 0) + module.in_features + module.out_features
    rm_total = None
    if family != "gemma3":  # the judge model only generates
        config.num_labels = 1
        with init_empty_weights():
            rm_total = sum(p.numel() for p in AutoModelForSequenceClassification.from_config(config).parameters())
    hidden = values.get("hidden_size") or values["text"]["hidden_size"]
    return Counts(total, largest, rm_total, hidden, lora_io, MODEL_TYPE[family],
                  f"transformers {type(lm).__name__} on the meta device")


def _chatglm3_counts(v: dict[str, Any]) -> Counts:
    """ChatGLM3-6B (THUDM/chatglm3-6b modeling_chatglm.py): RMSNorm, fused QKV with bias and multi-query groups,
    dense without bias, SwiGLU MLP (dense_h_to_4h is 2 x ffn wide), untied output_layer."""
    h, n_layers, ffn, vocab = v["hidden_size"], v["num_layers"], v["ffn_hidden_size"], v["padded_vocab_size"]
    q = v["num_attention_heads"] * v["kv_channels"]
    qkv = q + 2 * v["multi_query_group_num"] * v["kv_channels"]
    layer = 2 * h + (h * qkv + qkv) + q * h + h * 2 * ffn + ffn * h
    total = 2 * vocab * h + n_layers * layer + h
    lora_io = {"query_key_value": n_layers * (h + qkv), "dense": n_layers * (q + h),
               "dense_h_to_4h": n_layers * (h + 2 * ffn), "dense_4h_to_h": n_layers * (ffn + h)}
    # ChatGLMForSequenceClassification keeps the whole ChatGLMModel (output_layer included) + Linear(h, 1, bias)
    return Counts(total, max(vocab * h, h * 2 * ffn, h * qkv + qkv), total + h + 1, h, lora_io, "chatglm",
                  "formula (remote code)")


def _baichuan2_counts(v: dict[str, Any]) -> Counts:
    """Baichuan2 (baichuan-inc/Baichuan2-*-Chat modeling_baichuan.py): RMSNorm, W_pack = fused q/k/v without bias,
    o_proj, SwiGLU MLP, NormHead lm_head (vocab x h, untied). 13B uses ALiBi, 7B RoPE: neither has parameters."""
    h, n_layers, inter, vocab = v["hidden_size"], v["num_hidden_layers"], v["intermediate_size"], v["vocab_size"]
    layer = 2 * h + 3 * h * h + h * h + 3 * h * inter
    total = 2 * vocab * h + n_layers * layer + h
    lora_io = {"W_pack": n_layers * 4 * h, "o_proj": n_layers * 2 * h, "gate_proj": n_layers * (h + inter),
               "up_proj": n_layers * (h + inter), "down_proj": n_layers * (inter + h)}
    # no remote sequence-classification class: counted as the backbone + a 1-output score head, as transformers'
    # *ForSequenceClassification builds it
    return Counts(total, vocab * h, total - vocab * h + h, h, lora_io, "baichuan", "formula (remote code)")


@functools.cache
def model_counts(hub_id: str) -> Counts:
    hub_id = split_revision(hub_id)[0]  # a pinned revision (name@commit) has its name's architecture
    if hub_id not in ARCHS:
        raise UserError(f"no architecture values for {hub_id!r}; add them to common/gpu_plan.py ARCHS from its "
                        "config.json")
    family, values = ARCHS[hub_id]
    if family == "chatglm3":
        return _chatglm3_counts(values)
    if family == "baichuan2":
        return _baichuan2_counts(values)
    return _transformers_counts(family, values)


def lora_params(counts: Counts, r: int, targets: list[str], where: str) -> int:
    """Trainable LoRA params: r x (in + out) summed over every adapted linear module."""
    from common.train import LORA_TARGETS_BY_FAMILY

    names = list(targets)
    if names in (["auto"], []):
        names = LORA_TARGETS_BY_FAMILY[counts.model_type]
    if names == ["all-linear"]:
        names = list(counts.lora_io)
    missing = [n for n in names if n not in counts.lora_io]
    if missing:
        raise UserError(f"{where}.lora_target_modules: {missing} are not linear modules of this model "
                        f"(have {sorted(counts.lora_io)})")
    return r * sum(counts.lora_io[n] for n in names)


# ---------------------------------------------------------------------------------------------------------------
# DeepSpeed's estimators (GPU bytes of params + grads + optimizer states per GPU, no offload)


@functools.lru_cache(maxsize=1)
def _deepspeed() -> tuple[Any, Any, str] | None:
    try:
        with contextlib.redirect_stdout(sys.stderr):  # deepspeed logs its accelerator choice to stdout
            import deepspeed
            from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
            from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs
    except (ImportError, RuntimeError, OSError):  # not installed (the gpu extra is optional) or broken
        return None
    return estimate_zero2_model_states_mem_needs, estimate_zero3_model_states_mem_needs, deepspeed.__version__


def _layout(n_gpus: int) -> tuple[int, int]:
    """(GPUs per node, nodes) as DeepSpeed's estimators take them."""
    return (n_gpus, 1) if n_gpus <= NODE else (NODE, n_gpus // NODE)


def zero2_gpu_bytes(total_params: int, n_gpus: int, use_deepspeed: bool = True) -> int:
    ds = _deepspeed() if use_deepspeed else None
    per_node, nodes = _layout(n_gpus)
    if ds is not None:
        return int(ds[0](total_params, num_gpus_per_node=per_node, num_nodes=nodes, cpu_offload=False)[1])
    # stage_1_and_2.estimate_zero2_model_states_mem_needs, cpu_offload=False
    return 2 * total_params + int(18 * total_params / (per_node * nodes))


def zero3_gpu_bytes(total_params: int, largest_layer_params: int, n_gpus: int, use_deepspeed: bool = True) -> int:
    ds = _deepspeed() if use_deepspeed else None
    per_node, nodes = _layout(n_gpus)
    if ds is not None:
        return int(ds[1](total_params, largest_layer_params, num_gpus_per_node=per_node, num_nodes=nodes,
                         cpu_offload=False, cpu_offload_params=False, zero_init=True)[1])
    # stage3.estimate_zero3_model_states_mem_needs, cpu_offload=False
    return 4 * largest_layer_params + int(18 * total_params / (per_node * nodes))


def estimator_source(use_deepspeed: bool = True) -> str:
    ds = _deepspeed() if use_deepspeed else None
    if ds is not None:
        return f"DeepSpeed {ds[2]}'s own estimators"
    return "DeepSpeed's estimator formulas, copied into common/gpu_plan.py (deepspeed not used)"


# ---------------------------------------------------------------------------------------------------------------
# Stages of each paper: (kind, config sections, options). Sections name the YAML keys the stage reads (a.b = nested).

STAGES: dict[str, list[tuple[str, list[str], dict[str, Any]]]] = {
    "rldf": [("sft", ["sft"], {}), ("rm", ["rm"], {}), ("rl", ["rl"], {"n_rms": 1}),
             ("rl", ["rl"], {"n_rms": 1, "algorithm": "ppo", "note": "ALGO=ppo"})],
    "rllr": [("sft", ["sft_label", "sft_wrat"], {}), ("rm", ["rm_rat", "rm_label"], {}),
             ("rl", ["rl"], {"n_rms": 2, "note": "rllr_mixed loads both RMs; rlhf / rllr one"})],
    "rlchf": [("generate", ["personas.generator"], {}), ("generate", ["candidates.policy"], {}),
              ("serve", ["rank.judge"], {"note": "served apart by `vllm serve`"}), ("sft", ["sft"], {}),
              ("dpo", ["dpo"], {}), ("rm", ["rm"], {}), ("rl", ["rl"], {"n_rms": 1})],
    "pcrm": [("sft", ["sft_dialogue", "sft_tldr"], {}), ("rm", ["variants_dialogue.rm", "variants_tldr.rm"], {}),
             ("dpo", ["dpo_dialogue", "dpo_tldr"], {}), ("rl", ["rl_dialogue", "rl_tldr"], {"n_rms": 1})],
    "ser": [("sft", ["sft"], {}), ("rm", ["ser.rm"], {"note": "every loop's RM"}), ("rl", ["rl"], {"n_rms": 1})],
}
BASE_MODEL_KEY = {"rldf": "base_model", "rllr": "sft_base.model_name_or_path", "rlchf": "dpo.model_name_or_path",
                  "pcrm": "model.model_name_or_path", "ser": "sft.model_name_or_path"}
STAGE_LABEL = {"sft": "SFT", "rm": "RM", "dpo": "DPO", "generate": "generate (vLLM)", "serve": "judge (vLLM)"}


def rl_sections(paper: str) -> list[str]:
    """The config sections the RL stage of ``paper`` reads (where ``engine`` is set)."""
    return sorted({s for kind, sections, _ in STAGES[paper] if kind == "rl" for s in sections})


def full_scale_configs() -> list[tuple[str, Path]]:
    return [(paper, path) for paper in PAPERS for path in sorted((ROOT / paper / "configs").glob("*.yaml"))
            if path.stem not in NOT_FULL_SCALE]


def _get(cfg: dict, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@functools.cache
def _defaults(kind: str) -> dict[str, Any]:
    if kind == "sft":
        from common.train.sft import SFTConfig as cls
    elif kind == "rm":
        from common.train.rm import RMConfig as cls
    elif kind == "dpo":
        from common.train.dpo import DPOConfig as cls
    elif kind == "rl":
        from common.train.ppo import PPOConfig as cls
    else:
        from common.generation import GenerationConfig as cls
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


# ---------------------------------------------------------------------------------------------------------------
# Memory of one stage


@dataclass
class Row:
    target: str
    stage: str
    sections: list[str]
    model: str
    params: int
    trained: str
    engine: str
    gib: float  # model states per GPU at ``gpus`` (at 1 GPU when nothing fits)
    gpus: int | None  # None: does not fit
    why: str = ""  # said when gpus is None
    note: str = ""
    kind: str = ""
    rollout_tp: int | None = None


@dataclass
class Plan:
    gpu_mem_gib: float = 80.0
    headroom: float = 0.25
    use_deepspeed: bool = True

    @property
    def usable(self) -> float:
        return self.gpu_mem_gib * GiB * (1 - self.headroom)

    def fits(self, nbytes: float) -> bool:
        return nbytes <= self.usable

    def first_fit(self, need) -> tuple[int | None, float]:
        for n in GPU_COUNTS:
            if self.fits(need(n)):
                return n, need(n)
        return None, need(1)

    # -- the estimators, with LoRA composed on top (frozen base in bf16)
    def zero(self, stage: int, trainable: int, frozen: int, largest: int, n: int, wbytes: int) -> float:
        if stage == 2:
            return zero2_gpu_bytes(trainable, n, self.use_deepspeed) + wbytes * frozen
        return zero3_gpu_bytes(trainable, largest, n, self.use_deepspeed) + wbytes * frozen / n


def _weight_bytes(dtype: str) -> int:
    return 4 if dtype in ("float32", "fp32") else 2


def _zero_stage(deepspeed: str | None) -> int | None:
    if not deepspeed:
        return None
    stem = Path(deepspeed).stem
    if stem.startswith("zero2"):
        return 2
    if stem.startswith("zero3"):
        return 3
    raise UserError(f"deepspeed config {deepspeed!r}: cannot tell the ZeRO stage from its name")


def _fmt_params(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"


def _trained(lora: bool, r: int, targets: list[str], n_trainable: int, model_type: str) -> str:
    from common.train import LORA_TARGETS_BY_FAMILY

    if not lora:
        return "full"
    names = LORA_TARGETS_BY_FAMILY[model_type] if list(targets) in (["auto"], []) else targets
    return f"LoRA r{r} {','.join(names)} ({_fmt_params(n_trainable)})"


def plan_config(paper: str, path: Path, plan: Plan) -> list[Row]:
    cfg = yaml.safe_load(path.read_text())
    target = f"{paper}-{path.stem}"
    base = _get(cfg, BASE_MODEL_KEY[paper])
    rows: list[Row] = []
    for kind, sections, opts in STAGES[paper]:
        for section in sections:
            values = _get(cfg, section)
            if values is None:
                raise UserError(f"{path}: no section {section!r} (common/gpu_plan.py STAGES)")
            values = {**_defaults(kind), **values, **{k: v for k, v in opts.items() if k == "algorithm"}}
            where = f"{path.relative_to(ROOT)}:{section}"
            model = values.get("model_name_or_path" if kind in ("sft", "rm", "dpo") else "model") or ""
            if not model or model == "REPLACED_BY_SCRIPT" or model.startswith("runs/"):
                model = base  # filled by the stage scripts with an earlier stage's output: the same architecture
            model = split_revision(model)[0]  # the pinned commit (name@revision) does not change the sizes
            rows += _stage_rows(plan, kind, target, section, model, values, opts, where)
    return _merge(rows)


def _stage_rows(plan: Plan, kind: str, target: str, section: str, model: str, v: dict, opts: dict,
                where: str) -> list[Row]:
    c = model_counts(model)
    w = 2 if kind == "serve" else _weight_bytes(v.get("dtype", "bfloat16"))  # vllm serve: bf16 checkpoints
    common = {"target": target, "sections": [section], "model": model, "note": opts.get("note", ""), "kind": kind}
    if kind in ("generate", "serve"):
        for tp in TP_SIZES:
            if plan.fits(w * c.total / tp):
                break
        need = w * c.total / tp
        fits = plan.fits(need)
        return [Row(stage=STAGE_LABEL[kind], params=c.total, trained="inference", engine=f"vLLM, TP {tp}",
                    gib=need / GiB, gpus=tp if fits else None, why="" if fits else "over 8 GPUs of TP", **common)]
    lora = bool(v.get("use_lora"))
    if kind in ("sft", "rm", "dpo"):
        total = c.rm_total if kind == "rm" else c.total
        head = c.hidden if kind == "rm" else 0  # the score head trains in full beside a LoRA adapter (SEQ_CLS)
        trainable = lora_params(c, v["lora_r"], v["lora_target_modules"], where) + head if lora else total
        frozen = total if lora else 0
        ref = w * c.total if kind == "dpo" and not lora and not v.get("precompute_ref_log_probs") else 0
        zs = _zero_stage(v.get("deepspeed"))
        if zs is None:
            need = w * frozen + TRAINABLE_BYTES * trainable + ref
            gpus, engine, why = (1 if plan.fits(need) else None), "HF Trainer (DDP, no ZeRO)", "needs ZeRO"
        else:
            gpus, need = plan.first_fit(lambda n: plan.zero(zs, trainable, frozen, c.largest_layer, n, w) + ref)
            engine, why = f"DeepSpeed ZeRO-{zs}", "over 64 nodes"
        stage = STAGE_LABEL[kind] + (" (live reference)" if ref else "")
        trained = _trained(lora, v["lora_r"], v["lora_target_modules"], trainable, c.model_type)
        return [Row(stage=stage, params=total, trained=trained, engine=engine, gib=need / GiB, gpus=gpus,
                    why="" if gpus else why, **common)]
    # RL: policy (+ reference) + critic (PPO) + reward models
    algo = v["algorithm"]
    ppo = algo == "ppo"
    n_rms = opts["n_rms"]
    rm_total = c.rm_total
    t_pol = lora_params(c, v["lora_r"], v["lora_target_modules"], where) if lora else c.total
    t_crit = (lora_params(c, v["lora_r"], v["lora_target_modules"], where) + c.hidden if lora else rm_total) if ppo \
        else 0
    parts = ["policy", "reference" if not lora else "reference (LoRA off)"]
    parts += ["critic"] if ppo else []
    parts += [f"{n_rms} RM" + ("s" if n_rms > 1 else "")]
    stage = f"RL {'PPO' if ppo else 'ReMax'}: " + ", ".join(parts)
    trained = _trained(lora, v["lora_r"], v["lora_target_modules"], t_pol, c.model_type)
    # engine ours: one process, whole models on one GPU
    ours = (w * c.total + TRAINABLE_BYTES * t_pol if lora else MASTER_BYTES * c.total + w * c.total)
    if ppo:
        ours += (w * rm_total + TRAINABLE_BYTES * t_crit) if lora else MASTER_BYTES * rm_total
    ours += n_rms * w * rm_total
    rows = [Row(stage=stage, params=c.total, trained=trained, engine="ours (1 process)", gib=ours / GiB,
                gpus=1 if plan.fits(ours) else None, why="" if plan.fits(ours) else "one GPU only", **common)]
    if plan.fits(ours):
        return rows

    # engine verl: FSDP (ZeRO-3 figure) for every model, vLLM rollouts with tensor parallelism
    def verl(n: int, tp: int) -> float:
        need = plan.zero(3, t_pol, c.total if lora else 0, c.largest_layer, n, w)  # actor
        need += 0 if lora else w * c.total / n  # reference, FSDP-sharded
        if ppo:
            need += plan.zero(3, t_crit, rm_total if lora else 0, c.largest_layer, n, w)
        need += n_rms * w * rm_total / n
        return need + w * c.total / tp  # vLLM rollout weights

    best = None
    for n in GPU_COUNTS:
        for tp in TP_SIZES:
            if tp <= n and plan.fits(verl(n, tp)):
                best = (n, tp)
                break
        if best:
            break
    n, tp = best or (GPU_COUNTS[-1], TP_SIZES[-1])
    rows.append(Row(stage=stage, params=c.total, trained=trained, engine=f"verl: FSDP (ZeRO-3 figure) + vLLM TP {tp}",
                    gib=verl(n, tp) / GiB, gpus=n if best else None, why="" if best else "over 64 nodes",
                    rollout_tp=tp, **common))
    return rows


def _merge(rows: list[Row]) -> list[Row]:
    """One row for sections of one config that give the same stage, model and numbers."""
    out: list[Row] = []
    for row in rows:
        same = next((r for r in out if dataclasses.replace(r, sections=row.sections) == row), None)
        if same is not None:
            same.sections = [*same.sections, *row.sections]
        else:
            out.append(row)
    return out


def rl_engine(rows: list[Row]) -> str:
    """The engine a config's RL sections should name: ours when every RL row fits one GPU, else verl."""
    rl = [r for r in rows if r.kind == "rl" and r.engine.startswith("ours")]
    return "ours" if all(r.gpus for r in rl) else "verl"


def build_plan(plan: Plan) -> dict[str, list[Row]]:
    return {f"{paper}-{path.stem}": plan_config(paper, path, plan) for paper, path in full_scale_configs()}


def render(plan: Plan, rows_by_target: dict[str, list[Row]]) -> str:
    usable = plan.usable / GiB
    head = [
        (f"Model states per GPU on {plan.gpu_mem_gib:g} GiB cards, {plan.headroom:.0%} left for activations, KV "
         f"cache and CUDA context (fit: <= {usable:.0f} GiB); estimator: {estimator_source(plan.use_deepspeed)}. "
         "Generated by `python -m common.gpu_plan` (`make gpu-plan`); the method is in its docstring."),
        "",
        "| target | stage (config sections) | model | params | trained | engine, sharding | GiB/GPU | GPUs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines = []
    for target, rows in rows_by_target.items():
        for r in rows:
            note = f"; {r.note}" if r.note else ""
            gpus = str(r.gpus) if r.gpus else f"✗ ({r.why})"
            if r.gpus and r.gpus > NODE:
                gpus += f" ({r.gpus // NODE} nodes)"
            lines.append(f"| `{target}` | {r.stage} (`{'`, `'.join(r.sections)}`{note}) | {r.model} | "
                         f"{_fmt_params(r.params)} | {r.trained} | {r.engine} | {r.gib:.1f} | {gpus} |")
    return "\n".join(head + lines) + "\n"


README_BEGIN = "<!-- gpu-plan:begin (python -m common.gpu_plan --update-readme README.md) -->"
README_END = "<!-- gpu-plan:end -->"


def update_readme(path: Path, table: str) -> None:
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise UserError(f"{path}: no {README_BEGIN} ... {README_END} block to replace")
    before, rest = text.split(README_BEGIN, 1)
    _, after = rest.split(README_END, 1)
    path.write_text(f"{before}{README_BEGIN}\n{table}{README_END}{after}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--gpu-mem", type=float, default=80.0, help="GiB per GPU (default 80: H100 / A100-80G)")
    parser.add_argument("--headroom", type=float, default=0.25,
                        help="share of each GPU kept free for activations, KV cache, CUDA context (default 0.25)")
    parser.add_argument("--out", default=None, help="write the markdown here instead of stdout")
    parser.add_argument("--update-readme", default=None, metavar="README",
                        help="replace the gpu-plan block of this markdown file with the table")
    parser.add_argument("--no-deepspeed", action="store_true",
                        help="use the copied formulas even when deepspeed is installed")
    args = parser.parse_args(argv)

    def go() -> int:
        if args.gpu_mem <= 0 or not 0 <= args.headroom < 1:
            raise UserError("--gpu-mem must be > 0 and --headroom in [0, 1)")
        plan = Plan(args.gpu_mem, args.headroom, not args.no_deepspeed)
        table = render(plan, build_plan(plan))
        if args.update_readme:
            update_readme(Path(args.update_readme), table)
        if args.out:
            Path(args.out).write_text(table)
        elif not args.update_readme:
            sys.stdout.write(table)
        return 0

    return run_cli(go)


if __name__ == "__main__":
    raise SystemExit(main())
