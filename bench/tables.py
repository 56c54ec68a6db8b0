"""The paper's tables as data: which method variants run on which data, and how cells are shown.

``bench run --table N`` runs every missing run of table N (finished runs are reused), then renders
``results/tables/tableN-<data>.{md,csv,tex}``. Without a data root the embedded synthetic default is
used; the console, the file names and the caption say so, and published numbers are not shown.
docs/tables.md describes every table, the statistics and the rendering.
"""

from __future__ import annotations

import dataclasses
import math
import re
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
    """One table row. ``method`` is a registered method (a measured row) or "" for a row that is only
    copied from the paper (``published_method`` names it in bench/published_data/numbers.csv)."""

    label: str
    method: str
    overrides: dict = field(default_factory=dict)
    published_variant: str = "-"  # numbers.csv "variant" for this row
    published_method: str = "EMOE"

    @property
    def measured(self) -> bool:
        return bool(self.method)


def published_row(label: str, published_method: str | None = None) -> Row:
    """A row shown from the paper only (real standard data), never measured."""
    return Row(label, "", {}, "-", published_method or label)


@dataclass(frozen=True)
class TableSpec:
    number: int
    title: str
    family: str  # dataset family the paper used ("mosi")
    settings: tuple[str, ...]
    rows: tuple[Row, ...]
    metrics: tuple[str, ...]  # paper metric names (acc7, acc2, f1, mae; acc, f1, precision, recall)
    published_table: str
    reference_row: str  # the row every other row is tested against
    assumptions: str
    # What this table adds to a method's compact preset (pipeline check on 2 CPU cores), per method.
    compact_extra: dict = field(default_factory=dict)
    # paper metric -> our result key where it differs from bench.published.PAPER_METRIC_TO_OURS
    metric_keys: dict = field(default_factory=dict)
    metric_labels: dict = field(default_factory=dict)
    # row label -> why it is not measured yet (shown in the console and the caption)
    pending: dict = field(default_factory=dict)
    convention: str = "Acc/F1 in %, Acc-2/F1 Non0 convention (negative vs positive, label-0 samples excluded)"
    # False where the paper does not say which setting it used: --setting may then pick another one
    setting_stated: bool = True
    # the paper marks rows with BERT text by "*" (Tables 1-2; results/published/numbers.csv column bert)
    bert_star: bool = False

    def measured_rows(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.measured)


def metric_key(spec: TableSpec, metric: str) -> str:
    """The key of a paper metric in our result.json ``test`` dict."""
    return spec.metric_keys.get(metric, PAPER_METRIC_TO_OURS[metric])


def metric_label(spec: TableSpec, metric: str) -> str:
    return spec.metric_labels.get(metric, METRIC_LABELS[metric])


# The compact profile (synthetic tables on 2 CPU cores) uses each method's ``presets["compact"]``, declared beside
# the model (bench.method.Method.presets); a table adds only what is specific to it (``compact_extra``).


# Paper rows of Tables 1-2 that have (or are getting) an implementation in this suite. A row is measured
# when its method is registered; until then it is shown from the paper only (real standard data).
SUITE_METHODS = {"EF-LSTM": "ef_lstm", "LF-DNN": "lf_dnn", "TFN": "tfn", "LMF": "lmf", "MFN": "mfn",
                 "Graph-MFN": "graph_mfn", "MCTN": "mctn", "MFM": "mfm", "MulT": "mult", "MISA": "misa",
                 "Self-MM": "self_mm", "MMIM": "mmim", "DMD": "dmd", "EMOE": "emoe"}


def _comparison_rows(table: str) -> tuple[Row, ...]:
    """Tables 1-2: the paper's rows in its order; implemented methods are measured, the rest published."""
    third = "MCTN" if table == "T1" else "MFM"
    order = ("EF-LSTM", "LF-DNN", "TFN", "LMF", "MFN", "Graph-MFN", third, "MulT", "MISA", "Self-MM", "MMIM",
             "DMD", "EMOE")
    return tuple(Row(name, SUITE_METHODS[name], {}, "-", name) if name in SUITE_METHODS else published_row(name)
                 for name in order)


