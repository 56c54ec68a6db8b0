"""Table frames: the long numeric frame (statistics per cell against the reference row) and the display
frame (strings and bold mask) that every renderer shares; Fig. 4's long frame."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench import stats
from bench.metrics import HIGHER_IS_BETTER
from bench.published import PAPER_METRIC_TO_OURS, load_published, lookup
from bench.registry import get_method
from bench.report.figure_specs import FigureSpec
from bench.report.specs import PUBLISHED_TAG, Row, TableSpec, metric_key, metric_label
from bench.text_encoder import paper_uses_bert, text_of


# ------------------------------------------------------------------------------------ numbers
def shows_published(collected: dict, source: str) -> bool:
    """Published numbers are shown only next to real data whose files are the standard published ones."""
    return source == "real" and all(r["data"].get("source") == "real" and r["data"].get("standard")
                                    for rs in collected.values() for r in rs)


def table_frame(spec: TableSpec, collected: dict, source: str) -> pd.DataFrame:
    """Long numeric frame, one line per (row, setting, metric): kind (measured/published), mean, std, n,
    t-interval, per-seed values, the published value, and the tests of the row against the reference row
    (EMOE): Welch p (+ Holm over the table), exact/Monte-Carlo permutation p (+ Holm), Mann–Whitney p,
    Hedges' g (reference − row) and P(reference better than row) = U/(n·m), direction-aware."""
    pub_ok = shows_published(collected, source)
    recs = []
    for setting in spec.settings:
        for row in spec.rows:
            results = collected.get((row.label, setting))  # measured iff it has results
            if not results and not pub_ok:
                continue
            for m in spec.metrics:
                pub = lookup(spec.published_table, row.published_method, row.published_variant, m, setting) \
                    if pub_ok else None
                vals = [r["test"].get(metric_key(spec, m)) for r in results or []]
                vals = [np.nan if v is None else float(v) for v in vals]
                s = stats.cell_summary(vals)
                recs.append({"row": row.label, "kind": "measured" if results else "published",
                             "setting": setting, "metric": m, **s, "values": vals, "published": pub,
                             "text": row_text(spec, row, setting, results or [])})
    df = pd.DataFrame(recs)
    tests = []
    for _, r in df.iterrows():
        ref = df[(df["row"] == spec.reference_row) & (df["setting"] == r["setting"]) & (df["metric"] == r["metric"])
                 & (df["kind"] == "measured")]
        if r["row"] == spec.reference_row or r["kind"] != "measured" or not len(ref):
            tests.append({"p_welch": np.nan, "p_perm": np.nan, "p_mwu": np.nan, "hedges_g": np.nan,
                          "p_ref_better": np.nan})
            continue
        higher = HIGHER_IS_BETTER[metric_key(spec, r["metric"])]
        c = stats.compare(ref["values"].iloc[0], r["values"], higher_is_better=higher)
        tests.append({**{k: c[k] for k in ("p_welch", "p_perm", "p_mwu", "hedges_g")}, "p_ref_better": c["p_a_better"]})
    t = pd.DataFrame(tests, index=df.index)
    for col in t.columns:
        df[col] = t[col]
    df["p_holm"] = stats.holm(df["p_welch"])
    df["p_perm_holm"] = stats.holm(df["p_perm"])
    return df


def n_comparisons(df: pd.DataFrame) -> int:
    return int(df["p_welch"].notna().sum()) if "p_welch" in df else 0


def seeds_note(spec: TableSpec, df: pd.DataFrame) -> str | None:
    meas = df[df["kind"] == "measured"]
    if meas.empty or len(meas["row"].unique()) < 2:
        return None
    return stats.min_seeds_note(int(meas["n"].min()), n_comparisons=max(1, n_comparisons(df)))


def csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["values"]).assign(values=df["values"].map(lambda v: ";".join(f"{x:.6f}" for x in v)))


def _fmt(metric: str, mean: float, std: float) -> str:
    if mean is None or math.isnan(mean):
        return "–"
    if metric == "mae":
        return f"{mean:.3f} ± {std:.3f}" if not math.isnan(std) else f"{mean:.3f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}" if not math.isnan(std) else f"{100 * mean:.1f}"


def _fmt_pub(metric: str, value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.3f}" if metric == "mae" else f"{100 * value:.1f}"


def bert_in_paper(spec: TableSpec, row: Row) -> bool:
    """The paper marks this row as BERT-based (numbers.csv column ``bert``)."""
    df = load_published()
    sel = df[(df["table"] == spec.published_table) & (df["method"] == row.published_method)]
    return bool(len(sel)) and (sel["bert"].astype(str).str.lower() == "yes").any()


