"""Calibration of ``bench check --against published``, measured by simulation (docs/verdicts.md).

``python -m bench.calibrate [--tables 2000] [--seed 0] [--out docs/verdicts-calibration.csv]`` (``--table``,
``--n``, ``--std``, ``--scenario``: only those lines, e.g. to rerun the lines near a target with more tables) simulates
tables of the shapes of Tables 1 and 4 (their (row, setting) blocks from bench/report/specs.py, 4 metrics each):
faithful reproductions (our true mean equal to the paper's) and regressions (one row 3σ worse; every cell
1σ worse), with seed std 0.5-3 points, n = 3/5/10 seeds, the paper's number one run or the best of 5,
and reports how often the whole table fails. The simulated tables go through the same statistics as
``bench check`` (a test checks that the batched path below equals :func:`bench.verdict.compare`).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st

from bench import combined_null, seed_std, verdict
from bench.report.planning import plan
from bench.report.specs import TABLES
from bench.verdict import DEFAULT_FLOORS

METRICS = ("acc7", "acc2", "f1", "mae")
FLOORS = np.array([DEFAULT_FLOORS[m] for m in METRICS])
POINT = 0.01  # one point: 0.01 accuracy, 0.01 MAE
# Correlation of one run's oriented metrics (acc7, acc2, f1, −mae) for the "correlated" scenario: Acc-2 and F1
# of the same predictions nearly equal, Acc-7 and MAE related to both.
CORRELATED = np.array([[1.0, 0.5, 0.5, 0.6], [0.5, 1.0, 0.95, 0.5], [0.5, 0.95, 1.0, 0.5], [0.6, 0.5, 0.5, 1.0]])


@dataclass(frozen=True)
class Shape:
    """A table's blocks: one per (row, setting), each with the 4 metrics."""

    name: str
    rows: tuple[str, ...]  # row label of each block
    settings: tuple[str, ...] = ()  # setting of each block (its column, with the metric: bench/seed_std.py)
    metrics: tuple[str, ...] = METRICS  # every block's metrics, oriented so that higher is better
    floor_values: tuple[float, ...] | None = None  # each metric's floor (default: bench check's defaults)

    @property
    def floors(self) -> np.ndarray:
        return np.array(self.floor_values if self.floor_values is not None else
                        [DEFAULT_FLOORS[m] for m in self.metrics], dtype=float)

    def columns(self) -> np.ndarray:
        """Column id of each (block, metric) cell, flattened block-major: same setting and metric."""
        settings = self.settings or ("",) * len(self.rows)
        names = list(dict.fromkeys(settings))
        m = len(self.metrics)
        return np.array([names.index(s) * m + j for s in settings for j in range(m)])

    def blocks(self) -> np.ndarray:
        """Block id of each (block, metric) cell, flattened block-major."""
        return np.repeat(np.arange(len(self.rows)), len(self.metrics))

    @property
    def cells(self) -> int:
        return len(self.rows) * len(self.metrics)


def table_shape(number: int) -> Shape:
    planned = plan(TABLES[number], "real", "full")
    return Shape(f"Table {number}", tuple(p.row.label for p in planned), tuple(p.setting for p in planned))