_COMPARISON_ASSUMPTIONS = (
    "Measured rows: every implemented method (EMOE official face; the baselines as docs/baselines.md describes); the "
    "others are shown from the paper only. The paper's ACC-2/F1 "
    "convention is unstated; the official EMOE code computes Non0, which is used here. Rows marked "
    "[published] are copied from the paper and were not run")

TABLES: dict[int, TableSpec] = {
    1: TableSpec(
        number=1, title="Comparison on CMU-MOSI (EMOE Table 1)", family="mosi",
        settings=("aligned", "unaligned"), rows=_comparison_rows("T1"),
        metrics=("acc7", "acc2", "f1", "mae"), published_table="T1", reference_row="EMOE",
        assumptions=_COMPARISON_ASSUMPTIONS + ".",
        bert_star=True,
    ),
    2: TableSpec(
        number=2, title="Comparison on CMU-MOSEI (EMOE Table 2)", family="mosei",
        settings=("aligned", "unaligned"), rows=_comparison_rows("T2"),
        metrics=("acc7", "acc2", "f1", "mae"), published_table="T2", reference_row="EMOE",
        assumptions=_COMPARISON_ASSUMPTIONS + ".",
        bert_star=True,
    ),
    3: TableSpec(
        number=3, title="Comparison on MIntRec, 20 intents (EMOE Table 3)", family="mintrec",
        settings=("unaligned",),
        rows=(Row("MAG-BERT", "mag_bert", {}, "-", "MAG-BERT"), Row("MulT", "mult", {}, "-", "MulT"),
              Row("MISA", "misa", {}, "-", "MISA"), Row("EMOE", "emoe", {}, "-", "EMOE")),
        metrics=("acc", "f1", "precision", "recall"), published_table="T3", reference_row="EMOE",
        assumptions=("the paper gives no EMOE configuration for MIntRec; the classification importance "
                     "target uses c_m = (1 - p_true,m)^2 (our design, emoe/config.py MINTREC_NOTE). "
                     "MIntRec features are unaligned. MulT, MISA and MAG-BERT fine-tune BERT as in thuiar/MIntRec "
                     "(real data: --text-model PATH to a local bert-base-uncased); the compact budget without "
                     "--text-model "
                     "gives MulT and MISA the synthetic text features instead, and MAG-BERT (which works inside "
                     "BERT) a randomly initialised 4-layer BERT: its compact row checks the pipeline only."),
        compact_extra={"mult": {"text_mode": "features"}, "misa": {"text_mode": "features"},
                       # MAG works inside BERT (no features mode) and no pretrained BERT is available
                       # offline: a random 4-layer BERT, i.e. a pipeline check, not a MAG-BERT result
                       "mag_bert": {"text_model": "random:bert-mini"}},
        metric_keys={"f1": "f1"},
        metric_labels={"acc": "Acc", "f1": "F1 (macro)", "precision": "P (macro)", "recall": "R (macro)"},
        convention="Acc, F1, P and R in %; F1/P/R macro-averaged over the 20 intents (MIntRec protocol)",
    ),
    4: TableSpec(
        number=4, title="MoME / UD ablation (EMOE Table 4, CMU-MOSI)", family="mosi",
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
        setting_stated=False,
    ),
    5: TableSpec(
        number=5, title="Expert-balancing ablation (EMOE Table 5, CMU-MOSI)", family="mosi",
        settings=("aligned",),
        rows=(
            Row("w/o RE", "emoe", {"router_entropy": "false"}, "w/o RE"),
            Row("w/o WIS", "emoe", {"weight_importance_sim": "false"}, "w/o WIS"),
            Row("EMOE", "emoe", {}, "full"),
        ),
        metrics=("acc7", "acc2", "f1"), published_table="T5", reference_row="EMOE",
        assumptions=("setting unstated in the paper; aligned used. RE = router entropy, "
                     "WIS = weight-importance similarity."),
        setting_stated=False,
    ),
    6: TableSpec(
        number=6, title="Sum vs concat fusion (EMOE Table 6, CMU-MOSI)", family="mosi",
        settings=("aligned", "unaligned"),
        rows=(
            Row("Sum", "emoe", {"fusion": "sum"}, "sum"),
            Row("Concat", "emoe", {"fusion": "concat"}, "concat"),
        ),
        metrics=("acc7", "acc2", "f1"), published_table="T6", reference_row="Sum",
        assumptions="concat fusion scales the concatenation by 3 as the official code does (concat_scale).",
    ),
}

