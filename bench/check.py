"""The regression gate: compare measured table cells with published numbers or committed references.

Against published numbers: a one-sided test per cell that counts the paper's number as one run (or the
best of K), row and table tests, Holm over the table, floors as minimum tolerances (bench/verdict.py,
docs/verdicts.md); verdicts "reproduced", "better", "worse", "missing". Against a committed reference:
a cell passes when ``|mean − reference| ≤ max(k·SE, floor[metric])``, else "better" or
"worse-than-band" by the metric's direction (MAE: lower is better). Missing and worse cells fail
(exit 1). Synthetic, non-standard or compact-budget results are never compared with published numbers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import store, verdict
from bench.check_power import simulate_power
from bench.errors import UserError
from bench.metrics import HIGHER_IS_BETTER
from bench.published import lookup
from bench.report.frames import row_text
from bench.report.planning import plan
from bench.report.specs import TABLES, TableSpec, metric_key
from bench.text_match import planned_cells
from bench.verdict import DEFAULT_FLOORS  # noqa: F401 (re-exported: the check's defaults)

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "results" / "reference"
DEFAULT_K = 2.0
VERDICTS = ("reproduced", "better", "worse-than-band", "missing")
VERDICT_NOTE = ("one-sided test per cell counting the paper's number as one run of the same seed distribution, "
                "seed std moderated over the table, row and table tests, Holm over the table at 5 %, floors as "
                "minimum gaps; docs/verdicts.md")
FROZEN_TEXT = "not comparable (frozen text)"  # a BERT row of the paper run on the frozen text features


@dataclass
class CheckOptions:
    k: float = DEFAULT_K
    floors: dict = field(default_factory=lambda: dict(DEFAULT_FLOORS))
    profile: str = "compact"
    overrides: dict = field(default_factory=dict)
    epochs: int | None = None
    # --against published (bench/verdict.py): the paper's number is the best of this many runs
    published_as: int = 1
    alpha: float = 0.05
    assume_std: dict = field(default_factory=dict)  # metric -> known seed std (fraction); n = 1 cells need it
    rows: tuple[str, ...] | None = None
    seed_std: str = "moderated"  # bench.verdict.SEED_STD_MODELS: moderated over the table, or each cell's own
    # rows and the table fail only beyond this many floors (0: any significant shift)
    combined_floor: float = verdict.COMBINED_FLOOR
    text: object = None  # bench.text_encoder.TextChoice: --text-model / --text frozen (None: find either)


def _canon(d: dict) -> str:
    return json.dumps(d, sort_keys=True, default=str)


def collect_cells(spec: TableSpec, results_dir: Path, source: str, opts: CheckOptions,
                  profile: str | None = None) -> dict:
    """(row label, setting) -> list of result dicts whose resolved config equals the table's plan (at
    ``profile``; default: ``opts.profile`` on synthetic data, the full budget on real data).

    Rows whose paper fine-tunes BERT: with ``opts.text`` chosen (``--text-model`` / ``--text frozen``) the
    config must match exactly; without, the runs of the one text encoder the results hold are taken
    (bench.text_match), so ``check``/``report`` find what ``run --table`` made without repeating its flags."""

    by_key: dict[tuple, list] = {}
    for _, r in store.iter_results(results_dir):
        by_key.setdefault((r["method"], r["dataset"], r["setting"]), []).append(r)
    profile = profile or (opts.profile if source == "synthetic" else "full")
    planned = plan(spec, source, profile, opts.overrides, text=opts.text)
    return planned_cells(planned, spec.family, by_key, opts.text, opts.epochs)


def _band(metric: str, se: float, opts: CheckOptions) -> float:
    return max(opts.k * (se if math.isfinite(se) else 0.0), opts.floors.get(metric, 0.01))


def _verdict(key: str, delta: float, band: float) -> str:
    if abs(delta) <= band:
        return "reproduced"
    higher = HIGHER_IS_BETTER[key]
    return "better" if (delta > 0) == higher else "worse-than-band"


def _stats(results: list[dict], key: str) -> tuple[float, float, int]:
    vals = np.array([r["test"].get(key) for r in results], dtype=float)
    vals = vals[~np.isnan(vals)]
    n = len(vals)
    mean = float(vals.mean()) if n else math.nan
    std = float(vals.std(ddof=1)) if n > 1 else math.nan
    return mean, std, n


def _values_by_cell(spec: TableSpec, cells: dict) -> dict:
    """(row label, setting) -> {paper metric: {seed: value}} from result dicts."""
    out = {}
    for key, results in cells.items():
        out[key] = {m: {r["seed"]: r["test"].get(metric_key(spec, m)) for r in results
                        if r["test"].get(metric_key(spec, m)) is not None} for m in spec.metrics}
    return out


def check_rows(spec: TableSpec, rows: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """``--rows`` labels must be measured rows of the table; a typo is exit 2 naming the valid labels."""
    if rows is None:
        return None
    valid = [r.label for r in spec.measured_rows()]
    for label in rows:
        if label not in valid:
            raise UserError(f"--rows {label!r}: table {spec.number} has no measured row of that name. "
                            f"Valid rows: {'; '.join(valid)} (comma-separated)")
    return rows


def require_results(results_dir: Path) -> None:
    """A results directory that does not exist or holds no finished run is bad input, not 'missing N'."""
    path = Path(results_dir)
    if not path.is_dir():
        raise UserError(f"results directory {path} does not exist; give --results DIR (the --out of bench run) "
                        "or --from-csv FILE")
    if next(store.iter_results(path), None) is None:
        raise UserError(f"results directory {path} holds no finished runs (expected {path}/runs/.../seed-N/done); "
                        "run the table first or give --from-csv FILE")


def published_values(spec: TableSpec, results_dir: Path, opts: CheckOptions) -> dict:
    """Our per-seed values of every planned cell from a results directory, after refusing results that must
    not be compared with the paper (synthetic, non-standard files, the compact budget)."""
    return _values_by_cell(spec, published_cells(spec, results_dir, opts))


def published_cells(spec: TableSpec, results_dir: Path, opts: CheckOptions) -> dict:
    """(row label, setting) -> result dicts of a results directory, refused as :func:`published_values` says."""
    cells = collect_cells(spec, results_dir, "real", opts)
    if opts.rows is not None:
        cells = {k: v for k, v in cells.items() if k[0] in opts.rows}
    if not any(cells.values()):
        synth = collect_cells(spec, results_dir, "synthetic", opts)
        if any(synth.values()):
            raise UserError(f"refusing to compare synthetic results with published numbers (table {spec.number}): "
                            "run the table with --data-root pointing at the real MMSA files")
    compact = collect_cells(spec, results_dir, "real", opts, profile="compact")
    short = [k for k, v in cells.items() if not v and compact.get(k)]
    if short:
        raise UserError(f"refusing to compare results made with --profile compact with published numbers "
                        f"({len(short)} cells, e.g. {short[0][0]} / {short[0][1]}): compact budgets and model sizes "
                        "are not the paper's protocol; run the table on real data without --profile compact")
    for rs in cells.values():
        for r in rs:
            if r["data"]["source"] != "real" or not r["data"].get("standard"):
                files = ", ".join(str(f.get("path")) for f in r["data"].get("files", []))
                raise UserError(f"refusing to compare results from non-standard data files ({files}) with "
                                "published numbers: their SHA-256 does not match MMSA's published checksums")
    return cells


def frozen_text_cells(spec: TableSpec, cells: dict) -> set:
    """(row label, setting) blocks whose paper fine-tunes BERT but whose runs used the frozen text features
    (``--text frozen``): a different model, so not comparable with the paper's number."""

    rows = {r.label: r for r in spec.rows}
    return {key for key, results in cells.items()
            if "frozen" in row_text(spec, rows[key[0]], key[1], results).split(";")}