def simulate(shape: Shape, tables: int, n: int, std_points: float, true_k: int = 1, test_k: int | None = None,
             shift_sd: np.ndarray | None = None, corr: np.ndarray | None = None, alpha: float = verdict.ALPHA,
             rng: np.random.Generator | None = None, row_sd: np.ndarray | str | None = None,
             std_model: str = "moderated", combined_floor: float = verdict.COMBINED_FLOOR,
             variant: dict | None = None) -> dict:
    """Fraction of simulated tables that fail. ``true_k``: the paper's number is the best of that many runs;
    ``test_k``: what the check assumes (default the truth). ``shift_sd``: per block and metric, our true mean
    minus the paper's true mean in seed stds (negative = worse; default 0). ``corr``: correlation of one
    run's metrics (default independent). ``row_sd``: the seed std of each block (blocks,) or cell
    (blocks, metrics) as a multiple of ``std_points`` (default 1; shifts stay in units of ``std_points``), or
    "cells ×1-×3": every cell's multiple drawn log-uniform in [1, 3], anew for each table. ``std_model``:
    "moderated" (bench check's), "own" (each cell's own std) or "oracle" (the true std known: the information
    bound). ``variant``: :func:`batch_verdicts`' alternatives to bench check's statistics, for studies
    (scripts/correlation_variants.py)."""
    rng = rng or np.random.default_rng(0)
    b, m = len(shape.rows), len(shape.metrics)
    sd = std_points * POINT
    ours, paper = draw(rng, tables, shape, n, true_k, corr)
    if isinstance(row_sd, str):
        scale = np.exp(rng.uniform(0.0, math.log(3.0), (tables, b, m)))
    else:
        scale = np.ones((1, b, m)) * (1.0 if row_sd is None else np.asarray(row_sd, dtype=float).reshape(1, b, -1))
    ours, paper = ours * scale[:, :, None, :], paper * scale
    if shift_sd is not None:
        ours = ours + shift_sd[None, :, None, :]
    if std_model == "oracle" and scale.shape[0] > 1:
        raise ValueError("the known-std bound needs one std per cell for all tables")
    known = scale[0] * sd if std_model == "oracle" else None
    return batch_verdicts(ours * sd, paper * sd, shape, test_k or true_k, alpha,
                          "own" if std_model == "oracle" else std_model, known, combined_floor, variant)


def draw(rng: np.random.Generator, tables: int, shape: Shape, n: int, k: int, corr: np.ndarray | None = None):
    """Faithful oriented values (higher = better) in units of the seed std, true mean 0: ours (tables, blocks, n,
    metrics) and the paper's best of ``k`` runs (tables, blocks, metrics); ``corr``: one run's metrics'
    correlation (default independent)."""
    b, m = len(shape.rows), len(shape.metrics)
    chol = np.linalg.cholesky(corr if corr is not None else np.eye(m))
    ours = rng.standard_normal((tables, b, n, m)) @ chol.T
    return ours, (rng.standard_normal((tables, b, k, m)) @ chol.T).max(axis=2)