METRIC_LABELS = {"acc7": "Acc-7", "acc2": "Acc-2 (non0)", "f1": "F1 (non0)", "mae": "MAE",
                 "acc": "Acc", "precision": "P", "recall": "R"}
DEFAULT_TABLE_SEEDS = {"synthetic": 3, "real": 5}
PUBLISHED_TAG = " [published]"


def _available(method: str) -> bool:
    from bench.registry import methods

    return method in methods()


def _supports(method: str, family: str, setting: str) -> bool:
    """Whether a registered method runs on this data (e.g. EF-LSTM needs aligned sequences)."""
    from bench.registry import get_method

    cls = get_method(method)
    return family in cls.families and setting in getattr(cls, "settings", (setting,))


def unsupported(spec: TableSpec) -> list[tuple[str, str]]:
    """(row label, setting) cells whose registered method cannot run on the table's data."""
    return [(r.label, s) for s in spec.settings for r in spec.measured_rows()
            if _available(r.method) and not _supports(r.method, spec.family, s)]


@dataclass(frozen=True)
class PlannedRun:
    row: Row
    setting: str
    dataset: str
    overrides: dict


def dataset_name(family: str, source: str) -> str:
    return family if source == "real" else f"synthetic-{family}"


def budget(source: str, profile: str | None) -> str:
    """Model budget of a table/figure: ``--profile`` if given, else compact on synthetic and full on real data."""
    return profile or ("compact" if source == "synthetic" else "full")


def plan(spec: TableSpec, source: str, profile: str, user_sets: dict | None = None,
         rows: tuple[str, ...] | None = None, text=None) -> list[PlannedRun]:
    """The runs behind a table: one per (row with a registered method, setting), with the row's switches and,
    for the compact budget (``profile``), the spec's compact overrides (published-only rows and rows whose
    method is not implemented yet have no run). ``text`` (a :class:`bench.text_encoder.TextChoice`) gives the
    BERT rows their text model, or frozen features; ``--set`` values come last."""
    from bench.registry import get_method
    from bench.text_encoder import text_overrides

    dataset = dataset_name(spec.family, source)
    out = []
    for setting in spec.settings:
        for row in spec.measured_rows():
            if (rows is not None and row.label not in rows) or not _available(row.method):
                continue
            if not _supports(row.method, spec.family, setting):
                continue
            overrides = {}
            if profile == "compact":
                overrides.update(get_method(row.method).preset("compact"))
                overrides.update(spec.compact_extra.get(row.method, {}))
            overrides.update(row.overrides)
            overrides.update(text_overrides(get_method(row.method), spec.family, setting, text, overrides))
            overrides.update(sets_for(row.method, user_sets or {}))
            out.append(PlannedRun(row, setting, dataset, overrides))
    if user_sets:
        check_sets_used(user_sets, {r.method for r in spec.measured_rows() if _available(r.method)})
    return out


def sets_for(method: str, user_sets: dict) -> dict:
    """The ``--set`` values that apply to ``method``: ``key=value`` where its hyper-parameters have ``key``,
    and ``method.key=value`` (only that method)."""
    from bench.method import hparam_fields
    from bench.registry import get_method

    names = hparam_fields(get_method(method).HParams)
    out = {}
    for key, value in user_sets.items():
        scope, dot, name = key.rpartition(".")
        if dot and scope == method:
            out[name] = value
        elif not dot and key in names:
            out[key] = value
    return out


def check_sets_used(user_sets: dict, methods_in_table: set[str]) -> None:
    """A ``--set`` that no row of the table can take is a typo: say so (instead of silently ignoring it)."""
    from bench.errors import did_you_mean
    from bench.method import hparam_fields
    from bench.registry import get_method

    known = {m: set(hparam_fields(get_method(m).HParams)) for m in methods_in_table}
    for key in user_sets:
        scope, dot, name = key.rpartition(".")
        if dot:
            if scope not in known:
                raise UserError(f"--set {key}: no row of this table runs method {scope!r} "
                                f"(rows: {', '.join(sorted(known))})")
            if name not in known[scope]:
                raise UserError(f"--set {key}: {scope} has no hyper-parameter {name!r}."
                                f"{did_you_mean(name, known[scope])}")
        elif not any(key in names for names in known.values()):
            every = set().union(*known.values()) if known else set()
            raise UserError(f"--set {key}: no method of this table has that hyper-parameter."
                            f"{did_you_mean(key, every)}")


