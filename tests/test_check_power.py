"""bench check's own power (bench/check_power.py): simulated at the checked table's structure and stds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import calibrate, check_power, verdict
from bench.cli.app import main

FIXTURE = "tests/fixtures/table4-published.csv"


def _cells(std_points: float, n: int = 3, number: int = 4, seed: int = 3, corr=None) -> pd.DataFrame:
    """A faithful simulated table in bench check's cell layout (MAE lower is better)."""
    shape = calibrate.table_shape(number)
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(np.eye(4) if corr is None else corr)
    ours = rng.standard_normal((len(shape.rows), n, 4)) @ chol.T * std_points * calibrate.POINT
    paper = rng.standard_normal((len(shape.rows), 4)) @ chol.T * std_points * calibrate.POINT
    return calibrate.cells_frame(shape, ours, paper, level=0.7)


def test_structure_is_the_checked_table():
    """The simulation's truth is what the table says: its blocks, seeds and floors, the block × column fit of
    its seed variances (the moderation's prior) and the pooled correlation of the oriented metrics, unclipped."""
    cells = _cells(2.0)
    fam = verdict.compare(cells)
    shape, std, n, corr = check_power._structure(cells, fam)
    assert shape.rows == calibrate.table_shape(4).rows and shape.metrics == calibrate.METRICS and n == 3
    assert shape.floors.tolist() == calibrate.FLOORS.tolist()
    own = fam[fam["level"] == "cell"]["std"].to_numpy(dtype=float).reshape(4, 4)
    # the additive log-variance fit: every 2 × 2 interaction contrast of log std² vanishes, and each block's
    # (each metric's) df-weighted mean of own²/fitted² is 1 (the ML equations of the gamma model)
    log = np.log(std ** 2)
    assert log[0, 0] - log[0, 1] - log[1, 0] + log[1, 1] == pytest.approx(0.0, abs=1e-9)
    assert (own ** 2 / std ** 2).mean(axis=1) == pytest.approx(np.ones(4), rel=1e-6)
    assert (own ** 2 / std ** 2).mean(axis=0) == pytest.approx(np.ones(4), rel=1e-6)
    pooled = verdict.block_corr(calibrate.METRICS, verdict.pooled_correlation(verdict._oriented_blocks(
        cells.assign(n=3)), clip=False))
    assert (pooled < 0).any()  # a negative estimate is kept as the simulated truth
    assert np.allclose(np.diag(corr), 1.0) and np.linalg.eigvalsh(corr).min() > 0
    assert corr == pytest.approx(pooled, abs=1e-3)  # only made positive definite


def test_power_equals_the_calibration_path_and_is_deterministic():
    cells = _cells(2.0)
    fam = verdict.compare(cells)
    a = check_power.simulate_power(cells, fam, tables=300, seed=5)
    assert a == check_power.simulate_power(cells, fam, tables=300, seed=5)
    shape, std, n, corr = check_power._structure(cells, fam)
    mult = std / calibrate.POINT
    dense = calibrate.simulate(shape, 300, n, 1.0, 1, 1, -mult, corr, rng=np.random.default_rng(5), row_sd=mult)
    assert a.every_cell == dense["fail"]
    weakest = np.array([[r == a.weakest_row] for r in shape.rows])
    row = calibrate.simulate(shape, 300, n, 1.0, 1, 1, -3 * mult * weakest, corr, rng=np.random.default_rng(5),
                             row_sd=mult)
    assert a.row == row["fail"]


def test_floors_and_combined_floor_enter_the_power():
    """Seed std 0.05 point, floors 1 point: a 1σ shift in every cell is a twentieth of a floor, within the
    default combined floor (a tenth), so the check rarely fails on it, and says why; with
    --combined-floor 0 the table test catches it; with --combined-floor 1 a 3σ row (0.15 floors) is held back
    too."""
    cells = _cells(0.05, n=5)
    fam = verdict.compare(cells)
    default = check_power.simulate_power(cells, fam, tables=300)
    assert default.every_cell < 0.1 and default.sigma_floors < 0.1
    assert default.with_more_seeds  # under 80 %: the 10-seed figure is given
    assert "; 1σ shifts are within the rows' and table's floor rule here (0.1 floors)" in default.lines()[1]
    fam0 = verdict.compare(cells, combined_floor=0.0)
    no_floor = check_power.simulate_power(cells, fam0, combined_floor=0.0, tables=300)
    assert no_floor.every_cell > 0.5
    assert all("floor rule" not in line for line in no_floor.lines())  # not what holds it back then
    fam1 = verdict.compare(cells, combined_floor=1.0)
    whole = check_power.simulate_power(cells, fam1, combined_floor=1.0, tables=300)
    assert whole.every_cell == 0.0 and whole.row == 0.0
    assert "1σ and 3σ shifts are within the rows' and table's floor rule here (1 floors)" in whole.lines()[1]


def test_more_seeds_give_more_power_on_table4_with_3_seeds():
    """Correlated metrics (Acc-2/F1 0.95): a 16-cell table with 3 seeds is under 80 %; 5 seeds do better."""
    cells = _cells(2.0, n=3, corr=calibrate.CORRELATED)
    p = check_power.simulate_power(cells, verdict.compare(cells), tables=600)
    assert p.row < 0.8 or p.every_cell < 0.8
    e5, r5 = p.with_more_seeds[5]
    assert e5 > p.every_cell and r5 > p.row
    assert "power under 80%" in p.lines()[1] and "floor rule" not in p.lines()[1]  # σ = 2 floors


@pytest.mark.parametrize("change,reason", [
    ("mixed seeds", "cells with different numbers of seeds"),
    ("assume std", "--assume-std cells"),
])
def test_not_simulated_says_why(change, reason):
    cells = _cells(2.0, n=3)
    if change == "mixed seeds":
        cells.at[0, "values"] = {**cells.at[0, "values"], 9: 0.7}
        fam = verdict.compare(cells)
    else:
        fam = verdict.compare(cells, assume_std={"acc7": 0.02})
    p = check_power.simulate_power(cells, fam, tables=100)
    assert p.reason == reason and p.lines() == [f"power: not simulated ({reason})"]


def test_cli_prints_power_and_can_skip_it(capsys):
    code = main(["check", "--table", "4", "--against", "published", "--from-csv", FIXTURE, "--power-tables", "400"])
    out = capsys.readouterr().out
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("power of this check"))
    assert "400 tables like this one, 5 seeds per cell" in line and "least detectable row" in line
    assert main(["check", "--table", "4", "--against", "published", "--from-csv", FIXTURE, "--power-tables", "0"]) == 0
    assert "power" not in capsys.readouterr().out


@pytest.mark.parametrize("value", ["-1", "2.5", "many", "1000000"])
def test_cli_power_tables_bad_value(value, capsys):
    code = main(["check", "--table", "4", "--against", "published", "--from-csv", FIXTURE, "--power-tables", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --power-tables")