def batch_verdicts(ours: np.ndarray, paper: np.ndarray, shape: Shape, k: int, alpha: float,
                   std_model: str = "moderated", known_sd: np.ndarray | None = None,
                   combined_floor: float = verdict.COMBINED_FLOOR, variant: dict | None = None) -> dict:
    """The verdicts of :func:`bench.verdict.compare` for many complete tables at once.

    ``ours``: (tables, blocks, n, metrics) oriented values; ``paper``: (tables, blocks, metrics);
    ``known_sd``: (blocks, metrics) true seed stds, used as known (df = inf) instead of estimated;
    ``combined_floor``: as ``bench check --combined-floor``. ``variant`` (studies only; bench check has none):
    ``"combined"``, a function (sums, raw correlation, membership, blocks, n) -> p-values of the row and table
    tests with --published-as single; ``"weights"``, Holm's shares of cells, rows and table."""
    variant = variant or {}
    t_count, b, n, m = ours.shape
    mean, std = ours.mean(axis=2), ours.std(axis=2, ddof=1)
    gap = mean - paper
    # the correlation of the metrics, pooled over the table's blocks (bench.verdict.pooled_correlation)
    e = (ours - mean[:, :, None, :]) / std[:, :, None, :]
    raw = np.clip(np.einsum("tbsi,tbsj->tij", e, e) / (b * (n - 1)), -1.0, 1.0)
    raw[:, np.arange(m), np.arange(m)] = 1.0
    r = np.clip(raw, 0.0, 1.0)  # each pair clipped at 0: the moderation's and the peak null's correlation
    if known_sd is not None:
        scale_sd, df = np.broadcast_to(known_sd, std.shape), np.full(std.shape, np.inf)
    elif std_model == "moderated":
        indep = seed_std.independence(r, b * (n - 1))
        var, df, _ = seed_std.moderate((std ** 2).reshape(t_count, b * m), n - 1, shape.columns(),
                                       shape.blocks(), indep)
        scale_sd, df = np.sqrt(var).reshape(std.shape), df.reshape(std.shape)
    else:
        scale_sd, df = std, np.full(std.shape, n - 1.0)
    t = gap / (scale_sd * math.sqrt(1 + 1 / n))
    p = verdict.null_cdf(t.ravel(), n, k, df.ravel()).reshape(t.shape)
    sums = verdict.to_z(p).sum(axis=2)  # (tables, blocks)
    simulated = known_sd is None and verdict.combined_null_simulated(k, std_model)
    if simulated:  # bench.verdict.block_scale
        scale = np.sqrt(np.maximum(r.sum(axis=(1, 2)), 1.0))
    else:  # bench.verdict.block_scale_total
        scale = verdict.total_scale(raw.sum(axis=(1, 2)) - m, m, b * (n - 1))
    scale = np.broadcast_to(scale[:, None], sums.shape)
    labels = list(dict.fromkeys(shape.rows))
    member = np.array([[row == label for row in shape.rows] for label in labels], dtype=float)  # rows x blocks
    if len(labels) > 1:
        member = np.vstack([member, np.ones(b)])
    if simulated:
        structure = combined_null.Structure.of(shape.blocks(), shape.columns(), [n] * (b * m), [False] * (b * m))
        group_p = np.empty((t_count, len(member)))
        shares = np.array([combined_null.quantize(x) for x in np.atleast_1d(indep)]) * np.ones(t_count)
        for share in np.unique(shares):
            sel = shares == share
            model = combined_null.null_model(structure, k, float(share))
            explained = np.array([combined_null.metric_variance(x, n, k) for x in r[sel]])[:, None] * np.ones(b)
            group_p[sel] = combined_null.group_p(sums[sel], scale[sel], explained, member, model)
    elif "combined" in variant:
        group_p = variant["combined"](sums, raw, member, b, n)
    else:
        group_p = st.norm.cdf(((sums / scale) @ member.T) / np.sqrt(member.sum(axis=1)))
    gap_floors = gap / shape.floors
    group_gap = (gap_floors.mean(axis=2) @ member.T) / member.sum(axis=1)  # rows (and the table): mean in floors
    family = [p.reshape(t_count, b * m), group_p]
    gaps = [gap_floors.reshape(t_count, b * m), group_gap]
    levels = ["cell"] * (b * m) + ["row"] * len(labels) + (["table"] if len(labels) > 1 else [])
    weights = verdict.level_weights(levels)
    if "weights" in variant:
        share = dict(zip(verdict.LEVELS, variant["weights"]))
        weights = np.array([share[lv] / levels.count(lv) for lv in levels])
    adj = verdict.weighted_holm(np.concatenate(family, axis=1), weights)
    limit = np.concatenate([np.ones(b * m), np.full(len(member), combined_floor)])
    worse = (adj <= alpha) & (np.concatenate(gaps, axis=1) < -limit)
    cells_worse = worse[:, : b * m]
    return {"fail": float(worse.any(axis=1).mean()), "cell_fail": float(cells_worse.any(axis=1).mean()),
            "p": p, "adj": adj, "worse": worse}


def cells_frame(shape: Shape, ours: np.ndarray, paper: np.ndarray, level: float = 0.0) -> pd.DataFrame:
    """One simulated table as the cells bench check compares (:func:`bench.verdict.compare`): ``ours`` (blocks,
    n, metrics) and ``paper`` (blocks, metrics) oriented values around ``level``; MAE turned back to lower is
    better."""
    recs = []
    for bi, (row, setting) in enumerate(zip(shape.rows, shape.settings or ("",) * len(shape.rows))):
        for mi, m in enumerate(shape.metrics):
            sign = -1.0 if m == "mae" else 1.0
            recs.append({"row": row, "setting": setting, "metric": m, "published": level + sign * paper[bi, mi],
                         "higher": m != "mae", "floor": shape.floors[mi],
                         "values": {s: level + sign * v for s, v in enumerate(ours[bi, :, mi])}})
    return pd.DataFrame(recs)