# ------------------------------------------------------------------------------------ settings
def missing_data_files(family: str, setting: str, data_root) -> list[str]:
    """Files under ``data_root`` that the real loader of (family, setting) needs and that are absent."""
    from bench.data.verify import expected_files

    root = Path(data_root)
    return [rel for fam, st, rel in expected_files() if fam == family and st == setting and not (root / rel).exists()]


def choose_settings(spec: TableSpec, requested: str | None, source: str, data_root=None) -> tuple[TableSpec, list[str]]:
    """The table as it will run: ``--setting`` (one of the table's settings, or any setting where the paper
    states none) and, on real data, only the settings whose files exist under the data root. Returns the
    spec with those settings (the choice is added to its assumptions, hence to the caption) and the notes."""
    notes, file_notes = [], []  # console notes; the file notes also go into the caption
    settings = spec.settings
    if requested:
        if requested not in spec.settings and spec.setting_stated:
            raise UserError(f"table {spec.number} reports the settings {', '.join(spec.settings)}; "
                            f"--setting {requested} is not one of them")
        if requested not in spec.settings:
            notes.append(f"run on {requested} data (--setting; the paper states no setting)")
        settings = (requested,)
    if source == "real":
        absent = {s: missing_data_files(spec.family, s, data_root) for s in settings}
        present = tuple(s for s in settings if not absent[s])
        if not present:
            files = "; ".join(f"{s}: {', '.join(absent[s])}" for s in settings)
            others = [s for s in ("aligned", "unaligned")
                      if s not in settings and not missing_data_files(spec.family, s, data_root)]
            hint = ""
            if others and not spec.setting_stated and not requested:
                hint = f"; the paper states no setting for this table: --setting {others[0]} runs it on that file"
            raise UserError(f"table {spec.number} needs {spec.family} data that {data_root} does not have "
                            f"(missing {files}){hint}")
        skipped = [s for s in settings if s not in present]
        if skipped:
            file_notes.append(f"{', '.join(skipped)} not run: the data root has no {spec.family} "
                              f"{'/'.join(skipped)} file")
        settings = present
    notes += file_notes
    if settings == spec.settings and not notes:
        return spec, notes
    assumptions = spec.assumptions
    if requested and requested not in spec.settings:  # the spec's "... aligned used" sentence no longer holds
        assumptions = _UNSTATED_SETTING.sub(f"setting unstated in the paper; {requested} used (--setting "
                                            f"{requested}; the suite's default is {spec.settings[0]}).",
                                            assumptions, count=1)
    if file_notes:
        assumptions = assumptions.rstrip(".") + ". " + "; ".join(file_notes).capitalize() + "."
    return dataclasses.replace(spec, settings=settings, assumptions=assumptions), notes


# the opening sentence of an assumptions text where the paper states no setting (Tables 4 and 5)
_UNSTATED_SETTING = re.compile(r"^setting unstated in the paper; \w+ used(?: \([^)]*\))?\.")


# ------------------------------------------------------------------------------------ running
def data_source(args) -> tuple[str, object]:
    """("real" | "synthetic", data root or None) from ``--data-root`` / $BENCH_DATA_ROOT."""
    from bench.data import resolve_data_root

    data_root = resolve_data_root(args.data_root)
    return ("real" if data_root else "synthetic"), data_root


