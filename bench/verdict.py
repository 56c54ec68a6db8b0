"""Statistics of ``bench check --against published`` (docs/verdicts.md): is our method worse than the paper's?

The paper's number is one draw from the same seed distribution as ours (``single``), or the best of K
draws (``peak:K``). Per cell, ``t = g / (s·sqrt(1 + 1/n))`` where ``g`` is our mean minus the paper's
number oriented so that negative means worse (MAE: lower is better) and ``s`` our sample std over n
seeds; under H0 (ours as good as the paper's) ``t`` follows Student's t with n−1 df (single) or the
distribution of the mean of n normals minus the maximum of K, over a chi scale (peak:K, computed
here by quadrature). The one-sided p-value is ``P(T ≤ t)``.

Two kinds of combined test sit beside the cells: per row (its settings' cells) and over the whole
table, each a Stouffer combination of the cells' z-scores, with the metrics of one run weighted by
their correlation over seeds (pooled over the table; its off-diagonal total clipped at 0) so that correlated
metrics are not counted as independent evidence. Holm's weighted step-down controls the family (cells, rows,
table: a third of the weight each). Floors are minimum tolerances:
a cell never fails when its gap is within its floor, a row or table never fails when its mean gap is
within a tenth of a floor (``combined_floor``: ``bench check --combined-floor``). Under peak:K with the moderated std
the row and table statistics are standardised by a simulated null (bench/combined_null.py).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as st

from bench import combined_null
from bench.errors import UserError
from bench.seed_std import independence, moderate
from bench.verdict_null import grid_df, null_cdf, peak_cdf_exact, to_z  # noqa: F401 (re-exported: the check's API)

ALPHA = 0.05
# floors: the minimum gaps a verdict counts, as fractions (1.0 point for accuracies/F1; 0.02 for MAE/Corr)
DEFAULT_FLOORS = {"acc7": 0.01, "acc2": 0.01, "f1": 0.01, "acc": 0.01, "precision": 0.01, "recall": 0.01,
                  "mae": 0.02, "corr": 0.02}
# a row or the table fails only when its mean gap is beyond this many floors (--combined-floor): a tenth of a
# floor, twice the rounding of the paper's numbers (0.05 point), keeps a systematic shift of that size from failing
# (identical seeds make any gap significant), and still lets the combined tests catch a 1σ shift of every cell at a
# seed std of half a floor, which a whole floor would hide by construction (docs/verdicts.md)
COMBINED_FLOOR = 0.1
LEVELS = ("cell", "row", "table")


def parse_published_as(text: str) -> int:
    """``single`` -> 1; ``peak:K`` -> K (the paper's number is the best of K runs)."""

    text = str(text).strip()
    if text == "single":
        return 1
    kind, _, k = text.partition(":")
    if kind == "peak" and k.isdigit() and 1 <= int(k) <= 1000:
        return int(k)
    raise UserError(f"--published-as {text!r}: expected 'single' or 'peak:K' with K a whole number 1-1000 "
                    "(the paper's number is the best of K runs)")


# ------------------------------------------------------------------------------------------------- cells
def cell_statistic(values, published: float, higher_is_better: bool, assume_std: float | None = None) -> dict:
    """Mean, std, n, delta (ours − paper), the oriented gap and the standardised statistic t of one cell."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    mean = float(v.mean()) if n else math.nan
    sample_std = float(v.std(ddof=1)) if n > 1 else math.nan
    std = float(assume_std) if assume_std is not None else sample_std
    delta = mean - published
    gap = delta if higher_is_better else -delta
    scale = std * math.sqrt(1 + 1 / n) if n else math.nan
    if not math.isfinite(scale):
        t = math.nan
    elif scale == 0:  # identical seeds: any gap is certain
        t = math.copysign(math.inf, gap) if gap else 0.0
    else:
        t = gap / scale
    return {"mean": mean, "std": sample_std, "n": n, "delta": delta, "gap": gap, "t": t,
            "df": math.inf if assume_std is not None else n - 1}


def holm(p, alpha: float = ALPHA) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels' ``"holm"``, not its Holm–Šidák default); NaNs stay NaN."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=alpha, method="holm")[1]
    return out


def weighted_holm(p, weights) -> np.ndarray:
    """Holm's weighted step-down (Holm 1979): adjusted p-values along the last axis.

    Hypotheses are taken in order of p/w; the j-th is rejected at level alpha when every earlier one
    was and p_j / w_j ≤ alpha / (sum of the weights not yet rejected). Equal weights give plain Holm.
    The family-wise error stays ≤ alpha under any dependence between the tests."""
    p = np.asarray(p, dtype=float)
    w = np.broadcast_to(np.asarray(weights, dtype=float), p.shape)
    q = p / w
    order = np.argsort(q, axis=-1, kind="stable")
    q_sorted = np.take_along_axis(q, order, axis=-1)
    w_sorted = np.take_along_axis(w, order, axis=-1)
    remaining = np.cumsum(w_sorted[..., ::-1], axis=-1)[..., ::-1]  # weight not yet rejected, this one included
    adj_sorted = np.minimum(np.maximum.accumulate(q_sorted * remaining, axis=-1), 1.0)
    out = np.empty_like(adj_sorted)
    np.put_along_axis(out, order, adj_sorted, axis=-1)
    return out


def level_weights(levels) -> np.ndarray:
    """Weights of the family: each level present (cells, rows, table) gets an equal share, split equally
    among its tests, so the dense and row-wise alternatives are not drowned by many cells (docs/verdicts.md)."""
    levels = np.asarray(levels)
    present = [lv for lv in LEVELS if (levels == lv).any()]
    w = np.zeros(len(levels))
    for lv in present:
        w[levels == lv] = 1.0 / (len(present) * (levels == lv).sum())
    return w


# --------------------------------------------------------------------------------- correlated metrics
def pooled_correlation(blocks: list[pd.DataFrame], clip: bool = True) -> pd.DataFrame:
    """Correlation of the oriented metrics of one run, pooled over the table's (row, setting) blocks.

    Each block is a seeds × metrics frame of oriented values (higher = better). Residuals from the
    block means are scaled by the block's std per metric and pooled over blocks (pairwise where a
    metric is absent). Negative correlations are set to 0 (``clip``; without it they are kept, as an
    estimate of the truth rather than a conservative bound) and pairs without data to 1 (both
    conservative: they make a block count as less independent evidence)."""
    names = sorted({c for b in blocks for c in b.columns})
    num = pd.DataFrame(0.0, index=names, columns=names)
    den = pd.DataFrame(0.0, index=names, columns=names)
    for b in blocks:
        b = b.dropna()
        if len(b) < 2:
            continue
        sd = b.std(ddof=1)
        e = (b - b.mean()) / sd.where(sd > 0)
        e = e.fillna(0.0)
        cross = e.T @ e
        cols = list(b.columns)
        num.loc[cols, cols] += cross.values
        den.loc[cols, cols] += len(b) - 1
    r = (num / den.where(den > 0)).clip(lower=0.0 if clip else -1.0, upper=1.0).fillna(1.0)
    for c in names:
        r.loc[c, c] = 1.0
    return r


def block_corr(metrics, corr: pd.DataFrame) -> np.ndarray:
    """R of one run's metrics from the pooled correlation (pairs without data count as 1)."""
    return corr.reindex(index=list(metrics), columns=list(metrics)).fillna(1.0).to_numpy()