def published_frame(spec: TableSpec, values: dict, opts: CheckOptions, excluded: dict | None = None) -> pd.DataFrame:
    """The cells handed to :func:`bench.verdict.compare`: published number, direction, floor, our values, and
    why a block is kept out of the verdict (``excluded``: (row label, setting) -> reason)."""
    excluded = excluded or {}
    recs = []
    for (label, setting), by_metric in values.items():
        row = next(r for r in spec.rows if r.label == label)
        why = excluded.get((label, setting), "")
        for m in spec.metrics:
            vals = {s: float(v) for s, v in (by_metric.get(m) or {}).items() if v is not None and math.isfinite(v)}
            if len(vals) == 1 and m not in opts.assume_std and not why:
                raise UserError(f"cell {label} / {setting} / {m} has one seed: its seed std cannot be estimated. "
                                f"Run at least 2 seeds (5 recommended) or give --assume-std {m}=STD (a fraction)")
            recs.append({"row": label, "setting": setting, "metric": m,
                         "published": lookup(spec.published_table, row.published_method, row.published_variant, m,
                                             setting),
                         "higher": HIGHER_IS_BETTER[metric_key(spec, m)], "floor": opts.floors.get(m, 0.01),
                         "values": vals, "excluded": why})
    return pd.DataFrame(recs, columns=["row", "setting", "metric", "published", "higher", "floor", "values",
                                       "excluded"])


