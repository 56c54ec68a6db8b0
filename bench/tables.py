"""The paper's tables as data: which method variants run on which data, and how cells are shown.

``bench run --table N`` runs every missing run of table N (finished runs are reused), then renders
``results/tables/tableN-<data>.{md,csv,tex}``. Without a data root the embedded synthetic default is
used; the console, the file names and the caption say so, and published numbers are not shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import stats
from bench.errors import UserError
from bench.metrics import HIGHER_IS_BETTER
from bench.published import PAPER_METRIC_TO_OURS, lookup


@dataclass(frozen=True)
class Row:
    label: str
    method: str
    overrides: dict = field(default_factory=dict)
    published_variant: str = "-"  # numbers.csv "variant" for this row
    published_method: str = "EMOE"


@dataclass(frozen=True)
class TableSpec:
    number: int
    title: str
    family: str  # dataset family the paper used ("mosi")
    settings: tuple[str, ...]
    rows: tuple[Row, ...]
    metrics: tuple[str, ...]  # paper metric names (acc7, acc2, f1, mae)
    published_table: str
    reference_row: str  # the row every other row is tested against
    assumptions: str
    # Model/budget overrides for the synthetic compact profile (pipeline check on 2 CPU cores).
    compact_overrides: dict = field(default_factory=dict)


# Synthetic compact profile: a narrower EMOE (d 64, 2 layers), plain batches of 16 at lr 1e-3 and a
# capped budget, so a whole table runs in minutes on 2 CPU cores. Real-data runs use the official
# sizes and budget. (With the official lr 1e-4 and 10-batch accumulation a compact run learns too little
# in 20 epochs to show anything.)
EMOE_COMPACT = {"d_model": "64", "n_heads": "4", "n_layers": "2", "grad_accum": "1", "learning_rate": "1e-3",
                "max_epochs": "20", "early_stop": "6"}

TABLES: dict[int, TableSpec] = {
    4: TableSpec(
        number=4, title="MoME / UD ablation (EMOE paper Table 4, CMU-MOSI)", family="mosi",
        settings=("aligned",),
        rows=(
            Row("w/o MoME, w/o UD", "emoe", {"mome": "false", "ud": "false", "keep_unimodal_loss": "false"},
                "none"),
            Row("MoME only", "emoe", {"ud": "false"}, "MoME"),
            Row("UD only", "emoe", {"mome": "false"}, "UD"),
            Row("MoME + UD (EMOE)", "emoe", {}, "MoME+UD"),
        ),
        metrics=("acc7", "acc2", "f1", "mae"), published_table="T4", reference_row="MoME + UD (EMOE)",
        assumptions=("setting unstated in the paper; aligned used (its full row equals Table 1 MOSI aligned). "
                     "Removing MoME = fixed weights 1/3 and no router losses; removing UD = lambda2 term off; "
                     "the 'neither' row also drops the unimodal losses (specs/emoe.md §14)."),
        compact_overrides={"emoe": EMOE_COMPACT},
    ),
    5: TableSpec(
        number=5, title="Expert-balancing ablation (EMOE paper Table 5, CMU-MOSI)", family="mosi",
        settings=("aligned",),
        rows=(
            Row("w/o RE", "emoe", {"router_entropy": "false"}, "w/o RE"),
            Row("w/o WIS", "emoe", {"weight_importance_sim": "false"}, "w/o WIS"),
            Row("EMOE", "emoe", {}, "full"),
        ),
        metrics=("acc7", "acc2", "f1"), published_table="T5", reference_row="EMOE",
        assumptions=("setting unstated in the paper; aligned used. RE = router entropy, "
                     "WIS = weight-importance similarity."),
        compact_overrides={"emoe": EMOE_COMPACT},
    ),
    6: TableSpec(
        number=6, title="Sum vs concat fusion (EMOE paper Table 6, CMU-MOSI)", family="mosi",
        settings=("aligned", "unaligned"),
        rows=(
            Row("Sum", "emoe", {"fusion": "sum"}, "sum"),
            Row("Concat", "emoe", {"fusion": "concat"}, "concat"),
        ),
        metrics=("acc7", "acc2", "f1"), published_table="T6", reference_row="Sum",
        assumptions="concat fusion scales the concatenation by 3 as the official code does (concat_scale).",
        compact_overrides={"emoe": EMOE_COMPACT},
    ),
}

METRIC_LABELS = {"acc7": "Acc-7", "acc2": "Acc-2 (non0)", "f1": "F1 (non0)", "mae": "MAE"}
DEFAULT_TABLE_SEEDS = {"synthetic": 3, "real": 5}


def _available(method: str) -> bool:
    from bench.registry import methods

    return method in methods()


@dataclass(frozen=True)
class PlannedRun:
    row: Row
    setting: str
    dataset: str
    overrides: dict


def plan(spec: TableSpec, source: str, profile: str, user_sets: dict | None = None,
         rows: tuple[str, ...] | None = None) -> list[PlannedRun]:
    """The runs behind a table: one per (row, setting), with the row's switches and profile overrides."""
    dataset = spec.family if source == "real" else f"synthetic-{spec.family}"
    out = []
    for setting in spec.settings:
        for row in spec.rows:
            if rows is not None and row.label not in rows:
                continue
            overrides = {}
            if source == "synthetic" and profile == "compact":
                overrides.update(spec.compact_overrides.get(row.method, {}))
            overrides.update(row.overrides)
            overrides.update(user_sets or {})
            out.append(PlannedRun(row, setting, dataset, overrides))
    return out


