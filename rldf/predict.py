"""Before/after RL: answers on the held-out debate prompts (scored by the RLDF reward model) and BBQ.

    python -m rldf.predict --config rldf/configs/llama2.yaml --section predict \
        before_model=runs/rldf/llama2/sft-merged after_model=runs/rldf/llama2/rl/policy \
        reward_model=runs/rldf/llama2/rm-merged prompts=runs/rldf/llama2/data/prompts output_dir=...

For each of ``before`` and ``after``: greedy answers to the test-split prompts (``<which>/answers.jsonl``, through
the generation cache, so a rerun resumes), their mean RM reward, and BBQ (``common.eval.bbq``) on every category the
data folder holds, the bias type's own category first (Age for age). metrics.json puts the two side by side.

``references`` (the data stage's ``sft/``): BLEU-4 and ROUGE-1/2/L of the greedy answers against the held-out debate
utterances, one score per utterance, averaged (``<which>_predict_bleu-4``, ``<which>_predict_rouge-1/2/l``;
``<which>/text_overlap.jsonl`` per utterance), as upstream's LLaMA-Factory ``do_predict`` on the SFT test set
([CODE] Hunter-Wrynn/RLDF RL/reward-model-training/do_predict_sft_multi_role.sh; logged for Llama-2-7b: BLEU-4 27.4,
ROUGE-1 29.5, ROUGE-L 19.1 on 346 utterances). The metric rules are in ``common.eval.text_overlap``. Deviation:
upstream samples (LLaMA-Factory's defaults: temperature 0.95, top-p 0.7 [CODE] src/llmtuner/hparams/
generating_args.py); the answers here are greedy, the same answers the RM scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.artifacts import RunDir, write_jsonl
from common.config import ConfigError, stage_cli
from common.config import help_meta as _h
from common.data import load_records
from common.eval.bbq import BBQEvalConfig, evaluate_bbq
from common.eval.text_overlap import METRIC_KEYS, example_scores
from common.generation import GenerationConfig, build_generator
from common.hub_data import local_source
from rldf.bias_types import get_bias_type

# each accuracy is over parsed answers; the unparseable share of its condition goes beside it (common.eval.bbq)
BBQ_KEYS = ("acc_amb", "unparseable_rate_amb", "acc_dis", "unparseable_rate_dis", "s_dis", "s_amb", "n_unparseable")


@dataclass
class PredictConfig:
    """Settings of the predict stage (section ``predict``)."""

    output_dir: str = field(metadata=_h("run folder: before/, after/, metrics.json"))
    before_model: str = field(default="", metadata=_h("the RL init (merged SFT model)"))
    after_model: str = field(default="", metadata=_h("the RL policy (rl/policy)"))
    reward_model: str = field(default="", metadata=_h("merged RLDF reward model scoring the answers; '' = skip"))
    prompts: str = field(default="", metadata=_h("prompt records folder (the data stage's prompts/)"))
    prompt_split: str = field(default="test", metadata=_h("split of `prompts` to answer (held-out topics)"))
    prompt_limit: int | None = field(default=None, metadata=_h("answer at most this many prompts"))
    references: str = field(default="", metadata=_h("SFT records folder (the data stage's sft/): BLEU/ROUGE of the "
                                                    "answers against its `prompt_split` utterances; '' = skip"))
    reference_limit: int | None = field(default=None, metadata=_h("score at most this many utterances (seeded)"))
    bias_type: str = field(default="age", metadata=_h("its BBQ category is evaluated first"))
    template: str = field(default="tokenizer", metadata=_h("chat template of the policy and the RM"))
    max_new_tokens: int = field(default=512, metadata=_h("answer length [CODE: RL answers 512]"))
    batch_size: int = field(default=8, metadata=_h("sequences per generate/forward call"))
    dtype: str = field(default="float32", metadata=_h("weights dtype"))
    trust_remote_code: bool = field(default=False, metadata=_h("allow the model's own code (chatglm3, baichuan2)"))
    bbq_data: str = field(default="heegyu/bbq", metadata=_h("BBQ folder, mirror:bbq or hub id (common.eval.bbq); '' = "
                                                           "skip BBQ"))
    bbq_categories: list[str] = field(default_factory=list, metadata=_h("empty = every category present"))
    bbq_n_per_category: int | None = field(default=None, metadata=_h("seeded subsample per category (>= 1); "
                                                                     "None = all items"))
    bbq_modes: list[str] = field(default_factory=lambda: ["mc"], metadata=_h("mc and/or generate"))
    seed: int = field(default=0, metadata=_h("BBQ subsample seed"))
    overwrite: bool = field(default=False, metadata=_h("replace finished runs"))
    resume: bool = field(default=False, metadata=_h("continue an interrupted run"))

    def __post_init__(self) -> None:
        get_bias_type(self.bias_type, "predict.bias_type")
        if not self.before_model and not self.after_model:
            raise ConfigError("predict.before_model / after_model: set at least one model to evaluate")
        if self.reference_limit is not None and self.reference_limit < 1:
            raise ConfigError(f"predict.reference_limit: {self.reference_limit} must be >= 1, or null for every "
                              "utterance")
        if self.bbq_n_per_category is not None and self.bbq_n_per_category < 1:
            raise ConfigError(f"predict.bbq_n_per_category: {self.bbq_n_per_category} must be >= 1, or null for "
                              "every item")


def bbq_categories(cfg: PredictConfig) -> list[str]:
    """Categories to score: the configured ones, else every local one; the bias type's own category first."""
    from common.eval.bbq import CATEGORIES

    cats = list(cfg.bbq_categories)
    if not cats:
        folder = Path(local_source(cfg.bbq_data))  # mirror:bbq -> the shared mirror's folder
        files = [*folder.glob("*.jsonl*"), *folder.glob("data/*.jsonl*")] if folder.is_dir() else []
        cats = sorted({f.name.split(".")[0] for f in files} & set(CATEGORIES)) if folder.is_dir() else list(CATEGORIES)
    first = get_bias_type(cfg.bias_type).bbq_category
    return sorted(cats, key=lambda c: (c != first, c))


