"""The pivotal null distribution of a cell's statistic (docs/verdicts.md): Student t for a single published
run, quadrature for the best of K; and the p -> z transform the combined tests use. Its own module so that
bench/verdict.py and bench/combined_null.py both build on it."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special
from scipy import stats as st

# ---------------------------------------------------------------------------------------- null distribution
_W_STEP = 0.004


@lru_cache(maxsize=64)
def _gap_density(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Density of W = Z/sqrt(n) − M_K on a grid (Z standard normal, M_K the max of K standard normals):
    the gap in units of the seed std when both sides have their true mean equal."""
    from scipy.signal import fftconvolve

    half = int(round(8.0 / _W_STEP))
    x = np.arange(-half, half + 1) * _W_STEP  # symmetric grid: the convolution stays on the same lattice
    f_neg_max = k * st.norm.pdf(-x) * st.norm.cdf(-x) ** (k - 1)  # density of −M_K at x
    f_mean = math.sqrt(n) * st.norm.pdf(math.sqrt(n) * x)  # density of Z / sqrt(n)
    f_w = np.clip(fftconvolve(f_mean, f_neg_max) * _W_STEP, 0.0, None)
    w = np.arange(-2 * half, 2 * half + 1) * _W_STEP
    return w, f_w / (f_w.sum() * _W_STEP)


def peak_cdf_exact(t, n: int, k: int, df: float) -> np.ndarray:
    """P(T ≤ t) for T = W / (S·sqrt(1 + 1/n)), S = sqrt(chi2_df / df) (df = inf: S = 1), by quadrature."""
    t = np.atleast_1d(np.asarray(t, dtype=float)) * math.sqrt(1 + 1 / n)  # in units of W / S
    w, f_w = _gap_density(n, k)
    if math.isinf(df):
        cdf = np.concatenate([[0.0], np.cumsum((f_w[1:] + f_w[:-1]) / 2) * _W_STEP])  # trapezoid
        return np.clip(np.interp(t, w, cdf, left=0.0, right=1.0), 0.0, 1.0)
    out = np.empty_like(t)
    for i, ti in enumerate(t):
        if ti == 0:
            out[i] = (f_w[w < -_W_STEP / 2].sum() + f_w[np.argmin(np.abs(w))] / 2) * _W_STEP  # P(W ≤ 0), trapezoid
            continue
        side = w < 0 if ti < 0 else w > 0
        # P(S ≤ w/t) for w of the same sign as t: chi2 CDF at df·(w/t)^2
        f_s = special.gammainc(df / 2, df * (w[side] / ti) ** 2 / 2)
        mass = float(f_s @ f_w[side]) * _W_STEP
        out[i] = mass if ti < 0 else 1.0 - mass
    return np.clip(out, 0.0, 1.0)


@lru_cache(maxsize=64)
def _peak_log_cdf_table(n: int, k: int, df: float) -> tuple[np.ndarray, np.ndarray]:
    """log P(T ≤ t) on an asinh-spaced grid of t (|t| up to ~4000), interpolated by :func:`null_cdf`."""
    u = np.linspace(-9.0, 9.0, 1201)
    cdf = peak_cdf_exact(np.sinh(u), n, k, df)
    return u, np.log(np.maximum(cdf, 1e-300))


# df of the peak:K tables: a moderated df (bench/seed_std.py) is rounded down onto this grid (fewer df, heavier
# tails: a larger p for a worse gap, so the rounding is conservative) so that few tables are computed
PEAK_DF_GRID = np.array([*range(1, 31), 35, 40, 50, 60, 80, 100, 150, 200, 300, 500, 1000, math.inf], dtype=float)


def grid_df(df) -> np.ndarray:
    """``df`` rounded down onto :data:`PEAK_DF_GRID` (at least 1)."""
    df = np.asarray(df, dtype=float)
    idx = np.searchsorted(PEAK_DF_GRID, df, side="right") - 1
    return PEAK_DF_GRID[np.clip(idx, 0, len(PEAK_DF_GRID) - 1)]


def null_cdf(t, n: int, k: int = 1, df=None) -> np.ndarray:
    """P(T ≤ t) under H0 (our true mean equals the true mean behind the paper's number).

    ``df`` (scalar or one per t) defaults to n − 1 (std estimated from our seeds); ``math.inf`` when the std
    is known (``--assume-std``); more when the std is moderated over the column (bench/seed_std.py).
    ``k`` = 1: exact Student t / normal; k > 1: interpolated quadrature, df rounded down by :func:`grid_df`."""
    t = np.atleast_1d(np.asarray(t, dtype=float))
    df = np.broadcast_to(np.asarray(float(n - 1) if df is None else df, dtype=float), t.shape)
    if k == 1:
        return st.t.cdf(t, df)
    safe = np.nan_to_num(t, nan=0.0, posinf=1e300, neginf=-1e300)
    out = np.full(t.shape, np.nan)
    g = grid_df(np.where(np.isnan(df), 1.0, df))
    for value in np.unique(g):
        sel = g == value
        u, log_cdf = _peak_log_cdf_table(int(n), int(k), float(value))
        out[sel] = np.exp(np.interp(np.arcsinh(safe[sel]), u, log_cdf))
    return np.where(np.isnan(t) | np.isnan(df), np.nan, out)


def to_z(p) -> np.ndarray:
    """One-sided p -> z (small p = very negative z), clipped so that p = 0 or 1 stays finite."""
    return st.norm.ppf(np.clip(np.asarray(p, dtype=float), 1e-300, 1 - 1e-16))