def run_and_render(spec: TableSpec, args) -> int:
    from bench.cli import SYNTHETIC_BANNER, _print_data_banner
    from bench.config import parse_sets
    from bench.data import resolve_data_root
    from bench.runner import RunRequest, load_bundle, run
    from bench.train.seeding import parse_seeds

    data_root = resolve_data_root(args.data_root)
    source = "real" if data_root else "synthetic"
    seeds = parse_seeds(args.seeds) if args.seeds else parse_seeds(str(DEFAULT_TABLE_SEEDS[source]))
    missing = sorted({r.method for r in spec.rows if not _available(r.method)})
    print(f"Table {spec.number}: {spec.title}")
    if source == "synthetic":
        print(SYNTHETIC_BANNER)
    if missing:
        print(f"not yet implemented, rows skipped: methods {', '.join(missing)}")
    collected: dict[tuple[str, str], list[dict]] = {}
    bundles = {}
    for p in plan(spec, source, args.profile, parse_sets(args.sets)):
        if p.row.method in missing:
            continue
        req = RunRequest(method=p.row.method, dataset=p.dataset, setting=p.setting, seeds=seeds,
                         overrides=p.overrides, epochs=args.epochs, data_root=str(data_root) if data_root else None,
                         out=args.out, device=args.device, force=args.force, profile=args.profile,
                         clean_nan=args.clean_nan, data_seed=args.data_seed)
        if p.setting not in bundles:
            bundles[p.setting] = load_bundle(req)
            if source == "real":
                _print_data_banner(bundles[p.setting])
        recs = run(req, bundle=bundles[p.setting], progress=False if args.quiet else None)
        collected[(p.row.label, p.setting)] = [r.result for r in recs]
    if not collected:
        print("nothing to render: no row of this table can run yet")
        return 0
    frame = table_frame(spec, collected, source)
    paths = render(spec, frame, collected, source, Path(args.out) / "tables")
    print(frame_to_markdown(spec, frame, collected, source))
    print("written: " + ", ".join(str(p) for p in paths))
    return 0


def table_frame(spec: TableSpec, collected: dict, source: str) -> pd.DataFrame:
    """Long numeric frame: row, setting, metric, mean, std, n, values, published, p_holm."""
    recs = []
    for (label, setting), results in collected.items():
        row = next(r for r in spec.rows if r.label == label)
        for m in spec.metrics:
            ours = PAPER_METRIC_TO_OURS[m]
            vals = [r["test"].get(ours) for r in results]
            vals = [np.nan if v is None else float(v) for v in vals]
            s = stats.cell_summary(vals)
            pub = None
            if source == "real" and all(r["data"].get("standard") for r in results):
                pub = lookup(spec.published_table, row.published_method, row.published_variant, m, setting)
            recs.append({"row": label, "setting": setting, "metric": m, **s, "values": vals, "published": pub})
    df = pd.DataFrame(recs)
    # Welch tests of every row against the reference row, Holm-corrected over the whole table.
    p_raw = []
    for _, r in df.iterrows():
        if r["row"] == spec.reference_row:
            p_raw.append(np.nan)
            continue
        ref = df[(df["row"] == spec.reference_row) & (df["setting"] == r["setting"]) & (df["metric"] == r["metric"])]
        p_raw.append(stats.welch(r["values"], ref["values"].iloc[0]) if len(ref) else np.nan)
    df["p_welch"] = p_raw
    df["p_holm"] = stats.holm(p_raw)
    return df


def _fmt(metric: str, mean: float, std: float) -> str:
    if math.isnan(mean):
        return "–"
    if metric == "mae":
        return f"{mean:.3f} ± {std:.3f}" if not math.isnan(std) else f"{mean:.3f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}" if not math.isnan(std) else f"{100 * mean:.1f}"