def reference_overlap(records: list[dict], answer_of: dict[str, str], out: Path) -> dict[str, Any]:
    """predict_bleu-4 / predict_rouge-1/2/l: each held-out utterance against the answer to its debate prompt."""
    rows = [{"prompt": r["prompt"], "reference": r["response"], "prediction": answer_of[r["prompt"]],
             **example_scores(answer_of[r["prompt"]], r["response"])} for r in records]
    write_jsonl(out / "text_overlap.jsonl", rows)
    means = {k: (sum(row[k] for row in rows) / len(rows) if rows else None) for k in METRIC_KEYS}
    return {"predict_n": len(rows), **{f"predict_{k}": v for k, v in means.items()}}


def _ask(gen, prompts: list[str], desc: str) -> list[str]:
    return [a[0] for a in gen.chat([[{"role": "user", "content": p}] for p in prompts], desc=desc)] if prompts else []


def answer_prompts(cfg: PredictConfig, model: str, out: Path) -> dict[str, Any]:
    """Greedy answers to the held-out prompts (scored by the RM) and to the prompts of the held-out utterances
    (BLEU/ROUGE); one model load, freed before the RM loads."""
    records = (load_records(cfg.prompts, "prompt", split=cfg.prompt_split, limit=cfg.prompt_limit, seed=cfg.seed)
               if cfg.prompts else [])
    references = (load_records(cfg.references, "sft", split=cfg.prompt_split, limit=cfg.reference_limit,
                               seed=cfg.seed) if cfg.references else [])
    ref_prompts = list(dict.fromkeys(r["prompt"] for r in references))  # a debate prompt has many utterances
    gen = build_generator(GenerationConfig(
        backend="hf", model=model, template=cfg.template, temperature=0.0, max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code,
        cache_path=str(out / "generation_cache.jsonl")))
    answers = _ask(gen, [r["prompt"] for r in records], "answers")
    answer_of = dict(zip(ref_prompts, _ask(gen, ref_prompts, "reference answers")))  # cached if the prompts coincide
    del gen
    metrics: dict[str, Any] = reference_overlap(references, answer_of, out) if cfg.references else {}
    if not cfg.prompts:
        return metrics
    rows = [{**r, "response": a} for r, a in zip(records, answers)]
    metrics["n_prompts"] = len(rows)
    if cfg.reward_model:
        from common.rewards import RewardModelScorer

        scorer = RewardModelScorer(cfg.reward_model, template=cfg.template, batch_size=cfg.batch_size,
                                   dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code)
        scores = scorer.score([r["prompt"] for r in rows], answers).tolist()
        for row, s in zip(rows, scores):
            row["reward"] = s
        metrics["reward_mean"] = sum(scores) / len(scores) if scores else None
    write_jsonl(out / "answers.jsonl", rows)
    return metrics


def predict(cfg: PredictConfig) -> dict[str, Any]:
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite, resume=cfg.resume)
    metrics: dict[str, Any] = {}
    for which, model in (("before", cfg.before_model), ("after", cfg.after_model)):
        if not model:
            continue
        out = run.path / which
        if cfg.prompts or cfg.references:
            metrics.update({f"{which}_{k}": v for k, v in answer_prompts(cfg, model, out).items()})
        if cfg.bbq_data:
            bbq = evaluate_bbq(BBQEvalConfig(
                model=model, data=cfg.bbq_data, categories=bbq_categories(cfg),
                n_per_category=cfg.bbq_n_per_category, seed=cfg.seed, modes=list(cfg.bbq_modes),
                template=cfg.template, batch_size=cfg.batch_size, dtype=cfg.dtype,
                trust_remote_code=cfg.trust_remote_code, output_dir=str(out / "bbq"), overwrite=cfg.overwrite,
                resume=cfg.resume))
            for mode in cfg.bbq_modes:
                for cat, row in bbq["per_category"][mode].items():
                    metrics.update({f"{which}_{mode}_{cat}_{k}": row[k] for k in BBQ_KEYS})
                metrics.update({f"{which}_{mode}_overall_{k}": bbq[f"{mode}_{k}"] for k in BBQ_KEYS})
    first = get_bias_type(cfg.bias_type).bbq_category
    key = next((k for k in (f"after_{cfg.bbq_modes[0]}_{first}_s_amb", "after_reward_mean", "before_reward_mean")
                if k in metrics), None)
    return run.finish(metrics, key_metric=key)


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(PredictConfig, predict, "predict", "Answers on held-out debate prompts and BBQ, before/after RL.",
                     argv)


if __name__ == "__main__":
    main()