def block_scale(metrics, corr: pd.DataFrame) -> float:
    """sqrt(1ᵀ R 1) of one run's metrics: the std of their z-sum under H0 (at least 1)."""
    return math.sqrt(max(block_corr(metrics, corr).sum(), 1.0))


def block_scale_total(metrics, corr_raw: pd.DataFrame, df: float) -> float:
    """sqrt(1ᵀR1) of one run's m metrics, the single-run tests' block scale (docs/verdicts.md): from their
    unclipped pooled correlation (``df`` residual degrees of freedom), ``m + max(0, T)·(1 + 2/df)`` with T the
    off-diagonal total, at most m².

    The total is clipped at 0, not each pair: with 4 blocks × 2 residual df a pair of independent metrics
    clipped at 0 averages about 0.14, which inflated 1ᵀR1 by some 40 % and cost Table 4 with 3 seeds 7-8 points
    of power. A positive total is taken 2/df high (the relative variance of a variance estimate with df degrees
    of freedom): unadjusted, its noise let 5.0 % of faithful Table 4 reproductions with correlated metrics and
    3 seeds fail; adjusted, 4.1 % (scripts/correlation_variants.py)."""
    r = block_corr(metrics, corr_raw)
    return float(total_scale(r.sum() - np.trace(r), len(r), df))


