"""How likely one ``bench check --against published`` was to catch a regression (docs/verdicts.md, "Power of a
check").

A "reproduced" verdict from 3 seeds can be weak evidence: on a 16-cell table whose metrics correlate as Acc-2
and F1 do, a whole row 3σ worse is missed in about two checks of three. So the check simulates its own power
at the table it just judged: the same blocks, metrics, seeds per cell and floors, the block × column fit of its
seed stds, the metrics' pooled correlation, the same --published-as, std model, combined floor and alpha, and
the same statistics (bench/calibrate.py's batched path, which a test holds equal to bench.verdict.compare). Two
regressions, as in the calibration: every cell 1σ worse, and each row in turn 3σ worse (the least detectable
row is reported). Below 80 % it also says what 5 or 10 seeds would reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench import calibrate, seed_std, verdict

TARGET = 0.80
MORE_SEEDS = (5, 10)


@dataclass
class Power:
    """Simulated power of one check (fractions of ``tables`` simulated tables that fail)."""

    n: int = 0
    tables: int = 0
    every_cell: float = float("nan")  # every cell 1σ worse
    weakest_row: str = ""  # the row whose 3σ regression is least often caught
    row: float = float("nan")
    sigma_floors: float = float("nan")  # the median cell's seed std in floors (a 1σ shift within the floors?)
    combined_floor: float = verdict.COMBINED_FLOOR  # the rows' and table's floor rule (0: no floor holds them back)
    with_more_seeds: dict = field(default_factory=dict)  # n -> (every_cell, row) when below TARGET
    reason: str = ""  # why the power was not simulated (empty when it was)

    def lines(self) -> list[str]:
        if self.reason:
            return [f"power: not simulated ({self.reason})"]
        out = [f"power of this check (simulated: {self.tables} tables like this one, {self.n} seeds per cell, its "
               f"estimated stds and metric correlation): every cell 1σ worse (1σ = {self.sigma_floors:.2g} floors, "
               f"median) caught {self.every_cell:.0%}; a whole row 3σ worse caught {self.row:.0%} for the least "
               f"detectable row ({self.weakest_row})"]
        if min(self.every_cell, self.row) < TARGET:
            more = "; ".join(f"{n} seeds: {e:.0%} and {r:.0%}" for n, (e, r) in self.with_more_seeds.items())
            within = [size for size, power, floors in (("1σ", self.every_cell, self.sigma_floors),
                                                       ("3σ", self.row, 3 * self.sigma_floors))
                      if power < TARGET and floors < self.combined_floor]
            floors = (f"; {' and '.join(within)} shifts are within the rows' and table's floor rule here "
                      f"({self.combined_floor:g} floors), which the check accepts by design (--combined-floor)"
                      if within else "")
            out.append(f"power under {TARGET:.0%}: regressions of these sizes can pass this check"
                       + (f" (with {more})" if more else "") + floors + "; docs/verdicts.md, 'Power of a check'")
        return out


def _nearest_correlation(r: np.ndarray) -> np.ndarray:
    """A positive-definite correlation close to ``r`` (the unclipped pooled estimate need not be one)."""
    w, v = np.linalg.eigh((r + r.T) / 2)
    c = (v * np.maximum(w, 1e-6)) @ v.T
    d = np.sqrt(np.diag(c))
    return c / d[:, None] / d[None, :]


def _structure(cells: pd.DataFrame, family: pd.DataFrame):
    """(Shape, per-cell std (blocks, metrics), n, correlation) of the tested cells, or a reason string."""
    fam = family[(family["level"] == "cell") & family["p"].notna()]
    if fam.empty:
        return "no tested cell"
    if not fam["df"].astype(float).lt(np.inf).all():
        return "--assume-std cells"
    ns = fam["n"].astype(int).unique()
    if len(ns) != 1:
        return "cells with different numbers of seeds"
    blocks = list(dict.fromkeys(zip(fam["row"], fam["setting"])))
    metrics = tuple(fam["metric"][(fam["row"] == blocks[0][0]) & (fam["setting"] == blocks[0][1])])
    own = np.empty((len(blocks), len(metrics)))
    floors = {}
    for i, (row, setting) in enumerate(blocks):
        g = fam[(fam["row"] == row) & (fam["setting"] == setting)]
        if tuple(g["metric"]) != metrics:
            return "blocks with different metrics"
        own[i] = g["std"].to_numpy(dtype=float)
        floors.update(zip(g["metric"], g["floor"].astype(float)))
    if not (np.isfinite(own).all() and (own > 0).all()):
        return "a cell with zero seed std"
    # the truth simulated: the stds of the block × column model fitted to the table (bench/seed_std.py), and
    # the metrics' pooled correlation unclipped (clipping at 0 is conservative for a test, but as the truth of
    # a simulation it would invent correlation and understate the power)
    column = np.tile(np.arange(len(metrics)), len(blocks)) + len(metrics) * np.repeat(
        pd.factorize(pd.Series([s for _, s in blocks]).astype(str))[0], len(metrics))
    std = np.sqrt(seed_std.fitted(own.ravel() ** 2, int(ns[0]) - 1, column,
                                  np.repeat(np.arange(len(blocks)), len(metrics)))).reshape(own.shape)
    keys = set(blocks)
    tested = cells[[(r, s) in keys for r, s in zip(cells["row"], cells["setting"])]]
    corr = verdict.pooled_correlation(verdict._oriented_blocks(tested), clip=False)
    corr = _nearest_correlation(verdict.block_corr(metrics, corr))
    shape = calibrate.Shape("this check", tuple(r for r, _ in blocks), tuple(str(s) for _, s in blocks), metrics,
                            tuple(floors[m] for m in metrics))
    return shape, std, int(ns[0]), corr


def simulate_power(cells: pd.DataFrame, family: pd.DataFrame, k: int = 1, alpha: float = verdict.ALPHA,
                   seed_std_model: str = "moderated", combined_floor: float = verdict.COMBINED_FLOOR,
                   tables: int = 1000, seed: int = 0) -> Power:
    """The power of :func:`bench.verdict.compare`'s verdict ``family`` on its input ``cells`` (both as given
    to and returned by compare). Deterministic for a given ``seed``."""
    found = _structure(cells, family)
    if isinstance(found, str):
        return Power(reason=found)
    shape, std, n, corr = found
    multiples = std / calibrate.POINT  # each cell's std in units of the simulation's std (one point)
    rows = list(dict.fromkeys(shape.rows))

    def rates(seeds: int) -> tuple[float, str, float]:
        def fail(shift):  # the same draws for every scenario (common random numbers: rows compared fairly)
            return calibrate.simulate(shape, tables, seeds, 1.0, k, k, shift, corr, alpha, np.random.default_rng(seed),
                                      multiples, seed_std_model, combined_floor)["fail"]
        every = fail(-multiples)
        by_row = {r: fail(-3.0 * multiples * np.array([[x == r] for x in shape.rows])) for r in rows}
        weakest = min(by_row, key=by_row.get)
        return every, weakest, by_row[weakest]

    every, weakest, row = rates(n)
    out = Power(n=n, tables=tables, every_cell=every, weakest_row=weakest, row=row,
                sigma_floors=float(np.median(std / shape.floors)), combined_floor=combined_floor)
    if min(every, row) < TARGET:
        for more in (m for m in MORE_SEEDS if m > n):
            e, _, r = rates(more)
            out.with_more_seeds[more] = (e, r)
            if min(e, r) >= TARGET:
                break
    return out
