"""Pooling the blocks' noise levels across the table: what it would buy and what it breaks (docs/verdicts.md,
"What limits the lines under 80 %").

bench check's moderation (bench/seed_std.py) fits ``log sigma² = a[block] + b[column]`` and gives every block
(a method's runs in one setting) its own level ``a``, estimated from that block's cells only: with 3 seeds and
correlated metrics a few df. This study replaces it with a random effect: the levels drawn towards their mean
by the share their spread leaves (the spread at its 95 % upper confidence bound, less the levels' sampling
variance, as in a DerSimonian-Laird estimate), with the error variance of the pooled level in the fitted
value's df. It runs the calibration's batched statistics with and without it, on common random numbers (8,000
tables per faithful line, 3,000 per other, std 3 points for faithful lines and 2 for regressions).

    OMP_NUM_THREADS=1 python scripts/block_pooling.py      # about 30 seconds
    OMP_NUM_THREADS=1 python scripts/block_pooling.py --robust 1.5   # a block whose level departs from the
        # others' mean by more than 1.5 of its standard errors keeps its own (leave-one-out)
"""

from __future__ import annotations

import argparse
import contextlib

import numpy as np
from scipy import stats

from bench import calibrate as C
from bench import seed_std

UPPER = 0.95  # the levels' spread at this upper confidence bound
ROBUST = {"z": 0.0}  # > 0: a level further than this many standard errors from the others' mean is not pooled


def pool_levels(level: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tables, blocks) log levels and their sampling variances -> pooled levels and their error variances."""
    b = level.shape[1]
    mean = level.mean(axis=1, keepdims=True)
    spread = level.var(axis=1, ddof=1, keepdims=True) * (b - 1) / stats.chi2.ppf(1 - UPPER, b - 1)
    tau2 = np.maximum(spread - v.mean(axis=1, keepdims=True), 0.0)
    w = tau2 / (tau2 + v)
    if ROBUST["z"] > 0:
        others = (level.sum(axis=1, keepdims=True) - level) / (b - 1)
        z = (level - others) / np.sqrt(v + tau2 + v.mean(axis=1, keepdims=True) / (b - 1))
        w = np.where(np.abs(z) > ROBUST["z"], 1.0, w)
    return mean + w * (level - mean), w * v + (1 - w) ** 2 * v.mean(axis=1, keepdims=True) / b


def pooled_moderation(s2, d, column, block, indep):
    """bench.seed_std._moderate_complete with the block levels pooled (same d0; prior and its df changed)."""
    mod, df, d0 = _ORIGINAL(s2, d, column, block, indep)
    blocks = np.unique(block)
    if len(blocks) < 3:
        return mod, df, d0
    onehot = (block[None, :] == blocks[:, None]).astype(float)  # (blocks, cells)
    x = seed_std._design(block, column)  # the blocks' indicators first, then the columns'
    eta = seed_std._fit_log_variance(s2, d, block, column)
    # the blocks' levels: eta is additive, so its block coefficients (up to a shared constant) by least squares
    level = (eta @ np.linalg.pinv(x).T)[:, : len(blocks)]
    v = (2 / (d @ onehot.T))[None, :] / indep[:, None]
    pooled, v_pooled = pool_levels(level, v)
    var_eta = seed_std.fitted_log_variance_var(x, d)[None, :] / indep[:, None]
    var_eta = np.maximum(var_eta - v @ onehot, 0.0) + v_pooled @ onehot
    mod, df = seed_std.shrink(s2, d, np.exp(eta + (pooled - level) @ onehot), 2 / var_eta, d0)
    return mod, df, d0


_ORIGINAL = seed_std._moderate_complete


@contextlib.contextmanager
def pooling(on: bool):
    seed_std._moderate_complete = pooled_moderation if on else _ORIGINAL
    try:
        yield
    finally:
        seed_std._moderate_complete = _ORIGINAL


def lines():
    """(label, table, scenario shift, metrics' correlation, row std multiples or spec, regressed row's factor)"""
    for corr, cl in ((None, ""), (C.CORRELATED, ", correlated metrics")):
        yield f"faithful{cl}", 1, "null", corr, None, None
        yield f"faithful, the last row 3× noisier{cl}", 1, "null", corr, 3.0, None
        yield f"one row 3σ worse{cl}", 1, C.ROW3, corr, None, None
        yield f"one row 3× quieter and 3σ (its own) worse{cl}", 1, C.ROW3, corr, 1 / 3, 1 / 3
    yield "faithful, correlated metrics", 4, "null", C.CORRELATED, None, None
    yield "one row 3σ worse", 4, C.ROW3, None, None, None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--robust", type=float, default=0.0, help="leave-one-out z beyond which a level is not pooled")
    ROBUST["z"] = ap.parse_args(argv).robust
    print("| table | line | seeds | own levels (bench check) | levels pooled |")
    print("|---|---|---|---|---|")
    for label, number, scenario, corr, last, factor in lines():
        shape = C.table_shape(number)
        is_last = np.array([r == shape.rows[-1] for r in shape.rows])
        row_sd = None if last is None else np.where(is_last, last, 1.0)
        faithful = scenario == "null"
        sd, tables = (3.0, 8000) if faithful else (2.0, 3000)
        shift = C.shift(shape, scenario, sd)
        if factor is not None:
            shift = shift * np.where(is_last, factor, 1.0)[:, None]
        for n in (3, 5):
            rates = []
            for on in (False, True):
                with pooling(on):
                    rates.append(C.simulate(shape, tables, n, sd, shift_sd=shift, corr=corr, row_sd=row_sd,
                                            rng=np.random.default_rng(31))["fail"])
            print(f"| Table {number} | {label} | {n} | " + " | ".join(f"{100 * r:.1f} %" for r in rates) + " |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
