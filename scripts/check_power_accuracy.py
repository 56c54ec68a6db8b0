"""How close bench check's printed power is to the truth (docs/verdicts.md, "Power of a check").

For each line: simulate faithful tables with a known truth (seed std 2 points, independent or correlated
metrics), run ``bench check``'s statistics and its power simulation on each (bench/check_power.py), and compare
the printed figures with the true power of that table shape (bench/calibrate.py with the truth given).

    OMP_NUM_THREADS=1 python scripts/check_power_accuracy.py --out docs/check-power-accuracy.csv   # ~4 min
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from bench import calibrate as C
from bench import check_power, verdict

LINES = [(4, 3, False, 40), (4, 3, True, 40), (4, 5, False, 40), (4, 5, True, 40), (1, 3, False, 12)]
STD_POINTS = 2.0


def true_power(shape: C.Shape, n: int, corr: np.ndarray, tables: int) -> tuple[float, float]:
    dense = C.simulate(shape, tables, n, STD_POINTS, 1, 1, C.shift(shape, C.ALL1, STD_POINTS), corr,
                       rng=np.random.default_rng(1))["fail"]
    rows = [C.simulate(shape, tables, n, STD_POINTS, 1, 1,
                       np.array([[-3.0 if x == r else 0.0] * 4 for x in shape.rows]), corr,
                       rng=np.random.default_rng(1))["fail"] for r in dict.fromkeys(shape.rows)]
    return dense, min(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--tables", type=int, default=500, help="tables per printed power (bench check: 1000)")
    args = ap.parse_args(argv)
    recs = []
    for number, n, correlated, reps in LINES:
        shape = C.table_shape(number)
        corr = C.CORRELATED if correlated else np.eye(4)
        dense, row = true_power(shape, n, corr, 3000)
        rng = np.random.default_rng(7)
        chol = np.linalg.cholesky(corr)
        est = []
        for _ in range(reps):
            ours = (rng.standard_normal((len(shape.rows), n, 4)) @ chol.T) * STD_POINTS * C.POINT
            paper = (rng.standard_normal((len(shape.rows), 4)) @ chol.T) * STD_POINTS * C.POINT
            cells = C.cells_frame(shape, ours, paper, level=0.7)
            p = check_power.simulate_power(cells, verdict.compare(cells), tables=args.tables)
            est.append((p.every_cell, p.row))
        est = np.array(est)
        rec = {"table": shape.name, "n": n, "metrics": "correlated" if correlated else "independent", "checks": reps,
               "every_cell_true": dense, "every_cell_printed_median": np.median(est[:, 0]),
               "every_cell_printed_q10": np.quantile(est[:, 0], 0.1),
               "every_cell_printed_q90": np.quantile(est[:, 0], 0.9),
               "row_true": row, "row_printed_median": np.median(est[:, 1]),
               "row_printed_q10": np.quantile(est[:, 1], 0.1), "row_printed_q90": np.quantile(est[:, 1], 0.9)}
        print(rec, flush=True)
        recs.append(rec)
    df = pd.DataFrame(recs)
    print(df.to_markdown(index=False, floatfmt=".2f"))
    if args.out:
        df.to_csv(args.out, index=False, float_format="%.3f")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
