"""The CI gate's short multi-seed training check, with a band from the reference's seed spread.

Why: whole training runs are chaotic in float rounding and, on Intel CPUs, torch draws dropout masks
with MKL's generator, so one seed's numbers differ between machines by about a seed's spread. What
does not change between machines is the distribution over seeds. The reference
(``results/reference/gate-training.csv``) records ``REFERENCE_SEEDS`` per-seed values of a cheap EMOE
configuration with the machine that made them; the test trains ``GATE_SEEDS`` seeds and passes when
their mean lies inside the two-sample prediction interval
``mean_ref ± t(n-1, 1 - a/2) · s_ref · sqrt(1/n + 1/k)`` for each metric (a = ``ALPHA`` / number of
metrics). Regenerate deliberately with ``python -m bench.gate --write`` (docs/ci-gate.md).
"""

from __future__ import annotations

import math
import multiprocessing
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import torch
from scipy import stats

from bench import provenance
from bench.data import load_dataset
from bench.golden import environment
from bench.registry import get_method
from bench.runner import resolve_hparams
from bench.train.trainer import train

REFERENCE_PATH = Path(__file__).resolve().parent.parent / "results" / "reference" / "gate-training.csv"
METHOD, DATASET, SETTING = "emoe", "synthetic-mosi", "aligned"
# 4 epochs of 25 optimiser steps (one step per batch of 16) on the compact synthetic MOSI: long enough
# that the learning rate and every loss term move the numbers, short enough for CI (~5 s a seed).
OVERRIDES = {"grad_accum": "1", "max_epochs": "4", "early_stop": "4"}
# test MAE of the selected checkpoint; the training objective averaged over the 4 epochs (the area under
# the training curve: how fast it descends, which a changed lr or objective moves more than the end point)
METRICS = ("test_mae", "train_loss_mean")
GATE_SEEDS = (1111, 1112, 1113)
REFERENCE_SEEDS = tuple(range(2001, 2011))  # disjoint from GATE_SEEDS: the band is for new draws
ALPHA = 0.01  # probability that unchanged code fails the check, over all metrics together


def gate_hparams(hp_change: Callable | None = None):
    cls = get_method(METHOD)
    hp = resolve_hparams(cls, "mosi", SETTING, OVERRIDES)
    return cls, (hp_change(hp) if hp_change is not None else hp)


def train_seeds(seeds: Sequence[int], hp_change: Callable | None = None) -> list:
    """Train the gate configuration once per seed; returns the trainer's outcomes (in seed order)."""
    cls, hp = gate_hparams(hp_change)
    bundle = load_dataset(DATASET, SETTING)
    return [train(cls, hp, bundle, seed) for seed in seeds]


def metric_values(outcome) -> dict[str, float]:
    curve = [row["train"]["total"] for row in outcome.history]
    return {"test_mae": float(outcome.test["mae"]), "train_loss_mean": float(sum(curve) / len(curve))}


def prediction_band(reference: Sequence[float], k: int, alpha: float) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` prediction interval for the mean of ``k`` new draws from the distribution
    that gave ``reference`` (normal model, unknown variance)."""
    n = len(reference)
    if n < 2 or k < 1:
        raise ValueError(f"a prediction band needs >= 2 reference values and >= 1 new one (got {n}, {k})")
    s = pd.Series(reference, dtype=float)
    half = stats.t.ppf(1 - alpha / 2, n - 1) * s.std(ddof=1) * math.sqrt(1 / n + 1 / k)
    return float(s.mean() - half), float(s.mean() + half)


def check(reference: pd.DataFrame, new: dict[str, Sequence[float]], alpha: float = ALPHA) -> pd.DataFrame:
    """One row per metric of the reference: its band, the new mean and ``passed``. A metric of the
    reference with no new values fails."""
    rows = []
    per_metric = alpha / len(reference)
    for _, ref in reference.iterrows():
        values = read_values(ref["values"])
        got = list(new.get(ref["metric"], []))
        lo, hi = prediction_band(values, max(len(got), 1), per_metric)
        mean = float(pd.Series(got, dtype=float).mean()) if got else math.nan
        rows.append({"metric": ref["metric"], "reference_mean": float(pd.Series(values).mean()),
                     "reference_std": float(pd.Series(values).std(ddof=1)), "n": len(values), "k": len(got),
                     "new_mean": mean, "low": lo, "high": hi, "passed": bool(got) and lo <= mean <= hi})
    return pd.DataFrame(rows)


def read_values(cell: str) -> list[float]:
    """``seed:value;seed:value`` -> values (the reference's per-seed column)."""
    return [float(part.split(":", 1)[1]) for part in str(cell).split(";") if part]


def read_reference(path: Path = REFERENCE_PATH) -> pd.DataFrame:
    return pd.read_csv(path)


def _seed_values(seed: int) -> dict[str, float]:
    torch.set_num_threads(1)
    return metric_values(train_seeds([seed])[0])


def train_values(seeds: Sequence[int], workers: int = 1) -> list[dict[str, float]]:
    """Metric values per seed, each seed trained with one torch thread (``workers`` processes at once)."""
    if workers <= 1:
        return [_seed_values(s) for s in seeds]

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_seed_values, seeds))


def write_reference(path: Path = REFERENCE_PATH, seeds: Sequence[int] = REFERENCE_SEEDS, workers: int = 1) -> Path:
    """Train the reference seeds (one torch thread each) and write one row per metric, with the machine."""
    values = train_values(seeds, workers)
    torch.set_num_threads(1)
    env = environment()
    rows = []
    for m in METRICS:
        col = pd.Series([v[m] for v in values])
        rows.append({"metric": m, "mean": col.mean(), "std": col.std(ddof=1), "n": len(col),
                     "values": ";".join(f"{s}:{v[m]:.6f}" for s, v in zip(seeds, values)),
                     "method": METHOD, "dataset": f"{DATASET}-{SETTING}",
                     "overrides": ";".join(f"{k}={v}" for k, v in OVERRIDES.items()),
                     "cpu": env["cpu"], "machine": env["machine"], "torch": env["torch"], "threads": env["threads"],
                     "git_commit": provenance.git_state()["commit"]})
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False, float_format="%.6f")
    return path


if __name__ == "__main__":  # python -m bench.gate --write [PATH] [--workers N]
    args = sys.argv[1:]
    workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
    paths = [a for a in args if a not in ("--write", "--workers", str(workers))]
    if "--write" not in args:
        print("usage: python -m bench.gate --write [PATH] [--workers N]   (retrains the reference seeds)")
        sys.exit(2)
    print(f"written: {write_reference(Path(paths[0]) if paths else REFERENCE_PATH, workers=workers)}")
