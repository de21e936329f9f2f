"""common.fidelity: the cross-paper table gathers every paper's claims.json, counts verdicts, fills the README."""

import pytest

from common.config import UserError
from common.fidelity import BEGIN, END, build, gather
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

    counts = build(runs, tmp_path / "out", readme)

    assert counts["claims"] == 3
    assert (counts["reproduced"], counts["refuted"], counts["inconclusive"]) == (1, 1, 1)
    assert set(counts["papers_not_run"]) == {"rldf", "rllr", "rlchf"}
    text = (tmp_path / "out" / "fidelity.md").read_text()
    assert "| PCRM | 2 | 1 | 0 | 1 |" in text and "| SER | 1 | 0 | 1 | 0 |" in text
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
