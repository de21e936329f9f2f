"""pool_source generate: the loop self-labels two fresh policy answers per pool prompt, never the dataset's pair."""

import json

import numpy as np
import pytest

from common.artifacts import read_jsonl, write_jsonl
from common.config import ConfigError
from ser.loop import SERConfig, run_ser


class LengthBackend:
    """r = len(answer) − median length of the batch: sure about longer vs shorter answers, whatever the words."""

    def __init__(self, kill_on_train=None):
        self.kill_on_train, self.trained = kill_on_train, []

    def train(self, pairs, out_dir, init_from):
        if self.kill_on_train == len(self.trained):
            raise KeyboardInterrupt
        self.trained.append([p["id"] for p in pairs])
        out_dir.mkdir(parents=True)
        return {}

    def score(self, model_dir, prompts, responses):
        lengths = np.array([len(a) for a in responses], dtype=float)
        return lengths - np.median(lengths)


@pytest.fixture
def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, [{"prompt": f"Name a colour number {i}.", "chosen": f"Blue {i}", "rejected": f"Red {i}"}
                       for i in range(40)])
    return str(path)


def _cfg(tmp_path, pairs_file, tiny_llama, **kw):
    return SERConfig(**{"output_dir": str(tmp_path / "run"), "dataset": "jsonl", "data_path": pairs_file,
                        "heldout_size": 8, "selection_size": 6, "seed_fraction": 0.2, "max_loops": 1,
                        "min_selected": 1, "backend": "length", "pool_source": "generate",
                        "generator": {"model": tiny_llama, "max_new_tokens": 12, "temperature": 1.0},
                        "full_label_baseline": False, **kw})


def test_generated_pool_replaces_the_dataset_pairs_and_hides_no_label(tmp_path, pairs_file, tiny_llama):
    metrics = run_ser(_cfg(tmp_path, pairs_file, tiny_llama), LengthBackend())
    data = tmp_path / "run" / "data"
    original = {p["id"]: p for p in read_jsonl(data / "pool.jsonl")}
    generated = read_jsonl(data / "generated_pool.jsonl")
    assert generated and all(g["id"][0] == "g" and g["id"][1:] in original for g in generated)
    dataset_texts = {t for p in original.values() for t in (p["response_a"], p["response_b"])}
    assert not dataset_texts & {t for g in generated for t in (g["response_a"], g["response_b"])}
    assert all(g["prompt"] == original[g["id"][1:]]["prompt"] and g["response_a"] != g["response_b"]
               for g in generated)
    selected = read_jsonl(tmp_path / "run" / "loop_1" / "selected.jsonl")
    by_id = {g["id"]: g for g in generated}
    assert selected and all(len(s["chosen"]) > len(s["rejected"]) for s in selected)  # the backend's preference
    assert all({s["chosen"], s["rejected"]} == {by_id[s["id"]]["response_a"], by_id[s["id"]]["response_b"]}
               for s in selected)
    # generated pairs have no human label: agreement is not measured rather than read off the dataset's pair
    assert metrics["loops"][1]["agreement"] is None and metrics["sizes"]["pool"] == len(generated)


def test_a_crash_after_generation_reuses_the_cached_answers(tmp_path, pairs_file, tiny_llama):
    with pytest.raises(KeyboardInterrupt):
        run_ser(_cfg(tmp_path, pairs_file, tiny_llama), LengthBackend(kill_on_train=0))
    cache = tmp_path / "run" / "data" / "generation_cache.jsonl"
    lines_before = cache.read_text().count("\n")
    first = read_jsonl(tmp_path / "run" / "data" / "generated_pool.jsonl")
    run_ser(_cfg(tmp_path, pairs_file, tiny_llama), LengthBackend())
    assert cache.read_text().count("\n") == lines_before  # nothing generated twice
    assert read_jsonl(tmp_path / "run" / "data" / "generated_pool.jsonl") == first
    assert json.loads((tmp_path / "run" / "state.json").read_text())["stop_reason"] is not None


def test_generate_needs_a_generator_model(tmp_path, pairs_file):
    with pytest.raises(ConfigError, match="generator.model"):
        SERConfig(output_dir=str(tmp_path), dataset="jsonl", data_path=pairs_file, pool_source="generate")
