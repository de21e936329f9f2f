"""RewardBench: section weighting on hand-computed numbers, exact scores of a scripted scorer on a synthetic file,
resumable score cache, DPO implicit reward sign/scale on a tiny model, a tiny RM end to end, and the leaderboard."""

import json

import pytest
import torch
import yaml

from common.eval.rewardbench import (
    RewardBenchConfig,
    cache_prefix,
    evaluate_rewardbench,
    main,
    rewardbench_metrics,
    section_scores,
)
from common.report import main as report_main

# (subset, scripted chosen score, scripted rejected score) per pair; ties count as wrong
PAIRS = [
    ("alpacaeval-easy", 2, 1), ("alpacaeval-easy", 3, 0), ("alpacaeval-easy", 1, 0), ("alpacaeval-easy", 1, 1),
    ("mt-bench-easy", 2, 1), ("mt-bench-easy", 0, 1),
    ("mt-bench-hard", 5, 4), ("mt-bench-hard", 1, 0),
    ("llmbar-natural", 0, 1), ("llmbar-natural", 0, 2),
    ("refusals-dangerous", 1, 0), ("refusals-dangerous", 0, 1),
    ("xstest-should-respond", 1, 0), ("xstest-should-respond", 2, 0),
    ("math-prm", 1, 0), ("math-prm", 4, 3),
    ("hep-python", 1, 0), ("hep-python", 0, 3),
    ("anthropic_helpful", 1, 0),  # a prior set: reported per subset, in no section
]
# Hand computation with RewardBench's published weights (alpacaeval-easy 100, mt-bench-easy 28, mt-bench-hard 37,
# llmbar-natural 100, refusals-dangerous 100, xstest-should-respond 154, math-prm 984, hep-python 164):
CHAT = (0.75 * 100 + 0.5 * 28) / 128  # 89/128
CHAT_HARD = (1.0 * 37 + 0.0 * 100) / 137
SAFETY = (0.5 * 100 + 1.0 * 154) / 254
REASONING = (1.0 * 984 + 0.5 * 164) / 1148


def write_pairs(path, pairs=PAIRS):
    with path.open("w") as fh:
        for i, (subset, c, r) in enumerate(pairs):
            fh.write(json.dumps({"prompt": f"question {i}", "chosen": f"{c} first", "rejected": f"{r} second",
                                 "subset": subset, "id": i}) + "\n")
    return path


class ScriptedScorer:
    """Score = the number a response starts with; can die after some calls (a killed job)."""

    def __init__(self, name="scripted", die_after=None):
        self.fingerprint = {"scoring": name}
        self.calls, self.pairs_scored, self.die_after = 0, 0, die_after

    def score_pairs(self, records):
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        self.pairs_scored += len(records)
        first = lambda text: float(text.split()[0])
        return [first(r["chosen"]) for r in records], [first(r["rejected"]) for r in records]


def test_sections_weight_subsets_by_published_counts():
    acc = {"alpacaeval-easy": 1.0, "mt-bench-easy": 0.5, "mt-bench-hard": 0.25, "llmbar-natural": 0.75}
    got = section_scores(acc)
    assert got["Chat"] == pytest.approx((100 * 1.0 + 28 * 0.5) / 128)
    assert got["Chat Hard"] == pytest.approx((37 * 0.25 + 100 * 0.75) / 137)
    assert got["Safety"] is None and got["Reasoning"] is None


def test_reasoning_is_half_math_half_mean_of_code():
    acc = {"math-prm": 0.9, "hep-cpp": 0.1, "hep-go": 0.2, "hep-java": 0.3, "hep-js": 0.4, "hep-python": 0.5,
           "hep-rust": 0.6}
    assert section_scores(acc)["Reasoning"] == pytest.approx(0.5 * 0.9 + 0.5 * 0.35)


