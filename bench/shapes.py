"""What is benchmarked: random-init Llama shapes, a tokenizer-free vocabulary, model FLOPs and card peaks.

No weights are downloaded: every model is ``LlamaForCausalLM`` / ``LlamaForSequenceClassification`` built from a
config with a fixed seed. The vocabulary is a word-level tokenizer over the strings ``t4 .. t{V-1}`` (ids 0-3 are
``<unk> <s> </s> <pad>``), so synthetic token ids decode to text and encode back to the same ids: PPO's reward
scorer, which re-tokenises text as our stage does, sees exactly the sampled tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

N_SPECIAL = 4  # <unk> <s> </s> <pad>
BOS_ID, EOS_ID, PAD_ID = 1, 2, 3


@dataclass(frozen=True)
class LlamaShape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    max_positions: int = 4096


# 1b is TinyLlama-1.1B's shape (config.json of TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T) [CODE];
# 60m/160m are Pythia-like widths with Llama blocks [GUESS]; tiny is for tests and smoke runs.
MODEL_SIZES: dict[str, LlamaShape] = {
    "tiny": LlamaShape(hidden=128, layers=2, heads=4, kv_heads=2, intermediate=352, vocab=8192),
    "60m": LlamaShape(hidden=512, layers=8, heads=8, kv_heads=4, intermediate=1408, vocab=32000),
    "160m": LlamaShape(hidden=768, layers=16, heads=12, kv_heads=4, intermediate=2304, vocab=32000),
    "1b": LlamaShape(hidden=2048, layers=22, heads=32, kv_heads=4, intermediate=5632, vocab=32000),
}

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, from the vendors' data sheets [CODE].
PEAK_BF16_TFLOPS: dict[str, float] = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def llama_config(size: str, seq_cls: bool = False):
    from transformers import LlamaConfig

    s = MODEL_SIZES[size]
    cfg = LlamaConfig(vocab_size=s.vocab, hidden_size=s.hidden, intermediate_size=s.intermediate,
                      num_hidden_layers=s.layers, num_attention_heads=s.heads, num_key_value_heads=s.kv_heads,
                      max_position_embeddings=s.max_positions, rms_norm_eps=1e-5, tie_word_embeddings=False,
                      bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID)
    if seq_cls:
        cfg.num_labels = 1
    return cfg


def build_model(size: str, kind: str, dtype: torch.dtype, device: str, seed: int = 0):
    """A random-init Llama of ``size``: kind "causal" (policy, reference) or "seq_cls" (reward model, critic)."""
    from transformers import LlamaForCausalLM, LlamaForSequenceClassification

    torch.manual_seed(seed)
    cls = LlamaForSequenceClassification if kind == "seq_cls" else LlamaForCausalLM
    cfg = llama_config(size, seq_cls=kind == "seq_cls")
    cfg._attn_implementation = "sdpa"
    with torch.device(device):  # initialise on the device: a 1.1B init on CPU takes longer than the benchmark
        model = cls(cfg).to(dtype=dtype)
    if kind == "causal":
        model.generation_config.pad_token_id = PAD_ID
        model.generation_config.eos_token_id = EOS_ID
    return model


def build_tokenizer(size: str):
    """Word-level tokenizer whose token i is the string ``t{i}``; decode(encode(x)) is the identity on ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": BOS_ID, "</s>": EOS_ID, "<pad>": PAD_ID}
    vocab.update({f"t{i}": i for i in range(N_SPECIAL, MODEL_SIZES[size].vocab)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    out = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                  pad_token="<pad>")
    out.model_max_length = MODEL_SIZES[size].max_positions
    return out


def matmul_params(size: str, lm_head: bool = True) -> int:
    """Parameters that take part in a matrix product per token (embedding lookup excluded)."""
    s = MODEL_SIZES[size]
    head_dim = s.hidden // s.heads
    attn = 2 * s.hidden * s.hidden + 2 * s.hidden * s.kv_heads * head_dim  # q, o + k, v
    mlp = 3 * s.hidden * s.intermediate
    return s.layers * (attn + mlp) + (s.vocab * s.hidden if lm_head else s.hidden)


def forward_flops(size: str, seq_lens: list[int], lm_head: bool = True) -> float:
    """Model FLOPs of one forward over sequences of these lengths: 2·N per token plus causal attention,
    2·2·T²·d per layer halved by the causal mask (Kaplan et al. 2020 / PaLM appendix B accounting)."""
    s = MODEL_SIZES[size]
    tokens = sum(seq_lens)
    attn = sum(2 * s.layers * s.hidden * t * t for t in seq_lens)
    return 2.0 * matmul_params(size, lm_head) * tokens + attn


def stage_flops(stage: str, size: str, seq_lens: list[int]) -> float:
    """Model FLOPs of one training step of a stage (backward = 2 × forward), counted the same for every
    implementation so MFU ratios equal tokens/s ratios: SFT trains the LM; RM trains the body + a 1-output head;
    DPO trains the policy and runs the reference forward on the same sequences."""
    if stage == "sft":
        return 3 * forward_flops(size, seq_lens)
    if stage == "rm":
        return 3 * forward_flops(size, seq_lens, lm_head=False)
    if stage == "dpo":
        return 4 * forward_flops(size, seq_lens)
    raise ValueError(f"no FLOP model for stage {stage!r}")


def card_peak_tflops(device: str) -> tuple[str, float | None]:
    """The card's name and its dense bf16 peak (None on CPU or an unknown card: no MFU is reported then)."""
    if device == "cpu" or not torch.cuda.is_available():
        import platform

        return platform.processor() or platform.machine(), None
    name = torch.cuda.get_device_name()
    for key, peak in PEAK_BF16_TFLOPS.items():
        if key in name:
            return name, peak
    return name, None
