"""Holm's shares of cells, rows and the table: what moving weight from the cells to the combined tests buys
and costs (docs/verdicts.md, "Holm weights").

bench check gives each level a third of alpha. Cells contribute little to the calibration's regressions
with 3 seeds (a row 3σ worse, every cell 1σ worse), so a smaller share for them lifts those lines; a
regression confined to one cell (one metric of one run broken) is caught by the cells alone and pays for it.
Both measured on common random numbers (5,000 tables per line, std 2 points unless said, default floors).

    OMP_NUM_THREADS=1 python scripts/holm_weights.py      # about 20 seconds
"""

from __future__ import annotations

import numpy as np

from bench import calibrate as C

SHARES = ((1 / 3, 1 / 3, 1 / 3), (0.2, 0.4, 0.4))
TABLES = 5000


def one_cell(shape: C.Shape, sigmas: float) -> np.ndarray:
    """Acc-2 of the table's last block ``sigmas`` seed stds worse, every other cell faithful."""
    shift = np.zeros((len(shape.rows), len(shape.metrics)))
    shift[-1, shape.metrics.index("acc2")] = -sigmas
    return shift


def lines():
    t4, t1 = C.table_shape(4), C.table_shape(1)
    yield "Table 4, 3 seeds, faithful", t4, 3, 2.0, None, {}
    yield "Table 4, 3 seeds, faithful, correlated metrics", t4, 3, 2.0, None, {"corr": C.CORRELATED}
    yield "Table 1, 10 seeds, faithful, --combined-floor 0, std 3 pt", t1, 10, 3.0, None, {"combined_floor": 0.0}
    for sd in (0.5, 2.0):
        yield f"Table 4, 3 seeds, one row 3σ worse, std {sd:g} pt", t4, 3, sd, C.shift(t4, C.ROW3, sd), {}
    yield "Table 4, 3 seeds, every cell 1σ worse", t4, 3, 2.0, C.shift(t4, C.ALL1, 2.0), {}
    yield "Table 4, 3 seeds, one row 3σ worse, paper best of 5", t4, 3, 2.0, C.shift(t4, C.ROW3, 2.0), \
        {"true_k": 5, "test_k": 5}
    for shape in (t4, t1):
        for n in (3, 5):
            for sigmas in (5.0, 8.0):
                yield (f"{shape.name}, {n} seeds, one cell {sigmas:g}σ worse", shape, n, 2.0,
                       one_cell(shape, sigmas), {})


def main() -> int:
    print("| line | " + " | ".join(f"cells/rows/table {c:.2g}/{r:.2g}/{t:.2g}" for c, r, t in SHARES) + " |")
    print("|---|" + "---|" * len(SHARES))
    for label, shape, n, sd, shift, extra in lines():
        rates = [C.simulate(shape, TABLES, n, sd, shift_sd=shift, rng=np.random.default_rng(4),
                            variant={"weights": w}, **extra)["fail"] for w in SHARES]
        print(f"| {label} | " + " | ".join(f"{100 * x:.1f} %" for x in rates) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
