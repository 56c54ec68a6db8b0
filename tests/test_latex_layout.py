"""The paper-layout LaTeX (bench/report/latex.py) on small hand-made result sets: golden structure of
Tables 1, 3, 4 and 6, the short caption, and (where pdflatex exists) a two-column CVPR-like page on which
every committed results/tables/*.tex and these samples must fit without an overfull line."""

import dataclasses
import functools
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.published import lookup
from bench.report.frames import table_frame
from bench.report.latex import CAPTION_LIMIT, LAYOUT_MARK, CaptionFacts, paper_decimals, short_caption, table_latex
from bench.report.specs import TABLES, metric_key

SEEDS = (1111, 1112, 1113)
COMMITTED = sorted((Path(__file__).resolve().parents[1] / "results" / "tables").glob("*.tex"))
TWO_COLUMN = ("\\documentclass[10pt,twocolumn]{article}\n"
              "\\usepackage[letterpaper,textwidth=6.875in,textheight=8.875in,columnsep=0.3125in,top=1in]{geometry}\n"
              "\\usepackage{booktabs}\n\\usepackage{amssymb}\n\\begin{document}\n")
OVERFULL_TOLERANCE_PT = 1.0


def result(spec, values: dict, seed: int, source: str, standard: bool = True, setting: str = "aligned",
           config: dict | None = None) -> dict:
    """One finished run as the runner stores it: ``values`` maps paper metric -> fraction."""
    data = {"name": spec.family if source == "real" else f"synthetic-{spec.family}", "setting": setting,
            "source": source, "standard": standard, "fingerprint": "f" * 16, "profile": "compact",
            "files": [{"path": f"{setting}_50.pkl", "sha256": "0123456789ab" + setting}] if source == "real" else []}
    return {"seed": seed, "setting": setting, "config": config or {}, "data": data,
            "test": {metric_key(spec, m): v for m, v in values.items()},
            "provenance": {"git": {"commit": "abc1234567def", "dirty": False},
                           "versions": {"python": "3.12.3", "torch": "2.13.0", "emoe-bench": "0.1.0"},
                           "device": {"device": "cpu", "device_name": "x86_64"}},
            "selection": {"rule": "checkpoint with the lowest validation loss (improvement > 1e-6); test once"}}


def collected_for(spec, cells: dict, source: str, standard: bool = True, frozen: tuple = ()) -> dict:
    """cells: (row label, setting) -> per-metric list of per-seed fractions; ``frozen`` rows ran on the frozen
    text features."""
    out = {}
    for (label, setting), per_metric in cells.items():
        config = {"text_mode": "features"} if label in frozen else None
        out[(label, setting)] = [result(spec, {m: v[i] for m, v in per_metric.items()}, seed, source, standard,
                                        setting, config) for i, seed in enumerate(SEEDS)]
    return out


def near_published(spec, label: str, setting: str, shift: float) -> dict:
    """Three seeds at the row's published value + shift (fraction; MAE moves the other way) ± 0.01."""
    row = next(r for r in spec.rows if r.label == label)
    out = {}
    for m in spec.metrics:
        pub = lookup(spec.published_table, row.published_method, row.published_variant, m, setting)
        d = -shift if m == "mae" else shift
        out[m] = [pub + d - 0.01, pub + d, pub + d + 0.01]
    return out


def render(spec, cells: dict, source: str, standard: bool = True, frozen: tuple = ()) -> tuple[str, object, dict]:
    collected = collected_for(spec, cells, source, standard, frozen)
    df = table_frame(spec, collected, source)
    return table_latex(spec, df, collected, source), df, collected


@functools.cache  # rendered once, read by several tests (never modified)
def sample_table1_real():
    spec = TABLES[1]
    cells = {(label, s): near_published(spec, label, s, shift)
             for label, shift in (("MulT", -0.02), ("MISA", 0.0), ("EMOE", 0.01)) for s in spec.settings}
    return spec, render(spec, cells, "real")


