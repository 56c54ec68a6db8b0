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
from bench.runner import resolve_hparams
from bench.tables import TABLES, budget, plan

SPEC = TABLES[4]


def write_fixture(out, source, values, standard=True, skip_rows=(), seeds=(1111, 1112, 1113), spec=SPEC):
    """values(row_label, metric, seed_index) -> fraction; writes finished runs like the runner does."""
    from bench.tables import metric_key

    for p in plan(spec, source, budget(source, None)):
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


def test_published_pass_within_band(tmp_path):
    write_fixture(tmp_path, "real", published_plus(0.3))
    df = check_published(SPEC, tmp_path, CheckOptions())
    assert set(df["verdict"]) == {"reproduced"} and len(df) == 16
    assert gate_exit_code(df) == 0
    row = df[(df["row"] == "MoME + UD (EMOE)") & (df["metric"] == "acc7")].iloc[0]
    assert row["reference"] == pytest.approx(0.477) and row["mean"] == pytest.approx(0.480)
    assert row["n"] == 3 and row["std"] == pytest.approx(0.002)


def test_published_fails_by_direction(tmp_path):
    write_fixture(tmp_path, "real", published_plus(-3.0))
    df = check_published(SPEC, tmp_path, CheckOptions())
    assert set(df["verdict"]) == {"worse-than-band"} and gate_exit_code(df) == 1
    # MAE: our value is 0.03 above the paper's -> worse (lower is better)
    mae = df[df["metric"] == "mae"].iloc[0]
    assert mae["delta"] == pytest.approx(0.03) and mae["verdict"] == "worse-than-band"
    better = tmp_path / "better"
    write_fixture(better, "real", published_plus(+3.0))
    df2 = check_published(SPEC, better, CheckOptions())
    assert set(df2["verdict"]) == {"better"} and gate_exit_code(df2) == 0


def test_band_uses_k_standard_errors_when_larger_than_floor(tmp_path):
    write_fixture(tmp_path, "real", published_plus(-1.5, spread=0.02))  # std 2 points, SE 1.15
    df = check_published(SPEC, tmp_path, CheckOptions())
    acc = df[df["metric"] == "acc7"].iloc[0]
    assert acc["band"] == pytest.approx(2 * 0.02 / 3 ** 0.5)
    assert acc["verdict"] == "reproduced"
    df_tight = check_published(SPEC, tmp_path, CheckOptions(k=0.5))
    assert df_tight[df_tight["metric"] == "acc7"].iloc[0]["verdict"] == "worse-than-band"


def test_missing_cells_fail(tmp_path):
    write_fixture(tmp_path, "real", published_plus(0.0), skip_rows=("UD only",))
    df = check_published(SPEC, tmp_path, CheckOptions())
    assert (df[df["row"] == "UD only"]["verdict"] == "missing").all()
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


def test_table3_uses_macro_f1_not_non0(tmp_path):
    spec = TABLES[3]

    def values(row, metric, i):
        return lookup("T3", "EMOE", "-", metric) + 0.001 * (i - 1)

    write_fixture(tmp_path, "real", values, spec=spec, skip_rows=("MAG-BERT", "MulT", "MISA"))  # BERT rows
    df = check_published(spec, tmp_path, CheckOptions())
    emoe = df[df["row"] == "EMOE"]
    assert set(emoe["metric"]) == {"acc", "f1", "precision", "recall"}
    assert set(emoe["verdict"]) == {"reproduced"}
    assert emoe[emoe["metric"] == "f1"]["reference"].iloc[0] == pytest.approx(lookup("T3", "EMOE", "-", "f1"))
