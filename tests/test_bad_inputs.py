"""Bad input at every entry point: exit status 2 and exactly one line on stderr, naming the file / key / row.

Each case runs its CLI as a subprocess (``python -m <module> ...``, HF_HUB_OFFLINE=1): what is checked is what a
user sees, the exit status and stderr. The cases are one list (``CASES``); to add one, append a ``Case`` with the
files it needs (written into the case's own folder, ``{d}`` in args, file text and names stands for that folder)
and the names its error line must contain. The cases selected in a session run in parallel up front (``WORKERS``
subprocesses at a time), then each test checks its own outcome; one node id (RELIABILITY.md) runs one case.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# cases run this many at a time: most of a case is importing torch, CPU-bound
WORKERS = int(os.environ.get("BAD_INPUT_WORKERS", os.cpu_count() or 2))
TIMEOUT_S = 180


@dataclass
class Case:
    id: str
    module: str  # run as ``python -m <module> *args``
    args: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # each must appear in the error line
    files: dict[str, str | bytes] = field(default_factory=dict)  # relative path -> content, under the case folder
    env: dict[str, str] = field(default_factory=dict)  # extra environment ({d} filled in)


def jsonl(*records: object) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def recipe(**sections: object) -> str:
    return yaml.safe_dump(sections, sort_keys=False)


SFT_ROWS = jsonl(*({"prompt": f"Say {w}.", "response": w} for w in ("yes", "no", "maybe", "never")))
PAIR_ROWS = jsonl(*({"prompt": f"Say {w}.", "chosen": w, "rejected": "no"} for w in ("yes", "sure", "ok", "fine")))
SFT_OK = {"model_name_or_path": "embedded:tiny-llama", "dataset": "{d}/sft.jsonl", "output_dir": "{d}/out",
          "report_to": "none"}
PAIRS_OK = {"model_name_or_path": "embedded:tiny-llama", "dataset": "{d}/pairs.jsonl", "output_dir": "{d}/out",
            "report_to": "none"}
RL_OK = {"model": "embedded:tiny-llama", "dataset": "{d}/prompts.jsonl", "value_model": "policy",
         "reward_models": "[{path: embedded:tiny-llama}]", "output_dir": "{d}/out"}


def flags(values: dict[str, object]) -> tuple[str, ...]:
    return tuple(a for k, v in values.items() for a in (f"--{k}", str(v)))


def sft(id: str, *args: str, names: tuple[str, ...], files: dict | None = None) -> Case:
    """common.train.sft on a valid tiny setup, with ``args`` overriding it (the last value of a key wins)."""
    return Case(id, "common.train.sft", flags(SFT_OK) + args, names, {"sft.jsonl": SFT_ROWS, **(files or {})})


def pairs(stage: str, id: str, *args: str, names: tuple[str, ...], files: dict | None = None) -> Case:
    """common.train.rm or .dpo on a valid tiny setup, with ``args`` overriding it."""
    return Case(id, f"common.train.{stage}", flags(PAIRS_OK) + args, names, {"pairs.jsonl": PAIR_ROWS, **(files or {})})


# common.data: files that cannot be read, and HH-RLHF rows that give no pair (tests/data/hh_mixed.jsonl: 10 rows,
# row 3's rejected transcript ends with a Human turn; tests/common/test_data.py holds the unit tests)
HH_MIXED = (Path(__file__).resolve().parent / "data" / "hh_mixed.jsonl").read_bytes()
HH_BAD_ONLY = b"".join(line + b"\n" for line in HH_MIXED.splitlines() if b'"case": "ok' not in line)
PAIRS_GZ = gzip.compress(PAIR_ROWS.encode() * 200)


CANDIDATES = jsonl({"prompt_id": "p1", "prompt": "Q", "chosen_id": "a", "rejected_id": "b",
                    "candidates": [{"id": "a", "text": "good"}, {"id": "b", "text": "bad"}]})
BALLOT = {"prompt_id": "p1", "judge_id": "j0", "ranking": [["a"], ["b"]], "abstained": False}


def aggregate(id: str, rankings: str | None, *args: str, names: tuple[str, ...]) -> Case:
    files = {"candidates.jsonl": CANDIDATES, **({"rankings.jsonl": rankings} if rankings is not None else {})}
    return Case(id, "rlchf.aggregate", ("--candidates", "{d}/candidates.jsonl", "--rankings", "{d}/rankings.jsonl",
                                        "--output_dir", "{d}/out", *args), names, files)


ADAPTER = json.dumps({"base_model_name_or_path": "{d}/no-such-base", "task_type": "CAUSAL_LM", "r": 8})
PREDS = jsonl({"gold": "positive", "output": "positive"}, {"output": "negative"})
BBQ_ROW = jsonl({"example_id": 0, "question_index": "1", "question_polarity": "neg", "context_condition": "ambig",
                 "category": "Age", "answer_info": {"ans0": ["old", "old"], "ans1": ["young", "nonOld"],
                                                    "ans2": ["unknown", "unknown"]},
                 "additional_metadata": {"stereotyped_groups": ["old"]}, "context": "c", "question": "q?",
                 "ans0": "old", "ans1": "young", "ans2": "unknown", "label": 2})

CASES: list[Case] = [
    # --- config files and the command line (common.config, through the SFT entry point) -------------------------
    Case("config-file-missing", "common.train.sft", ("--config", "{d}/nope.yaml"), ("{d}/nope.yaml",)),
    Case("config-invalid-yaml", "common.train.sft", ("--config", "{d}/r.yaml"), ("r.yaml", "invalid YAML"),
         {"r.yaml": "sft: [unclosed\n"}),
    Case("config-top-level-list", "common.train.sft", ("--config", "{d}/r.yaml"), ("r.yaml",),
         {"r.yaml": "- sft\n- rm\n"}),
    Case("config-section-missing", "common.train.sft", ("--config", "{d}/r.yaml"), ("r.yaml", "'sft'"),
         {"r.yaml": recipe(rm=PAIRS_OK)}),
    Case("config-section-is-a-list", "common.train.sft", ("--config", "{d}/r.yaml"), ("r.yaml", "'sft'"),
         {"r.yaml": recipe(sft=[SFT_OK])}),
    Case("config-unknown-key", "common.train.sft", ("--config", "{d}/r.yaml"), ("r.yaml", "sft.lora_rr"),
         {"r.yaml": recipe(sft={**SFT_OK, "lora_rr": 4}), "sft.jsonl": SFT_ROWS}),
    Case("config-wrong-type", "common.train.sft", ("--config", "{d}/r.yaml"), ("sft.learning_rate", "'fast'"),
         {"r.yaml": recipe(sft={**SFT_OK, "learning_rate": "fast"}), "sft.jsonl": SFT_ROWS}),
    Case("config-null-not-allowed", "common.train.sft", ("--config", "{d}/r.yaml"), ("sft.seed", "null"),
         {"r.yaml": recipe(sft={**SFT_OK, "seed": None}), "sft.jsonl": SFT_ROWS}),
    Case("config-required-key-missing", "common.train.sft", ("--config", "{d}/r.yaml"), ("model_name_or_path",),
         {"r.yaml": recipe(sft={k: v for k, v in SFT_OK.items() if k != "model_name_or_path"})}),
    sft("cli-stray-token", "oops", names=("command line", "'oops'")),
    sft("cli-wrong-type", "--per_device_train_batch_size", "two", names=("per_device_train_batch_size", "'two'")),
    # --- SFT settings -------------------------------------------------------------------------------------------
    sft("sft-unknown-template", "--template", "llama9", names=("sft.template", "'llama9'")),
    sft("sft-num-train-epochs-negative", "--num_train_epochs", "-1", names=("sft.num_train_epochs", "-1")),
    sft("sft-max-steps-zero", "--max_steps", "0", names=("sft.max_steps",)),
    sft("sft-lr-scheduler-unknown", "--lr_scheduler_type", "cosine_decay", names=("sft.lr_scheduler_type",
                                                                                  "'cosine_decay'", "linear")),
    sft("sft-eval-fraction-one", "--eval_fraction", "1.0", names=("sft.eval_fraction",)),
    sft("sft-global-batch-indivisible", "--global_batch_size", "6", names=("sft.global_batch_size",)),
    sft("sft-deepspeed-json-missing", "--deepspeed", "{d}/zero9.json", names=("sft.deepspeed", "zero9.json")),
    sft("sft-deepspeed-json-invalid", "--deepspeed", "{d}/ds.json", names=("sft.deepspeed", "ds.json"),
        files={"ds.json": "{not json"}),
    sft("sft-output-dir-is-a-file", "--output_dir", "{d}/sft.jsonl", names=("output_dir", "{d}/sft.jsonl")),
    sft("sft-model-folder-missing", "--model_name_or_path", "{d}/no-such-model", names=("{d}/no-such-model",)),
    sft("sft-model-is-a-file", "--model_name_or_path", "{d}/sft.jsonl", names=("{d}/sft.jsonl", "is a file")),
    sft("sft-model-folder-empty", "--model_name_or_path", "{d}/empty", names=("{d}/empty", "config.json"),
        files={"empty/.keep": ""}),
    sft("sft-model-hub-id-offline", "--model_name_or_path", "no-such-org/no-such-model",
        names=("no-such-org/no-such-model", "HF_HUB_OFFLINE")),
    sft("sft-embedded-model-unknown", "--model_name_or_path", "embedded:gpt5", names=("embedded:gpt5",)),
    # tests/data/hh_mixed.jsonl: 4 good HH-RLHF rows of 10; row 3 is the first malformed one
    sft("sft-hh-on-bad-row-error", "--dataset", "{d}/hh.jsonl", "--source_format", "hh_rlhf", "--on_bad_row", "error",
        names=("{d}/hh.jsonl:3", "[no_final_assistant]", "on_bad_row: skip"),
        files={"hh.jsonl": (ROOT / "tests" / "data" / "hh_mixed.jsonl").read_bytes()}),
    # --- RM / DPO settings and data -----------------------------------------------------------------------------
    pairs("rm", "rm-dataset-missing", "--dataset", "{d}/nope.jsonl", names=("{d}/nope.jsonl",)),
    pairs("rm", "rm-dataset-empty", "--dataset", "{d}/empty.jsonl", names=("{d}/empty.jsonl", "empty"),
          files={"empty.jsonl": ""}),
    pairs("rm", "rm-dataset-missing-column", "--dataset", "{d}/half.jsonl", names=("{d}/half.jsonl", "rejected"),
          files={"half.jsonl": jsonl({"prompt": "p", "chosen": "a"})}),
    pairs("rm", "rm-dataset-bad-json-row", "--dataset", "{d}/bad.jsonl", names=("{d}/bad.jsonl", "2"),
          files={"bad.jsonl": jsonl({"prompt": "p", "chosen": "a", "rejected": "b"}) + "{oops\n"}),
    pairs("rm", "rm-num-train-epochs-zero", "--num_train_epochs", "0", names=("rm.num_train_epochs",)),
    pairs("rm", "rm-max-steps-negative", "--max_steps", "-5", names=("rm.max_steps", "-5")),
    pairs("rm", "rm-pair-term-unknown", "--pair_term", "cosine", names=("rm.pair_term", "'cosine'")),
    pairs("rm", "rm-on-bad-row-unknown", "--on_bad_row", "warn", names=("rm.on_bad_row", "'warn'")),
    pairs("rm", "rm-output-dir-under-a-file", "--output_dir", "{d}/pairs.jsonl/rm",
          names=("output_dir", "{d}/pairs.jsonl/rm")),
    pairs("dpo", "dpo-beta-zero", "--beta", "0", names=("dpo.beta",)),
    pairs("dpo", "dpo-loss-type-unknown", "--loss_type", "hinge2", names=("dpo.loss_type", "'hinge2'")),
    pairs("dpo", "dpo-max-steps-zero", "--max_steps", "0", names=("dpo.max_steps",)),
    pairs("dpo", "dpo-num-train-epochs-nan", "--num_train_epochs", "nan", names=("dpo.num_train_epochs",)),
    # --- data files (common.data) -------------------------------------------------------------------------------
    pairs("rm", "data-jsonl-not-utf8", "--dataset", "{d}/latin1.jsonl", names=("{d}/latin1.jsonl line 2", "UTF-8"),
          files={"latin1.jsonl": PAIR_ROWS.encode().replace(b"sure", b"s\xfbre")}),
    pairs("rm", "data-gz-truncated", "--dataset", "{d}/cut.jsonl.gz", names=("{d}/cut.jsonl.gz", "truncated"),
          files={"cut.jsonl.gz": PAIRS_GZ[: len(PAIRS_GZ) // 2]}),
    pairs("rm", "data-gz-not-gzip", "--dataset", "{d}/plain.jsonl.gz", names=("{d}/plain.jsonl.gz", "gzip"),
          files={"plain.jsonl.gz": PAIR_ROWS}),
    pairs("dpo", "data-parquet-garbage", "--dataset", "{d}/pairs.parquet", names=("{d}/pairs.parquet", "parquet"),
          files={"pairs.parquet": b"PAR1 this is not a parquet file"}),
    pairs("rm", "data-hh-no-usable-row", "--dataset", "{d}/hh.jsonl", "--source_format", "hh_rlhf",
          names=("{d}/hh.jsonl", "none of its 6 HH-RLHF rows", "no_final_assistant 1 (rows 1)"),
          files={"hh.jsonl": HH_BAD_ONLY}),
    Case("data-hh-on-bad-row-error", "pcrm.data", ("--config", "{d}/r.yaml"),
         ("{d}/hh-rlhf/helpful-base/test.jsonl.gz:3", "ends with a Human turn", "[no_final_assistant]"),
         {"r.yaml": recipe(data={"source": "hh_rlhf", "data_root": "{d}", "hh_subsets": ["helpful-base"],
                                 "on_bad_row": "error", "output_dir": "{d}/out"}),
          "hh-rlhf/helpful-base/test.jsonl.gz": gzip.compress(HH_MIXED)}),
    # --- RL -----------------------------------------------------------------------------------------------------
    Case("ppo-unknown-key", "common.train.ppo", ("--config", "{d}/r.yaml"), ("r.yaml", "rl.kl_coeff"),
         {"r.yaml": recipe(rl={**RL_OK, "kl_coeff": 0.1})}),
    Case("ppo-total-steps-zero", "common.train.ppo", flags(RL_OK) + ("--total_steps", "0"), ("rl.total_steps",)),
    Case("ppo-mini-batch-indivisible", "common.train.ppo", flags(RL_OK) + ("--rollout_batch_size", "6",
                                                                          "--mini_batch_size", "4"),
         ("rl.mini_batch_size",)),
    # --- evaluation ---------------------------------------------------------------------------------------------
    Case("bbq-n-per-category-negative", "common.eval.bbq", ("--model", "embedded:tiny-llama", "--data", "{d}/bbq",
                                                            "--n_per_category", "-3"),
         ("bbq_eval.n_per_category", "-3")),
    Case("bbq-category-absent", "common.eval.bbq", ("--model", "embedded:tiny-llama", "--data", "{d}/bbq",
                                                    "--categories", "Religion", "--output_dir", "{d}/out"),
         ("{d}/bbq", "Religion"), {"bbq/data/Age.jsonl": BBQ_ROW}),
    Case("nlu-predictions-missing", "common.eval.nlu", ("--predictions", "{d}/preds.jsonl", "--labels",
                                                        "positive,negative", "--output_dir", "{d}/out"),
         ("{d}/preds.jsonl",)),
    Case("nlu-prediction-row-without-gold", "common.eval.nlu", ("--predictions", "{d}/preds.jsonl", "--labels",
                                                                "positive,negative", "--output_dir", "{d}/out"),
         ("{d}/preds.jsonl:2", "'gold'"), {"preds.jsonl": PREDS}),
    Case("nlu-task-type-unknown", "common.eval.nlu", ("--predictions", "{d}/preds.jsonl", "--task_type", "ranking"),
         ("task_type", "'ranking'")),
    Case("reward-scores-missing", "common.eval.reward", ("--scores", "{d}/eval_scores.jsonl", "--output_dir",
                                                         "{d}/out"), ("{d}/eval_scores.jsonl",)),
    Case("judge-responses-missing", "common.eval.judge", ("--a", "{d}/a.jsonl", "--b", "{d}/b.jsonl", "--model",
                                                          "judge", "--output_dir", "{d}/out"), ("{d}/a.jsonl",),
         {"b.jsonl": jsonl({"prompt": "p", "response": "r"})}),
    Case("judge-mode-unknown", "common.eval.judge", ("--a", "a.jsonl", "--b", "b.jsonl", "--model", "judge",
                                                     "--modes", "pairwise,elo"), ("judge_eval.modes", "elo")),
    # --- RLCHF aggregation --------------------------------------------------------------------------------------
    aggregate("aggregate-rankings-missing", None, names=("{d}/rankings.jsonl",)),
    aggregate("aggregate-ranking-is-a-json-string", jsonl({**BALLOT, "ranking": json.dumps([["a"], ["b"]])}),
              names=("{d}/rankings.jsonl:1:ranking", "JSON-encoded string")),
    aggregate("aggregate-ballot-unknown-prompt", jsonl(BALLOT, {**BALLOT, "prompt_id": "p9"}),
              names=("{d}/rankings.jsonl:2:prompt_id", "'p9'")),
    aggregate("aggregate-ballot-abstained-missing", jsonl({k: v for k, v in BALLOT.items() if k != "abstained"}),
              names=("{d}/rankings.jsonl:1:abstained",)),
    aggregate("aggregate-unknown-rule", jsonl(BALLOT), "--rules", "borda,dictator",
              names=("aggregate.rules", "'dictator'")),
    Case("aggregate-candidates-missing", "rlchf.aggregate", ("--candidates", "{d}/candidates.jsonl", "--rankings",
                                                             "{d}/rankings.jsonl", "--output_dir", "{d}/out"),
         ("{d}/candidates.jsonl",), {"rankings.jsonl": jsonl(BALLOT)}),
    # --- LoRA merge ---------------------------------------------------------------------------------------------
    Case("merge-lora-not-an-adapter", "common.merge_lora", ("--adapter", "{d}/run", "--out", "{d}/merged"),
         ("{d}/run", "adapter_config.json"), {"run/config.yaml": "sft: {}\n"}),
    Case("merge-lora-adapter-config-not-json", "common.merge_lora", ("--adapter", "{d}/run", "--out", "{d}/m"),
         ("{d}/run/adapter_config.json",), {"run/adapter_config.json": "{base_model"}),
    Case("merge-lora-base-missing", "common.merge_lora", ("--adapter", "{d}/run", "--out", "{d}/merged"),
         ("{d}/no-such-base",), {"run/adapter_config.json": ADAPTER}),
    # --- SER loop -----------------------------------------------------------------------------------------------
    Case("ser-thresholds-inverted", "ser.loop", ("--output_dir", "{d}/out", "--t_low", "0.7", "--t_high", "0.3"),
         ("ser.t_low",)),
    Case("ser-section-is-a-list", "ser.loop", ("--config", "{d}/r.yaml"), ("r.yaml", "'ser'"),
         {"r.yaml": recipe(ser=["output_dir", "{d}/out"])}),
    # --- paper wrappers -----------------------------------------------------------------------------------------
    Case("rldf-predict-bbq-n-per-category-zero", "rldf.predict", ("--output_dir", "{d}/out", "--before_model",
                                                                  "m", "--bbq_n_per_category", "0"),
         ("predict.bbq_n_per_category",)),
    Case("rlchf-evaluate-bbq-n-per-category-negative", "rlchf.evaluate", ("--base_model", "m", "--bbq_data",
                                                                          "{d}/bbq", "--bbq_n_per_category", "-1"),
         ("evaluate.bbq_n_per_category", "-1")),
    Case("rllr-predict-data-missing", "rllr.predict", ("--model", "m", "--data", "{d}/eval.jsonl", "--output_dir",
                                                       "{d}/out"), ("{d}/eval.jsonl",)),
    Case("rllr-rm-max-steps-zero", "rllr.rm", flags(PAIRS_OK) + ("--max_steps", "0"), ("rm.max_steps",)),
    Case("rllr-pipeline-bad-set", "rllr.pipeline", ("--config", "{d}/r.yaml", "--tasks", "sst2", "--runs",
                                                    "{d}/runs", "--set", "max_steps=4"), ("--set", "'max_steps=4'"),
         {"r.yaml": recipe(data={})}),
    # common.hub_data: a fidelity recipe's mirror: source without the shared mirror; a mirror name not registered
    Case("mirror-missing", "pcrm.data", ("--config", "pcrm/configs/fidelity.yaml", "--section", "data_sst2",
                                         "output_dir={d}/out"),
         ("mirror:glue/sst2", "the shared mirror {d}/absent does not exist", "DATA_ROOT=", "RLHF_SHARED_DATA="),
         env={"RLHF_SHARED_DATA": "{d}/absent"}),
    Case("mirror-unknown-dataset", "rllr.build_data", ("--config", "rllr/configs/tiny.yaml", "--section", "data",
                                                       "tasks=sst2", "local_dir=mirror:gleu", "output_dir={d}/out"),
         ("mirror:gleu", "'gleu' is not a registered dataset", "'glue'"), {"mirror/README": "a mirror"},
         env={"RLHF_SHARED_DATA": "{d}/mirror"}),
    Case("rllr-pipeline-section-is-a-list", "rllr.pipeline", ("--config", "{d}/r.yaml", "--tasks", "sst2",
                                                              "--runs", "{d}/runs"), ("r.yaml", "'sft_wrat'"),
         {"r.yaml": recipe(sft_wrat=["model_name_or_path", "m"])}),
]


def _fill(text: str, folder: Path) -> str:
    return text.replace("{d}", str(folder))


def _run(case: Case, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, content in case.files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(_fill(content, folder))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false", **{k: _fill(v, folder) for k, v in case.env.items()}}
    cmd = [sys.executable, "-m", case.module, *(_fill(a, folder) for a in case.args)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        rc, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:  # fails this case only: a bad input must fail fast
        rc, stderr = None, f"timed out after {TIMEOUT_S} s\n{exc.stderr or ''}"
    return {"cmd": cmd, "rc": rc, "stderr": stderr, "folder": folder, "wall_s": time.perf_counter() - start}


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory) -> dict[str, dict]:
    """Every selected case of this module, run WORKERS at a time before the first check."""
    selected = {item.callspec.params["case"].id for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec") and "case" in item.callspec.params}
    root = tmp_path_factory.mktemp("bad_inputs")
    todo = [c for c in CASES if c.id in selected]
    with ThreadPoolExecutor(WORKERS) as pool:
        results = dict(zip([c.id for c in todo], pool.map(lambda c: _run(c, root / c.id), todo)))
    slow = sorted(results.items(), key=lambda kv: -kv[1]["wall_s"])[:5]
    print(f"\n{len(results)} bad-input cases, {WORKERS} at a time; slowest: "
          + ", ".join(f"{k} {v['wall_s']:.1f}s" for k, v in slow))
    return results


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_exit_2(case: Case, outcomes: dict[str, dict]):
    out = outcomes[case.id]
    lines = [line for line in out["stderr"].splitlines() if line.strip()]
    shown = f"$ {' '.join(out['cmd'])}\nexit {out['rc']}\nstderr:\n{out['stderr'][-3000:]}"
    assert out["rc"] == 2, shown
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    for name in case.names:
        assert _fill(name, out["folder"]) in lines[0], f"{name!r} not named\n{shown}"
