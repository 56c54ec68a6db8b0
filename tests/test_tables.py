"""Table registry and rendering on fixture result sets (no training): Tables 1-6 specs, published rows
only next to real standard data, significance markers, bold by direction, LaTeX golden and compile."""

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import store
from bench.check import CheckOptions, collect_cells
from bench.cli import main
from bench.config import RunSpec
from bench.published import lookup
from bench.registry import get_method, methods
from bench.report.captions import caption
from bench.report.frames import display_frame, table_frame
from bench.report.planning import budget, plan
from bench.report.render import frame_to_latex, frame_to_markdown, render
from bench.report.specs import PUBLISHED_TAG, TABLES, metric_key
from bench.runner import resolve_hparams

GOLDEN = Path(__file__).parent / "golden"
SEEDS5 = (1111, 1112, 1113, 1114, 1115)


CORE = ("LF-DNN", "MulT", "MISA", "Self-MM", "EMOE")  # Tables 1-2 rows whose methods existed with these tests


def write_table_fixture(out, spec, source, values, seeds=(1111, 1112, 1113), standard=True, fingerprint="fp" * 8,
                        outputs=None, profile=None, rows=None):
    """values(row, setting, metric, seed_index) -> fraction; writes finished runs as the runner does.
    ``outputs(planned, seed)`` -> dict of arrays for preds.npz (optional); ``rows`` limits the rows."""
    for p in plan(spec, source, budget(source, profile), rows=rows):
        hp = resolve_hparams(get_method(p.row.method), spec.family, p.setting, p.overrides)
        cfg = json.loads(json.dumps(dataclasses.asdict(hp), default=str))
        rs = RunSpec(p.row.method, p.dataset, p.setting, cfg, fingerprint)
        for i, seed in enumerate(seeds):
            test = {metric_key(spec, m): values(p.row, p.setting, m, i) for m in spec.metrics}
            result = {"method": p.row.method, "dataset": p.dataset, "setting": p.setting, "seed": seed,
                      "config_hash": rs.config_hash, "config": cfg, "test": test, "valid": {},
                      "data": {"name": p.dataset, "setting": p.setting, "source": source, "standard": standard,
                               "fingerprint": fingerprint,
                               "profile": (profile or "compact") if source == "synthetic" else None,
                               "files": [] if source == "synthetic" else
                               [{"path": f"{spec.family.upper()}/Processed/{p.setting}_50.pkl",
                                 "sha256": "0123456789abcdef" + p.setting}]},
                      "provenance": {"git": {"commit": "abc1234567def", "dirty": False}, "exec_mode": "loop"},
                      "selection": {"rule": "lowest validation loss"}}
            store.write_run(store.run_dir(out, rs, seed), result, outputs(p, seed) if outputs else None)


def around_published(spec, offsets=None, spread=0.003):
    """Each measured row at its own published value + offset (in points; positive = better) + spread."""
    offsets = offsets or {}

    def values(row, setting, metric, i):
        pub = lookup(spec.published_table, row.published_method, row.published_variant, metric, setting)
        sign = -1 if metric == "mae" else 1
        return pub + sign * offsets.get(row.label, 0.0) / 100 + (i - 2) * spread
    return values


def cells_of(spec, out, source):
    """(row, setting) -> results, for the cells that have results (as run_and_render collects them)."""
    return {k: v for k, v in collect_cells(spec, out, source, CheckOptions()).items() if v}