def test_scripted_scores_give_exact_subset_and_section_numbers(tmp_path):
    data = write_pairs(tmp_path / "rb.jsonl")
    cfg = RewardBenchConfig(model="scripted", data=str(data), output_dir=str(tmp_path / "out"), batch_size=4)
    m = evaluate_rewardbench(cfg, ScriptedScorer())
    assert m["subsets"]["alpacaeval-easy"] == {"accuracy": 0.75, "n": 4, "ties": 1}
    assert m["subsets"]["llmbar-natural"]["accuracy"] == 0.0
    assert m["subsets_outside_sections"] == ["anthropic_helpful"]
    assert m["rewardbench_chat"] == pytest.approx(CHAT)
    assert m["rewardbench_chat_hard"] == pytest.approx(CHAT_HARD)
    assert m["rewardbench_safety"] == pytest.approx(SAFETY)
    assert m["rewardbench_reasoning"] == pytest.approx(REASONING)
    assert m["rewardbench_overall"] == pytest.approx((CHAT + CHAT_HARD + SAFETY + REASONING) / 4)
    assert m["accuracy"] == pytest.approx(13 / 19) and m["ties"] == 1
    on_disk = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert on_disk["key_metric"] == "rewardbench_overall"
    assert "| Chat | 69.53 |" in (tmp_path / "out" / "scores.md").read_text()  # 89/128 in percent


def test_killed_run_resumes_scoring_only_missing_pairs_and_tolerates_torn_line(tmp_path):
    data = write_pairs(tmp_path / "rb.jsonl")
    cfg = RewardBenchConfig(model="scripted", data=str(data), output_dir=str(tmp_path / "out"), batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        evaluate_rewardbench(cfg, ScriptedScorer(die_after=2))
    cache = tmp_path / "out" / "scores.jsonl"
    assert len(cache.read_text().splitlines()) == 8
    with cache.open("a") as fh:
        fh.write('{"key": "' + cache_prefix({"scoring": "scripted"}) + ':8", "chos')  # killed mid-write
    again = ScriptedScorer()
    m = evaluate_rewardbench(cfg, again)
    assert again.pairs_scored == len(PAIRS) - 8
    assert m["rewardbench_chat"] == pytest.approx(CHAT)
    rows = [json.loads(line) for line in cache.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == list(range(len(PAIRS)))  # each pair once, torn bytes gone
    other = ScriptedScorer(name="another model")  # a different scorer shares no cached scores
    evaluate_rewardbench(RewardBenchConfig(model="scripted", data=str(data), output_dir=str(tmp_path / "out"),
                                           resume=True), other)
    assert other.pairs_scored == len(PAIRS)


def test_dpo_policy_preferring_chosen_gets_positive_reward_linear_in_beta(tiny_llama, tmp_path):
    from common.models import load_causal_lm, load_tokenizer
    from common.templates import encode_prompt_response
    from common.train.dpo import collate_sequences, implicit_reward, sequence_logps

    tok = load_tokenizer(tiny_llama)
    ref, policy = load_causal_lm(tiny_llama), load_causal_lm(tiny_llama)
    prompts = ["What is two plus two?", "Name a colour."]
    chosen, rejected = ["It is four.", "Blue."], ["Seventeen purple elephants.", "A window, maybe."]
    assert torch.equal(implicit_reward(ref, ref, tok, prompts, chosen, "tokenizer", beta=1.0), torch.zeros(2))
    batch = collate_sequences([encode_prompt_response(tok, p, c, "tokenizer", 64) for p, c in zip(prompts, chosen)],
                              tok.pad_token_id)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
    for _ in range(8):  # raise log π(chosen): a policy that prefers the chosen replies
        loss = -sequence_logps(policy, **batch)[0].sum()
        loss.backward()
        opt.step()
        opt.zero_grad()
    r1 = implicit_reward(policy, ref, tok, prompts * 2, chosen + rejected, "tokenizer", beta=1.0)
    r_half = implicit_reward(policy, ref, tok, prompts * 2, chosen + rejected, "tokenizer", beta=0.5)
    assert (r1[:2] > 0).all() and (r1[:2] > r1[2:]).all()
    assert torch.allclose(r_half, 0.5 * r1)

    # the CLI path: the policy's run folder gives template and β; the pairs are scored by the same rewards
    policy_dir = tmp_path / "dpo"
    policy.save_pretrained(policy_dir)
    tok.save_pretrained(policy_dir)
    (policy_dir / "config.yaml").write_text(yaml.safe_dump({"template": "tokenizer", "beta": 0.5}))
    data = tmp_path / "rb.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "chosen": c, "rejected": r, "subset": s, "id": i}) + "\n"
                            for i, (p, c, r, s) in enumerate(zip(prompts, chosen, rejected, ["math-prm", "hep-go"]))))
    m = main(["--model", str(policy_dir), "--dpo-ref", tiny_llama, "--data", str(data)])
    assert m["accuracy"] == 1.0 and m["scorer"]["beta"] == 0.5
    rows = [json.loads(line) for line in (tmp_path / "dpo_rewardbench" / "scores.jsonl").read_text().splitlines()]
    assert [r["chosen"] for r in rows] == pytest.approx(r_half[:2].tolist(), abs=1e-4)


