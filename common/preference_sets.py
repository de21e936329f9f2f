"""Small real preference sets built from local copies of GLUE SST-2 and HH-RLHF (the shared mirror, ``mirror:``, or
the shipped ``common/tiny_data``), for CPU fidelity and tiny runs.

Two builders, both returning canonical preference records ``{prompt, chosen, rejected, ...extras}`` that keep
where every pair came from (``source``, ``source_id``), so a score can always be traced back to its rows:

- ``sst2_sentiment_pairs``: a positive SST-2 review preferred over a negative one. The prompt is a fixed
  instruction, "Write a movie review." [GUESS: our design; the sentiment label is the human judgement, so
  "positive is preferred" is a learnable, human-labelled preference that a small encoder can pick up]. Positives
  and negatives are shuffled with the seed and zipped, so the two sides of a pair are unrelated reviews.
- ``hh_rlhf_pairs``: Anthropic HH-RLHF test rows (the train splits are not in the shared mirror). The prompt is the
  dialogue up to the final assistant turn, chosen/rejected are the two final assistant replies. The transcripts go
  through the project's one HH-RLHF parser, ``common.data.parse_hh_pair`` (its turn-marker rule and skip reasons).
"""

from __future__ import annotations

import csv
import gzip
import random
from pathlib import Path

from common.config import UserError
from common.data import BadRows, HHRowError, parse_hh_pair, read_table
from common.hub_data import local_source

SST2_FILES = {
    "train": "alps_train.tsv.gz",  # 60,614 rows of GLUE SST-2 train (phrases and sentences)
    "heldout": "alps_heldout_from_train.tsv.gz",  # the other 6,735 rows of GLUE SST-2 train
    "dev": "dev.tsv",  # official GLUE SST-2 dev, 872 full sentences
}
SST2_PROMPT = "Write a movie review."
HH_SUBSETS = ("helpful-base", "harmless-base")


def _find(folder: str | Path, sub: str) -> Path:
    """Accept either a data root holding ``sub`` (``mirror:``, ``common/tiny_data``) or the dataset folder itself."""
    folder = Path(local_source(str(folder)))
    for cand in (folder / sub, folder):
        if cand.is_dir() and cand.name == Path(sub).name:
            return cand
    raise UserError(f"{folder}: neither it nor {folder / sub} is the {sub} folder; pass a data root (mirror: for the "
                    "shared mirror, common/tiny_data for the shipped tiny copy) or the dataset folder itself")


def _read_sst2(path: Path) -> list[tuple[int, str, int]]:
    """(row number, sentence, label) from an SST-2 tsv (gzipped or not); quotes are literal text (QUOTE_NONE)."""
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        if header[:2] != ["sentence", "label"]:
            raise UserError(f"{path}:1: expected header 'sentence\\tlabel', got {header!r}")
        for i, row in enumerate(reader, start=2):
            if len(row) < 2 or row[1].strip() not in ("0", "1"):
                raise UserError(f"{path}:{i}: expected '<sentence>\\t<0|1>', got {row!r}")
            out.append((i, row[0].strip(), int(row[1])))
    return out