def check_published(spec: TableSpec, results_dir: Path | None, opts: CheckOptions,
                    values: dict | None = None, frozen: set | None = None) -> pd.DataFrame:
    """Verdicts against the paper (docs/verdicts.md) for a results directory or for ``values`` already read
    (``bench check --from-csv``, with ``frozen`` its (row, setting) blocks run on frozen text): cells, then
    the row and table tests."""
    return compare_published(published_input(spec, results_dir, opts, values, frozen), opts)


def published_input(spec: TableSpec, results_dir: Path | None, opts: CheckOptions,
                    values: dict | None = None, frozen: set | None = None) -> pd.DataFrame:
    """The cells :func:`check_published` compares (:func:`published_frame`), after its refusals."""
    excluded = dict.fromkeys(frozen or (), FROZEN_TEXT)
    if values is None:
        cells = published_cells(spec, results_dir, opts)
        values = _values_by_cell(spec, cells)
        excluded = dict.fromkeys(frozen_text_cells(spec, cells), FROZEN_TEXT)
    elif opts.rows is not None:
        values = {k: v for k, v in values.items() if k[0] in opts.rows}
    return published_frame(spec, values, opts, excluded)


def compare_published(cells: pd.DataFrame, opts: CheckOptions) -> pd.DataFrame:
    return verdict.compare(cells, opts.published_as, opts.alpha, opts.assume_std, opts.seed_std, opts.combined_floor)


def format_verdicts(df: pd.DataFrame) -> str:
    """Markdown: one line per cell (published, ours, n, Δ, p, Holm p, verdict), then the row/table tests."""
    def f(v, metric):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "–"
        return f"{v:.3f}" if metric in ("mae", "corr") else f"{100 * v:.2f}"

    def d(v, metric):  # a signed gap: "+0.000" rather than "-0"
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "–"
        return f"{v:+.3f}" if metric in ("mae", "corr") else f"{100 * v:+.2f}"

    def p(v):
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2g}"

    cells = df[df["level"] == "cell"]
    show = pd.DataFrame({
        "cell": cells["row"] + " / " + cells["setting"] + " / " + cells["metric"],
        "published": [f(v, m) for v, m in zip(cells["published"], cells["metric"])],
        "ours (mean ± std)": [f"{f(a, m)} ± {f(s, m)}" for a, s, m in zip(cells["mean"], cells["std"],
                                                                           cells["metric"])],
        "n": cells["n"],
        "Δ": [d(v, m) for v, m in zip(cells["delta"], cells["metric"])],
        "p": [p(v) for v in cells["p"]], "p (Holm)": [p(v) for v in cells["p_adj"]],
        "verdict": cells["verdict"],
    })
    parts = [show.to_markdown(index=False, disable_numparse=True)]  # keep the formatted strings ("+0.000")
    comb = df[df["level"] != "cell"]
    if len(comb):
        parts += ["", pd.DataFrame({
            "combined test": [("whole table" if r.level == "table" else f"row {r.row}") for r in comb.itertuples()],
            "cells": comb["n"], "mean gap (floors)": [f"{v:+.2f}" for v in comb["gap_floors"]],
            "p": [p(v) for v in comb["p"]], "p (Holm)": [p(v) for v in comb["p_adj"]], "verdict": comb["verdict"],
        }).to_markdown(index=False, disable_numparse=True)]
    return "\n".join(parts)


def published_summary(df: pd.DataFrame) -> str:
    cells = df[df["level"] == "cell"]["verdict"].value_counts().to_dict()
    bad = df[(df["level"] != "cell") & (df["verdict"] == "worse")]
    text = ", ".join(f"{k} {v}" for k, v in cells.items())
    if cells.get(FROZEN_TEXT):
        text += (f" (those {cells[FROZEN_TEXT]} cells ran on the frozen text features instead of the paper's "
                 "fine-tuned BERT and are left out of the verdict; give --text-model PATH to compare them)")
    if len(bad):
        text += "; combined tests worse: " + ", ".join("table" if r.level == "table" else f"row {r.row}"
                                                        for r in bad.itertuples())
    return text