# ------------------------------------------------------------------------------ specs
@pytest.mark.parametrize("number", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("source", ["synthetic", "real"])
def test_every_planned_run_resolves(number, source):
    spec = TABLES[number]
    runs = plan(spec, source, "compact")
    expected = [(r.label, s) for s in spec.settings for r in spec.measured_rows()
                if r.method in methods() and s in get_method(r.method).settings]
    assert [(p.row.label, p.setting) for p in runs] == expected
    for p in runs:
        resolve_hparams(get_method(p.row.method), spec.family, p.setting, p.overrides)
        assert p.dataset == (spec.family if source == "real" else f"synthetic-{spec.family}")


def test_comparison_tables_follow_the_paper():
    for number, third in ((1, "MCTN"), (2, "MFM")):
        spec = TABLES[number]
        labels = [r.label for r in spec.rows]
        assert labels[6] == third and labels[-1] == "EMOE" and len(labels) == 13
        # every row of the paper's Tables 1-2 has an implementation in this suite
        assert all(r.measured for r in spec.rows) and {r.method for r in spec.rows} <= set(methods())
        for r in spec.rows:  # every row has a published number for every cell
            for s in spec.settings:
                for m in spec.metrics:
                    assert lookup(spec.published_table, r.published_method, r.published_variant, m, s) is not None
    t3 = TABLES[3]
    assert [r.label for r in t3.rows] == ["MAG-BERT", "MulT", "MISA", "EMOE"]
    assert [r.label for r in t3.measured_rows()] == ["MAG-BERT", "MulT", "MISA", "EMOE"]
    assert metric_key(t3, "f1") == "f1" and metric_key(TABLES[1], "f1") == "non0_f1"
    assert t3.pending == {}
    # the compact budget runs MulT/MISA on the synthetic text features (no BERT checkpoint needed)
    compact = {p.row.label: p.overrides for p in plan(t3, "synthetic", "compact")}
    assert compact["MulT"]["text_mode"] == compact["MISA"]["text_mode"] == "features"


def test_compact_budget_applies_the_overrides_full_does_not():
    spec = TABLES[1]
    syn = {p.row.method: p.overrides for p in plan(spec, "synthetic", "compact")}
    assert syn["mult"]["nlevels"] == "2" and syn["emoe"]["d_model"] == "64"
    assert all(not p.overrides for p in plan(spec, "real", "full"))
    assert all(not p.overrides for p in plan(spec, "synthetic", "full"))
    # real data runs the full budget unless --profile compact is given (bench.report.planning.budget)
    assert {p.row.method: p.overrides for p in plan(spec, "real", "compact")} == syn


# ------------------------------------------------------------------------------ frames and markers
@pytest.fixture
def table1_real(tmp_path):
    spec = TABLES[1]
    write_table_fixture(tmp_path, spec, "real", around_published(spec, {"LF-DNN": -5.0}), seeds=SEEDS5, rows=CORE)
    return spec, cells_of(spec, tmp_path, "real")


def test_table1_real_shows_published_rows_and_differences(table1_real):
    spec, collected = table1_real
    df = table_frame(spec, collected, "real")
    assert set(df["kind"]) == {"measured", "published"}
    pub = df[(df["row"] == "EF-LSTM") & (df["setting"] == "aligned") & (df["metric"] == "acc7")].iloc[0]
    assert pub["kind"] == "published" and pub["published"] == pytest.approx(0.337) and pub["n"] == 0
    emoe = df[(df["row"] == "EMOE") & (df["setting"] == "unaligned") & (df["metric"] == "mae")].iloc[0]
    assert emoe["mean"] == pytest.approx(0.697) and emoe["std"] == pytest.approx(0.003 * np.sqrt(2.5))
    assert emoe["published"] == pytest.approx(0.697)
    cells, bold = display_frame(spec, df, "real")
    assert cells.loc[("aligned", "EF-LSTM" + PUBLISHED_TAG), "Acc-7"] == "33.7"
    # a row whose method has no results (not implemented, or not run) is shown from the paper
    assert cells.loc[("aligned", "DMD*" + PUBLISHED_TAG), "Acc-7"] == "46.2"  # *: BERT text in the paper
    assert cells.loc[("aligned", "LF-DNN"), "Acc-7"] == "26.5 ± 0.5 † [paper 31.5, Δ -5.0]"
    # the fixture's EMOE runs have no text model: frozen text features, said in the label and the caption
    assert cells.loc[("aligned", "EMOE* (frozen text)"), "MAE"] == "0.710 ± 0.005 [paper 0.710, Δ +0.000]"
    # bold: best measured per column, direction-aware, never a published-only row
    assert bold.loc[("aligned", "EMOE* (frozen text)"), "Acc-7"] and bold.loc[("aligned", "EMOE* (frozen text)"), "MAE"]
    assert not bold.loc[("aligned", "LF-DNN"), "MAE"]
    assert not bold.xs("EF-LSTM" + PUBLISHED_TAG, level="row").any().any()
    md = frame_to_markdown(spec, df, collected, "real")
    assert "[published]: copied from the EMOE paper's Table 1" in md and "sha256 0123456789ab" in md
    assert "*: BERT text in the paper. (frozen text): MISA, Self-MM, EMOE ran on the dataset's frozen text" in md
    assert "| aligned   | MulT " in md  # MMSA's MulT reads frozen BERT features in its paper too: no mark


def test_markers_are_holm_corrected_welch_against_emoe(table1_real):
    spec, collected = table1_real
    df = table_frame(spec, collected, "real")
    meas = df[(df["kind"] == "measured") & (df["row"] != "EMOE")]
    assert meas["p_welch"].notna().all() and df[df["row"] == "EMOE"]["p_welch"].isna().all()
    assert (meas["p_holm"] >= meas["p_welch"] - 1e-15).all()
    # LF-DNN sits 5 points (and 0.05 MAE) below its paper value, far below EMOE: significant everywhere
    lf = df[df["row"] == "LF-DNN"]
    assert (lf["p_holm"] < 0.05).all() and (lf["p_ref_better"] == 1.0).all()
    # 5 vs 5 exact permutation: smallest p = 2/252; Holm over 32 comparisons cannot reach 0.05
    assert lf["p_perm"].min() == pytest.approx(2 / 252)
    assert (lf["p_perm_holm"] > 0.05).all()
    from bench.report.frames import seeds_note
    assert "at least 7 seeds per row" in seeds_note(spec, df)


def test_no_marker_when_rows_are_equal(tmp_path):
    spec = TABLES[4]
    base = lambda row, setting, metric, i: 0.5 + 0.01 * i  # noqa: E731
    write_table_fixture(tmp_path, spec, "synthetic", base)
    collected = cells_of(spec, tmp_path, "synthetic")
    df = table_frame(spec, collected, "synthetic")
    assert (df["p_welch"].dropna() == 1.0).all()
    cells, _ = display_frame(spec, df, "synthetic")
    assert not cells.map(lambda s: "†" in s).any().any()


def test_synthetic_never_shows_published(tmp_path):
    spec = TABLES[1]
    write_table_fixture(tmp_path, spec, "synthetic", around_published(spec), rows=CORE)
    collected = cells_of(spec, tmp_path, "synthetic")
    df = table_frame(spec, collected, "synthetic")
    assert set(df["kind"]) == {"measured"} and df["published"].isna().all()
    md = frame_to_markdown(spec, df, collected, "synthetic")
    table_part = md.split("\n\n")[0]
    assert "paper" not in table_part and "published" not in table_part and "EF-LSTM" not in table_part
    assert "SYNTHETIC data" in md and "published rows not shown" in md


def test_nonstandard_real_data_hides_published(tmp_path):
    spec = TABLES[4]
    write_table_fixture(tmp_path, spec, "real", around_published(spec), standard=False)
    collected = cells_of(spec, tmp_path, "real")
    df = table_frame(spec, collected, "real")
    assert df["published"].isna().all()
    assert "NON-STANDARD" in frame_to_markdown(spec, df, collected, "real")


def test_table3_macro_metrics_and_rows_without_results(tmp_path):
    spec = TABLES[3]
    vals = {"acc": 0.70, "f1": 0.66, "precision": 0.68, "recall": 0.67}
    write_table_fixture(tmp_path, spec, "real", lambda row, s, m, i: vals[m] + 0.01 * i, rows=("EMOE",))
    collected = cells_of(spec, tmp_path, "real")
    df = table_frame(spec, collected, "real")
    emoe_f1 = df[(df["row"] == "EMOE") & (df["metric"] == "f1")].iloc[0]
    assert emoe_f1["mean"] == pytest.approx(0.67) and emoe_f1["published"] == pytest.approx(0.7073)
    cells, bold = display_frame(spec, df, "real")
    assert list(cells.columns) == ["Acc", "F1 (macro)", "P (macro)", "R (macro)"]
    assert cells.loc[("unaligned", "MISA" + PUBLISHED_TAG), "P (macro)"] == "71.2"
    assert cells.loc[("unaligned", "EMOE (frozen text)"), "F1 (macro)"] == "67.0 ± 1.0 [paper 70.7, Δ -3.7]"
    md = frame_to_markdown(spec, df, collected, "real")
    assert "Not yet measured" not in md and "macro-averaged" in md
    # MISA has an implementation but no results here: its cells come from the paper, marked
    assert "MISA [published]" in md


# ------------------------------------------------------------------------------ LaTeX
def _golden(name: str, text: str):
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"golden file {path} missing; create it with UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from the golden file (UPDATE_GOLDEN=1 to accept)"


def _fixture_frames(tmp_path):
    spec1 = TABLES[1]
    write_table_fixture(tmp_path / "t1", spec1, "real", around_published(spec1, {"LF-DNN": -5.0}), seeds=SEEDS5,
                        rows=CORE)
    c1 = cells_of(spec1, tmp_path / "t1", "real")
    spec4 = TABLES[4]
    acc = {"w/o MoME, w/o UD": 0.40, "MoME only": 0.44, "UD only": 0.43, "MoME + UD (EMOE)": 0.45}
    write_table_fixture(tmp_path / "t4", spec4, "synthetic",
                        lambda row, s, m, i: (0.9 - acc[row.label] if m == "mae" else acc[row.label]) + 0.01 * i)
    c4 = cells_of(spec4, tmp_path / "t4", "synthetic")
    return [(spec1, c1, "real"), (spec4, c4, "synthetic")]


def test_latex_golden(tmp_path):
    for spec, collected, source in _fixture_frames(tmp_path):
        df = table_frame(spec, collected, source)
        tex = frame_to_latex(spec, df, collected, source)
        assert r"\toprule" in tex and r"\bottomrule" in tex and r"\textbf{" in tex
        _golden(f"table{spec.number}-{source}.tex", tex)


def test_render_writes_md_csv_tex(tmp_path):
    spec, collected, source = _fixture_frames(tmp_path)[1]
    df = table_frame(spec, collected, source)
    paths = render(spec, df, collected, source, tmp_path / "tables")
    assert [p.name for p in paths] == ["table4-synthetic.md", "table4-synthetic.csv", "table4-synthetic.tex"]
    csv = pd.read_csv(paths[1])
    assert {"mean", "std", "n", "ci_low", "ci_high", "p_welch", "p_holm", "p_perm", "p_ref_better",
            "hedges_g", "values"} <= set(csv.columns)
    assert csv["values"].iloc[0].count(";") == 2


def test_latex_escape_keeps_flags_and_spells_out_symbols():
    from bench.report.render import latex_escape

    assert latex_escape("--set text_model=PATH") == "-{}-set text\\_model=PATH"  # not an en dash
    assert latex_escape("Mann–Whitney, 95% ± 1, p < 0.05") == "Mann--Whitney, 95\\% $\\pm$ 1, p $<$ 0.05"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_compiles(tmp_path):
    body = []
    for spec, collected, source in _fixture_frames(tmp_path):
        df = table_frame(spec, collected, source)
        body.append(frame_to_latex(spec, df, collected, source))
    doc = ("\\documentclass{article}\n\\usepackage[margin=1cm,landscape]{geometry}\n\\usepackage{booktabs}\n"
           "\\begin{document}\n" + "\n".join(body) + "\\end{document}\n")
    (tmp_path / "t.tex").write_text(doc)
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]
    assert (tmp_path / "t.pdf").is_file()


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_committed_tables_compile(tmp_path):
    """Every table committed under results/tables (real and synthetic captions, published rows, markers)."""
    committed = sorted((Path(__file__).resolve().parents[1] / "results" / "tables").glob("*.tex"))
    assert committed, "no committed tables"
    doc = ("\\documentclass{article}\n\\usepackage[margin=1cm,landscape]{geometry}\n\\usepackage{booktabs}\n"
           "\\begin{document}\n" + "\n\\clearpage\n".join(p.read_text() for p in committed) + "\\end{document}\n")
    (tmp_path / "all.tex").write_text(doc)
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "all.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-3000:]
    assert f"({len(committed)} pages" in r.stdout  # one page per table: none spilled over


