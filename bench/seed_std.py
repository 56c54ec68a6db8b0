"""The seed std of a cell, borrowed from the rest of its table (empirical Bayes; docs/verdicts.md).

With 3 seeds a cell's own std has 2 degrees of freedom, and Student t(2) tails leave the test little
power. The other cells of the table measure related seed noise: each block (a row in one setting: one
set of runs) has its own noise level, and each column (setting and metric) its own scale. So the
variances follow a two-way model ``log sigma²[block, column] = a[block] + b[column]`` (a method noisier
than another is noisier in every metric), fitted by maximum likelihood to the sample variances
(``s² ~ sigma²·chi²(d)/d``), plus a cell-specific spread that the model does not explain. The moderated
variance of Smyth (2004, limma) weighs the fitted value against the cell's own:

    s̃² = (d0·s0² + d·s²) / (d0 + d),   df = max(d, min(d + d0, f))

``s²`` the cell's own variance (``d = n − 1`` df); ``s0²`` the fitted ``sigma²`` (``f`` its effective df,
``2 / var(log s0²)``, times the blocks' share of independent metrics); ``d0`` the prior df, from the spread of
the log variances around the model beyond what chi-square noise explains (``trigamma(d0/2) = excess``, the
spread taken two standard errors above its estimate). A table whose variances fit the model gives d0 = inf
(the fitted variance, df f); cells that differ a lot give d0 → 0 (their own variance, df d).
"""

from __future__ import annotations

import numpy as np
from scipy import special

# the spread of the log variances is taken this many standard errors above its moment estimate (an upper
# bound: too small a spread would over-shrink a cell whose std differs from the model's; measured in
# docs/verdicts.md, "cells' std ×1-×3 at random", where the plain estimate let 5.6 % of faithful tables fail)
SPREAD_UPPER_SE = 2.0


def trigamma_inverse(x: np.ndarray) -> np.ndarray:
    """y with trigamma(y) = x (x > 0), by Newton's method from y = 0.5 + 1/x (Smyth 2004)."""
    x = np.asarray(x, dtype=float)
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = special.polygamma(1, y)
        step = tri * (1 - tri / x) / special.polygamma(2, y)
        y = y + step
        if np.all(np.abs(step / y) < 1e-10):
            break
    return y


def _design(block: np.ndarray, column: np.ndarray) -> np.ndarray:
    """Indicator columns of the blocks and the columns (rank one short: the fits use pseudo-inverses)."""
    blocks, cols = np.unique(block), np.unique(column)
    return np.concatenate([block[:, None] == blocks[None, :], column[:, None] == cols[None, :]], axis=1).astype(float)


def _fit_log_variance(s2: np.ndarray, d: np.ndarray, block: np.ndarray, column: np.ndarray,
                      iterations: int = 200) -> np.ndarray:
    """Maximum-likelihood log sigma² under the additive model, for (tables, cells) variances with df ``d``
    (each s² is gamma with mean sigma², shape d/2): coordinate ascent, which sets each block's (then each
    column's) scale to the df-weighted mean of its variances over the other factor's scale."""
    onehot_b = (block[None, :] == np.unique(block)[:, None]).astype(float)  # (blocks, cells)
    onehot_c = (column[None, :] == np.unique(column)[:, None]).astype(float)
    scale_b = np.ones((len(s2), len(onehot_b)))
    scale_c = ((s2 * d) @ onehot_c.T) / (d @ onehot_c.T)
    for _ in range(iterations):
        new_b = ((s2 * d / (scale_c @ onehot_c)) @ onehot_b.T) / (d @ onehot_b.T)
        scale_c = ((s2 * d / (new_b @ onehot_b)) @ onehot_c.T) / (d @ onehot_c.T)
        done = np.max(np.abs(np.log(new_b / scale_b))) < 1e-9
        scale_b = new_b
        if done:
            break
    return np.log(scale_b @ onehot_b) + np.log(scale_c @ onehot_c)


def fitted(s2, d, column, block) -> np.ndarray:
    """The block × column model's variances (the moderation's prior ``s0²``) of one table's cells (NaN where
    a cell has no usable variance)."""
    s2 = np.asarray(s2, dtype=float)
    d = np.asarray(d, dtype=float) * np.ones(len(s2))
    ok = np.isfinite(s2) & (s2 > 0) & (d > 0)
    out = np.full(len(s2), np.nan)
    if ok.any():
        out[ok] = np.exp(_fit_log_variance(s2[None, ok], d[ok], np.asarray(block)[ok], np.asarray(column)[ok])[0])
    return out