def execute(planned: list[PlannedRun], args, seeds: list[int], data_root=None) -> tuple[list, dict]:
    """Run every missing seed of every planned run (finished runs are reused); data are loaded once per
    (dataset, setting). Returns ([(planned run, [RunRecord])] in plan order, {(dataset, setting): bundle})."""
    from bench import dispatch
    from bench.cli import _print_data_banner
    from bench.runner import RunRequest, load_bundle, run

    fields = dispatch.request_fields(args)
    requests = [RunRequest(method=p.row.method, dataset=p.dataset, setting=p.setting, seeds=seeds,
                           overrides=p.overrides, epochs=args.epochs,
                           data_root=str(data_root) if data_root else None, out=args.out, device=args.device,
                           force=args.force, profile=args.profile or "compact", clean_nan=args.clean_nan,
                           data_seed=args.data_seed, **fields) for p in planned]
    bundles, out = {}, []
    quiet = getattr(args, "quiet", False)
    bar = _announce_plan(planned, requests, args, data_root, bundles, quiet)  # bench plan's estimate + a bar
    if requests and dispatch.wants_executor(args):
        dispatch.run_elsewhere(requests, args)
        requests = [dataclasses.replace(r, force=False) for r in requests]  # now finished: read them back
    shown = set()
    for p, req in zip(planned, requests, strict=True):
        key = (p.dataset, p.setting)
        if key not in bundles:
            bundles[key] = load_bundle(req)
        if data_root and key not in shown:
            shown.add(key)
            _print_data_banner(bundles[key])
        recs = run(req, bundle=bundles[key], progress=False if quiet else None)
        if bar is not None:
            bar.update(sum(not r.reused for r in recs))
        out.append((p, recs))
    if bar is not None:
        bar.close()
    return out, bundles


def _announce_plan(planned, requests, args, data_root, bundles: dict, quiet: bool):
    """Print ``bench plan``'s table and estimate for these runs; return a progress bar over the runs to train
    (None when quiet or nothing is to train). Planning never stops a run: a failure is one printed line."""
    if not requests:
        return None
    try:
        from bench import plan, throughput

        device = requests[0].device
        if device in ("", "auto"):
            from bench.runner import resolve_device

            device = resolve_device(device)
        dev_class = throughput.device_class(device)
        entries = throughput.load(dev_class)
        rows = plan.plan_requests([(p.row.label, p.setting) for p in planned], requests,
                                  budget("real" if data_root else "synthetic", args.profile), entries, device, bundles)
        print(plan.format_plan(rows, entries, dev_class, throughput.table_path(dev_class)))
    except Exception as e:  # noqa: BLE001 - the estimate is advisory
        print(f"plan: no estimate ({type(e).__name__}: {e})")
        return None
    todo = sum(r.todo for r in rows)
    if quiet or not todo:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=todo, desc=f"table runs ({todo} to train)", unit="run")


def run_and_render(spec: TableSpec, args) -> int:
    from bench.cli import SYNTHETIC_BANNER
    from bench.config import parse_sets
    from bench.train.seeding import seeds_from_arg

    source, data_root = data_source(args)
    seeds = seeds_from_arg(args.seeds, DEFAULT_TABLE_SEEDS[source])
    spec, setting_notes = choose_settings(spec, getattr(args, "setting", None), source, data_root)
    size = budget(source, args.profile)
    missing = sorted({r.method for r in spec.measured_rows() if not _available(r.method)})
    print(f"Table {spec.number}: {spec.title}")
    if source == "synthetic":
        print(SYNTHETIC_BANNER)
        if any(not r.measured for r in spec.rows) or missing:
            print("[synthetic data] published rows are not shown (they are only shown next to real standard data)")
    if missing:
        print(f"not yet implemented (rows {'omitted' if source == 'synthetic' else 'shown from the paper only'}): "
              f"methods {', '.join(missing)}")
    if spec.pending:
        print("not yet measured: " + "; ".join(f"{k} ({v})" for k, v in spec.pending.items()))
    cant = unsupported(spec)
    if cant:
        print("not run (the method does not support this setting): " + ", ".join(f"{r} {s}" for r, s in cant))
    if source == "real" and size == "compact":
        spec = dataclasses.replace(spec, assumptions=spec.assumptions.rstrip(".") + ". Compact budget (--profile "
                                   "compact): smaller models and 20 epochs, not the methods' own configurations.")
    for note in setting_notes:
        print(f"note: {note}")
    if size == "compact":
        print("budget: compact (smaller models and 20 epochs where the spec says so; --profile full for the "
              "methods' own configurations)")
    from bench.text_encoder import refuse_silent_frozen, text_choice

    choice = text_choice(args)
    planned = plan(spec, source, size, parse_sets(args.sets), text=choice)
    refuse_silent_frozen(planned, source, choice, f"table {spec.number}", args.epochs, by_label=True)
    done, _ = execute(planned, args, seeds, data_root)
    collected = {(p.row.label, p.setting): [r.result for r in recs] for p, recs in done}
    if not collected:
        print("nothing to render: no row of this table can run yet")
        return 0
    frame = table_frame(spec, collected, source)
    paths = render(spec, frame, collected, source, Path(args.out) / "tables")
    print(frame_to_markdown(spec, frame, collected, source))
    note = seeds_note(spec, frame)
    if note:
        print(f"note: {note}")
    print("written: " + ", ".join(str(p) for p in paths))
    return 0


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
    from bench.published import load_published

    df = load_published()
    sel = df[(df["table"] == spec.published_table) & (df["method"] == row.published_method)]
    return bool(len(sel)) and (sel["bert"].astype(str).str.lower() == "yes").any()