def display_frame(spec: TableSpec, df: pd.DataFrame, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(strings, bold mask) with one row per (row, setting) and one column per metric."""
    cols = [METRIC_LABELS[m] for m in spec.metrics]
    index = [(r.label, s) for s in spec.settings for r in spec.rows
             if ((df["row"] == r.label) & (df["setting"] == s)).any()]
    cells = pd.DataFrame(index=pd.MultiIndex.from_tuples(index, names=["row", "setting"]), columns=cols,
                         dtype=object)
    bold = pd.DataFrame(False, index=cells.index, columns=cols)
    for m, col in zip(spec.metrics, cols):
        sub = df[df["metric"] == m]
        for s in spec.settings:
            ss = sub[sub["setting"] == s]
            if ss.empty:
                continue
            higher = HIGHER_IS_BETTER[PAPER_METRIC_TO_OURS[m]]
            best = ss["mean"].max() if higher else ss["mean"].min()
            for _, r in ss.iterrows():
                text = _fmt(m, r["mean"], r["std"])
                if not math.isnan(r["p_holm"]) and r["p_holm"] < 0.05:
                    text += " †"
                if source == "real" and r["published"] is not None:
                    pub = r["published"] if m == "mae" else 100 * r["published"]
                    diff = (r["mean"] - r["published"]) * (1 if m == "mae" else 100)
                    text += f" [paper {pub:.{3 if m == 'mae' else 1}f}, Δ {diff:+.{3 if m == 'mae' else 1}f}]"
                cells.loc[(r["row"], s), col] = text
                bold.loc[(r["row"], s), col] = bool(r["mean"] == best)
    return cells, bold


def caption(spec: TableSpec, collected: dict, source: str) -> str:
    first = next(iter(collected.values()))[0]
    seeds = sorted({r["seed"] for rs in collected.values() for r in rs})
    ns = sorted({len(rs) for rs in collected.values()})
    data = first["data"]
    if source == "synthetic":
        src = (f"SYNTHETIC data ({data['name']}, profile {data.get('profile')}, "
               f"fingerprint {data['fingerprint'][:12]}); not comparable with the paper")
    else:
        sha = ", ".join(str(f.get("sha256"))[:12] for f in data.get("files", []))
        src = f"real data ({data['name']}, sha256 {sha}{'' if data.get('standard') else '; NON-STANDARD files'})"
    commit = (first["provenance"].get("git") or {}).get("commit") or "unknown"
    dirty = " (dirty)" if (first["provenance"].get("git") or {}).get("dirty") else ""
    note = stats.min_seeds_note(min(ns))
    parts = [
        f"Table {spec.number}: {spec.title}.", f"Data: {src}.",
        f"Cells: test mean ± sample std (ddof=1) over n={'/'.join(map(str, ns))} seeds ({', '.join(map(str, seeds))}); "
        "Acc/F1 in %, Acc-2/F1 Non0 convention.",
        f"Selection: {first['selection']['rule']}.",
        f"Bold: best per column (MAE lower is better). †: Welch's t-test vs '{spec.reference_row}', "
        "Holm-corrected over the table, p < 0.05.",
        f"Assumptions: {spec.assumptions}", f"Commit {commit[:10]}{dirty}.",
    ]
    if note:
        parts.append(f"Note: {note}.")
    return " ".join(parts)


def frame_to_markdown(spec, df, collected, source) -> str:
    cells, bold = display_frame(spec, df, source)
    shown = cells.copy()
    for idx in shown.index:
        for col in shown.columns:
            if bold.loc[idx, col]:
                shown.loc[idx, col] = f"**{shown.loc[idx, col]}**"
    shown = shown.reset_index()
    return shown.to_markdown(index=False) + "\n\n" + caption(spec, collected, source) + "\n"


def frame_to_latex(spec, df, collected, source) -> str:
    cells, bold = display_frame(spec, df, source)
    tex = cells.map(lambda s: str(s).replace("±", r"$\pm$").replace("†", r"$^\dagger$").replace("Δ", r"$\Delta$"))
    styler = tex.style.apply(lambda _: bold.map(lambda b: "textbf:--rwrap;" if b else ""), axis=None)
    label = f"tab:table{spec.number}-{source}"
    cap = caption(spec, collected, source).replace("%", r"\%").replace("_", r"\_").replace("±", r"$\pm$")
    cap = cap.replace("†", r"$^\dagger$").replace("§", r"\S")
    return styler.to_latex(hrules=True, caption=cap, label=label, column_format="ll" + "r" * len(cells.columns))


def render(spec: TableSpec, df: pd.DataFrame, collected: dict, source: str, outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    stem = outdir / f"table{spec.number}-{source}"
    csv = df.drop(columns=["values"]).assign(values=df["values"].map(lambda v: ";".join(f"{x:.6f}" for x in v)))
    csv.to_csv(stem.with_suffix(".csv"), index=False)
    stem.with_suffix(".md").write_text(frame_to_markdown(spec, df, collected, source))
    stem.with_suffix(".tex").write_text(frame_to_latex(spec, df, collected, source))
    return [stem.with_suffix(s) for s in (".md", ".csv", ".tex")]


def require_table(n: int) -> TableSpec:
    if n not in TABLES:
        raise UserError(f"table {n} is not available; available: {', '.join(map(str, sorted(TABLES)))}")
    return TABLES[n]
