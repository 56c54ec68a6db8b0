"""Published numbers (bench/published_data/numbers.csv, package data so that an installed wheel has them):
the EMOE paper's Tables 1-6, MMSA's table and the baselines' own papers, one value per row with its source."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

PUBLISHED_CSV = Path(__file__).resolve().parent / "published_data" / "numbers.csv"

# EMOE tables print a single ACC-2/F1; the official code computes the Non0 convention.
PAPER_METRIC_TO_OURS = {"acc7": "acc7", "acc2": "non0_acc2", "f1": "non0_f1", "mae": "mae",
                        "acc": "acc", "precision": "precision", "recall": "recall"}


@lru_cache(maxsize=1)
def load_published(path: str | None = None) -> pd.DataFrame:
    df = pd.read_csv(path or PUBLISHED_CSV, dtype={"value": str})
    df["value_num"] = pd.to_numeric(df["value"], errors="coerce")
    # fractions, like our stored metrics: percentages /100; MMSA's x100 MAE/Corr /100
    df["fraction"] = df["value_num"].where(df["scale"] == "raw", df["value_num"] / 100.0)
    return df


def lookup(table: str, method: str, variant: str, metric: str, setting: str | None = None) -> float | None:
    df = load_published()
    sel = df[(df["table"] == table) & (df["method"] == method) & (df["variant"] == variant) & (df["metric"] == metric)]
    if setting is not None and (sel["setting"] != "-").any():
        sel = sel[sel["setting"] == setting]
    if len(sel) != 1:
        return None
    return float(sel["fraction"].iloc[0])
