"""``bench check --from-csv``: another lab's per-seed results as a long CSV (like ``results/runs-long.csv``).

Required columns: method, dataset, setting, seed, split, metric, value (registry method names, dataset
mosi/mosei/mintrec, metric keys of result.json, accuracies as fractions; only split == test is used;
extra columns are ignored). An optional ``row`` column names the table row where several rows run the
same method (Table 4's ablations are all ``emoe``); an optional ``text`` column says ``frozen`` for runs on
the frozen text features (their BERT rows are then not compared with the paper). Rows whose
``data_source`` is ``synthetic`` are refused. Every problem is one line naming what is wrong (exit 2).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.errors import UserError, did_you_mean
from bench.metrics import HIGHER_IS_BETTER
from bench.registry import get_method, methods
from bench.report.planning import plan
from bench.report.specs import TableSpec, metric_key
from bench.text_encoder import paper_uses_bert

REQUIRED = ("method", "dataset", "setting", "seed", "split", "metric", "value")
DATASETS = ("mosi", "mosei", "mintrec")
SETTINGS = ("aligned", "unaligned")
FRACTION_METRICS = tuple(k for k in HIGHER_IS_BETTER if k not in ("mae", "corr", "loss"))


def read_long_csv(path: Path) -> pd.DataFrame:
    """The test-split lines of the CSV, validated; ``seed`` int, ``value`` float (NaN = not recorded)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--from-csv {path}: no such file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise UserError(f"--from-csv {path}: not a readable CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UserError(f"--from-csv {path}: missing columns {', '.join(missing)} "
                        f"(expected at least {','.join(REQUIRED)})")
    for c in df.columns:
        df[c] = df[c].str.strip()
    if "data_source" in df.columns and (df["data_source"] == "synthetic").any():
        raise UserError(f"--from-csv {path}: refusing rows with data_source 'synthetic': synthetic results are never "
                        "compared with published numbers")
    synthetic = df["dataset"][df["dataset"].str.startswith("synthetic")]
    if len(synthetic):
        raise UserError(f"--from-csv {path}: refusing synthetic dataset {synthetic.iloc[0]!r}: "
                        "synthetic results are never compared with published numbers")
    _known(df, "dataset", DATASETS, path)
    _known(df, "setting", SETTINGS, path)
    _known(df, "metric", tuple(HIGHER_IS_BETTER), path)

    _known(df, "method", tuple(methods()), path)
    seeds = pd.to_numeric(df["seed"], errors="coerce")
    bad = df.index[seeds.isna() | (seeds != seeds.round())]
    if len(bad):
        raise UserError(f"--from-csv {path}: line {bad[0] + 2}: seed {df.loc[bad[0], 'seed']!r} is not a whole number")
    values = pd.to_numeric(df["value"], errors="coerce")
    blank = df["value"].str.lower().isin(("", "nan"))
    bad = df.index[(values.isna() & ~blank) | values.isin([math.inf, -math.inf])]
    if len(bad):
        raise UserError(f"--from-csv {path}: line {bad[0] + 2}: value {df.loc[bad[0], 'value']!r} is not a finite "
                        "number")
    df["seed"], df["value"] = seeds.astype(int), values
    pct = df.index[df["metric"].isin(FRACTION_METRICS) & (df["value"].abs() > 1)]
    if len(pct):
        r = df.loc[pct[0]]
        raise UserError(f"--from-csv {path}: line {pct[0] + 2}: {r['metric']} = {r['value']} looks like a percentage; "
                        "give accuracies and F1 as fractions (0.477, not 47.7)")
    df = df[df["split"] == "test"]
    if df.empty:
        raise UserError(f"--from-csv {path}: no lines with split 'test'")
    return df


def _known(df: pd.DataFrame, column: str, valid: tuple, path: Path) -> None:
    unknown = sorted(set(df[column]) - set(valid))
    if unknown:
        raise UserError(f"--from-csv {path}: unknown {column} {unknown[0]!r}.{did_you_mean(unknown[0], valid)}")


def table_values(spec: TableSpec, df: pd.DataFrame, path: Path) -> dict:
    """(row label, setting) -> {paper metric: {seed: value}} for every planned cell of the table."""
    planned = plan(spec, "real", "full")
    if "row" in df.columns:
        labels = [p.row.label for p in planned]
        _known(df, "row", tuple(dict.fromkeys(labels)), path)
    else:
        for setting in spec.settings:
            methods = [p.row.method for p in planned if p.setting == setting]
            shared = sorted({m for m in methods if methods.count(m) > 1})
            if shared:
                rows = "; ".join(p.row.label for p in planned if p.row.method == shared[0] and p.setting == setting)
                raise UserError(f"--from-csv {path}: table {spec.number} has several rows of method {shared[0]!r} "
                                f"({rows}): add a 'row' column with the row label")
    out = {}
    for p in planned:
        sel = df[(df["method"] == p.row.method) & (df["dataset"] == spec.family) & (df["setting"] == p.setting)]
        if "row" in df.columns:
            sel = sel[sel["row"] == p.row.label]
        by_metric = {}
        for m in spec.metrics:
            g = sel[sel["metric"] == metric_key(spec, m)].dropna(subset=["value"])
            dup = g["seed"][g["seed"].duplicated()]
            if len(dup):
                raise UserError(f"--from-csv {path}: several values for {p.row.label} / {p.setting} / "
                                f"{metric_key(spec, m)} seed {dup.iloc[0]}: the CSV mixes configurations; keep one "
                                "(e.g. filter by config_hash) or add a 'row' column")
            by_metric[m] = dict(zip(g["seed"], g["value"]))
        out[(p.row.label, p.setting)] = by_metric
    return out


def frozen_text_blocks(spec: TableSpec, df: pd.DataFrame) -> set:
    """(row label, setting) blocks whose paper fine-tunes BERT and whose lines say ``text == frozen``."""
    if "text" not in df.columns:
        return set()

    frozen = df[df["text"].str.lower() == "frozen"]
    out = set()
    for p in plan(spec, "real", "full"):
        if not paper_uses_bert(get_method(p.row.method), spec.family, p.setting):
            continue
        sel = frozen[(frozen["method"] == p.row.method) & (frozen["dataset"] == spec.family)
                     & (frozen["setting"] == p.setting)]
        if "row" in df.columns:
            sel = sel[sel["row"] == p.row.label]
        if len(sel):
            out.add((p.row.label, p.setting))
    return out
