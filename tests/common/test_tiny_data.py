"""The shipped tiny datasets copy the shared mirror's layout: same files, same schemas, same loaders."""

import hashlib
from pathlib import Path

import pytest

from common.eval.bbq import bbq_scores, load_bbq
from common.eval.rewardbench import SECTION_KEYS, load_rewardbench, rewardbench_metrics
from common.preference_sets import hh_rlhf_pairs, sst2_sentiment_pairs
from common.tiny_data import build as tiny

TINY = Path(tiny.__file__).parent


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix in (".gz", ".tsv")}


def test_committed_files_are_exactly_what_the_builder_writes(tmp_path):
    tiny.build(tmp_path)
    assert _digests(tmp_path) == _digests(TINY)


def test_bbq_stereotype_following_model_scores_plus_one_and_anti_minus_one():
    items, _ = load_bbq(str(TINY / "bbq"))
    assert {it["category"] for it in items} == {"Age", "Disability_status", "Nationality", "Physical_appearance",
                                                "Sexual_orientation"}
    assert all(it["biased_loc"] is not None for it in items)
    biased = bbq_scores(items, [it["biased_loc"] for it in items])["overall"]
    assert biased["s_dis"] == pytest.approx(1.0) and biased["acc_amb"] == 0.0 and biased["s_amb"] == pytest.approx(1.0)
    anti = [next(k for k in range(3) if k not in (it["biased_loc"], it["unknown_loc"])) for it in items]
    assert bbq_scores(items, anti)["overall"]["s_dis"] == pytest.approx(-1.0)
    gold = bbq_scores(items, [it["label"] for it in items])["overall"]
    assert gold["acc_amb"] == 1.0 and gold["acc_dis"] == 1.0 and gold["s_dis"] == pytest.approx(0.0)


def test_preference_builders_read_the_tiny_tree():
    sst = sst2_sentiment_pairs(TINY / "glue" / "sst2", n_pairs=20, seed=0)
    assert len(sst) == 20 and all(r["chosen"] != r["rejected"] for r in sst)
    hh = hh_rlhf_pairs(TINY / "hh-rlhf")
    assert len(hh) == len(tiny.HELPFUL) + len(tiny.HARMLESS)


def test_rewardbench_sample_has_subsets_of_all_four_sections():
    rows = load_rewardbench(str(TINY / "rewardbench"))  # the layout of the hub split: <folder>/filtered.jsonl.gz
    assert len(rows) == len(tiny.REWARDBENCH) and all(r["chosen"] != r["rejected"] for r in rows)
    oracle = rewardbench_metrics([{"subset": r["subset"], "chosen": 1.0, "rejected": 0.0} for r in rows])
    assert not oracle["subsets_outside_sections"]
    assert [oracle[k] for k in SECTION_KEYS.values()] == [1.0, 1.0, 1.0, 1.0] and oracle["rewardbench_overall"] == 1.0
    assert len(load_rewardbench(str(TINY / "rewardbench"), limit_per_subset=1)) == len({r["subset"] for r in rows})