def row_text(spec: TableSpec, row: Row, setting: str, results: list[dict]) -> str:
    """For a measured row whose paper fine-tunes BERT: "frozen" (ran on the frozen text features) or the
    checkpoint(s) it fine-tuned; "" for every other row."""
    from bench.registry import get_method
    from bench.text_encoder import paper_uses_bert, text_of

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


def caption(spec: TableSpec, collected: dict, source: str, df: pd.DataFrame | None = None) -> str:
    results = [r for rs in collected.values() for r in rs]
    first = results[0]
    seeds = sorted({r["seed"] for r in results})
    ns = sorted({len(rs) for rs in collected.values()})
    if source == "synthetic":
        fps = sorted({f"{r['data']['name']}-{r['data'].get('setting', r['setting'])} {r['data']['fingerprint'][:12]}"
                      for r in results})
        src = (f"SYNTHETIC data (profile {first['data'].get('profile')}; fingerprint {', '.join(fps)}); "
               "not comparable with the paper, published rows not shown")
    else:
        shas = []
        for r in results:
            for f in r["data"].get("files", []):
                tag = f"{Path(str(f.get('path'))).name} sha256 {str(f.get('sha256'))[:12]}"
                if tag not in shas:
                    shas.append(tag)
        std = all(r["data"].get("standard") for r in results)
        src = f"real data ({first['data']['name']}; {', '.join(shas)}{'' if std else '; NON-STANDARD files'})"
        if std and any(str(n).startswith("standard MIntRec established") for r in results
                       for n in r["data"].get("notes") or []):
            src += ("; standard MIntRec established by the published split sizes and feature shapes, not by checksum "
                    "(none is published for the feature pickles; their sha256 is recorded with every result)")
    commits = sorted({((r["provenance"].get("git") or {}).get("commit") or "unknown")[:10] for r in results})
    dirty = " (dirty)" if any((r["provenance"].get("git") or {}).get("dirty") for r in results) else ""
    rules = sorted({r["selection"]["rule"] for r in results})
    m = n_comparisons(df) if df is not None else 0
    parts = [
        f"Table {spec.number}: {spec.title}.", f"Data: {src}.",
        f"Cells: test mean ± sample std (ddof=1) over n={'/'.join(map(str, ns))} seeds ({', '.join(map(str, seeds))}); "
        f"{spec.convention}.",
        f"Selection: {'; '.join(rules)}.",
        f"Bold: best measured value per column{' (MAE lower is better)' if 'mae' in spec.metrics else ''}.",
        (f"†: Welch's t-test vs '{spec.reference_row}', Holm-corrected over the {m} comparisons of the table, "
         "p < 0.05 (permutation, Mann–Whitney and Hedges' g in the CSV)." if m else
         "No significance tests (a single measured row)."),
    ]
    if df is not None and (df["kind"] == "published").any():
        parts.append(f"[published]: copied from the EMOE paper's Table {spec.number}, not measured here; "
                     "[paper X, Δ Y]: the paper's value for a measured row and our difference.")
    text = text_caption(spec, df, source)
    if text:
        parts.append(text)
    if spec.pending:
        parts.append("Not yet measured: " + "; ".join(f"{k} ({v})" for k, v in spec.pending.items()) + ".")
    cant = unsupported(spec)
    if cant:
        parts.append("Not run (the method does not support this setting): "
                     + ", ".join(f"{r} {s}" for r, s in cant) + ".")
    parts += [f"Assumptions: {spec.assumptions}", f"Commit {', '.join(commits)}{dirty}."]
    note = seeds_note(spec, df) if df is not None else stats.min_seeds_note(min(ns))
    if note:
        parts.append(f"Note: {note}.")
    return " ".join(parts)