@functools.cache  # rendered once, read by several tests (never modified)
def sample_table3_synthetic():
    spec = TABLES[3]
    cells = {(label, "unaligned"): {m: [a, a + 0.0125, a + 0.025] for m in spec.metrics}
             for label, a in (("MAG-BERT", 0.5), ("MulT", 0.6), ("MISA", 0.61), ("EMOE", 0.7))}
    return spec, render(spec, cells, "synthetic")


@functools.cache  # rendered once, read by several tests (never modified)
def sample_table4_real():
    spec = TABLES[4]
    cells = {(r.label, "aligned"): near_published(spec, r.label, "aligned", 0.0) for r in spec.rows}
    return spec, render(spec, cells, "real")


@functools.cache  # rendered once, read by several tests (never modified)
def sample_table6_synthetic():
    spec = TABLES[6]
    base = {"Sum": 0.40, "Concat": 0.30}
    cells = {(label, s): {m: [a + 0.01 * i for i in range(3)] for m in spec.metrics}
             for label, a in base.items() for s in spec.settings}
    return spec, render(spec, cells, "synthetic")


SAMPLES = {"table1-real": sample_table1_real, "table3-synthetic": sample_table3_synthetic,
           "table4-real": sample_table4_real, "table6-synthetic": sample_table6_synthetic}


def tabular(tex: str) -> list[str]:
    """The lines between \\begin{tabular} and \\end{tabular}, the first being the begin line."""
    lines = tex.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith(r"\begin{tabular}"))
    end = next(i for i, x in enumerate(lines) if x.startswith(r"\end{tabular}"))
    return lines[start:end]


def body(tex: str) -> list[str]:
    r"""The table rows between \midrule and \bottomrule (rules between blocks included)."""
    lines = tabular(tex)
    return lines[lines.index(r"\midrule") + 1:lines.index(r"\bottomrule")]


# ------------------------------------------------------------------------------ layout (golden)
def test_table1_groups_settings_marks_bert_and_puts_the_paper_under_ours():
    spec, (tex, _, _) = sample_table1_real()
    lines = tabular(tex)
    assert tex.startswith(LAYOUT_MARK) and r"\begin{table*}[t]" in tex and r"\end{table*}" in tex
    assert lines[0] == r"\begin{tabular}{@{}lcccccccc@{}}"
    head = [r"\toprule", r" & \multicolumn{4}{c}{Aligned} & \multicolumn{4}{c}{Unaligned} \\",
            r"\cmidrule(lr){2-5}\cmidrule(lr){6-9}",
            "Methods" + r" & Acc$_7$ $\uparrow$ & Acc$_2$ $\uparrow$ & F1 $\uparrow$ & MAE $\downarrow$" * 2 + r" \\",
            r"\midrule"]
    assert lines[1:6] == head  # one header line, no pandas index line
    rows = body(tex)
    mains = [x for x in rows if not x.startswith(r"\quad")]
    assert [x.split(" & ")[0] for x in mains] == [
        r"\textit{EF-LSTM}", r"\textit{LF-DNN}", r"\textit{TFN}", r"\textit{LMF}", r"\textit{MFN}",
        r"\textit{Graph-MFN}", r"\textit{MCTN}", "MulT", "MISA*", r"\textit{Self-MM*}", r"\textit{MMIM*}",
        r"\textit{DMD*}", "EMOE*"]
    # EMOE: published + 1 point (MAE - 0.010) at seeds -1/0/+1 point: 48.7 +- 1.0 etc., best of ours -> bold
    emoe = rows.index(next(x for x in rows if x.startswith("EMOE*")))
    assert rows[emoe] == ("EMOE* & " + " & ".join(
        rf"\textbf{{{v}}}$_{{\pm {s}}}$" for v, s in
        (("48.7", "1.0"), ("86.4", "1.0"), ("86.4", "1.0"), ("0.700", "0.010"),
         ("48.8", "1.0"), ("86.4", "1.0"), ("86.3", "1.0"), ("0.687", "0.010"))) + r" \\")
    assert rows[emoe + 1] == (r"\quad\benchpaper{paper} & " + " & ".join(
        rf"\benchpaper{{{v}}}" for v in ("47.7", "85.4", "85.4", "0.710", "47.8", "85.4", "85.3", "0.697")) + r" \\")
    # MulT: 2 points below its published value, far below EMOE: dagger (Holm p < 0.05) on every cell
    mult = next(x for x in rows if x.startswith("MulT"))
    assert mult.count(r"^{\dagger}") == 8 and r"\textbf" not in mult
    assert mult.split(" & ")[1] == r"33.1$_{\pm 1.0}^{\dagger}$"  # paper 35.1 - 2
    assert r"\textit{45.3} & \textit{84.9} & \textit{84.9} & \textit{0.738}" in next(x for x in rows
                                                                                       if "Self-MM" in x)


