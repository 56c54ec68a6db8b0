"""Committed tables re-rendered in the paper's layout from what is committed beside them, no run store needed.

``results/tables/tableN-<source>.csv`` holds the table frame (numbers, tests, published values) and the
``.md`` the long caption (data hashes, seeds, selection, assumptions, commits); together they give the
``.tex`` that ``bench run --table N`` would write from the runs, without the runs (which are not committed).
Usage: ``python -c "from bench.report.retex import write_all; write_all('results/tables')"``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import UserError
from bench.report.frames import FROZEN_TAG
from bench.report.latex import CaptionFacts, assemble, in_layout_words, short_rule
from bench.report.specs import PUBLISHED_TAG, TABLES

_NAME = re.compile(r"table(\d+)-(synthetic|real)\.csv")


def frame_from_csv(path: Path) -> pd.DataFrame:
    """The frame ``bench.report.frames.table_frame`` built, as ``csv_frame`` wrote it (values back to lists)."""
    df = pd.read_csv(path)
    df["values"] = df["values"].map(lambda v: [float(x) for x in v.split(";")] if isinstance(v, str) else [])
    df["published"] = df["published"].map(lambda v: None if pd.isna(v) else float(v))
    return df


def long_caption(md: str) -> str:
    """The markdown file's caption: its last paragraph."""
    return [p for p in md.strip().split("\n\n") if p.strip()][-1].strip()


def frozen_rows(md: str) -> set[str]:
    """Rows the markdown table tags "(frozen text)": they ran on frozen text features, not the paper's BERT."""
    labels = set()
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 1 and FROZEN_TAG.strip() in cells[1]:
            labels.add(cells[1].replace(PUBLISHED_TAG, "").replace(FROZEN_TAG, "").rstrip("*"))
    return labels


def retex(csv_path: Path) -> str:
    """The paper-layout ``.tex`` for a committed ``tableN-<source>.csv`` and its ``.md``."""
    m = _NAME.fullmatch(csv_path.name)
    md_path = csv_path.with_suffix(".md")
    if not m or int(m.group(1)) not in TABLES or not md_path.is_file():
        raise UserError(f"{csv_path}: expected results/tables/tableN-<synthetic|real>.csv with its .md beside it")
    spec, source = TABLES[int(m.group(1))], m.group(2)
    df, md = frame_from_csv(csv_path), md_path.read_text()
    frozen = frozen_rows(md)
    df["text"] = np.where(df["row"].isin(frozen) & (df["kind"] == "measured"), "frozen", "")
    cap = long_caption(md)
    rule = re.search(r"Selection: ([^.]*(?:\.\d[^.]*)*)\.", cap)
    measured = df[df["kind"] == "measured"]
    facts = CaptionFacts("/".join(str(int(n)) for n in sorted(measured["n"].unique())),
                         short_rule(rule.group(1)) if rule else "selection in the note",
                         source == "real" and "NON-STANDARD" not in cap)
    return assemble(spec, df, source, facts, "Provenance. " + in_layout_words(spec, cap))


def write_all(tables_dir: str | Path) -> list[Path]:
    """Rewrite every ``tableN-<source>.tex`` under ``tables_dir`` that has a ``.csv`` and ``.md``."""
    written = []
    for csv_path in sorted(Path(tables_dir).glob("table*-*.csv")):
        if _NAME.fullmatch(csv_path.name) and csv_path.with_suffix(".md").is_file():
            out = csv_path.with_suffix(".tex")
            out.write_text(retex(csv_path))
            written.append(out)
    return written
