"""The regression gate on fixture result sets: pass, fail by direction, missing cells, synthetic vs real."""

import dataclasses
import json

import pandas as pd
import pytest

from bench import store
from bench.check import CheckOptions, check_published, check_reference, gate_exit_code, update_reference
from bench.cli import main
from bench.config import RunSpec
from bench.errors import UserError
from bench.published import lookup
from bench.registry import get_method
from bench.report.planning import budget, plan
from bench.report.specs import TABLES
from bench.runner import resolve_hparams
from bench.text_encoder import TextChoice

SPEC = TABLES[4]


BERT = TextChoice("/models/bert-base-uncased")  # EMOE fine-tunes BERT in the paper: runs on frozen text are excluded


def write_fixture(out, source, values, standard=True, skip_rows=(), seeds=(1111, 1112, 1113), spec=SPEC, text=BERT):
    """values(row_label, metric, seed_index) -> fraction; writes finished runs like the runner does (on real data
    with a BERT checkpoint named, as ``bench run --text-model`` does)."""
    from bench.report.specs import metric_key

    for p in plan(spec, source, budget(source, None), text=text if source == "real" else None):
        if p.row.label in skip_rows or not p.row.method:
            continue
        hp = resolve_hparams(get_method(p.row.method), spec.family, p.setting, p.overrides)
        cfg = json.loads(json.dumps(dataclasses.asdict(hp), default=str))
        run_spec = RunSpec(p.row.method, p.dataset, p.setting, cfg, "fp")
        for i, seed in enumerate(seeds):
            test = {metric_key(spec, m): values(p.row, m, i) for m in spec.metrics}
            result = {"method": p.row.method, "dataset": p.dataset, "setting": p.setting, "seed": seed,
                      "config_hash": run_spec.config_hash, "config": cfg, "test": test, "valid": {},
                      "data": {"name": p.dataset, "source": source, "standard": standard, "fingerprint": "fp" * 8,
                               "files": [{"path": "MOSI/Processed/aligned_50.pkl"}]},
                      "provenance": {"git": {"commit": "abc123"}, "exec_mode": "loop"},
                      "selection": {"rule": "best valid"}}
            store.write_run(store.run_dir(out, run_spec, seed), result)


def published_plus(delta_points, spread=0.002):
    def values(row, metric, i):
        pub = lookup(SPEC.published_table, "EMOE", row.published_variant, metric, "aligned")
        sign = -1 if metric == "mae" else 1  # positive delta_points = better
        shift = delta_points / 100 if metric != "mae" else delta_points / 100
        return pub + sign * shift + (i - 1) * spread
    return values


def cells_of(df):
    return df[df["level"] == "cell"]


def test_published_pass_within_band(tmp_path):
    write_fixture(tmp_path, "real", published_plus(0.3))
    df = check_published(SPEC, tmp_path, CheckOptions())
    cells = cells_of(df)
    assert set(cells["verdict"]) == {"reproduced"} and len(cells) == 16
    assert set(df[df["level"] != "cell"]["verdict"]) == {"ok"} and len(df) == 16 + 4 + 1  # 4 rows + table
    assert gate_exit_code(df) == 0
    row = cells[(cells["row"] == "MoME + UD (EMOE)") & (cells["metric"] == "acc7")].iloc[0]
    assert row["published"] == pytest.approx(0.477) and row["mean"] == pytest.approx(0.480)
    assert row["n"] == 3 and row["std"] == pytest.approx(0.002)


def test_published_fails_by_direction(tmp_path):
    # 3 points worse, std 0.2 points, 3 seeds: t = -0.03 / (0.002·sqrt(1 + 1/3)) = -12.99 with 2 df, whose
    # CDF is 0.5·(1 + t / sqrt(t² + 2)) = 0.002563. Holm steps down past the far smaller row and table p-values
    # (each row combines 4 such cells, the table 16), so the 16 cells face alpha/16: adjusted 16 x 0.002563
    write_fixture(tmp_path, "real", published_plus(-3.0))
    df = check_published(SPEC, tmp_path, CheckOptions())
    cells = cells_of(df)
    t = -0.03 / (0.002 * (4 / 3) ** 0.5)
    assert cells["p"].to_numpy() == pytest.approx(0.5 * (1 + t / (t * t + 2) ** 0.5), rel=1e-6)
    assert cells["p_adj"].to_numpy() == pytest.approx(16 * 0.5 * (1 + t / (t * t + 2) ** 0.5), rel=1e-6)
    assert set(cells["verdict"]) == {"worse"}
    assert set(df[df["level"] != "cell"]["verdict"]) == {"worse"} and gate_exit_code(df) == 1
    # MAE: our value is 0.03 above the paper's -> worse (lower is better)
    mae = cells[cells["metric"] == "mae"].iloc[0]
    assert mae["delta"] == pytest.approx(0.03) and mae["gap"] == pytest.approx(-0.03)
    better = tmp_path / "better"
    write_fixture(better, "real", published_plus(+3.0))
    df2 = check_published(SPEC, better, CheckOptions())
    # the better side: 16 cells, Holm 16 x 0.002563 = 0.041 <= 0.05
    assert set(cells_of(df2)["verdict"]) == {"better"} and gate_exit_code(df2) == 0