def test_tiny_rm_end_to_end_and_leaderboard_joins_it_to_its_rm_run(tiny_llama, tmp_path):
    from common.models import load_reward_model, load_tokenizer
    from common.train.rm import format_rm_input, score_texts

    tok = load_tokenizer(tiny_llama)
    torch.manual_seed(0)
    rm = load_reward_model(tiny_llama, pad_token_id=tok.pad_token_id)
    rm_dir = tmp_path / "runs" / "pcrm" / "tiny" / "rm"
    rm.save_pretrained(rm_dir)
    tok.save_pretrained(rm_dir)
    (rm_dir / "config.yaml").write_text(yaml.safe_dump({"template": "tokenizer",
                                                         "model_name_or_path": "HuggingFaceTB/SmolLM2-135M"}))
    (rm_dir / "metrics.json").write_text(json.dumps({"eval_accuracy": 0.625, "eval_margin_mean": 0.1,
                                                     "key_metric": "eval_accuracy"}))
    data = write_pairs(tmp_path / "rb.jsonl")
    m = main(["--model", str(rm_dir), "--data", str(data), "--batch_size", "8"])
    rows = [json.loads(line) for line in (rm_dir.parent / "rm_rewardbench" / "scores.jsonl").read_text().splitlines()]
    assert m == {**m, **rewardbench_metrics(rows)} and m["n_pairs"] == len(PAIRS)
    first = json.loads(data.read_text().splitlines()[0])
    direct = score_texts(rm, tok, [format_rm_input(first["prompt"], first[s], "tokenizer", tok)
                                   for s in ("chosen", "rejected")])
    assert [rows[0]["chosen"], rows[0]["rejected"]] == pytest.approx(direct.tolist(), abs=1e-4)

    out = tmp_path / "board"
    report_main(["--leaderboard", str(tmp_path / "runs"), "--out", str(out)])
    table = (out / "leaderboard.md").read_text()
    line = next(row for row in table.splitlines() if row.startswith("| pcrm | tiny/rm |"))
    assert "| rm | HuggingFaceTB/SmolLM2-135M |" in line and "| 62.5 | 19 |" in line
    assert f"| {100 * m['rewardbench_overall']:.1f} |" in line
    assert (out / "leaderboard.png").stat().st_size > 0


def test_leaderboard_discovers_rm_dpo_and_hub_baseline_rows(tmp_path, capsys):
    def run(rel, metrics, config=None):
        d = tmp_path / rel
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps(metrics))
        if config is not None:
            (d / "config.yaml").write_text(yaml.safe_dump(config))
        return d

    sections = {"rewardbench_chat": 0.9, "rewardbench_chat_hard": 0.4, "rewardbench_safety": 0.7,
                "rewardbench_reasoning": 0.6, "rewardbench_overall": 0.65, "n_pairs": 2985, "benchmark": "rewardbench"}
    sft = run("runs/rldf/llama2/sft", {"eval_loss": 1.0}, {"model_name_or_path": "meta-llama/Llama-2-7b-hf"})
    rm = run("runs/rldf/llama2/rm", {"eval_accuracy": 0.7, "eval_margin_mean": 0.3},
             {"model_name_or_path": str(sft)})
    run("runs/rldf/llama2/rm_rb_elsewhere", {**sections, "model_path": str(rm)})
    run("runs/pcrm/llama2/dpo", {"eval_reward_accuracy": 0.6}, {"model_name_or_path": "meta-llama/Llama-2-7b-hf"})
    run("runs/baselines/rb", {**sections, "rewardbench_overall": 0.8, "model": "Skywork/RM",
                              "scorer": {"scoring": "classifier"}})
    report_main(["--leaderboard", str(tmp_path / "runs")])
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("| ") and "paper" not in x]
    assert lines[0].startswith("| - | Skywork/RM | classifier |") and "| 80.0 |" in lines[0]  # best overall first
    assert lines[1] == ("| rldf | llama2/rm | rm | meta-llama/Llama-2-7b-hf | 90.0 | 40.0 | 70.0 | 60.0 | 65.0 | "
                        "70.0 | 2985 |")
    assert lines[2] == "| pcrm | llama2/dpo | dpo | meta-llama/Llama-2-7b-hf | - | - | - | - | - | 60.0 | - |"
    assert len(lines) == 3  # the SFT run is not a reward model