def _row(label, setting, m, key, ref, mean, std, n, opts, se) -> dict:
    if n == 0 or ref is None or math.isnan(mean):
        verdict, delta, band = ("missing" if n == 0 else "no-reference"), math.nan, math.nan
    else:
        delta = mean - ref
        band = _band(m, se, opts)
        verdict = _verdict(key, delta, band)
    return {"row": label, "setting": setting, "metric": m, "reference": ref, "mean": mean, "std": std, "n": n,
            "delta": delta, "band": band, "se": se, "verdict": verdict}


def reference_path(spec: TableSpec, source: str, ref_dir: Path | None = None) -> Path:
    return Path(ref_dir or REFERENCE_DIR) / f"table{spec.number}-{source}.csv"


def _ref_cell(sel: pd.DataFrame, seeds: list[int] | None) -> tuple[float | None, float, int]:
    """(mean, std, n) of a reference cell, restricted to ``seeds`` when given (same-seed comparison)."""
    if not len(sel):
        return None, math.nan, 0
    if seeds is None:
        return float(sel["mean"].iloc[0]), float(sel["std"].iloc[0]), int(sel["n"].iloc[0])
    per_seed = dict((int(a), float(b)) for a, b in (x.split(":") for x in str(sel["values"].iloc[0]).split(";")))
    vals = [per_seed[sd] for sd in seeds if sd in per_seed]
    if len(vals) != len(seeds):
        return None, math.nan, 0
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan, len(vals)


def check_reference(spec: TableSpec, results_dir: Path, opts: CheckOptions, source: str = "synthetic",
                    ref_dir: Path | None = None, rows: tuple[str, ...] | None = None,
                    same_seeds: bool = False) -> pd.DataFrame:
    """Compare current cells with the committed reference; ``same_seeds`` restricts each reference cell
    to the seeds that were rerun (a cheap CI check reruns one seed and compares it with that seed)."""
    path = reference_path(spec, source, ref_dir)
    if not path.is_file():
        raise UserError(f"no reference results at {path}; create them with: bench check --table {spec.number} "
                        "--against reference --update")
    ref = pd.read_csv(path)
    cells = collect_cells(spec, results_dir, source, opts)
    out = []
    for (label, setting), results in cells.items():
        if rows is not None and label not in rows:
            continue
        for m in spec.metrics:
            sel = ref[(ref["row"] == label) & (ref["setting"] == setting) & (ref["metric"] == m)]
            seeds = sorted(r["seed"] for r in results) if same_seeds and results else None
            r_mean, r_std, r_n = _ref_cell(sel, seeds)
            key = metric_key(spec, m)
            mean, std, n = _stats(results, key) if results else (math.nan, math.nan, 0)
            se_cur = std / math.sqrt(n) if n > 1 else 0.0
            se_ref = r_std / math.sqrt(r_n) if r_n > 1 and math.isfinite(r_std) else 0.0
            out.append(_row(label, setting, m, key, r_mean, mean, std, n, opts, math.hypot(se_cur, se_ref)))
    return pd.DataFrame(out)


def update_reference(spec: TableSpec, results_dir: Path, opts: CheckOptions, source: str = "synthetic",
                     ref_dir: Path | None = None) -> Path:
    cells = collect_cells(spec, results_dir, source, opts)
    rows = []
    for (label, setting), results in cells.items():
        if not results:
            raise UserError(f"cannot update the reference: no finished runs for row {label!r} ({setting}); "
                            f"run: python -m bench run --table {spec.number} first")
        for m in spec.metrics:
            mean, std, n = _stats(results, metric_key(spec, m))
            per_seed = sorted((r["seed"], r["test"].get(metric_key(spec, m))) for r in results)
            rows.append({"row": label, "setting": setting, "metric": m, "mean": mean, "std": std, "n": n,
                         "seeds": ",".join(str(sd) for sd, _ in per_seed),
                         "values": ";".join(f"{sd}:{v:.6f}" for sd, v in per_seed),
                         "git_commit": (results[0]["provenance"].get("git") or {}).get("commit"),
                         "data_fingerprint": results[0]["data"]["fingerprint"]})
    path = reference_path(spec, source, ref_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False, float_format="%.6f")
    return path


