"""SER's confidence filter on hand-made pointwise probabilities (t_L 0.45, t_R 0.55, margin 0.3)."""

import numpy as np
import pytest

from ser.filter import FilterThresholds, select_confident, statuses_for_round


def test_status1_keeps_clear_good_vs_clear_bad_even_with_a_small_gap():
    sel = select_confident([0.56], [0.44])  # gap 0.12 < margin: only the threshold clause holds
    assert sel.label.tolist() == [1] and sel.status.tolist() == [1]


def test_status2_keeps_a_wide_gap_on_the_same_side_of_one_half():
    sel = select_confident([0.95], [0.60])  # both above t_R, gap 0.35 > 0.3
    assert sel.label.tolist() == [1] and sel.status.tolist() == [2]


def test_mirror_case_labels_b_over_a():
    sel = select_confident([0.40, 0.10], [0.60, 0.45])  # pair 0: status 1 for b; pair 1: status 2 for b (gap 0.35)
    assert sel.label.tolist() == [-1, -1]
    assert sel.status.tolist() == [1, 2]


def test_unconfident_pairs_stay_in_the_pool():
    p_a = np.array([0.56, 0.50, 0.70, 0.55, 0.56])
    p_b = np.array([0.46, 0.50, 0.45, 0.44, 0.85])  # b not < t_L; tie; gap 0.25; a not > t_R; gap 0.29
    sel = select_confident(p_a, p_b)
    assert sel.label.tolist() == [0, 0, 0, 0, 0]
    assert sel.remaining.tolist() == [0, 1, 2, 3, 4] and sel.selected.tolist() == []


def test_pair_meeting_both_clauses_is_credited_to_status1_and_selected_once():
    sel = select_confident([0.9, 0.9], [0.1, 0.1], statuses=(1, 2))
    assert sel.status.tolist() == [1, 1] and sel.count(1) == 2 and sel.count(2) == 0


def test_only_status2_active_ignores_the_threshold_clause():
    sel = select_confident([0.56, 0.9], [0.44, 0.1], statuses=(2,))
    assert sel.label.tolist() == [0, 1] and sel.status.tolist() == [0, 2]


def test_selected_and_remaining_partition_the_pool():
    rng = np.random.default_rng(0)
    p_a, p_b = rng.random(200), rng.random(200)
    sel = select_confident(p_a, p_b)
    assert sorted(sel.selected.tolist() + sel.remaining.tolist()) == list(range(200))
    chosen_p = np.where(sel.label > 0, p_a, p_b)[sel.selected]
    rejected_p = np.where(sel.label > 0, p_b, p_a)[sel.selected]
    assert np.all(chosen_p > rejected_p)


def test_alternate_schedule_starts_with_status1():
    assert [statuses_for_round("alternate", r) for r in range(4)] == [(1,), (2,), (1,), (2,)]
    assert statuses_for_round("both", 3) == (1, 2)


def test_custom_thresholds_and_bad_thresholds():
    assert select_confident([0.7], [0.3], FilterThresholds(0.2, 0.8, 0.5)).label.tolist() == [0]
    with pytest.raises(ValueError, match="t_low"):
        FilterThresholds(0.6, 0.4, 0.3)