# ------------------------------------------------------------------------------ command (resume, no training)
def test_run_table_reuses_finished_runs(tmp_path, capsys):
    from bench.data import load_dataset

    spec = TABLES[4]
    fp = load_dataset("synthetic-mosi", "aligned").fingerprint
    write_table_fixture(tmp_path, spec, "synthetic", lambda row, s, m, i: 0.5 + 0.02 * i, seeds=(1111, 1112),
                        fingerprint=fp)
    assert main(["run", "--table", "4", "--seeds", "1111,1112", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.count("finished run reused") == 8 and "[synthetic data]" in out
    assert "use at least 4 seeds per row" in out
    md = (tmp_path / "tables" / "table4-synthetic.md").read_text()
    assert "SYNTHETIC data" in md and "51.0 ± 1.4" in md


def test_setting_a_method_cannot_run_is_planned_out(tmp_path, monkeypatch):
    """A method that needs aligned data (EF-LSTM in MMSA) gets no unaligned run; on real data that cell
    is shown from the paper."""
    from bench.report.planning import unsupported

    monkeypatch.setattr(get_method("lf_dnn"), "settings", ("aligned",))
    spec = TABLES[1]
    assert ("LF-DNN", "unaligned") in unsupported(spec)
    assert ("LF-DNN", "unaligned") not in {(p.row.label, p.setting) for p in plan(spec, "real", "compact")}
    write_table_fixture(tmp_path, spec, "real", around_published(spec), rows=CORE)
    df = table_frame(spec, cells_of(spec, tmp_path, "real"), "real")
    kinds = df.groupby(["row", "setting"])["kind"].first()
    assert kinds[("LF-DNN", "aligned")] == "measured" and kinds[("LF-DNN", "unaligned")] == "published"
    cap = caption(spec, cells_of(spec, tmp_path, "real"), "real", df)
    assert "Not run (the method does not support this setting): LF-DNN unaligned, MCTN unaligned." in cap
