"""The GPU plan: exact parameter counts, DeepSpeed's estimator formulas, GPUs needed, and the configs it covers."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from common import gpu_plan as gp

ROOT = Path(__file__).resolve().parents[2]
GiB = 2**30
LLAMA2_7B = "meta-llama/Llama-2-7b-hf"


@pytest.fixture(scope="module")
def plan() -> gp.Plan:
    return gp.Plan(gpu_mem_gib=80, headroom=0.25, use_deepspeed=False)  # the copied formulas: same on every machine


@pytest.fixture(scope="module")
def table(plan) -> dict[str, list[gp.Row]]:
    return gp.build_plan(plan)


def test_llama2_7b_parameter_count_is_exact():
    # meta-llama/Llama-2-7b-hf: 4096 hidden, 32 layers, 32 heads, 11008 MLP, 32000 vocab, untied head
    counts = gp.model_counts(LLAMA2_7B)
    assert counts.total == 6_738_415_616
    assert counts.largest_layer == 32000 * 4096  # embed_tokens (= lm_head): the biggest single module
    assert counts.rm_total == 6_738_415_616 - 32000 * 4096 + 4096  # lm_head -> 1-output score head
    assert gp.model_counts("meta-llama/Llama-2-7b-chat-hf") == counts


@pytest.mark.parametrize(("hub_id", "total"), [
    ("meta-llama/Llama-2-13b-hf", 13_015_864_320),
    ("meta-llama/Llama-2-70b-hf", 68_976_648_192),
    ("meta-llama/Meta-Llama-3-8B", 8_030_261_248),
    ("meta-llama/Llama-3.3-70B-Instruct", 70_553_706_496),
    ("mistralai/Mistral-7B-v0.1", 7_241_732_096),
    ("Qwen/Qwen1.5-7B-Chat", 7_721_324_544),
    ("Qwen/Qwen2.5-7B-Instruct", 7_615_616_512),
    ("bigscience/bloom-3b", 3_002_557_440),  # tied embeddings counted once
    ("bigscience/bloom-7b1", 7_069_016_064),
    ("THUDM/chatglm3-6b", 6_243_584_000),
    ("baichuan-inc/Baichuan2-7B-Chat", 7_505_973_248),
    ("baichuan-inc/Baichuan2-13B-Chat", 13_896_668_160),
    ("google/gemma-3-27b-it", 27_432_406_640),
])
def test_parameter_counts_match_the_hub_totals(hub_id, total):
    assert gp.model_counts(hub_id).total == total


def test_remote_code_formulas_equal_shape_identical_transformers_models():
    """ChatGLM3 has GLM's shapes (fused qkv with bias, 2-group MQA, SwiGLU), Baichuan2 Llama's (W_pack = q, k, v)."""
    from accelerate import init_empty_weights
    from transformers import GlmConfig, GlmForCausalLM, LlamaConfig, LlamaForCausalLM

    v = gp.ARCHS["THUDM/chatglm3-6b"][1]
    glm = GlmConfig(vocab_size=v["padded_vocab_size"], hidden_size=v["hidden_size"],
                    intermediate_size=v["ffn_hidden_size"], num_hidden_layers=v["num_layers"],
                    num_attention_heads=v["num_attention_heads"], num_key_value_heads=v["multi_query_group_num"],
                    head_dim=v["kv_channels"], attention_bias=True, tie_word_embeddings=False, pad_token_id=0)
    for hub_id, config, cls in [
        ("THUDM/chatglm3-6b", glm, GlmForCausalLM),
        *[(h, LlamaConfig(**{**gp.ARCHS[h][1], "num_key_value_heads": gp.ARCHS[h][1]["num_attention_heads"]}),
           LlamaForCausalLM) for h in ("baichuan-inc/Baichuan2-7B-Chat", "baichuan-inc/Baichuan2-13B-Chat")],
    ]:
        with init_empty_weights():
            model = cls(config)
        assert gp.model_counts(hub_id).total == sum(p.numel() for p in model.parameters()), hub_id


def test_zero_formulas_by_hand():
    p, largest = 6_738_415_616, 131_072_000
    # ZeRO-3 (stage3.estimate_zero3_model_states_mem_needs): 4 L + 18 P / N
    assert gp.zero3_gpu_bytes(p, largest, 8, use_deepspeed=False) == 524_288_000 + 15_161_435_136
    # ZeRO-2 (stage_1_and_2.estimate_zero2_model_states_mem_needs): 2 P + 18 P / N
    assert gp.zero2_gpu_bytes(p, 4, use_deepspeed=False) == 13_476_831_232 + 30_322_870_272
    # 16 GPUs = 2 nodes of 8: N is the total count
    assert gp.zero3_gpu_bytes(p, largest, 16, use_deepspeed=False) == 524_288_000 + int(18 * p / 16)


def test_copied_formulas_equal_deepspeeds_own_estimators():
    pytest.importorskip("deepspeed")
    assert gp._deepspeed() is not None
    for n in (1, 2, 4, 8, 16, 24, 64):
        for p, largest in ((6_738_415_616, 131_072_000), (68_976_648_192, 262_144_000), (8_388_608, 4096)):
            assert gp.zero2_gpu_bytes(p, n) == gp.zero2_gpu_bytes(p, n, use_deepspeed=False)
            assert gp.zero3_gpu_bytes(p, largest, n) == gp.zero3_gpu_bytes(p, largest, n, use_deepspeed=False)


def test_gpus_needed_is_the_smallest_count_that_fits(table, plan):
    """pcrm-llama2 SFT: full Llama-2-7B under ZeRO-2; 2 GPUs need 11 P bytes (69 GiB > 60), 4 need 6.5 P."""
    p = 6_738_415_616
    sft = next(r for r in table["pcrm-llama2"] if r.stage == "SFT")
    assert sft.gpus == 4 and sft.gib == pytest.approx((2 * p + 18 * p / 4) / GiB)
    assert (2 * p + 18 * p / 2) > plan.usable >= (2 * p + 18 * p / 4)


def test_engine_ours_is_whole_models_in_bf16_plus_16_bytes_per_trainable_param(table):
    """ser-llama3 PPO: LoRA policy (ref = adapter off) + LoRA critic (score head trains) + one RM."""
    c = gp.model_counts("meta-llama/Meta-Llama-3-8B")
    lora = 16 * (c.lora_io["q_proj"] + c.lora_io["v_proj"])  # r 16 on q_proj, v_proj
    expected = 2 * c.total + 16 * lora + 2 * c.rm_total + 16 * (lora + c.hidden) + 2 * c.rm_total
    ours = next(r for r in table["ser-llama3"] if r.kind == "rl")
    assert ours.engine.startswith("ours") and ours.gpus == 1 and ours.gib == pytest.approx(expected / GiB)


def test_engine_ours_full_model_counts_fp32_masters_of_the_bf16_policy(table):
    """rldf-llama2 ReMax, full policy: 18 bytes per trained bf16 param (2 model + 4 master + 4 grad + 8 Adam),
    the reference and the RM in bf16."""
    c = gp.model_counts("meta-llama/Llama-2-7b-chat-hf")
    ours = next(r for r in table["rldf-llama2"] if r.kind == "rl" and "ReMax" in r.stage and r.engine.startswith("ours"))
    assert ours.gpus is None and ours.gib == pytest.approx((18 * c.total + 2 * c.total + 2 * c.rm_total) / GiB)


def test_every_full_scale_config_has_a_make_target_and_a_table_row(table):
    configs = {f"{paper}-{p.stem}" for paper in gp.PAPERS for p in (ROOT / paper / "configs").glob("*.yaml")
               if p.stem not in ("tiny", "fidelity", "policy_fidelity")}
    assert set(table) == configs and len(configs) >= 19
    listed = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    targets = {line.split()[0] for line in listed.splitlines() if line.strip()}
    assert configs <= targets, f"no make target for {sorted(configs - targets)}"
    for target, rows in table.items():
        assert {"SFT"} <= {r.stage.split()[0] for r in rows}, target
        assert all(r.gpus for r in rows if not r.engine.startswith("ours")), target  # verl / ZeRO always fit


def test_rl_sections_name_the_engine_the_plan_picks(table):
    for paper, path in gp.full_scale_configs():
        cfg = yaml.safe_load(path.read_text())
        want = gp.rl_engine(table[f"{paper}-{path.stem}"])
        for section in gp.rl_sections(paper):
            assert cfg[section].get("engine") == want, f"{path.relative_to(ROOT)}:{section} should say engine: {want}"
    # the plan's picks, in words: 7B-class LoRA PPO fits one GPU, full-model RL and 13B+ do not
    assert gp.rl_engine(table["rllr-llama2"]) == "ours" and gp.rl_engine(table["rllr-llama2-13b"]) == "verl"
    assert gp.rl_engine(table["pcrm-llama2"]) == "verl" and gp.rl_engine(table["ser-llama2-70b"]) == "verl"


def test_rlchf_persona_writer_tensor_parallel_matches_the_plan(table):
    for target in ("rlchf-llama3", "rlchf-qwen2.5"):
        row = next(r for r in table[target] if r.sections == ["personas.generator"])
        cfg = yaml.safe_load((ROOT / "rlchf" / "configs" / f"{target.split('-', 1)[1]}.yaml").read_text())
        assert row.gpus == 4 and cfg["personas"]["generator"]["tensor_parallel_size"] == row.gpus


def test_readme_table_is_the_generated_one(table, plan):
    rows = [line for line in gp.render(plan, table).splitlines() if line.startswith("| `")]
    readme = (ROOT / "README.md").read_text()
    block = readme.split(gp.README_BEGIN, 1)[1].split(gp.README_END, 1)[0]
    assert [line for line in block.splitlines() if line.startswith("| `")] == rows, \
        "README's GPU plan is stale: python -m common.gpu_plan --update-readme README.md"


def test_cli_writes_the_table_and_refuses_bad_arguments(tmp_path, capsys):
    out = tmp_path / "plan.md"
    assert gp.main(["--out", str(out), "--no-deepspeed", "--gpu-mem", "141"]) == 0
    text = out.read_text()
    assert "141 GiB cards" in text and re.search(r"^\| `ser-llama2-70b` \| SFT", text, flags=re.MULTILINE)
    with pytest.raises(SystemExit) as stop:
        gp.main(["--headroom", "1.5"])
    assert stop.value.code == 2 and "--headroom" in capsys.readouterr().err


def test_unknown_hub_model_is_a_clear_error():
    with pytest.raises(gp.UserError, match="ARCHS"):
        gp.model_counts("someone/unknown-model")