def text_caption(spec: TableSpec, df: pd.DataFrame | None, source: str) -> str:
    """The caption's sentence on text encoders: the paper's "*" and what the BERT rows actually ran on."""
    parts = []
    if spec.bert_star:
        parts.append("*: BERT text in the paper.")
    if df is None or "text" not in df:
        return " ".join(parts)
    by_text: dict[str, list[str]] = {}
    for (label, text), _ in df[df["kind"] == "measured"].groupby(["row", "text"], sort=False):
        for t in filter(None, str(text).split(";")):
            by_text.setdefault(t, [])
            if label not in by_text[t]:
                by_text[t].append(label)
    frozen = by_text.pop("frozen", [])
    if by_text:
        parts.append("Fine-tuned text encoder: " + "; ".join(f"{m} ({', '.join(rows)})" for m, rows in by_text.items())
                     + ".")
    if frozen and source == "synthetic":
        names = list(dict.fromkeys(r.published_method for r in spec.rows if r.label in frozen))
        parts.append(f"Text: {', '.join(names)} fine-tune{'s' if len(names) == 1 else ''} BERT in the paper; "
                     "synthetic data has no raw text, so (without --text-model) the synthetic frozen text features "
                     "are used.")
    elif frozen:
        parts.append(f"(frozen text): {', '.join(frozen)} ran on the dataset's frozen text features instead of the "
                     "paper's fine-tuned BERT (--text frozen); not the paper's configuration.")
    return " ".join(parts)


def frame_to_markdown(spec, df, collected, source) -> str:
    cells, bold = display_frame(spec, df, source)
    shown = cells.copy()
    for idx in shown.index:
        for col in shown.columns:
            if bold.loc[idx, col]:
                shown.loc[idx, col] = f"**{shown.loc[idx, col]}**"
    shown = shown.reset_index()
    return shown.to_markdown(index=False) + "\n\n" + caption(spec, collected, source, df) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"$<$", ">": r"$>$"}
_LATEX_UNICODE = {"±": r"$\pm$", "†": r"$^\dagger$", "Δ": r"$\Delta$", "§": r"\S{}", "α": r"$\alpha$",
                  "λ": r"$\lambda$", "ε": r"$\varepsilon$", "–": "--", "—": "---", "·": r"$\cdot$",
                  "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$", "→": r"$\rightarrow$", "’": "'"}


def latex_escape(text: str) -> str:
    """Plain text -> LaTeX (specials escaped, the few non-ASCII symbols the tables use spelled out)."""
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    out = out.replace("--", "-{}-")  # a command-line flag stays two hyphens (LaTeX would set an en dash)
    for k, v in _LATEX_UNICODE.items():
        out = out.replace(k, v)
    return out


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


def csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["values"]).assign(values=df["values"].map(lambda v: ";".join(f"{x:.6f}" for x in v)))


def render(spec: TableSpec, df: pd.DataFrame, collected: dict, source: str, outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    stem = outdir / f"table{spec.number}-{source}"
    csv_frame(df).to_csv(stem.with_suffix(".csv"), index=False)
    stem.with_suffix(".md").write_text(frame_to_markdown(spec, df, collected, source))
    # the paper's layout; frame_to_latex (one line per setting and row, long caption) stays until the merge
    from bench.report.latex import table_latex  # local: bench.report.latex imports this module

    stem.with_suffix(".tex").write_text(table_latex(spec, df, collected, source))
    return [stem.with_suffix(s) for s in (".md", ".csv", ".tex")]


def require_table(n: int) -> TableSpec:
    if n not in TABLES:
        raise UserError(f"table {n} is not available; available: {', '.join(map(str, sorted(TABLES)))}")
    return TABLES[n]