def format_report(df: pd.DataFrame) -> str:
    def f(v, metric, scale=True):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "–"
        if metric in ("mae", "corr"):
            return f"{v:.3f}"
        return f"{100 * v:.2f}" if scale else f"{v:.3f}"

    show = pd.DataFrame({
        "cell": df["row"] + " / " + df["setting"] + " / " + df["metric"],
        "reference": [f(v, m) for v, m in zip(df["reference"], df["metric"])],
        "measured": [f"{f(a, m)} ± {f(s, m)}" for a, s, m in zip(df["mean"], df["std"], df["metric"])],
        "n": df["n"],
        "Δ": [f(v, m) for v, m in zip(df["delta"], df["metric"])],
        "band": [f(v, m) for v, m in zip(df["band"], df["metric"])],
        "verdict": df["verdict"],
    })
    return show.to_markdown(index=False)


def gate_exit_code(df: pd.DataFrame) -> int:
    """1 when a cell is worse (published: "worse", also a row/table test; reference: "worse-than-band") or
    missing; else 0."""
    return 1 if df["verdict"].isin(["worse", "worse-than-band", "missing"]).any() else 0


def power_lines(cells: pd.DataFrame, df: pd.DataFrame, opts: CheckOptions, tables: int) -> list[str]:
    """The check's own simulated power (bench/check_power.py)."""
    return simulate_power(cells, df, opts.published_as, opts.alpha, opts.seed_std, opts.combined_floor,
                          tables).lines()


def build_report(results_dir: Path, opts: CheckOptions, ref_dir: Path | None = None, power_tables: int = 0) -> str:
    """One Markdown report over all tables: each cell's verdict, gap in points and in SEs, provenance, and
    against the paper the check's simulated power (``power_tables`` tables; 0: none)."""
    parts = ["# emoe-bench reproduction report", "",
             f"Results: `{results_dir}`. Against a reference: band |Δ| ≤ max({opts.k}·SE, floor); floors "
             + ", ".join(f"{k} {v}" for k, v in opts.floors.items()) + " (fractions).", ""]
    for spec in TABLES.values():
        real = collect_cells(spec, results_dir, "real", opts)
        synth = collect_cells(spec, results_dir, "synthetic", opts)
        parts.append(f"## Table {spec.number}: {spec.title}")
        compact_real = collect_cells(spec, results_dir, "real", opts, profile="compact")
        if any(real.values()) or any(compact_real.values()):  # compact real runs: refused with the reason
            try:
                frame = published_input(spec, results_dir, opts)
                df = compare_published(frame, opts)
                label, cells = "against the published numbers (real data)", real
            except UserError as e:
                parts += ["", f"Real-data results present but not comparable: {e}", ""]
                continue
        elif any(synth.values()) and reference_path(spec, "synthetic", ref_dir).is_file():
            df = check_reference(spec, results_dir, opts, "synthetic", ref_dir)
            label, cells = "against the committed synthetic reference (never against the paper)", synth
        else:
            parts += ["", "No finished runs for this table.", ""]
            continue
        if "level" in df:  # against the paper: the statistical verdicts
            parts += ["", f"Compared {label} ({VERDICT_NOTE}).", "", format_verdicts(df), ""]
            if power_tables:
                parts += ["; ".join(power_lines(frame, df, opts, power_tables)) + ".", ""]
            df = df[df["level"] == "cell"]
        else:
            df = df.assign(gap_se=[d / s if s and math.isfinite(s) and s > 0 else math.nan
                                   for d, s in zip(df["delta"], df["se"])])
            parts += ["", f"Compared {label}.", "", format_report(df), ""]
        if "gap_se" in df and df["gap_se"].notna().any():
            parts.append("Gap in standard errors: " + ", ".join(
                f"{r.row}/{r.setting}/{r.metric} {r.gap_se:+.1f}" for r in df.itertuples() if math.isfinite(r.gap_se)))
            parts.append("")
        prov = {((r["provenance"].get("git") or {}).get("commit") or "?")[:10] for rs in cells.values() for r in rs}
        data = {f"{r['data']['name']} ({r['data']['source']}, {r['data']['fingerprint'][:12]})"
                for rs in cells.values() for r in rs}
        seeds = sorted({r["seed"] for rs in cells.values() for r in rs})
        parts += [f"Provenance: commits {', '.join(sorted(prov))}; data {', '.join(sorted(data))}; "
                  f"seeds {', '.join(map(str, seeds))}.", ""]
        counts = df["verdict"].value_counts().to_dict()
        parts += ["Verdicts: " + ", ".join(f"{k} {v}" for k, v in counts.items()), ""]
    return "\n".join(parts)