def test_table3_has_the_papers_two_decimals_and_no_paper_line_on_synthetic_data():
    spec, (tex, _, _) = sample_table3_synthetic()
    assert paper_decimals("T3", "acc") == 2 and paper_decimals("T1", "acc7") == 1 and paper_decimals("T1", "mae") == 3
    assert r"\begin{table}[t]" in tex and tabular(tex)[0] == r"\begin{tabular}{@{}lcccc@{}}"
    assert tabular(tex)[2] == r"Methods & Acc $\uparrow$ & F1 $\uparrow$ & P $\uparrow$ & R $\uparrow$ \\"
    assert body(tex) == [
        "MAG-BERT & " + " & ".join([r"51.25$_{\pm 1.25}^{\dagger}$"] * 4) + r" \\",
        "MulT & " + " & ".join([r"61.25$_{\pm 1.25}^{\dagger}$"] * 4) + r" \\",
        "MISA & " + " & ".join([r"62.25$_{\pm 1.25}^{\dagger}$"] * 4) + r" \\",
        "EMOE & " + " & ".join([r"\textbf{71.25}$_{\pm 1.25}$"] * 4) + r" \\",
    ]
    assert "benchpaper{" not in "\n".join(body(tex)) and "SYNTHETIC data" in tex


def test_table4_has_check_mark_columns_instead_of_methods():
    spec, (tex, _, _) = sample_table4_real()
    assert tabular(tex)[0] == r"\begin{tabular}{@{}cccccc@{}}"
    assert tabular(tex)[2] == (r"MoME & UD & Acc$_7$ $\uparrow$ & Acc$_2$ $\uparrow$ & F1 $\uparrow$ & "
                               r"MAE $\downarrow$ \\")
    paper = r"\multicolumn{2}{c}{\benchpaper{paper}}"
    assert body(tex) == [
        r"$\times$ & $\times$ & 43.0$_{\pm 1.0}$ & 84.3$_{\pm 1.0}$ & 84.4$_{\pm 1.0}$ & 0.751$_{\pm 0.010}$ \\",
        paper + r" & \benchpaper{43.0} & \benchpaper{84.3} & \benchpaper{84.4} & \benchpaper{0.751} \\",
        r"\checkmark & $\times$ & 46.2$_{\pm 1.0}$ & 85.2$_{\pm 1.0}$ & 85.1$_{\pm 1.0}$ & 0.716$_{\pm 0.010}$ \\",
        paper + r" & \benchpaper{46.2} & \benchpaper{85.2} & \benchpaper{85.1} & \benchpaper{0.716} \\",
        r"$\times$ & \checkmark & 45.0$_{\pm 1.0}$ & 84.8$_{\pm 1.0}$ & 84.7$_{\pm 1.0}$ & 0.748$_{\pm 0.010}$ \\",
        paper + r" & \benchpaper{45.0} & \benchpaper{84.8} & \benchpaper{84.7} & \benchpaper{0.748} \\",
        r"\checkmark & \checkmark & \textbf{47.7}$_{\pm 1.0}$ & \textbf{85.4}$_{\pm 1.0}$ & \textbf{85.4}$_{\pm 1.0}$"
        r" & \textbf{0.710}$_{\pm 0.010}$ \\",
        paper + r" & \benchpaper{47.7} & \benchpaper{85.4} & \benchpaper{85.4} & \benchpaper{0.710} \\",
    ]
    # the setting is not printed in the table and the paper does not state it: the caption says which
    cap = next(x for x in tex.splitlines() if x.startswith(r"\caption{"))
    assert "Setting aligned (paper: unstated)." in cap
    assert "dagger" not in cap  # no cell is significant: the caption does not explain the mark