def shift(shape: Shape, scenario: str, std_points: float = 1.0) -> np.ndarray | None:
    """True mean shift in seed stds per (block, metric): the last row of the table 3σ worse, every cell 1σ
    worse, or every cell 1σ and at least 1.5 floors worse (a shift the floors count as a regression)."""
    b, m = len(shape.rows), len(shape.metrics)
    if scenario == "null":
        return None
    if scenario == "all cells 1σ worse":
        return np.full((b, m), -1.0)
    if scenario == "all cells 1σ and ≥ 1.5 floors worse":
        return np.broadcast_to(-np.maximum(1.0, 1.5 * shape.floors / (std_points * POINT)), (b, m)).copy()
    if scenario == "one row 3σ worse":
        last = shape.rows[-1]
        return np.array([[-3.0 if r == last else 0.0] * m for r in shape.rows])
    raise ValueError(scenario)


@dataclass(frozen=True)
class Scenario:
    """One line of the calibration: what is true, and what the check assumes."""

    name: str
    shift: str = "null"  # see :func:`shift`
    true_k: int = 1  # the paper's number really is the best of this many runs
    test_k: int = 1  # the check assumes (--published-as)
    correlated: bool = False  # metrics of one run correlated (CORRELATED)
    row_sd: str | None = None  # None, "rows ×1-×3" (blocks' stds geometric from 1 to 3), "cells ×1-×3" (random)
    std_model: str = "moderated"  # bench check's; "own" (--seed-std own); "oracle" (σ known: the bound)
    combined_floor: float = verdict.COMBINED_FLOOR  # --combined-floor


ROW3, ALL1, FLOOR15 = "one row 3σ worse", "all cells 1σ worse", "all cells 1σ and ≥ 1.5 floors worse"
SCENARIOS = (
    Scenario("faithful"),
    Scenario("faithful, correlated metrics", correlated=True),
    Scenario("faithful, rows' std ×1-×3", row_sd="rows ×1-×3"),
    Scenario("faithful, cells' std ×1-×3 at random", row_sd="cells ×1-×3"),
    Scenario("faithful, paper best of 5", true_k=5, test_k=5),
    Scenario("faithful, paper best of 5, correlated metrics", true_k=5, test_k=5, correlated=True),
    Scenario("faithful, paper best of 5, cells' std ×1-×3 at random", true_k=5, test_k=5, row_sd="cells ×1-×3"),
    Scenario("faithful, paper best of 5, checked as single", true_k=5),
    Scenario("faithful, own std (--seed-std own)", std_model="own"),
    Scenario("faithful, --combined-floor 0", combined_floor=0.0),
    Scenario(ROW3, ROW3),
    Scenario(ROW3 + ", own std", ROW3, std_model="own"),
    Scenario(ROW3 + ", σ known (bound)", ROW3, std_model="oracle"),
    Scenario(ROW3 + ", --combined-floor 1", ROW3, combined_floor=1.0),
    Scenario(ROW3 + ", correlated metrics", ROW3, correlated=True),
    Scenario(ROW3 + ", correlated metrics, σ known (bound)", ROW3, correlated=True, std_model="oracle"),
    Scenario(ROW3 + ", paper best of 5", ROW3, 5, 5),
    Scenario(ROW3 + ", paper best of 5, σ known (bound)", ROW3, 5, 5, std_model="oracle"),
    Scenario(ALL1, ALL1),
    Scenario(ALL1 + ", own std", ALL1, std_model="own"),
    Scenario(ALL1 + ", σ known (bound)", ALL1, std_model="oracle"),
    Scenario(ALL1 + ", paper best of 5", ALL1, 5, 5),
    Scenario(ALL1 + ", --combined-floor 0", ALL1, combined_floor=0.0),
    Scenario(ALL1 + ", --combined-floor 1", ALL1, combined_floor=1.0),
    Scenario(FLOOR15, FLOOR15),
    Scenario(FLOOR15 + ", σ known (bound)", FLOOR15, std_model="oracle"),
)


def _row_sd(shape: Shape, spec: str | None):
    if spec == "rows ×1-×3":
        return np.geomspace(1.0, 3.0, len(shape.rows))
    return spec  # None, or "cells ×1-×3" (drawn in simulate)


TABLE_NUMBERS, SEED_COUNTS, SEED_STDS = (1, 4), (3, 5, 10), (0.5, 1.0, 2.0, 3.0)  # the calibration's grid