def sst2_sentiment_pairs(folder: str | Path, n_pairs: int, seed: int = 0, split: str = "train",
                         min_words: int = 6, prompt: str = SST2_PROMPT) -> list[dict]:
    """``n_pairs`` records {prompt, chosen = positive review, rejected = negative review}, paired at random.

    ``split`` picks the file (``train`` | ``heldout`` | ``dev``, see ``SST2_FILES``); train and heldout are
    disjoint parts of GLUE train, so train on one and evaluate on the other. Reviews shorter than ``min_words``
    words are dropped (SST-2 train holds many 1–3 word phrases that carry little signal); duplicates are dropped.
    Extras: ``source`` (file), ``source_id`` ("<file>:<row>:<row>" for chosen and rejected), ``chosen_label`` 1,
    ``rejected_label`` 0.
    """
    if split not in SST2_FILES:
        raise UserError(f"sst2 split {split!r} is not one of {sorted(SST2_FILES)}")
    if n_pairs <= 0:
        raise UserError(f"n_pairs must be positive, got {n_pairs}")
    path = _find(folder, "glue/sst2") / SST2_FILES[split]
    if not path.is_file():
        raise UserError(f"{path} does not exist; the shared SST-2 folder should hold {sorted(SST2_FILES.values())}")
    seen: set[str] = set()
    by_label: dict[int, list[tuple[int, str]]] = {0: [], 1: []}
    for row, text, label in _read_sst2(path):
        if len(text.split()) < min_words or text in seen:
            continue
        seen.add(text)
        by_label[label].append((row, text))
    rng = random.Random(seed)
    for label in (0, 1):
        rng.shuffle(by_label[label])
    have = min(len(by_label[0]), len(by_label[1]))
    if have < n_pairs:
        raise UserError(f"{path}: only {have} pairs with >= {min_words} words per review, asked for {n_pairs}; "
                        "lower n_pairs or min_words")
    return [
        {"prompt": prompt, "chosen": pos, "rejected": neg, "source": f"glue/sst2/{path.name}",
         "source_id": f"{path.name}:{pos_row}:{neg_row}", "chosen_label": 1, "rejected_label": 0}
        for (pos_row, pos), (neg_row, neg) in zip(by_label[1][:n_pairs], by_label[0][:n_pairs])
    ]


def hh_messages_to_text(messages: list[dict]) -> str:
    """Messages back into the HH frame, ending with the open assistant header "\\n\\nAssistant: "."""
    names = {"user": "Human", "assistant": "Assistant"}
    return "".join(f"\n\n{names[m['role']]}: {m['content']}" for m in messages) + "\n\nAssistant: "


def hh_rlhf_pairs(folder: str | Path, subsets: tuple[str, ...] | list[str] = HH_SUBSETS, n: int | None = None,
                  seed: int = 0, prompt_format: str = "messages", on_bad_row: str = "skip",
                  stats: dict | None = None) -> list[dict]:
    """Up to ``n`` HH-RLHF test pairs (all when None), shuffled with ``seed`` across ``subsets``.

    ``prompt_format``: ``messages`` (canonical list of {role, content}) or ``hh_text`` (the raw frame
    "\\n\\nHuman: ...\\n\\nAssistant: ", the prompt format PCRM's upstream code uses). Rows that give no pair
    (``common.data.HH_SKIP_REASONS``: dialogues that differ before the final turn, empty or identical replies, ...;
    10 of the 4,666 shared test rows: 8 empty replies, 2 identical) are skipped, counted per reason and reported
    in one warning line per file; ``on_bad_row: error`` stops at the first malformed one with a UserError naming
    ``file:row``. ``stats`` receives
    ``{"rows", "kept", "skipped": {reason: count}}`` summed over the subsets (``common.data.add_skip_stats``).
    Extras: ``source`` ("hh-rlhf/<subset>/test"), ``source_id`` ("<subset>/test:<row>", the jsonl line).
    """
    if prompt_format not in ("messages", "hh_text"):
        raise UserError(f"prompt_format {prompt_format!r} is not one of ['messages', 'hh_text']")
    root = _find(folder, "hh-rlhf")
    records = []
    for subset in subsets:
        path = root / subset / "test.jsonl.gz"
        if not path.is_file():
            raise UserError(f"{path} does not exist; the shared hh-rlhf folder holds {sorted(HH_SUBSETS)}")
        rows = read_table(path)
        bad, kept = BadRows(str(path), on_bad_row), 0
        for row_no, row in enumerate(rows, start=1):
            try:
                pair = parse_hh_pair(row)
            except HHRowError as exc:
                bad.skip(row_no, exc)
                continue
            kept += 1
            prompt = pair["prompt"] if prompt_format == "messages" else hh_messages_to_text(pair["prompt"])
            records.append({"prompt": prompt, "chosen": pair["chosen"], "rejected": pair["rejected"],
                            "source": f"hh-rlhf/{subset}/test", "source_id": f"{subset}/test:{row_no}"})
        bad.report(len(rows), kept, stats)
    random.Random(seed).shuffle(records)
    return records if n is None else records[:n]
