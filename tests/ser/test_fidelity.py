"""The fidelity summary: mean ± sd over split seeds, the share of the seed-only → 100%-label gap SER closes."""

import pytest

from ser.fidelity import FidelityConfig, summary_rows, summary_table


def test_summary_averages_split_seeds_and_measures_the_gap_closed():
    cfg = FidelityConfig(datasets=["sst2"], seed_fractions=[0.01, 0.15], seeds=[1, 2])
    runs = {("0.01", 1): (0.70, 0.76, 0.85), ("0.01", 2): (0.72, 0.74, 0.87),
            ("0.15", 1): (0.86, 0.85, 0.85), ("0.15", 2): (0.84, 0.85, 0.85)}
    results = {f"sst2/seed_{100 * float(f):g}pct/split_{s}": {"seed_only_accuracy": a, "ser_accuracy": b,
                                                              "full_label_accuracy": c, "best_loop": 1}
               for (f, s), (a, b, c) in runs.items()}
    low, high = summary_rows(results, cfg)
    assert low["seed_only"][0] == pytest.approx(0.71) and low["ser"][0] == pytest.approx(0.75)
    assert low["seed_only"][1] == pytest.approx(0.0141421, rel=1e-4)  # sample sd of 0.70, 0.72
    assert low["gap_closed"] == pytest.approx(0.04 / 0.15)
    assert low["ser_gain_per_split"] == pytest.approx([0.06, 0.02])
    assert high["gap_closed"] is None  # the seed-only RM already matches the 100%-label RM: nothing to close
    table = summary_table([low, high], 2)
    assert "| sst2 | 1 | 71.0 ± 1.4 | 75.0 ± 1.4 | 86.0 ± 1.4 | 27% | +6.0, +2.0 | 1, 1 |" in table
    assert "n/a (no gap)" in table
    assert "| sst2 | 1 | 71.0 | 75.0 | 86.0 | 27% |" in summary_table([low], 1)  # one split: no spread shown
