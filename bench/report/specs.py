"""The paper's tables as data: which method variants run on which data, and how cells are shown.

Adding a method to Tables 1-2 means registering it (its own file) and naming it in ``SUITE_METHODS``;
docs/tables.md describes every table, the statistics and the rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.errors import UserError
from bench.published import PAPER_METRIC_TO_OURS


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
                     "the 'neither' row also drops the unimodal losses (docs/switches.md §2)."),
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


def require_table(n: int) -> TableSpec:
    if n not in TABLES:
        raise UserError(f"table {n} is not available; available: {', '.join(map(str, sorted(TABLES)))}")
    return TABLES[n]
