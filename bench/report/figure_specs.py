"""The paper's figures as data (EMOE Figs. 4-6): which EMOE variants run on which data, what is drawn.

* Fig. 4: sensitivity of α, λ1, λ2 and the router temperature t, each swept with the others at 0.1;
  mean ± sample-std bands over seeds per dataset/setting, plus their average (the paper plots that).
* Fig. 5: t-SNE (scikit-learn, fixed random_state) of the fused test features of EMOE, EMOE w/o UD
  and EMOE w/o MoME & UD, coloured by the sentiment label.
* Fig. 6: per-sample modality importance I = (1/(c+0.1)) / Σ (1/(c+0.1)), c = squared unimodal error
  (EMOE's own importance target), beside the learned router weights, for selected test samples; rank
  correlations between weights and importance (and, on synthetic data, the planted importance).
docs/tables.md describes the defaults (grid, seeds, datasets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from bench.errors import UserError
from bench.report.specs import TABLES, Row

MODALITY_LABELS = ("language", "vision", "audio")  # EMOE's [l, v, a] order (= Split.importance order)


PARAM_LABELS = {"alpha": "α", "lambda1": "λ1", "lambda2": "λ2", "temperature": "t"}


IMPORTANCE_EPS = 0.1  # EMOE.py:68, importance_target(norm="sum")


@dataclass(frozen=True)
class FigureSpec:
    number: int
    title: str
    kind: str  # "sensitivity" | "tsne" | "weights"
    rows: tuple = ()  # fixed EMOE variants (bench.report.specs.Row; Figs. 5, 6)
    families: tuple[str, ...] = ("mosi",)
    settings: tuple[str, ...] = ("aligned",)
    # the compact synthetic default (2 CPU cores): fewer datasets/settings/values/seeds
    compact_families: tuple[str, ...] = ("mosi",)
    compact_settings: tuple[str, ...] = ("aligned",)
    params: tuple[str, ...] = ()
    grid: tuple[float, ...] = ()
    compact_grid: tuple[float, ...] = ()
    default_value: float = 0.1
    seeds: dict = field(default_factory=lambda: {"real": 5, "synthetic": 3, "compact": 1})
    metrics: tuple[str, ...] = ("acc7", "acc2", "f1", "mae")
    notes: str = ""


REAL_COMPACT_NOTE = ("compact budget (--profile compact): EMOE d 64, 2 layers, <= 20 epochs, not the official "
                     "configuration")


@lru_cache(maxsize=1)
def figures() -> dict[int, FigureSpec]:
    """The figure registry (built on first use)."""
    t4 = {r.label: r for r in TABLES[4].rows}
    return {
        4: FigureSpec(
            number=4, title="Sensitivity of α, λ1, λ2 and t (EMOE Fig. 4)", kind="sensitivity",
            families=("mosi", "mosei"), settings=("aligned", "unaligned"),
            params=("alpha", "lambda1", "lambda2", "temperature"),
            grid=(0.01, 0.05, 0.1, 0.5, 1.0), compact_grid=(0.01, 0.1, 1.0),
            seeds={"real": 5, "synthetic": 3, "compact": 2},
            notes=("grid not given by the paper; the paper drops 'catastrophic' low-t outliers, nothing is "
                   "dropped here"),
        ),
        5: FigureSpec(
            number=5, title="t-SNE of fused test features (EMOE Fig. 5)", kind="tsne",
            rows=(Row("EMOE", "emoe", dict(t4["MoME + UD (EMOE)"].overrides)),
                  Row("EMOE w/o UD", "emoe", dict(t4["MoME only"].overrides)),
                  Row("EMOE w/o MoME & UD", "emoe", dict(t4["w/o MoME, w/o UD"].overrides))),
            seeds={"real": 1, "synthetic": 1, "compact": 1},
            notes="same runs as Table 4's rows (MoME+UD, MoME only, neither); first seed plotted",
        ),
        6: FigureSpec(
            number=6, title="Modality importance vs router weights (EMOE Fig. 6)", kind="weights",
            rows=(Row("EMOE", "emoe", {}),),
            seeds={"real": 1, "synthetic": 1, "compact": 1},
            notes="same run as Table 4's full row; heatmaps from the first seed, correlations over all seeds",
        ),
    }


FROZEN_TEXT_NOTE = "frozen text features (--text frozen), not the paper's fine-tuned BERT"


def require_figure(n: int) -> FigureSpec:
    reg = figures()
    if n not in reg:
        raise UserError(f"figure {n} is not available; available: {', '.join(map(str, sorted(reg)))}")
    return reg[n]