def test_a_setting_chosen_on_the_command_line_is_shown():
    spec = TABLES[4]  # --setting unaligned: a frame with a setting the table's default spec does not list
    chosen = dataclasses.replace(spec, settings=("unaligned",))
    cells = {(r.label, "unaligned"): {m: [0.4, 0.41, 0.42] for m in spec.metrics} for r in spec.rows}
    _, df, collected = render(chosen, cells, "synthetic")
    for shown_with in (chosen, spec):
        tex = table_latex(shown_with, df, collected, "synthetic")
        assert len(body(tex)) == 4 and "Setting unaligned (paper: unstated)." in tex


def test_table6_is_sum_concat_by_setting_in_ruled_blocks():
    spec, (tex, _, _) = sample_table6_synthetic()
    assert tabular(tex)[0] == r"\begin{tabular}{@{}llccc@{}}"
    assert tabular(tex)[2] == r"Methods & Setting & Acc$_7$ $\uparrow$ & Acc$_2$ $\uparrow$ & F1 $\uparrow$ \\"
    best, sig = r"\textbf{41.0}$_{\pm 1.0}$", r"31.0$_{\pm 1.0}^{\dagger}$"  # 40/41/42 vs 30/31/32 %
    assert body(tex) == [
        "Sum & Aligned & " + " & ".join([best] * 3) + r" \\",
        "Concat &  & " + " & ".join([sig] * 3) + r" \\",
        r"\midrule",
        "Sum & Unaligned & " + " & ".join([best] * 3) + r" \\",
        "Concat &  & " + " & ".join([sig] * 3) + r" \\",
    ]


def test_frozen_text_rows_are_marked_and_explained():
    spec = TABLES[2]
    cells = {(label, "unaligned"): near_published(spec, label, "unaligned", 0.0) for label in ("MISA", "EMOE")}
    tex, _, _ = render(spec, cells, "real", standard=False, frozen=("MISA",))
    assert any(x.startswith(r"MISA*$^{\circ}$ & ") for x in body(tex))
    assert "benchpaper{" not in tex.split(r"\end{tabular}")[0]  # non-standard files: no published values
    assert r"$^{\circ}$: MISA ran on the dataset's frozen text features" in tex
    assert r"\begin{table}[t]" in tex  # one setting group fits a column


def test_frozen_text_mark_on_table4_sits_on_the_last_switch():
    """Table 4 has no method column: a frozen-text row carries ° on its UD switch, as the caption explains."""
    spec = TABLES[4]
    cells = {(r.label, "aligned"): near_published(spec, r.label, "aligned", 0.0) for r in spec.rows}
    frozen = ("MoME only", "MoME + UD (EMOE)")
    tex, _, _ = render(spec, cells, "real", standard=False, frozen=frozen)
    lines = [x for x in body(tex) if "benchpaper" not in x]
    no, yes, mark = r"$\times$", r"\checkmark", r"$^{\circ}$"
    assert [x.split(" & ")[:2] for x in lines] == [[no, no], [yes, no + mark], [no, yes], [yes, yes + mark]]
    assert r"$^{\circ}$: frozen text features" in tex


# ------------------------------------------------------------------------------ captions
def _caption_cases():
    yield from (f() for f in SAMPLES.values())
    for number in (2, 5):  # longest titles/markers: real NON-STANDARD data, a frozen BERT row, a hidden setting
        spec = TABLES[number]
        setting = spec.settings[-1]
        cells = {(r.label, setting): {m: [0.5, 0.51, 0.52] for m in spec.metrics} for r in spec.measured_rows()[-3:]}
        yield spec, render(spec, cells, "real", standard=False, frozen=tuple(r.label for r in spec.rows))