def row_text(spec: TableSpec, row: Row, setting: str, results: list[dict]) -> str:
    """For a measured row whose paper fine-tunes BERT: "frozen" (ran on the frozen text features) or the
    checkpoint(s) it fine-tuned; "" for every other row."""
    if not results or not row.measured or not paper_uses_bert(get_method(row.method), spec.family, setting):
        return ""
    return ";".join(sorted({text_of(r) for r in results}))


FROZEN_TAG = " (frozen text)"


def _row_label(spec: TableSpec, row: Row | None, label: str, kind: str, text: str = "", source: str = "real") -> str:
    """Label + "*" (BERT in the paper, Tables 1-2) + " (frozen text)" (real data only: a BERT row that ran
    on the frozen features) + " [published]"."""
    star = "*" if spec.bert_star and row is not None and bert_in_paper(spec, row) else ""
    frozen = FROZEN_TAG if source == "real" and "frozen" in str(text).split(";") else ""
    return label + star + frozen + ("" if kind == "measured" else PUBLISHED_TAG)


def display_frame(spec: TableSpec, df: pd.DataFrame, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(strings, bold mask) with one line per (setting, row) and one column per metric.

    Measured cells: mean ± sample std, † when the Holm-corrected Welch p vs the reference row is < 0.05,
    and on real standard data ``[paper X, Δ ±Y]``. Published-only rows show the paper's number. Bold: the
    best measured mean per column and setting (direction-aware; MAE lower is better)."""
    cols = [metric_label(spec, m) for m in spec.metrics]
    kinds = {(r["setting"], r["row"]): r["kind"] for _, r in df.iterrows()}
    texts = {(r["setting"], r["row"]): r.get("text", "") for _, r in df.iterrows()}
    rows = {r.label: r for r in spec.rows}

    def shown(s, label):
        return _row_label(spec, rows.get(label), label, kinds[(s, label)], texts[(s, label)], source)

    index = [(s, shown(s, r.label)) for s in spec.settings for r in spec.rows if (s, r.label) in kinds]
    cells = pd.DataFrame(index=pd.MultiIndex.from_tuples(index, names=["setting", "row"]), columns=cols,
                         dtype=object)
    bold = pd.DataFrame(False, index=cells.index, columns=cols)
    for m, col in zip(spec.metrics, cols):
        sub = df[df["metric"] == m]
        for s in spec.settings:
            ss = sub[sub["setting"] == s]
            if ss.empty:
                continue
            meas = ss[(ss["kind"] == "measured") & ss["mean"].notna()]
            higher = HIGHER_IS_BETTER[metric_key(spec, m)]
            best = (meas["mean"].max() if higher else meas["mean"].min()) if len(meas) else math.nan
            for _, r in ss.iterrows():
                idx = (s, shown(s, r["row"]))
                if r["kind"] == "published":
                    cells.loc[idx, col] = _fmt_pub(m, r["published"])
                    continue
                text = _fmt(m, r["mean"], r["std"])
                if not math.isnan(r["p_holm"]) and r["p_holm"] < 0.05:
                    text += " †"
                pub = r["published"]
                if pub is not None and not (isinstance(pub, float) and math.isnan(pub)):
                    diff = (r["mean"] - r["published"]) * (1 if m == "mae" else 100)
                    text += f" [paper {_fmt_pub(m, r['published'])}, Δ {diff:+.{3 if m == 'mae' else 1}f}]"
                cells.loc[idx, col] = text
                bold.loc[idx, col] = bool(r["mean"] == best)
    return cells, bold


def sensitivity_frame(spec: FigureSpec, done: list):
    """Long frame: param, value, dataset, setting, metric, seed, score (the default row counts for
    every parameter at 0.1)."""

    recs = []
    for p, records in done:
        if p.row.label == "default":
            pv = [(q, spec.default_value) for q in spec.params]
        else:
            q, v = p.row.label.split("=")
            pv = [(q, float(v))]
        for q, v in pv:
            for rec in records:
                for m in spec.metrics:
                    val = rec.result["test"].get(PAPER_METRIC_TO_OURS[m])
                    recs.append({"param": q, "value": v, "dataset": p.dataset, "setting": p.setting, "metric": m,
                                 "seed": rec.seed, "score": np.nan if val is None else float(val)})
    return pd.DataFrame(recs)
