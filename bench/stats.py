"""Statistics over seeds (docs/tables.md, Statistics): per-cell summaries and EMOE-vs-row tests.

Runs of different configurations do not share an init stream, so samples are treated as
unpaired: Welch's t-test, an independent-samples permutation test (exact when the number of
relabellings is small), Mann–Whitney's P(A > B) = U/(n·m) and, when the optional ``deepsig`` package
is installed, Almost Stochastic Order (ASO). Holm–Bonferroni corrects over one table. With very few
seeds no distribution-free test can reach p < 0.05; :func:`min_seeds_note` says how many are needed.
"""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

# exact permutation test up to this many relabellings (C(n+m, n)); a random subset beyond
EXACT_PERMUTATION_LIMIT = 20_000
PERMUTATION_RESAMPLES = 9_999


def _rng(seed: int) -> dict:
    """scipy >= 1.15 takes ``rng``; older versions ``random_state``."""
    key = "rng" if "rng" in inspect.signature(st.permutation_test).parameters else "random_state"
    return {key: np.random.default_rng(seed)}


def _clean(values) -> np.ndarray:
    return np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)


def t_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided t confidence interval of the mean (NaNs with fewer than 2 values)."""
    v = _clean(values)
    n = len(v)
    if n < 2:
        return math.nan, math.nan
    mean, sd = float(v.mean()), float(v.std(ddof=1))
    half = float(st.t.ppf(0.5 + confidence / 2, df=n - 1) * sd / math.sqrt(n))
    return mean - half, mean + half


def bootstrap_ci(values, confidence: float = 0.95, method: str = "BCa", n_resamples: int = 9_999,
                 seed: int = 0) -> tuple[float, float]:
    """Bootstrap CI of the mean (``scipy.stats.bootstrap``, BCa by default); NaNs when undefined
    (fewer than 3 values or no spread: BCa needs a jackknife with variance)."""
    v = _clean(values)
    if len(v) < 3 or np.ptp(v) == 0:
        return math.nan, math.nan
    res = st.bootstrap((v,), np.mean, confidence_level=confidence, method=method, n_resamples=n_resamples,
                       **_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def cell_summary(values, confidence: float = 0.95, bootstrap: bool = False) -> dict:
    """mean, sample std (ddof=1), n and a t-interval (+ a BCa bootstrap interval if asked)."""
    v = _clean(values)
    n = len(v)
    out = {"mean": float(v.mean()) if n else math.nan, "std": float(v.std(ddof=1)) if n > 1 else math.nan, "n": n}
    out["ci_low"], out["ci_high"] = t_interval(v, confidence)
    if bootstrap:
        out["boot_low"], out["boot_high"] = bootstrap_ci(v, confidence)
    return out


def welch(a, b) -> float:
    """Two-sided Welch t-test p-value (NaN when either side has fewer than 2 values or no variance)."""
    a, b = _clean(a), _clean(b)
    if len(a) < 2 or len(b) < 2 or (a.std() == 0 and b.std() == 0):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's precision-loss warning on near-equal values
        return float(st.ttest_ind(a, b, equal_var=False).pvalue)


def hedges_g(a, b) -> float:
    """Hedges' g of mean(a) − mean(b): Cohen's d with the pooled sample std, small-sample corrected."""
    a, b = _clean(a), _clean(b)
    n, m = len(a), len(b)
    if n < 2 or m < 2:
        return math.nan
    pooled = math.sqrt(((n - 1) * a.var(ddof=1) + (m - 1) * b.var(ddof=1)) / (n + m - 2))
    if pooled == 0:
        return math.nan
    return float((a.mean() - b.mean()) / pooled * (1 - 3 / (4 * (n + m) - 9)))


def _mean_diff(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def permutation_p(a, b, alternative: str = "two-sided", n_resamples: int | None = None, seed: int = 0) -> float:
    """Independent-samples permutation test on the difference of means (``scipy.stats.permutation_test``,
    ``permutation_type="independent"``). Exact (every relabelling) when C(n+m, n) ≤ 20 000 unless
    ``n_resamples`` is given; NaN when either side has fewer than 2 values (scipy needs 2) or the pooled
    values are all equal."""
    a, b = _clean(a), _clean(b)
    if len(a) < 2 or len(b) < 2 or np.ptp(np.concatenate([a, b])) == 0:
        return math.nan
    if n_resamples is None:
        n_resamples = np.inf if math.comb(len(a) + len(b), len(a)) <= EXACT_PERMUTATION_LIMIT \
            else PERMUTATION_RESAMPLES
    res = st.permutation_test((a, b), _mean_diff, permutation_type="independent", alternative=alternative,
                              n_resamples=n_resamples, vectorized=True, **_rng(seed))
    return float(res.pvalue)


def prob_superiority(a, b) -> float:
    """P(A > B) = U/(n·m) (Mann–Whitney U of ``a``; ties count one half)."""
    a, b = _clean(a), _clean(b)
    if len(a) == 0 or len(b) == 0:
        return math.nan
    u = st.mannwhitneyu(a, b, alternative="two-sided").statistic
    return float(u / (len(a) * len(b)))


def mannwhitney_p(a, b) -> float:
    """Two-sided Mann–Whitney p (exact without ties and for small samples, as scipy chooses)."""
    a, b = _clean(a), _clean(b)
    if len(a) == 0 or len(b) == 0 or np.ptp(np.concatenate([a, b])) == 0:
        return math.nan
    return float(st.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def aso(a, b, confidence: float = 0.95, num_comparisons: int = 1, seed: int = 1234,
        num_bootstrap_iterations: int = 1000) -> float | None:
    """ε_min of Almost Stochastic Order of A over B (``deepsig.aso``; optional extra). ε_min < 0.2 is
    read as "A is almost stochastically larger than B" (Ulmer et al. 2022). None without deepsig."""
    try:
        from deepsig import aso as _aso  # lazy: optional extra
    except ImportError:
        return None
    a, b = _clean(a), _clean(b)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return float(_aso(a, b, confidence_level=confidence, num_comparisons=num_comparisons, seed=seed,
                      num_bootstrap_iterations=num_bootstrap_iterations, show_progress=False, num_jobs=1))


def compare(a, b, higher_is_better: bool = True) -> dict:
    """Every unpaired test of A (the reference, e.g. EMOE) against B on one metric.

    ``p_welch``, ``p_perm`` (two-sided), ``p_mwu``, ``hedges_g`` (A − B) and ``p_a_better`` = P(A better
    than B) from Mann–Whitney U, direction-aware (for MAE "better" is lower)."""
    ps = prob_superiority(a, b)
    return {"p_welch": welch(a, b), "p_perm": permutation_p(a, b), "p_mwu": mannwhitney_p(a, b),
            "hedges_g": hedges_g(a, b),
            "p_a_better": ps if higher_is_better or math.isnan(ps) else 1.0 - ps}


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (statsmodels ``method="holm"``; its default would be
    Holm-Šidák); NaNs pass through and do not count as comparisons."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def min_permutation_p(n: int, m: int) -> float:
    """Smallest two-sided p-value an exact permutation (or exact Mann–Whitney) test can give with n vs m values."""
    return min(1.0, 2.0 / math.comb(n + m, n))


def min_seeds(alpha: float = 0.05, n_comparisons: int = 1) -> int:
    """Fewest seeds per group (equal groups) for which an exact distribution-free two-sided test can
    reach p < alpha / n_comparisons (the smallest Holm threshold over ``n_comparisons`` tests)."""
    return next(k for k in range(2, 200) if min_permutation_p(k, k) < alpha / max(1, n_comparisons))


def min_seeds_note(n: int, m: int | None = None, n_comparisons: int = 1, alpha: float = 0.05) -> str | None:
    """Say when n-vs-m seeds are too few for a distribution-free test to reach p < alpha (after Holm
    over ``n_comparisons`` comparisons, whose smallest threshold is alpha / n_comparisons)."""
    m = n if m is None else m
    if n < 2 or m < 2:
        return f"n={n} vs {m} seeds: no test is possible (needs at least 2 per group)"
    need1 = min_seeds(alpha, 1)
    needk = min_seeds(alpha, n_comparisons)
    floor = min_permutation_p(n, m)
    if floor >= alpha:
        txt = (f"n={n} vs {m} seeds: an exact permutation test cannot reach p < {alpha:g} "
               f"(smallest possible p = {floor:.3f}); use at least {need1} seeds per row")
        if n_comparisons > 1:
            txt += f" ({needk} with Holm over {n_comparisons} comparisons)"
        return txt
    if n_comparisons > 1 and floor >= alpha / n_comparisons:
        return (f"n={n} vs {m} seeds: after Holm over {n_comparisons} comparisons an exact permutation test "
                f"cannot reach p < {alpha:g} (smallest possible p = {floor:.4f} ≥ {alpha / n_comparisons:.4f}); "
                f"use at least {needk} seeds per row")
    return None