def total_scale(off_total, m: int, df: float):
    """:func:`block_scale_total` from the off-diagonal total(s) of m metrics' correlations (arrays allowed: the
    calibration's batched path)."""
    total = np.maximum(off_total, 0.0) * (1 + 2 / max(df, 1.0))
    return np.sqrt(np.minimum(m + total, m * m))


def block_z(z: pd.Series, corr: pd.DataFrame) -> float:
    """Stouffer z of one run's metrics with their correlation: sum(z) / sqrt(1ᵀ R 1)."""
    z = z.dropna()
    if z.empty:
        return math.nan
    return float(z.sum() / block_scale(z.index, corr))


# ---------------------------------------------------------------------------------------------- a table
SEED_STD_MODELS = ("moderated", "own")


def combined_null_simulated(k: int, seed_std_model: str) -> bool:
    """Whether the row and table tests are standardised by their simulated null (bench/combined_null.py).

    Under peak:K every faithful gap sits below zero, so an error in a scale that moderated cells share (their
    block's or column's) moves all their z-scores the same way and plain Stouffer loses its level (measured:
    5-6 % of faithful Table 1 reproductions failed). With single, gaps are centred and the shared error only
    scales the z-scores (their covariance stays 0); with own stds nothing is shared."""
    return k > 1 and seed_std_model == "moderated"