def test_short_caption_fits_and_says_data_seeds_and_selection():
    for spec, (tex, df, collected) in _caption_cases():
        settings_shown = spec.published_table in ("T1", "T2") or df["setting"].nunique() > 1
        source = "synthetic" if "SYNTHETIC" in tex else "real"
        text = short_caption(spec, df, source, CaptionFacts.of(collected, source), settings_shown)
        assert len(text) <= CAPTION_LIMIT, (spec.number, len(text), text)
        assert "test mean ± std, 3 seeds, checkpoint with the lowest validation loss." in text
        cap = next(x for x in tex.splitlines() if x.startswith(r"\caption{"))
        assert "sha256" not in cap and "Commit" not in cap  # provenance goes to the note
        note = next(x for x in tex.splitlines() if x.startswith(r"\benchnote{"))
        assert "Commit abc1234567" in note and "torch 2.13.0" in note and "Device: cpu (x86\\_64)" in note
        assert "[paper X" not in note and "[published]" not in note  # the markdown markers are not used here


# ------------------------------------------------------------------------------ compile (where pdflatex exists)
def _overfull(tex_files: dict, tmp_path: Path) -> list[float]:
    """Compile the tables on a two-column CVPR-like page; the widths (pt) of every overfull line."""
    doc = TWO_COLUMN + "\n\\clearpage\n".join(tex_files.values()) + "\n\\end{document}\n"
    (tmp_path / "doc.tex").write_text(doc)
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-3000:]
    log = (tmp_path / "doc.log").read_text(errors="replace")
    return [float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (the golden tests above pin "
                                                               "the layout)")
def test_samples_fit_a_two_column_page(tmp_path):
    texs = {name: f()[1][0] for name, f in SAMPLES.items()}
    assert max(_overfull(texs, tmp_path), default=0.0) <= OVERFULL_TOLERANCE_PT


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (the golden tests above pin "
                                                               "the layout)")
@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_table_fits_a_two_column_page(path, tmp_path):
    tex = path.read_text()
    if not tex.startswith(LAYOUT_MARK):
        pytest.skip(f"{path.name} is in the earlier layout; re-render: bench.report.retex.write_all('results/tables')")
    assert max(_overfull({path.name: tex}, tmp_path), default=0.0) <= OVERFULL_TOLERANCE_PT


# ------------------------------------------------------------------------------ committed tables, re-rendered
def test_committed_tables_rerender_from_their_csv_and_md(tmp_path):
    """bench.report.retex rebuilds each committed .tex from the .csv numbers and the .md provenance."""
    from bench.report.retex import write_all

    tables = tmp_path / "tables"
    shutil.copytree(COMMITTED[0].parent, tables)
    written = write_all(tables)
    assert sorted(p.name for p in written) == sorted(p.name for p in COMMITTED)
    t4 = (tables / "table4-real.tex").read_text()
    assert t4.startswith(LAYOUT_MARK) and len(body(t4)) == 4  # committed with --setting unaligned
    # run with --text frozen on mosi229: every row ran on the frozen text features, marked on its UD switch
    assert body(t4)[0].startswith(r"$\times$ & $\times$$^{\circ}$ & 20.9$_{\pm 6.2}$ & 72.2$_{\pm 7.3}$")
    assert "sha256 0249717835f1" in t4 and "Commit dd434c2d86" in t4  # provenance kept from the .md
    assert r"$^{\circ}$: frozen text features" in t4
    t3 = (tables / "table3-synthetic.tex").read_text()
    assert body(t3)[0].startswith(r"MAG-BERT & 14.83$_{\pm 2.02}^{\dagger}$")  # two decimals, Holm p < 0.05
    for p in written:
        cap = next(x for x in p.read_text().splitlines() if x.startswith(r"\caption{"))
        assert "3 seeds" in cap or "2 seeds" in cap
        assert len(re.sub(r"\\[a-z]+|[${}^]", "", cap)) <= CAPTION_LIMIT  # LaTeX commands dropped: shorter


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (the golden tests above pin "
                                                               "the layout)")
def test_rerendered_committed_tables_fit_a_two_column_page(tmp_path):
    from bench.report.retex import retex

    texs = {p.name: retex(p.with_suffix(".csv")) for p in COMMITTED}
    assert max(_overfull(texs, tmp_path), default=0.0) <= OVERFULL_TOLERANCE_PT
