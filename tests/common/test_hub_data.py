"""common.hub_data: the dataset registry, ``mirror:`` references into the shared mirror, and hub loading with the
parquet fallback for loading-script datasets. Offline: the mirror is a temporary copy of common/tiny_data, the hub
calls are recorded instead of sent, and the parquet conversion is a local folder in the hub's layout."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from common import hub_data
from common.config import UserError
from common.data import DataError, load_records
from common.eval.bbq import load_bbq
from common.hub_data import (
    DATASETS,
    SCRIPT_ERROR,
    dataset,
    hub_call,
    load_hub,
    parquet_call,
    resolve_mirror,
    shared_data_root,
)
from common.preference_sets import hh_rlhf_pairs, sst2_sentiment_pairs
from rllr.tasks import load_examples

TINY = Path(__file__).resolve().parents[2] / "common" / "tiny_data"


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Path:
    """A shared mirror holding a copy of the shipped tiny data, named by $RLHF_SHARED_DATA."""
    root = tmp_path / "mirror"
    shutil.copytree(TINY, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setenv("RLHF_SHARED_DATA", str(root))
    return root


class Recorder:
    """Stands in for datasets.load_dataset: records each call, raises what ``fail`` gives for a first argument."""

    def __init__(self, fail: dict[str, Exception] | None = None):
        self.calls: list[tuple[tuple, dict]] = []
        self.fail = fail or {}

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if args[0] in self.fail:
            raise self.fail[args[0]]
        return [{"text": "row"}]


def test_mirror_root_is_the_environment_variable_else_shared_data_beside_the_repo(monkeypatch, tmp_path):
    monkeypatch.setenv("RLHF_SHARED_DATA", str(tmp_path))
    assert shared_data_root() == tmp_path
    monkeypatch.delenv("RLHF_SHARED_DATA")
    repo = Path(hub_data.__file__).resolve().parents[1]
    assert shared_data_root() == repo.parent / "shared" / "data"


def test_mirror_references_resolve_inside_the_registered_folders(mirror):
    assert resolve_mirror("mirror:") == mirror
    assert resolve_mirror("mirror:bbq") == mirror / "bbq"
    assert resolve_mirror("mirror:hh-rlhf/helpful-base") == mirror / "hh-rlhf" / "helpful-base"
    assert resolve_mirror("mirror:personahub/personas.jsonl.gz") == mirror / "personahub" / "personas.jsonl.gz"


def test_every_loader_reads_the_mirror_through_a_reference(mirror):
    """Each loader gives the same records from mirror:<name> as from the folder itself."""
    assert load_records("mirror:hh-rlhf/helpful-base", "preference", split="test", source_format="hh_rlhf") == \
        load_records(str(TINY / "hh-rlhf" / "helpful-base"), "preference", split="test", source_format="hh_rlhf")
    personas = load_records("mirror:personahub/personas.jsonl.gz", "prompt", columns={"prompt": "persona"})
    with gzip.open(TINY / "personahub" / "personas.jsonl.gz", "rt") as fh:
        assert [p["prompt"] for p in personas] == [json.loads(line)["persona"] for line in fh if line.strip()]
    items, _ = load_bbq("mirror:bbq", categories=["Age"])
    assert items == load_bbq(str(TINY / "bbq"), categories=["Age"])[0] and len(items) == 12
    assert load_examples("sst2", "test", "local", "mirror:glue") == load_examples("sst2", "test", "local",
                                                                                   str(TINY / "glue"))
    assert sst2_sentiment_pairs("mirror:", 5, seed=1) == sst2_sentiment_pairs(str(TINY), 5, seed=1)
    assert hh_rlhf_pairs("mirror:hh-rlhf", n=3) == hh_rlhf_pairs(str(TINY), n=3)


def test_a_missing_mirror_is_one_line_naming_how_to_point_at_it(monkeypatch, tmp_path):
    monkeypatch.setenv("RLHF_SHARED_DATA", str(tmp_path / "absent"))
    with pytest.raises(UserError) as err:
        resolve_mirror("mirror:bbq")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("mirror:bbq: the shared mirror ") and str(tmp_path / "absent") in msg
    assert "DATA_ROOT=<folder>" in msg and "RLHF_SHARED_DATA=<folder>" in msg
    with pytest.raises(DataError, match="the shared mirror .* does not exist"):  # common.data keeps its error type
        load_records("mirror:hh-rlhf/helpful-base", "preference", split="test")


def test_unknown_or_unmirrored_names_and_absent_paths_are_one_line_errors(mirror):
    with pytest.raises(UserError, match=r"^mirror:nope/x: 'nope' is not a registered dataset; mirror sources are "
                                        r"mirror:<name>\[/<path>\] with <name> one of \['bbq', 'glue', 'hh-rlhf', "
                                        r"'personahub'\]$"):
        resolve_mirror("mirror:nope/x")
    with pytest.raises(UserError, match="'alpaca_farm' has no mirror folder"):
        resolve_mirror("mirror:alpaca_farm")
    with pytest.raises(UserError, match=r"hh-rlhf/helpful-online does not exist in the shared mirror"):
        resolve_mirror("mirror:hh-rlhf/helpful-online")
    with pytest.raises(UserError, match=r"^unknown dataset 'bbbq'; registered \(common/hub_data.py\): \['ag_news'"):
        dataset("bbbq")


def test_hub_ids_become_the_load_dataset_call_of_their_registry_entry():
    assert hub_call("nyu-mll/glue", "sst2", "validation") == (("nyu-mll/glue", "sst2"), {"split": "validation"})
    # HH-RLHF keeps its subsets in folders of one config: data_dir, not a config name
    assert hub_call("Anthropic/hh-rlhf", "helpful-base", "test") == (("Anthropic/hh-rlhf",),
                                                                    {"data_dir": "helpful-base", "split": "test"})
    assert hub_call("Anthropic/hh-rlhf", None, "train") == (("Anthropic/hh-rlhf",), {"split": "train"})
    assert hub_call("someone/unlisted", None, "train") == (("someone/unlisted", None), {"split": "train"})
    assert parquet_call("heegyu/bbq", "Age", "test") == (
        ("parquet",), {"data_files": {"test": "hf://datasets/heegyu/bbq@~parquet/Age/test/*.parquet"},
                       "split": "test"})


def test_load_hub_sends_the_registered_call_and_falls_back_to_parquet_for_scripts(monkeypatch):
    import datasets

    rec = Recorder(fail={"someone/scripted": RuntimeError(f"{SCRIPT_ERROR}, but found scripted.py")})
    monkeypatch.setattr(datasets, "load_dataset", rec)
    load_hub("HuggingFaceH4/ultrafeedback_binarized", None, "train_prefs")
    load_hub("tatsu-lab/alpaca_farm", "alpaca_human_preference", "preference")  # a known script: parquet directly
    load_hub("someone/scripted", None, "train")  # an unlisted one: tried, then parquet
    assert rec.calls == [
        (("HuggingFaceH4/ultrafeedback_binarized", None), {"split": "train_prefs"}),
        (("parquet",), {"data_files": {"preference": "hf://datasets/tatsu-lab/alpaca_farm@~parquet/"
                                                     "alpaca_human_preference/preference/*.parquet"},
                        "split": "preference"}),
        (("someone/scripted", None), {"split": "train"}),
        (("parquet",), {"data_files": {"train": "hf://datasets/someone/scripted@~parquet/default/train/*.parquet"},
                        "split": "train"}),
    ]
    assert {d.hub_id for d in DATASETS.values() if d.script} == {"heegyu/bbq", "tatsu-lab/alpaca_farm",
                                                                 "openai/summarize_from_feedback"}


def test_hub_failures_are_one_line_user_errors(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", Recorder(fail={
        "someone/missing": FileNotFoundError("Dataset 'someone/missing' doesn't exist on the Hub\nmore"),
        "parquet": ConnectionError("Couldn't reach 'heegyu/bbq' on the Hub (OfflineModeIsEnabled)")}))
    with pytest.raises(UserError, match=r"^someone/missing \(subset None, split 'train'\): cannot load from the hub: "
                                        r"Dataset 'someone/missing' doesn't exist on the Hub$"):
        load_hub("someone/missing")
    with pytest.raises(UserError) as err:
        load_hub("heegyu/bbq", "Age", "test")
    assert "\n" not in str(err.value) and "hf://datasets/heegyu/bbq@~parquet/Age/test/*.parquet" in str(err.value)


def test_a_script_dataset_reads_its_parquet_conversion_in_the_hub_layout(monkeypatch, tmp_path):
    """The real datasets.load_dataset on a local folder laid out like refs/convert/parquet: BBQ rows as the hub
    converted them give the same items as the release files."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    with gzip.open(TINY / "bbq" / "data" / "Age.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    folder = tmp_path / "hub" / "heegyu" / "bbq@~parquet" / "Age" / "test"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "0000.parquet")
    monkeypatch.setattr(hub_data, "PARQUET_BASE", str(tmp_path / "hub"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    items, _ = load_bbq("heegyu/bbq", categories=["Age"])
    assert items == load_bbq(str(TINY / "bbq"), categories=["Age"])[0] and len(items) == 12


def test_the_readme_table_lists_every_registered_dataset_with_its_hub_id():
    text = (Path(__file__).resolve().parents[2] / "common" / "README.md").read_text()
    section = text.split("\n## Data sources")[1].split("\n## ")[0]
    rows = {line.split("|")[1].strip(" `"): line.split("|")[2].strip(" `") for line in section.splitlines()
            if line.startswith("| `")}
    assert rows == {name: d.hub_id for name, d in DATASETS.items()}