def moderate(s2, d, column, block, independence=1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moderated variances of many tables at once.

    ``s2``: (tables, cells) own sample variances; ``d``: (cells,) their df; ``column``, ``block``: (cells,)
    labels; ``independence`` (scalar or per table, in (0, 1]): the effective number of independent metrics of
    a block over its number of metrics (:func:`independence`); it scales the df borrowed. Cells with NaN or
    zero variance or d = 0 are left out (NaN out; identical seeds say nothing about the spread).
    Returns (s̃², df, d0 per table)."""
    s2 = np.atleast_2d(np.asarray(s2, dtype=float))
    d = np.asarray(d, dtype=float) * np.ones(s2.shape[1])
    column, block = np.asarray(column), np.asarray(block)
    mod, df = np.full(s2.shape, np.nan), np.full(s2.shape, np.nan)
    d0 = np.zeros(len(s2))
    indep = np.broadcast_to(np.asarray(independence, dtype=float), (len(s2),))
    ok = np.isfinite(s2) & (s2 > 0) & (d > 0)
    for pattern in np.unique(ok, axis=0):
        rows = (ok == pattern).all(axis=1)
        if pattern.any():
            mod[np.ix_(rows, pattern)], df[np.ix_(rows, pattern)], d0[rows] = _moderate_complete(
                s2[np.ix_(rows, pattern)], d[pattern], column[pattern], block[pattern], indep[rows])
    return mod, df, d0


def _moderate_complete(s2: np.ndarray, d: np.ndarray, column: np.ndarray, block: np.ndarray, indep: np.ndarray):
    x = _design(block, column)
    rank = np.linalg.matrix_rank(x)
    cells = len(d)
    # prior df from the spread of the unbiased log variances around their least-squares fit
    e = np.log(s2) - special.digamma(d / 2) + np.log(d / 2)
    hat = x @ np.linalg.pinv(x)
    resid = e - e @ hat.T
    if cells > rank:
        total = (resid ** 2).sum(axis=1) / (cells - rank)
        excess = total * (1 + SPREAD_UPPER_SE * np.sqrt(2 / (cells - rank))) - special.polygamma(1, d / 2).mean()
        d0 = np.full(len(s2), np.inf)
        spread = excess > 0
        if spread.any():
            d0[spread] = 2 * trigamma_inverse(excess[spread])
        d0 = d0 * indep
    else:  # as many parameters as cells: nothing to borrow
        d0 = np.zeros(len(s2))
    eta = _fit_log_variance(s2, d, block, column)
    f = 2 / fitted_log_variance_var(x, d) * indep[:, None]
    mod, df = shrink(s2, d, np.exp(eta), f, d0)
    return mod, df, d0


def fitted_log_variance_var(x: np.ndarray, d: np.ndarray) -> np.ndarray:
    """var(log s0²) of each cell's fitted variance, ``x' (X' W X)^-1 x`` with W = d/2 (``x``: the design of
    :func:`_design`); the fitted value's effective df is 2 / var, as for chi²(f)/f."""
    return np.einsum("ij,jk,ik->i", x, np.linalg.pinv((x.T * (d / 2)) @ x), x)


def shrink(s2: np.ndarray, d: np.ndarray, prior: np.ndarray, f: np.ndarray, d0: np.ndarray):
    """Smyth's moderated variance and its df from the cells' own (``s2``, ``d``), the prior (``prior`` with
    ``f`` effective df) and the prior df ``d0`` per table: (s̃², df)."""
    d0c = d0[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(np.isinf(d0c), 1.0, d0c / (d0c + d))  # the model's share
    return weight * prior + (1 - weight) * s2, np.maximum(d, np.minimum(d + d0c, f))


def independence(corr: np.ndarray, df) -> np.ndarray:
    """m_eff / m of the metrics of one run from their correlation matrix (..., m, m), estimated with ``df``
    degrees of freedom: the sample variances of two metrics with correlation r have correlation r², so
    m_eff = m² / sum(r²), with each r² less its noise, (1 − r²)/(df − 2) (Olkin and Pratt's first-order
    correction: with few seeds, independent metrics would otherwise look correlated)."""
    corr = np.asarray(corr, dtype=float)
    m = corr.shape[-1]
    r2 = corr ** 2
    r2 = np.clip(r2 - (1 - r2) / np.maximum(np.asarray(df, dtype=float) - 2, 1)[..., None, None], 0, 1)
    idx = np.arange(m)
    r2[..., idx, idx] = 1.0
    return m / r2.sum(axis=(-2, -1))
