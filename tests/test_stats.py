"""bench.stats against scipy/statsmodels and hand-computable cases."""

import math

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from bench import stats


def test_cell_summary_matches_scipy():
    v = [0.41, 0.45, 0.43, 0.47, 0.40]
    s = stats.cell_summary(v)
    lo, hi = st.t.interval(0.95, df=4, loc=np.mean(v), scale=st.sem(v))
    assert s["n"] == 5 and s["mean"] == pytest.approx(np.mean(v))
    assert s["std"] == pytest.approx(np.std(v, ddof=1))
    assert (s["ci_low"], s["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    one = stats.cell_summary([0.5, None, float("nan")])
    assert one["n"] == 1 and one["mean"] == 0.5 and math.isnan(one["std"]) and math.isnan(one["ci_low"])
    assert stats.cell_summary([])["n"] == 0


def test_bootstrap_bca_matches_scipy():
    v = np.array([1.0, 2.0, 3.0, 4.0, 5.5, 2.5])
    lo, hi = stats.bootstrap_ci(v, seed=3)
    ref = st.bootstrap((v,), np.mean, method="BCa", n_resamples=9_999, rng=np.random.default_rng(3))
    assert (lo, hi) == (pytest.approx(ref.confidence_interval.low), pytest.approx(ref.confidence_interval.high))
    assert lo < v.mean() < hi
    s = stats.cell_summary(v, bootstrap=True)
    assert s["boot_low"] == pytest.approx(lo)
    assert all(math.isnan(x) for x in stats.bootstrap_ci([1.0, 2.0]))  # too few values for BCa


def test_welch_matches_scipy_and_hedges_g_by_hand():
    a, b = [1.0, 2.0, 3.0, 4.0], [2.5, 3.5, 4.5, 6.0, 7.0]
    assert stats.welch(a, b) == pytest.approx(st.ttest_ind(a, b, equal_var=False).pvalue)
    assert math.isnan(stats.welch([1.0], b)) and math.isnan(stats.welch([1, 1], [1, 1]))
    # pooled sd 1, d = -3, J = 1 - 3/(4*6-9) = 0.8
    assert stats.hedges_g([1, 2, 3], [4, 5, 6]) == pytest.approx(-2.4)


def test_exact_permutation_p_hand_computed():
    # 3 vs 3 fully separated: only 2 of C(6,3)=20 relabellings are as extreme -> two-sided p = 0.1
    assert stats.permutation_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert stats.permutation_p([1, 2, 3], [4, 5, 6], alternative="less") == pytest.approx(0.05)
    assert stats.permutation_p([1, 2, 3, 4], [5, 6, 7, 8]) == pytest.approx(2 / 70)
    assert stats.min_permutation_p(3, 3) == pytest.approx(0.1)
    ref = st.permutation_test(([0.3, 0.5, 0.1], [0.4, 0.9, 0.8, 0.7]), lambda x, y: np.mean(x) - np.mean(y),
                              permutation_type="independent", n_resamples=np.inf).pvalue
    assert stats.permutation_p([0.3, 0.5, 0.1], [0.4, 0.9, 0.8, 0.7]) == pytest.approx(ref)
    assert math.isnan(stats.permutation_p([1, 1], [1, 1]))


def test_mann_whitney_probability_of_superiority():
    assert stats.prob_superiority([4, 5, 6], [1, 2, 3]) == 1.0
    assert stats.prob_superiority([1, 2, 3], [4, 5, 6]) == 0.0
    # pairs a > b: 3 (the 3s); ties 2 == 2: 3 halves -> U = 4.5 of 9
    assert stats.prob_superiority([1, 2, 3], [2, 2, 2]) == pytest.approx(0.5)
    assert stats.mannwhitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)  # exact: 2/20


def test_compare_is_direction_aware():
    lower_mae, higher_mae = [0.70, 0.71, 0.72], [0.80, 0.81, 0.82]
    c = stats.compare(lower_mae, higher_mae, higher_is_better=False)
    assert c["p_a_better"] == 1.0 and c["p_perm"] == pytest.approx(0.1)
    assert stats.compare(lower_mae, higher_mae, higher_is_better=True)["p_a_better"] == 0.0


def test_holm_matches_statsmodels_not_holm_sidak():
    p = [0.01, 0.04, 0.03, 0.2]
    assert stats.holm(p) == pytest.approx(multipletests(p, method="holm")[1])
    # by hand: sorted 0.01*4, 0.03*3, 0.04*2, 0.2*1 -> cumulative max
    assert stats.holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert not np.allclose(stats.holm(p), multipletests(p)[1])  # statsmodels' default is Holm-Sidak
    out = stats.holm([0.01, np.nan, 0.02])
    assert math.isnan(out[1]) and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.02)


def test_min_seeds_note():
    assert stats.min_seeds(0.05, 1) == 4  # 2/C(8,4) = 0.029
    assert stats.min_seeds(0.05, 12) == 6  # 2/C(12,6) = 0.0022 < 0.05/12
    note = stats.min_seeds_note(3)
    assert "smallest possible p = 0.100" in note and "at least 4 seeds" in note
    assert "with Holm over 12" in stats.min_seeds_note(3, n_comparisons=12)
    assert stats.min_seeds_note(5) is None
    assert "at least 6 seeds" in stats.min_seeds_note(5, n_comparisons=12)
    assert "no test is possible" in stats.min_seeds_note(1)


def test_aso_optional():
    pytest.importorskip("deepsig")
    better = [0.90, 0.91, 0.92, 0.93, 0.94]
    worse = [0.80, 0.81, 0.82, 0.83, 0.84]
    assert stats.aso(better, worse, num_bootstrap_iterations=100) < 0.2
    assert stats.aso(worse, better, num_bootstrap_iterations=100) > 0.8


def test_single_seed_groups_give_nan_not_errors():
    """A one-seed table (the CI gate reruns seed 1111 only) must render: every test returns NaN."""
    import math

    from bench.stats import compare

    r = compare([0.5], [0.4])
    assert math.isnan(r["p_welch"]) and math.isnan(r["p_perm"])
    r2 = compare([0.5, 0.52], [0.4])
    assert math.isnan(r2["p_perm"]) and math.isnan(r2["p_welch"])
