"""SFT stage on the tiny model: the loss falls and the end-of-turn token is learned (pad == eos must not untrain it),
LoRA SFT then merge reproduces base + adapter, and a run killed with SIGKILL resumes from its checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from common.config import ConfigError, UserError
from common.models import load_causal_lm, load_tokenizer
from common.templates import render_prompt, render_response
from common.train.sft import SFTConfig, main, sft_examples, train_sft

REPO = Path(__file__).resolve().parents[2]
RECORDS = [
    {"prompt": "What colour is the sky?", "response": "Blue."},
    {"prompt": "Say hello.", "response": "Hello there!"},
    {"prompt": "What is 2+2?", "response": "4"},
    {"prompt": "Name a fruit.", "response": "Apple"},
]



@pytest.fixture()
def sft_data(tmp_path) -> str:
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return str(path)


def _cfg(model: str, data: str, out: Path, **kw) -> SFTConfig:
    settings = {
        "model_name_or_path": model, "dataset": data, "output_dir": str(out), "template": "tokenizer",
        "report_to": "none", "per_device_train_batch_size": 4, "learning_rate": 5e-3, "lr_scheduler_type": "constant",
        "logging_steps": 1, "save_steps": 1000, "max_length": 64, "seed": 0,
    }
    return SFTConfig(**{**settings, **kw})


def _eot_logprob(model, tok, record) -> float:
    """log p(<|im_end|> | prompt + response): what the model must learn to stop."""
    prompt = render_prompt(record["prompt"], "tokenizer", tok)
    ids = tok(prompt + record["response"], add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits[0, -1]
    return float(torch.log_softmax(logits, -1)[tok.eos_token_id])


def test_sft_loss_falls_and_end_of_turn_is_learned(tiny_llama, sft_data, tmp_path):
    tok = load_tokenizer(tiny_llama)
    before = _eot_logprob(load_causal_lm(tiny_llama), tok, RECORDS[2])
    metrics = train_sft(_cfg(tiny_llama, sft_data, tmp_path / "run", max_steps=10))
    assert metrics["global_step"] == 10
    assert metrics["train_loss_last"] < 0.8 * metrics["train_loss_first"]
    # trained tokens = the response and its "<|im_end|>\n", nothing of the prompt
    expected = sum(len(tok(render_response(r["response"], "tokenizer", tok), add_special_tokens=False)["input_ids"])
                   for r in RECORDS)
    assert metrics["trained_tokens"] == expected
    after = _eot_logprob(load_causal_lm(str(tmp_path / "run")), tok, RECORDS[2])
    assert after > before + 2.0  # EOS (also the pad token) was trained, not masked as padding
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["key_metric"] == "train_loss_last"


def test_lora_sft_then_merge_equals_base_plus_adapter(tiny_llama, sft_data, tmp_path):
    from peft import PeftModel

    from common.merge_lora import merge_lora

    out = tmp_path / "lora"
    train_sft(_cfg(tiny_llama, sft_data, out, max_steps=2, use_lora=True, learning_rate=5e-2, eval_fraction=0.25))
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    assert json.loads((out / "adapter_config.json").read_text())["target_modules"] in (["q_proj", "v_proj"],
                                                                                        ["v_proj", "q_proj"])
    merged_dir = merge_lora(out, tmp_path / "merged", base=tiny_llama)
    ids = torch.tensor([[1, 520, 9531, 198, 11527, 2, 198]])
    with torch.no_grad():
        base_logits = load_causal_lm(tiny_llama)(ids).logits
        peft_logits = PeftModel.from_pretrained(load_causal_lm(tiny_llama), str(out))(ids).logits
        merged_logits = load_causal_lm(str(merged_dir))(ids).logits
    assert not torch.allclose(base_logits, peft_logits, atol=1e-4)  # the adapter changed something
    torch.testing.assert_close(merged_logits, peft_logits, atol=1e-4, rtol=1e-4)
    assert "eval_loss" in json.loads((out / "metrics.json").read_text())


def test_killed_run_resumes_from_its_checkpoint(tiny_llama, sft_data, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "common.train.sft", "--model_name_or_path", tiny_llama, "--dataset", sft_data,
           "--output_dir", str(out), "--report_to", "none", "--per_device_train_batch_size", "2",
           "--max_steps", "100000", "--save_steps", "3", "--logging_steps", "1", "--max_length", "64"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not (out / "checkpoint-3" / "trainer_state.json").exists():
            assert proc.poll() is None, "the training subprocess died before its first checkpoint"
            assert time.time() < deadline, "no checkpoint within 240 s"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not (out / "metrics.json").exists()
    with pytest.raises(UserError, match="--resume true"):
        train_sft(_cfg(tiny_llama, sft_data, out, max_steps=9, save_steps=3))
    metrics = train_sft(_cfg(tiny_llama, sft_data, out, max_steps=9, save_steps=3, resume=True,
                             per_device_train_batch_size=2))
    assert Path(metrics["resumed_from"]).name in ("checkpoint-3", "checkpoint-6")
    assert metrics["global_step"] == 9
    assert (out / "model.safetensors").exists()


def test_bad_settings_fail_before_any_training(tiny_llama, sft_data, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--model_name_or_path", tiny_llama, "--dataset", sft_data, "--output_dir", str(tmp_path / "x"),
              "--template", "lama2"])
    assert exc.value.code == 2 and "sft.template: 'lama2' is not registered" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"sft\.deepspeed: 'zero9\.json' does not exist"):
        _cfg(tiny_llama, sft_data, tmp_path / "d", deepspeed="zero9.json")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="QLoRA needs a CUDA GPU"):
            _cfg(tiny_llama, sft_data, tmp_path / "q", use_lora=True, load_in_4bit=True)


@pytest.mark.parametrize("name,stage", [("zero2", 2), ("zero3", 3), ("zero3_offload", 3)])
def test_deepspeed_configs_defer_batch_and_precision_to_the_trainer(name, stage, tiny_llama, sft_data, tmp_path):
    path = REPO / "common" / "configs" / "deepspeed" / f"{name}.json"
    ds = json.loads(path.read_text())
    assert ds["zero_optimization"]["stage"] == stage
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping"):
        assert ds[key] == "auto"  # HF integration fills these from the stage config, so they cannot disagree
    assert ds["bf16"]["enabled"] == ds["fp16"]["enabled"] == "auto"
    assert ("offload_param" in ds["zero_optimization"]) == name.endswith("offload")
    _cfg(tiny_llama, sft_data, tmp_path / name, deepspeed=str(path))  # accepted by the stage config


def test_messages_record_trains_its_last_assistant_turn_only(tiny_llama, sft_data, tmp_path):
    tok = load_tokenizer(tiny_llama)
    cfg = _cfg(tiny_llama, sft_data, tmp_path / "m", template="qwen", system="Be brief.")
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
               {"role": "user", "content": "Name a colour."}]
    as_messages = {"messages": [*history, {"role": "assistant", "content": "Blue."}]}
    as_pair = {"prompt": history, "response": "Blue."}
    (a,), (b,) = sft_examples([as_messages], tok, cfg), sft_examples([as_pair], tok, cfg)
    assert a == b
    trained = [t for t, lab in zip(a["input_ids"], a["labels"]) if lab != -100]
    assert tok.decode(trained) == "Blue.<|im_end|>\n"
    assert tok.decode(a["input_ids"]).startswith("<|im_start|>system\nBe brief.<|im_end|>")
