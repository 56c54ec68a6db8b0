"""References for the power lines under 80 % (docs/verdicts.md, "What limits the lines under 80 %").

The calibration's "σ known (bound)" gives each cell its true std. A check cannot know it, and under peak:K
the null itself is centred at −E[max of K]·σ, so an error in the estimated σ moves the null, not only its
spread. This script measures a reference test that knows more than bench check but not σ: the column scales
and the metrics' correlation are known (the calibration's truth), and each block's std is estimated from the
block's own cells, pooled (n − 1 df per metric: 8 df with 3 seeds and 4 independent metrics), as any variance
model must that lets every block (a method's runs) have its own noise level. Cells, rows and the table are
tested with the pivotal null of their statistic (simulated), Holm-weighted as bench check's family (cells,
rows, table a third each), at std 2 points with the default floors. It also prints how much evidence a
block of correlated metrics carries for a shift of all of them: Stouffer's ``m²/1ᵀR1`` against the best
linear combination's ``1ᵀR⁻¹1`` (generalised least squares), in independent metrics.

    OMP_NUM_THREADS=1 python scripts/block_std_reference.py     # about 15 seconds
"""

from __future__ import annotations

import numpy as np

from bench import calibrate as C
from bench import verdict

STD_POINTS = 2.0


def statistics(ours: np.ndarray, paper: np.ndarray, member: np.ndarray) -> list[np.ndarray]:
    """Cells' gaps over their block's pooled std (tables, cells), each row's mean of them (tables, rows) and the
    table's mean (tables, 1). ``member``: rows × blocks, 0/1."""
    t, b, n, m = ours.shape
    pooled = ours.var(axis=2, ddof=1).mean(axis=2, keepdims=True)  # (tables, blocks, 1): the block's own std
    cell = (ours.mean(axis=2) - paper) / np.sqrt(pooled * (1 + 1 / n))
    block = cell.mean(axis=2)
    return [cell.reshape(t, -1), block @ member.T / member.sum(axis=1), block.mean(axis=1, keepdims=True)]


def draw(rng, tables: int, shape: C.Shape, n: int, k: int, corr: np.ndarray, shift: np.ndarray | None):
    ours, paper = C.draw(rng, tables, shape, n, k, corr)
    return (ours if shift is None else ours + shift[None, :, None, :]), paper


def power(number: int, n: int, k: int, scenario: str, corr: np.ndarray, tables: int = 10000,
          null_tables: int = 40000, seed: int = 0) -> float:
    """Fraction of tables the reference test fails (every level, the default floors, Holm as bench check)."""
    rng = np.random.default_rng(seed)
    shape = C.table_shape(number)
    labels = list(dict.fromkeys(shape.rows))
    member = np.array([[row == label for row in shape.rows] for label in labels], dtype=float)
    refs = [np.sort(x.ravel()) if i == 0 else np.sort(x, axis=0)
            for i, x in enumerate(statistics(*draw(rng, null_tables, shape, n, k, corr, None), member))]
    ours, paper = draw(rng, tables, shape, n, k, corr, C.shift(shape, scenario, STD_POINTS))
    p = [np.searchsorted(refs[0], statistics(ours, paper, member)[0], side="right") / len(refs[0])]
    for ref, x in zip(refs[1:], statistics(ours, paper, member)[1:]):
        p.append(np.stack([np.searchsorted(ref[:, j], x[:, j], side="right") for j in range(x.shape[1])], 1)
                 / len(ref))
    levels = ["cell"] * shape.cells + ["row"] * len(labels) + ["table"]
    adj = verdict.weighted_holm(np.concatenate(p, axis=1), verdict.level_weights(levels))
    gap = (ours.mean(axis=2) - paper) * STD_POINTS * C.POINT / shape.floors  # in floors
    gaps = np.concatenate([gap.reshape(tables, -1), (gap.mean(axis=2) @ member.T) / member.sum(axis=1),
                           gap.mean(axis=(1, 2))[:, None]], axis=1)
    worse = (adj <= verdict.ALPHA) & (gaps < -1.0)
    return float(worse.any(axis=1).mean())


LINES = (  # (table, published as K, metrics, scenario): the lines under 80 %, and single as a comparison
    (4, 1, "independent", C.ROW3), (4, 1, "independent", C.ALL1), (4, 5, "independent", C.ROW3),
    (4, 5, "independent", C.ALL1), (4, 5, "independent", "null"), (1, 1, "correlated", C.ROW3),
    (1, 1, "correlated", "null"))


def main() -> int:
    one = np.ones(len(C.CORRELATED))
    stouffer, best = len(one) ** 2 / C.CORRELATED.sum(), one @ np.linalg.solve(C.CORRELATED, one)
    print(f"correlated metrics (bench.calibrate.CORRELATED), independent metrics' worth of a block: Stouffer "
          f"{stouffer:.2f}, best linear combination {best:.2f} (of {len(one)})\n")
    print("| table | published as | metrics | scenario | seeds | reference: each block's std from its own cells |")
    print("|---|---|---|---|---|---|")
    for number, k, metrics, scenario in LINES:
        corr = C.CORRELATED if metrics == "correlated" else np.eye(4)
        for n in (3, 5):
            rate = power(number, n, k, scenario, corr)
            print(f"| Table {number} | {'single' if k == 1 else f'peak:{k}'} | {metrics} | "
                  f"{'faithful' if scenario == 'null' else scenario} | {n} | {100 * rate:.1f} % |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
