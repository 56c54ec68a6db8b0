"""Table renderers: Markdown, CSV and booktabs LaTeX of one table, and the three files written side by side."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report.captions import caption
from bench.report.escape import latex_escape
from bench.report.frames import csv_frame, display_frame
from bench.report.latex import table_latex
from bench.report.specs import TableSpec


def frame_to_markdown(spec, df, collected, source) -> str:
    cells, bold = display_frame(spec, df, source)
    shown = cells.copy()
    for idx in shown.index:
        for col in shown.columns:
            if bold.loc[idx, col]:
                shown.loc[idx, col] = f"**{shown.loc[idx, col]}**"
    shown = shown.reset_index()
    return shown.to_markdown(index=False) + "\n\n" + caption(spec, collected, source, df) + "\n"




def frame_to_latex(spec, df, collected, source) -> str:
    """booktabs LaTeX through pandas Styler (``textbf:--rwrap;`` bolds whole cells)."""
    cells, bold = display_frame(spec, df, source)
    tex = cells.map(latex_escape)
    new_index = pd.MultiIndex.from_tuples([tuple(latex_escape(x) for x in i) for i in tex.index],
                                          names=tex.index.names)
    tex.index = new_index
    tex.columns = [latex_escape(c) for c in tex.columns]
    mask = pd.DataFrame(bold.to_numpy(), index=tex.index, columns=tex.columns)
    styler = tex.style.apply(lambda _: mask.map(lambda b: "textbf:--rwrap;" if b else ""), axis=None)
    label = f"tab:table{spec.number}-{source}"
    # LaTeX numbers the table itself: drop our "Table N: " so the PDF does not read "Table 1: Table 4: ..."
    cap = latex_escape(caption(spec, collected, source, df).removeprefix(f"Table {spec.number}: "))
    return styler.to_latex(hrules=True, caption=cap, label=label, sparse_index=False,
                           column_format="ll" + "r" * len(cells.columns))


def render(spec: TableSpec, df: pd.DataFrame, collected: dict, source: str, outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    stem = outdir / f"table{spec.number}-{source}"
    csv_frame(df).to_csv(stem.with_suffix(".csv"), index=False)
    stem.with_suffix(".md").write_text(frame_to_markdown(spec, df, collected, source))
    stem.with_suffix(".tex").write_text(table_latex(spec, df, collected, source))  # the paper's layout
    return [stem.with_suffix(s) for s in (".md", ".csv", ".tex")]
