"""Metrics exactly as MMSA/EMOE (regression) and MIntRec (classification) define them.

Regression (thuiar/MMSA utils/metricsTop.py): Has0 = negative vs non-negative over all samples;
Non0 = negative vs positive over samples whose label is not 0; Acc-7/Acc-5 round the clipped values
half-to-even (``np.round``); MAE and Corr use unclipped values. Values are kept unrounded (fractions,
not percentages); rendering rounds.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

# higher_is_better per metric key (MAE is the only "lower is better" regression metric).
HIGHER_IS_BETTER = {
    "has0_acc2": True, "has0_f1": True, "non0_acc2": True, "non0_f1": True,
    "acc7": True, "acc5": True, "acc3": True, "mae": False, "corr": True,
    "acc": True, "f1": True, "precision": True, "recall": True, "loss": False,
}
REGRESSION_METRICS = ("has0_acc2", "has0_f1", "non0_acc2", "non0_f1", "acc7", "acc5", "acc3", "mae", "corr")
CLASSIFICATION_METRICS = ("acc", "f1", "precision", "recall")


def _flat(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _multiclass_acc(pred: np.ndarray, true: np.ndarray, bound: float) -> float:
    return float(np.mean(np.round(np.clip(pred, -bound, bound)) == np.round(np.clip(true, -bound, bound))))


def regression_metrics(pred, true) -> dict[str, float]:
    """All MMSA regression metrics from one prediction vector (labels in [-3, 3]).

    Predictions and labels are cast to float32 first, as MMSA does, so values that sit on a
    rounding boundary behave as they do there.
    """
    p = _flat(np.asarray(pred, dtype=np.float32))
    t = _flat(np.asarray(true, dtype=np.float32))
    if p.shape != t.shape:
        raise ValueError(f"pred and true differ in size: {p.shape} vs {t.shape}")
    nz = t != 0
    out = {
        "has0_acc2": float(accuracy_score(t >= 0, p >= 0)),
        "has0_f1": float(f1_score(t >= 0, p >= 0, average="weighted")),
        "non0_acc2": float(accuracy_score(t[nz] > 0, p[nz] > 0)) if nz.any() else float("nan"),
        "non0_f1": float(f1_score(t[nz] > 0, p[nz] > 0, average="weighted")) if nz.any() else float("nan"),
        "acc7": _multiclass_acc(p, t, 3.0),
        "acc5": _multiclass_acc(p, t, 2.0),
        "acc3": _multiclass_acc(p, t, 1.0),
        "mae": float(np.mean(np.abs(p - t))),
    }
    if np.std(p) == 0 or np.std(t) == 0:
        out["corr"] = float("nan")  # Pearson is undefined for a constant vector
    else:
        out["corr"] = float(np.corrcoef(p, t)[0, 1])
    return out


def classification_metrics(pred, true) -> dict[str, float]:
    """MIntRec's metrics: accuracy and macro F1/precision/recall (zero division counts as 0).

    ``pred`` is either class ids (N,) or logits/probabilities (N, C) (argmax is taken).
    """
    p = np.asarray(pred)
    if p.ndim == 2:
        p = p.argmax(axis=1)
    t = np.asarray(true).reshape(-1).astype(np.int64)
    p = p.reshape(-1).astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns when a class is never predicted
        return {
            "acc": float(accuracy_score(t, p)),
            "f1": float(f1_score(t, p, average="macro", zero_division=0)),
            "precision": float(precision_score(t, p, average="macro", zero_division=0)),
            "recall": float(recall_score(t, p, average="macro", zero_division=0)),
        }


def compute_metrics(task: str, pred, true) -> dict[str, float]:
    return classification_metrics(pred, true) if task == "classification" else regression_metrics(pred, true)