def calibrate(tables: int = 2000, seed: int = 0, numbers=TABLE_NUMBERS, ns=SEED_COUNTS, stds=SEED_STDS,
              scenarios=SCENARIOS, faithful_tables: int | None = None) -> pd.DataFrame:
    """The rates of every line; ``faithful_tables`` (default ``tables``) simulated tables for the faithful lines,
    whose rates sit near the 5 % target and need the smaller Monte Carlo error."""
    rng = np.random.default_rng(seed)
    recs = []
    for number in numbers:
        shape = table_shape(number)
        for sc in scenarios:
            count = faithful_tables if faithful_tables and sc.shift == "null" else tables
            for n in ns:
                for sd in stds:
                    r = simulate(shape, count, n, sd, sc.true_k, sc.test_k, shift(shape, sc.shift, sd),
                                 CORRELATED if sc.correlated else None, rng=rng, row_sd=_row_sd(shape, sc.row_sd),
                                 std_model=sc.std_model, combined_floor=sc.combined_floor)
                    recs.append({"table": shape.name, "cells": shape.cells, "scenario": sc.name, "n": n,
                                 "std_points": sd, "tables": count, "fail_rate": r["fail"],
                                 "cell_fail_rate": r["cell_fail"]})
    return pd.DataFrame(recs)


def to_markdown(df: pd.DataFrame) -> str:
    """One table per (table shape): scenarios × n, a column per seed std."""
    parts = []
    for name, g in df.groupby("table", sort=False):
        wide = g.pivot_table(index=["scenario", "n"], columns="std_points", values="fail_rate", sort=False)
        wide.columns = [f"std {c:g} pt" for c in wide.columns]
        faithful = g["scenario"].str.startswith("faithful")
        counts = sorted(g["tables"].unique())
        per_line = (f"{int(counts[0])} simulated tables per line" if len(counts) == 1 else
                    f"{int(g[faithful]['tables'].iloc[0])} simulated tables per faithful line, "
                    f"{int(g[~faithful]['tables'].iloc[0])} per other line")
        parts += [f"**{name}** ({int(g['cells'].iloc[0])} cells, {per_line}): fraction of tables that fail", "",
                  (wide * 100).round(1).astype(str).add(" %").reset_index().to_markdown(index=False), ""]
    return "\n".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.calibrate", description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=2000, help="simulated tables per line (default 2000)")
    ap.add_argument("--faithful-tables", type=int, default=None,
                    help="simulated tables per faithful line (default: --tables); their rates sit near 5 %%")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the rates as CSV")
    ap.add_argument("--table", type=int, action="append", choices=TABLE_NUMBERS,
                    help=f"only this table's lines (repeatable; default {TABLE_NUMBERS})")
    ap.add_argument("--n", type=int, action="append",
                    help=f"only these seed counts (repeatable; default {SEED_COUNTS})")
    ap.add_argument("--std", type=float, action="append",
                    help=f"only these seed stds in points (repeatable; default {SEED_STDS})")
    ap.add_argument("--scenario", action="append",
                    help="only this scenario, named as in the output (repeatable; default all)")
    args = ap.parse_args(argv)
    names = {sc.name: sc for sc in SCENARIOS}
    unknown = [x for x in args.scenario or () if x not in names]
    if unknown:
        ap.error(f"--scenario {unknown[0]!r}: no such scenario; expected one of: " + "; ".join(names))
    for n in args.n or ():
        if n < 2:
            ap.error(f"--n {n}: expected a number of seeds of at least 2 (the seed std needs two)")
    for sd in args.std or ():
        if not (math.isfinite(sd) and sd > 0):
            ap.error(f"--std {sd}: expected a positive seed std in points")
    df = calibrate(args.tables, args.seed, numbers=tuple(args.table or TABLE_NUMBERS), ns=tuple(args.n or SEED_COUNTS),
                   stds=tuple(args.std or SEED_STDS),
                   scenarios=tuple(names[x] for x in args.scenario) if args.scenario else SCENARIOS,
                   faithful_tables=args.faithful_tables)
    print(to_markdown(df))
    if args.out:
        df.to_csv(args.out, index=False, float_format="%.4f")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
