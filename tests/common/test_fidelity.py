"""common.fidelity: every paper's claims.json becomes a tracked record; the table counts verdicts, fills the README."""

import json
from pathlib import Path

import pytest

from common.config import UserError
from common.fidelity import (
    BEGIN,
    END,
    build,
    claims_table,
    gather,
    paper_markers,
    paper_table,
    read_records,
    summary_table,
)
from common.stats import Claim, Interval, write_claims


def _claim(paper, name, low, high, direction=+1, paper_value=0.02):
    return Claim(paper=paper, claim=name, metric="accuracy", direction=direction,
                 ours=Interval((low + high) / 2, low, high, 400), unit="pairs", paper_value=paper_value, scale=100)


def test_table_counts_verdicts_and_lists_unrun_papers(tmp_path):
    runs = tmp_path / "runs"
    write_claims(runs / "pcrm" / "fidelity" / "sst2", [_claim("pcrm", "len_rat > baseline", 0.01, 0.05),
                                                       _claim("pcrm", "cos_sim > baseline", -0.02, 0.03)])
    write_claims(runs / "ser" / "fidelity", [_claim("ser", "SER > seed-only", -0.06, -0.01)])
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{BEGIN}\nold table\n{END}\nafter\n")

    counts = build(runs, tmp_path / "out", readme, today="2026-12-05")

    assert counts["claims"] == 3
    assert (counts["reproduced"], counts["refuted"], counts["inconclusive"]) == (1, 1, 1)
    assert set(counts["papers_not_run"]) == {"rldf", "rllr", "rlchf"}
    text = (tmp_path / "out" / "fidelity.md").read_text()
    assert "| PCRM | 2 | 1 | 0 | 1 | 2026-12-05 |" in text and "| SER | 1 | 0 | 1 | 0 | 2026-12-05 |" in text
    assert str(runs / "ser" / "fidelity" / "claims.json") in text
    assert "| RLDF | not run |" in text
    # the inconclusive row says how many pairs a conclusive answer needs: 400 · (2.5 / 0.5)² = 10,000
    assert "≈ 10,000 pairs" in text
    assert "+3.0 [+1.0, +5.0] (n=400 pairs)" in text
    new = readme.read_text()
    assert "old table" not in new and new.startswith("# x\n\nbefore\n") and new.endswith(f"{END}\nafter\n")
    assert (tmp_path / "out" / "fidelity_pcrm.png").stat().st_size > 0


def test_a_claim_filed_under_the_wrong_paper_is_an_error(tmp_path):
    write_claims(tmp_path / "rldf", [_claim("ser", "x", 0.1, 0.2)])
    with pytest.raises(UserError, match="under runs/rldf"):
        gather(tmp_path)


def test_a_readme_without_the_block_is_an_error(tmp_path):
    write_claims(tmp_path / "runs" / "ser", [_claim("ser", "x", 0.1, 0.2)])
    (tmp_path / "README.md").write_text("no markers\n")
    with pytest.raises(UserError, match="fidelity:begin"):
        build(tmp_path / "runs", tmp_path / "out", tmp_path / "README.md")


def test_a_later_run_of_one_paper_keeps_the_others_records_and_announces_the_change(tmp_path, capsys):
    out = tmp_path / "out"
    write_claims(tmp_path / "day1" / "pcrm", [_claim("pcrm", "len_rat > baseline", 0.01, 0.05)])
    write_claims(tmp_path / "day1" / "ser", [_claim("ser", "SER > seed-only", 0.01, 0.05)])
    build(tmp_path / "day1", out, today="2026-12-04")
    assert sorted(p.name for p in (out / "claims").iterdir()) == ["pcrm.json", "ser.json"]

    # day 2: only SER reran, and its claim flipped; PCRM's record of day 1 stays in the table
    write_claims(tmp_path / "day2" / "ser", [_claim("ser", "SER > seed-only", -0.05, -0.01)])
    counts = build(tmp_path / "day2", out, today="2026-12-05")

    assert counts["recorded_now"] == ["ser"] and (counts["reproduced"], counts["refuted"]) == (1, 1)
    assert "replacing the record of 2026-12-04" in capsys.readouterr().err
    text = (out / "fidelity.md").read_text()
    assert "| PCRM | 1 | 1 | 0 | 0 | 2026-12-04 |" in text and "| SER | 1 | 0 | 1 | 0 | 2026-12-05 |" in text
    # without any runs the table is rebuilt from the records alone, unchanged
    build(None, out)
    assert (out / "fidelity.md").read_text() == text


def test_a_record_holding_another_papers_claims_is_an_error(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    row = {"paper": "ser", "recorded": "2026-12-05", "sources": ["x"],
           "claims": [_claim("ser", "x", 0.1, 0.2).to_dict()]}
    (records / "rldf.json").write_text(json.dumps(row))
    with pytest.raises(UserError, match="rldf.json: holds claims of another paper"):
        build(None, tmp_path / "out", records=records)
    (records / "rldf.json").write_text("{}")
    with pytest.raises(UserError, match="rldf.json: not a fidelity record"):
        build(None, tmp_path / "out", records=records)


def test_paper_readmes_get_their_own_claims_and_a_missing_block_is_an_error(tmp_path):
    write_claims(tmp_path / "runs" / "ser", [_claim("ser", "SER > seed-only", -0.06, -0.01)])
    begin, end = paper_markers("ser")
    (tmp_path / "ser").mkdir()
    (tmp_path / "ser" / "README.md").write_text(f"# SER\n{begin}\nhand-written table\n{end}\nreading\n")

    counts = build(tmp_path / "runs", tmp_path / "out", paper_readmes=tmp_path, today="2026-12-05")

    text = (tmp_path / "ser" / "README.md").read_text()
    assert counts["paper_readmes"] == [str(tmp_path / "ser" / "README.md")]
    assert "hand-written" not in text and text.endswith(f"{end}\nreading\n")
    assert "| SER > seed-only | accuracy |" in text and "-3.5 [-6.0, -1.0] (n=400 pairs) | **refuted** |" in text
    assert "recorded 2026-12-05" in text
    (tmp_path / "ser" / "README.md").write_text("# SER, no block\n")
    with pytest.raises(UserError, match="fidelity:ser:begin"):
        build(None, tmp_path / "out", paper_readmes=tmp_path)


def test_the_tracked_readmes_show_exactly_what_the_tracked_records_hold():
    """A hand edit of a README's claims table, or a record changed without `make fidelity-table`, fails here."""
    root = Path(__file__).resolve().parents[2]
    records = "reports/fidelity/claims"
    found = read_records(root / records)
    assert any(found.values()), "no tracked fidelity records"
    for paper, record in found.items():
        if record is not None:
            begin, end = paper_markers(paper)
            assert f"{begin}\n{paper_table(record, records)}\n{end}" in (root / paper / "README.md").read_text(), (
                f"{paper}/README.md: claims table differs from {records}/{paper}.json; run make fidelity-table")
    assert f"{BEGIN}\n{summary_table(found)}\n\n{claims_table(found)}\n{END}" in (root / "README.md").read_text()
