"""Calibration of `bench check --against published` (docs/verdicts.md), measured by simulation.

Timed mode (``tox -e bench``): 2,000 simulated tables per line, every scenario of
:data:`bench.calibrate.SCENARIOS` for Tables 1 and 4, n = 3/5/10, seed std 0.5-3 points; the rates go to
``extra_info``; every faithful false-failure rate (bench check's settings: not the best-of-5 number checked
as single) is checked against 5 % (plus three Monte Carlo standard errors), and the moderated seed std must
beat each cell's own std where that matters (Table 4, 3 seeds, one row 3σ worse). In the normal test run it
executes once on 20 tables per line, as a smoke test.
"""

from __future__ import annotations

import math

from bench import calibrate


def _timed(benchmark) -> bool:
    return not getattr(benchmark, "disabled", True)


def test_calibration_rates(benchmark):
    tables = 2000 if _timed(benchmark) else 20
    kwargs = {"tables": tables, "seed": 0} if _timed(benchmark) else {
        "tables": tables, "seed": 0, "numbers": (4,), "ns": (3,), "stds": (1.0,)}
    df = benchmark.pedantic(calibrate.calibrate, kwargs=kwargs, rounds=1, iterations=1)
    benchmark.extra_info["rates"] = df.to_dict(orient="records")
    faithful = df[df["scenario"].str.startswith("faithful") & ~df["scenario"].str.endswith("checked as single")]
    expected = {sc.name for sc in calibrate.SCENARIOS if sc.name.startswith("faithful")
                and not sc.name.endswith("checked as single")}
    assert set(faithful["scenario"]) == expected and faithful["fail_rate"].between(0, 1).all()
    if _timed(benchmark):
        margin = 3 * math.sqrt(0.05 * 0.95 / tables)
        assert faithful["fail_rate"].max() <= 0.05 + margin
        t4 = df[(df["table"] == "Table 4") & (df["n"] == 3)].groupby("scenario")["fail_rate"].mean()
        assert t4[calibrate.ROW3] > t4[calibrate.ROW3 + ", own std"] + 0.05
        print("\n" + calibrate.to_markdown(df))
