"""Statistics over seeds: per-cell summaries and EMOE-vs-row tests with Holm correction.

Runs of different configurations do not share an init stream, so samples are treated as
unpaired (Welch's t-test). With very few seeds no test can reach p < 0.05; :func:`min_seeds_note`
says how many are needed.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as st


def cell_summary(values, confidence: float = 0.95) -> dict:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    n = len(v)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0, "ci_low": math.nan, "ci_high": math.nan}
    mean = float(v.mean())
    std = float(v.std(ddof=1)) if n > 1 else math.nan
    if n > 1:
        half = float(st.t.ppf(0.5 + confidence / 2, df=n - 1) * std / math.sqrt(n))
    else:
        half = math.nan
    return {"mean": mean, "std": std, "n": n, "ci_low": mean - half, "ci_high": mean + half}


def welch(a, b) -> float:
    """Two-sided Welch t-test p-value (NaN when either side has fewer than 2 values or no variance)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2 or (a.std() == 0 and b.std() == 0):
        return math.nan
    return float(st.ttest_ind(a, b, equal_var=False).pvalue)


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (statsmodels ``method="holm"``); NaNs pass through."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def min_permutation_p(n: int, m: int) -> float:
    """Smallest two-sided p-value an exact permutation test can give with n vs m values."""
    return min(1.0, 2.0 / math.comb(n + m, n))


def min_seeds_note(n: int, m: int | None = None) -> str | None:
    """Say when n-vs-m seeds are too few for a distribution-free test to reach p < 0.05."""
    m = n if m is None else m
    if n < 2 or m < 2:
        return f"n={n} vs {m} seeds: no test is possible (needs at least 2 per group)"
    if min_permutation_p(n, m) > 0.05:
        need = next(k for k in range(2, 50) if min_permutation_p(k, k) <= 0.05)
        return (f"n={n} vs {m} seeds: an exact permutation test cannot reach p < 0.05 "
                f"(smallest possible p = {min_permutation_p(n, m):.3f}); use at least {need} seeds per row")
    return None