def compare(cells: pd.DataFrame, k: int = 1, alpha: float = ALPHA, assume_std: dict | None = None,
            seed_std_model: str = "moderated", combined_floor: float = COMBINED_FLOOR) -> pd.DataFrame:
    """Verdicts of a table against the paper.

    ``cells``: one line per (row, setting, metric) with ``published``, ``higher`` (bool), ``floor``
    (> 0) and ``values`` (dict seed -> our value; empty = missing); an optional ``excluded`` column gives
    a reason (e.g. "not comparable (frozen text)") for cells kept out of the verdict. Returns the cells
    (level "cell") followed by the combined tests (levels "row" and "table") with p, Holm-adjusted p and
    verdict. ``seed_std_model``: "moderated" (each cell's seed variance moderated over the table,
    bench/seed_std.py) or "own" (each cell's sample std, n − 1 df). ``combined_floor``: a row or the table
    fails only when its mean gap is beyond this many floors (default 0.1; 0: any significant shift downwards).
    Cell verdicts: "reproduced" (gap within the floor), "worse" (beyond the floor and significant after
    Holm), "below, n.s." (beyond the floor, not significant), "better" / "above, n.s." likewise upwards,
    "missing", "no-reference", or the exclusion reason.
    """
    assume_std = assume_std or {}
    excluded = cells["excluded"] if "excluded" in cells else pd.Series([""] * len(cells), index=cells.index)
    recs = []
    for c, why in zip(cells.itertuples(index=False), excluded.fillna("")):
        base = {"level": "cell", "row": c.row, "setting": c.setting, "metric": c.metric, "published": c.published,
                "floor": c.floor}
        vals = list(c.values.values())
        no_ref = c.published is None or (isinstance(c.published, float) and math.isnan(c.published))
        if why or not vals or no_ref:
            s = cell_statistic(vals, float(c.published), bool(c.higher)) if vals and not no_ref else {}
            recs.append({**base, **{key: s.get(key, np.nan) for key in ("mean", "std", "n", "delta", "gap")},
                         "n": len(vals), "t": np.nan, "p": np.nan,
                         "verdict": why or ("missing" if not vals else "no-reference")})
            continue
        s = cell_statistic(vals, float(c.published), bool(c.higher), assume_std.get(c.metric))
        recs.append({**base, **{key: s[key] for key in ("mean", "std", "n", "delta", "gap", "t", "df")},
                     "higher": bool(c.higher), "values": c.values, "known": c.metric in assume_std})
    out = pd.DataFrame(recs)
    for col in ("df", "higher", "values", "known"):
        if col not in out:
            out[col] = np.nan
    out["df"] = out["df"].astype(float)
    tested = out["verdict"].isna() if "verdict" in out else pd.Series(True, index=out.index)
    known = out["known"].eq(True)  # NaN (untested cells) is not known
    out["std_used"] = out["std"]  # the std the test uses: own, known (--assume-std) or moderated
    out.loc[known, "std_used"] = [assume_std[m] for m in out.loc[known, "metric"]]
    blocks = _oriented_blocks(out[tested])
    corr_raw = pooled_correlation(blocks, clip=False)
    corr = corr_raw.clip(lower=0.0)  # = pooled_correlation(blocks): each pair clipped at 0
    corr_df = sum(len(b.dropna()) - 1 for b in blocks if len(b.dropna()) > 1)  # pooled_correlation's df
    indep = 1.0
    if seed_std_model == "moderated":
        indep = _moderate_cells(out, tested & ~known, corr)
    n = out["n"].to_numpy(dtype=float)
    scale = out["std_used"].to_numpy(dtype=float) * np.sqrt(1 + 1 / np.where(n > 0, n, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(scale > 0, out["gap"] / scale, np.where(out["gap"] == 0, 0.0, np.sign(out["gap"]) * np.inf))
    out["t"] = np.where(tested, t, np.nan)
    out["p"] = np.nan
    for size, g in out[tested].groupby("n"):
        out.loc[g.index, "p"] = null_cdf(g["t"].to_numpy(), int(size), k, g["df"].to_numpy(dtype=float))
    out["gap_floors"] = out["gap"] / out["floor"]

    combined = _combined(out[tested], corr, (corr_raw, corr_df),
                         (k, indep) if combined_null_simulated(k, seed_std_model) else None)
    family = pd.concat([out, combined], ignore_index=True)
    tested_all = family["p"].notna().to_numpy()
    family["p_adj"] = np.nan
    if tested_all.any():
        levels = family["level"].to_numpy()[tested_all]
        family.loc[tested_all, "p_adj"] = weighted_holm(family["p"].to_numpy()[tested_all], level_weights(levels))
    p_better = holm(np.where(family["level"] == "cell", 1 - family["p"], np.nan), alpha)
    cell = family["level"] == "cell"
    testable = family["p"].notna()
    floors = np.where(cell, 1.0, combined_floor)
    below, above = testable & (family["gap_floors"] < -floors), testable & (family["gap_floors"] > 1)
    family.loc[cell & testable, "verdict"] = "reproduced"  # within the floor
    family.loc[cell & below, "verdict"] = "below, n.s."
    family.loc[cell & above, "verdict"] = "above, n.s."
    family.loc[cell & above & (p_better <= alpha), "verdict"] = "better"
    family.loc[~cell, "verdict"] = "ok"
    family.loc[below & (family["p_adj"] <= alpha), "verdict"] = "worse"
    return family.drop(columns=["higher", "values", "known"])


def _oriented_blocks(tested: pd.DataFrame) -> list[pd.DataFrame]:
    """Seeds × metrics frames of oriented values (higher = better), one per (row, setting) block."""
    blocks = []
    for _, g in tested.groupby(["row", "setting"], sort=False):
        blocks.append(pd.DataFrame({m: pd.Series(v, dtype=float) * (1.0 if h else -1.0)
                                    for m, v, h in zip(g["metric"], g["values"], g["higher"])}))
    return blocks


def _moderate_cells(out: pd.DataFrame, sel: pd.Series, corr: pd.DataFrame) -> float:
    """``std_used`` and ``df`` of the selected cells from their variances moderated over the table; returns the
    blocks' share of independent metrics the moderation used."""

    g = out[sel]
    if g.empty:
        return 1.0
    column = pd.factorize(g["setting"].astype(str) + "\x1f" + g["metric"].astype(str))[0]
    block = pd.factorize(g["row"].astype(str) + "\x1f" + g["setting"].astype(str))[0]
    corr_df = sum(len(b.dropna()) - 1 for b in _oriented_blocks(g) if len(b.dropna()) > 1)  # pooled_correlation's
    indep = float(independence(corr.to_numpy(), corr_df)) if len(corr) and corr_df > 0 else 1.0
    var, df, _ = moderate((g["std"].to_numpy(dtype=float) ** 2)[None, :], g["n"].to_numpy(dtype=float) - 1,
                          column, block, indep)
    ok = np.isfinite(var[0])
    out.loc[g.index[ok], "std_used"] = np.sqrt(var[0][ok])
    out.loc[g.index[ok], "df"] = df[0][ok]
    return indep


def _combined(tested: pd.DataFrame, corr: pd.DataFrame, raw: tuple[pd.DataFrame, float],
              simulated_null: tuple[int, float] | None) -> pd.DataFrame:
    """Row and table tests: each (row, setting) block's metrics combined with their pooled correlation
    (``raw`` = (unclipped correlation, its df): :func:`block_scale_total`), then independent blocks
    combined by Stouffer. ``simulated_null`` = (K, share of independent metrics): standardise them by their
    null moments instead (bench/combined_null.py), with each pair's correlation clipped at 0 (``corr``), as
    that null was validated. ``gap_floors`` is the mean over the cells."""
    if tested.empty:
        return pd.DataFrame(columns=["level", "row", "setting", "metric", "p", "gap_floors", "n"])
    keys = list(dict.fromkeys(zip(tested["row"], tested["setting"])))
    sums, scales, explained = np.empty(len(keys)), np.empty(len(keys)), np.ones(len(keys))
    for i, (_, g) in enumerate(tested.groupby(["row", "setting"], sort=False)):
        z = pd.Series(to_z(g["p"].to_numpy()), index=g["metric"].to_numpy()).dropna()
        scale = block_scale(z.index, corr) if simulated_null is not None else block_scale_total(z.index, *raw)
        sums[i], scales[i] = (z.sum(), scale) if len(z) else (0.0, math.inf)
        if simulated_null is not None and len(z):
            explained[i] = combined_null.metric_variance(block_corr(z.index, corr), int(g["n"].iloc[0]),
                                                         int(simulated_null[0]))
    rows = list(dict.fromkeys(tested["row"]))
    groups = [np.array([r == row and math.isfinite(c) for (r, _), c in zip(keys, scales)], dtype=float)
              for row in rows]
    if len(rows) > 1:
        groups.append(np.isfinite(scales).astype(float))
    member = np.array(groups)
    if simulated_null is None:
        p = st.norm.cdf((member @ (sums / scales)) / np.sqrt(member.sum(axis=1)))
    else:
        k, indep = simulated_null
        block_of = dict(zip(keys, range(len(keys))))
        structure = combined_null.Structure.of(
            [block_of[key] for key in zip(tested["row"], tested["setting"])],
            (tested["setting"].astype(str) + "\x1f" + tested["metric"].astype(str)).tolist(),
            tested["n"].astype(int).tolist(), tested["known"].eq(True).tolist())
        model = combined_null.null_model(structure, int(k), combined_null.quantize(indep))
        p = combined_null.group_p(sums[None, :], scales[None, :], explained[None, :], member, model)[0]
    recs = []
    for row, pr in zip(rows, p):
        g = tested[tested["row"] == row]
        recs.append({"level": "row", "row": row, "setting": "all", "metric": "all", "p": float(pr),
                     "gap_floors": float(g["gap_floors"].mean()), "n": int(len(g))})
    if len(rows) > 1:
        recs.append({"level": "table", "row": "all", "setting": "all", "metric": "all", "p": float(p[-1]),
                     "gap_floors": float(tested["gap_floors"].mean()), "n": int(len(tested))})
    return pd.DataFrame(recs)


def exit_code(family: pd.DataFrame) -> int:
    """1 when any cell is worse or missing, or any row/table test is worse; else 0."""
    return 1 if family["verdict"].isin(["worse", "missing"]).any() else 0
