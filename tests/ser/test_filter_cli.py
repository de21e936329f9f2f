"""``python -m ser.filter``: upstream's rm_loop_filter_by_self.py on a hand-made scored file (t_L 0.45, t_R 0.55,
margin 0.3), its output format, and its refusals."""

import json
import subprocess
import sys

import pytest

from ser.filter import main

# p_j, p_k and the hand-checked outcome under both clauses (upstream's rule)
PAIRS = [
    ("p1", 0.9, 0.1),        # j: status 1 (0.9 > t_R, 0.1 < t_L)
    ("p2", 0.2, 0.7),        # k: status 1 -> kept swapped
    ("p3", 0.95, 0.6),       # j: status 2 only (gap 0.35; 0.6 is not < t_L)
    ("p4", 0.5, 0.5),        # remains: tie
    ("p5", 0.56, 0.46),      # remains: 0.46 is not < t_L, gap 0.10
    ("p6", "0.62", "0.25"),  # j: status 1; numeric strings, as upstream's float(item['score_j'])
]


def scored_file(tmp_path, pairs=PAIRS, name="scored.json"):
    items = [{"id": i, "question": f"q {i}", "response_j": f"J {i}", "response_k": f"K {i}", "score_j": sj,
              "score_k": sk} for i, sj, sk in pairs]
    path = tmp_path / name
    path.write_text(json.dumps(items))
    return path


def run(tmp_path, *extra, input_path=None):
    input_path = input_path or scored_file(tmp_path)
    code = main(["--input", str(input_path), "--kept", str(tmp_path / "kept.json"),
                 "--remaining", str(tmp_path / "remaining.json"), *extra])
    assert code == 0
    return (json.loads((tmp_path / "kept.json").read_text()), json.loads((tmp_path / "remaining.json").read_text()))


def test_kept_and_remaining_split_as_upstream_with_the_winner_first(tmp_path):
    kept, remaining = run(tmp_path)
    assert [x["id"] for x in kept] == ["p1", "p2", "p3", "p6"]
    assert [(x["self_label"], x["status"]) for x in kept] == [(1, 1), (-1, 1), (1, 2), (1, 1)]
    p2 = kept[1]  # swapped like upstream: response and score of k moved into the j slot
    assert (p2["response_j"], p2["response_k"], p2["score_j"], p2["score_k"]) == ("K p2", "J p2", 0.7, 0.2)
    assert kept[0]["response_j"] == "J p1" and kept[0]["question"] == "q p1"
    assert remaining == [json.loads(scored_file(tmp_path, name="again.json").read_text())[i] for i in (3, 4)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.json", "kept.json", "remaining.json", "scored.json"]


def test_status1_only_leaves_the_margin_pair_in_the_pool(tmp_path):
    kept, remaining = run(tmp_path, "--statuses", "1")
    assert [x["id"] for x in kept] == ["p1", "p2", "p6"]
    assert [x["id"] for x in remaining] == ["p3", "p4", "p5"]


def test_thresholds_from_the_command_line(tmp_path):
    # t_L 0.2, t_R 0.8, margin 0.9: only p1 (0.9 > 0.8, 0.1 < 0.2) passes; p2's 0.7 is not above t_R
    kept, remaining = run(tmp_path, "--tau_low", "0.2", "--tau_high", "0.8", "--margin", "0.9")
    assert [x["id"] for x in kept] == ["p1"] and len(remaining) == 5


def test_logits_are_squashed_and_jsonl_round_trips(tmp_path):
    # sigma(2) = 0.88, sigma(-2) = 0.12 -> kept; sigma(0.1) = 0.525 vs 0.5 -> remains
    path = tmp_path / "scored.jsonl"
    path.write_text("".join(json.dumps({"id": i, "response_a": "A", "response_b": "B", "score_a": a, "score_b": b})
                            + "\n" for i, a, b in [("x", -2.0, 2.0), ("y", 0.1, 0.0)]))
    code = main(["--input", str(path), "--kept", str(tmp_path / "kept.jsonl"), "--remaining",
                 str(tmp_path / "rest.jsonl"), "--logits", "--names", "a,b"])
    assert code == 0
    kept = [json.loads(line) for line in (tmp_path / "kept.jsonl").read_text().splitlines()]
    rest = [json.loads(line) for line in (tmp_path / "rest.jsonl").read_text().splitlines()]
    assert [(x["id"], x["response_a"], x["score_a"], x["self_label"]) for x in kept] == [("x", "B", 2.0, -1)]
    assert [x["id"] for x in rest] == ["y"]


@pytest.mark.parametrize(("content", "message"), [
    ("[{\"response_j\": 1", "not valid JSON"),
    ('{"response_j": "a"}', "the top level is a dict"),
    ('[{"response_j": "a", "response_k": "b", "score_j": 0.9}]', "item 1: field 'score_k' is missing"),
    ('[{"response_j": "a", "response_k": "b", "score_j": 0.9, "score_k": "high"}]', "score_k 'high' is not a number"),
    ('[{"response_j": "a", "response_k": "b", "score_j": 2.5, "score_k": 0.1}]', "outside [0, 1]"),
    ('[["a", "b"]]', "item 1: a list, not an object"),
])
def test_malformed_input_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SystemExit) as exc:
        main(["--input", str(path), "--kept", str(tmp_path / "k.json"), "--remaining", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "k.json").exists() and not (tmp_path / "r.json").exists()


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, capsys):
    (tmp_path / "kept.json").write_text("old")
    with pytest.raises(SystemExit) as exc:
        main(["--input", str(scored_file(tmp_path)), "--kept", str(tmp_path / "kept.json"),
              "--remaining", str(tmp_path / "remaining.json")])
    assert exc.value.code == 2 and "pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "kept.json").read_text() == "old" and not (tmp_path / "remaining.json").exists()
    kept, _ = run(tmp_path, "--overwrite")
    assert len(kept) == 4


def test_bad_settings_are_refused(tmp_path, capsys):
    path = scored_file(tmp_path)
    for args, message in ([("--kept", str(path)), "three different files"],
                          [("--tau_low", "0.7", "--tau_high", "0.4"), "t_low <= t_high"]):
        with pytest.raises(SystemExit) as exc:
            main(["--input", str(path), "--kept", str(tmp_path / "k.json"), "--remaining", str(tmp_path / "r.json"),
                  *args])
        assert exc.value.code == 2 and message in capsys.readouterr().err


def test_help_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "ser.filter", "--help"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0 and "--remaining" in out.stdout and "--tau_high" in out.stdout