def test_floor_is_a_minimum_gap(tmp_path):
    # 1.5 points worse with a seed std of 2 points: beyond the 1-point floor but far from significant
    write_fixture(tmp_path, "real", published_plus(-1.5, spread=0.02))
    cells = cells_of(check_published(SPEC, tmp_path, CheckOptions()))
    acc = cells[cells["metric"] == "acc7"].iloc[0]
    t = -0.015 / (0.02 * (4 / 3) ** 0.5)
    assert acc["t"] == pytest.approx(t) and acc["p"] == pytest.approx(0.5 * (1 + t / (t * t + 2) ** 0.5))
    assert acc["verdict"] == "below, n.s."
    wide = cells_of(check_published(SPEC, tmp_path, CheckOptions(floors={"acc7": 0.02})))
    assert wide[wide["metric"] == "acc7"].iloc[0]["verdict"] == "reproduced"


def test_missing_cells_fail(tmp_path):
    write_fixture(tmp_path, "real", published_plus(0.0), skip_rows=("UD only",))
    df = check_published(SPEC, tmp_path, CheckOptions())
    assert (cells_of(df)[cells_of(df)["row"] == "UD only"]["verdict"] == "missing").all()
    assert gate_exit_code(df) == 1


def test_refuses_synthetic_and_nonstandard(tmp_path):
    write_fixture(tmp_path / "s", "synthetic", published_plus(0.0))
    with pytest.raises(UserError, match="refusing to compare synthetic"):
        check_published(SPEC, tmp_path / "s", CheckOptions())
    write_fixture(tmp_path / "n", "real", published_plus(0.0), standard=False)
    with pytest.raises(UserError, match="non-standard data files"):
        check_published(SPEC, tmp_path / "n", CheckOptions())


def test_reference_roundtrip_and_regression(tmp_path):
    base = lambda row, metric, i: 0.5 + 0.001 * i  # noqa: E731
    write_fixture(tmp_path / "ref", "synthetic", base)
    path = update_reference(SPEC, tmp_path / "ref", CheckOptions(), "synthetic", tmp_path / "refs")
    saved = pd.read_csv(path)
    assert len(saved) == 16 and (saved["n"] == 3).all() and saved["mean"].iloc[0] == pytest.approx(0.501)
    same = check_reference(SPEC, tmp_path / "ref", CheckOptions(), "synthetic", tmp_path / "refs")
    assert set(same["verdict"]) == {"reproduced"} and (same["delta"].abs() < 1e-9).all()
    moved = lambda row, metric, i: (0.45 if metric != "mae" else 0.55) + 0.001 * i  # noqa: E731
    write_fixture(tmp_path / "moved", "synthetic", moved)
    df = check_reference(SPEC, tmp_path / "moved", CheckOptions(), "synthetic", tmp_path / "refs")
    assert set(df["verdict"]) == {"worse-than-band"} and gate_exit_code(df) == 1


def test_cli_exit_codes_and_report(tmp_path, capsys):
    write_fixture(tmp_path, "real", published_plus(0.2))
    assert main(["check", "--table", "4", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "PASS: reproduced 16" in out and "MoME + UD (EMOE) / aligned / acc7" in out
    bad = tmp_path / "bad"
    write_fixture(bad, "real", published_plus(-5.0))
    assert main(["check", "--table", "4", "--results", str(bad)]) == 1
    synth = tmp_path / "synth"
    write_fixture(synth, "synthetic", published_plus(0.0))
    assert main(["check", "--table", "4", "--results", str(synth)]) == 2
    assert "refusing to compare synthetic" in capsys.readouterr().err
    assert main(["report", "--results", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "## Table 4" in report and "against the published numbers" in report
    assert "commits abc123" in report and "reproduced 16" in report
    power = next(line for line in report.splitlines() if line.startswith("power of this check"))
    assert "1000 tables like this one" in power and "least detectable row" in power
    assert main(["report", "--results", str(tmp_path), "--power-tables", "0"]) == 0
    assert "power of this check" not in (tmp_path / "report.md").read_text()


def test_table3_uses_macro_f1_not_non0(tmp_path):
    spec = TABLES[3]

    def values(row, metric, i):
        return lookup("T3", "EMOE", "-", metric) + 0.001 * (i - 1)

    write_fixture(tmp_path, "real", values, spec=spec, skip_rows=("MAG-BERT", "MulT", "MISA"))  # BERT rows
    df = check_published(spec, tmp_path, CheckOptions())
    emoe = cells_of(df)[cells_of(df)["row"] == "EMOE"]
    assert set(emoe["metric"]) == {"acc", "f1", "precision", "recall"}
    assert set(emoe["verdict"]) == {"reproduced"}
    assert emoe[emoe["metric"] == "f1"]["published"].iloc[0] == pytest.approx(lookup("T3", "EMOE", "-", "f1"))
