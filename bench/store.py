"""The results store: one directory per (config hash, seed), written atomically with a ``done`` marker.

Layout: ``<out>/runs/<method>/<dataset>-<setting>/<config_hash>/config.json`` and
``.../seed-<n>/{result.json, preds.npz, done}``. A run is finished iff ``done`` exists; a run that was
interrupted leaves only a ``.tmp-*`` directory, which is ignored and cleaned up on the next write.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; single-writer use is still atomic
    fcntl = None

from bench.config import RunSpec
from bench.metrics import HIGHER_IS_BETTER

if TYPE_CHECKING:
    import pandas as pd

RESULT_SCHEMA = "emoe-bench/result/v1"


def require_results_dir(out) -> Path:
    """Check, before any training, that ``<out>/runs`` can be created and written (nothing is created here),
    so a bad ``--out`` (a file on the way, no permission) is a one-line error up front instead of a
    traceback after the first run has trained."""
    from bench.errors import UserError

    runs = Path(out) / "runs"
    existing = runs
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"--out {out}: {existing} is a file, not a directory; expected a directory for the results")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: {existing} is not writable; expected a writable directory for the results")
    return runs


def config_dir(out: Path, spec: RunSpec) -> Path:
    return Path(out) / "runs" / spec.method / f"{spec.dataset}-{spec.setting}" / spec.config_hash


def run_dir(out: Path, spec: RunSpec, seed: int) -> Path:
    return config_dir(out, spec) / f"seed-{seed}"


def is_done(path: Path) -> bool:
    return (Path(path) / "done").is_file() and (Path(path) / "result.json").is_file()


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _clean(o):
    """JSON has no NaN: store non-finite floats as null."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_json_atomic(path: Path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(_clean(obj), f, indent=1, sort_keys=True, default=_json_default)
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(path: Path):
    """Exclusive advisory lock on ``path`` (created if missing); a no-op without fcntl (Windows)."""
    if fcntl is None:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_run(final: Path, result: dict, outputs: dict[str, np.ndarray] | None = None) -> Path:
    """Write result.json (+ preds.npz) and the done marker into a temp dir, then rename into place.

    Writers of the same run serialise on ``.<name>.lock`` (two workers may finish the same run), so a
    temp dir seen under the lock is a crashed writer's and can go; the previous directory is renamed
    aside before the new one is renamed in, so a reader never sees a half-deleted run.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    with _locked(final.parent / f".{final.name}.lock"):
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
        write_json_atomic(tmp / "result.json", result)
        if outputs:
            np.savez_compressed(tmp / "preds.npz", **outputs)
        (tmp / "done").write_text("ok\n")
        old = None
        if final.exists():
            old = final.parent / f".{final.name}.tmp-old-{os.getpid()}"
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return final


def read_result(path: Path) -> dict:
    with open(Path(path) / "result.json") as f:
        return json.load(f)


def iter_results(out: Path):
    """Every finished result under ``<out>/runs`` (unfinished and temp dirs are skipped)."""
    root = Path(out) / "runs"
    if not root.is_dir():
        return
    for done in sorted(root.glob("*/*/*/seed-*/done")):
        if done.parent.name.startswith("."):
            continue
        yield done.parent, read_result(done.parent)


def incomplete_runs(out: Path) -> list[Path]:
    root = Path(out) / "runs"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("*/*/*/.seed-*.tmp-*"))


def to_long(out: Path) -> pd.DataFrame:
    """Tidy long format: one row per (run, split, metric)."""
    import pandas as pd  # imported here: training workers write runs and need neither pandas nor scipy

    rows = []
    for path, r in iter_results(out):
        for split in ("valid", "test"):
            for metric, value in (r.get(split) or {}).items():
                rows.append({
                    "method": r["method"], "dataset": r["dataset"], "setting": r["setting"],
                    "config_hash": r["config_hash"], "seed": r["seed"], "split": split,
                    "metric": metric, "value": np.nan if value is None else float(value),
                    "higher_is_better": HIGHER_IS_BETTER.get(metric, True),
                    "data_source": r["data"]["source"], "data_standard": r["data"].get("standard", False),
                    "exec_mode": r["provenance"].get("exec_mode"),
                    "git_commit": (r["provenance"].get("git") or {}).get("commit"),
                    "run_dir": str(path),
                })
    cols = ["method", "dataset", "setting", "config_hash", "seed", "split", "metric", "value",
            "higher_is_better", "data_source", "data_standard", "exec_mode", "git_commit", "run_dir"]
    return pd.DataFrame(rows, columns=cols)


def summarize(long: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Mean, sample std (ddof=1), n and a t-interval per (method, dataset, setting, config, split, metric)."""
    import pandas as pd
    from scipy import stats

    keys = ["method", "dataset", "setting", "config_hash", "split", "metric"]
    rows = []
    for key, g in long.dropna(subset=["value"]).groupby(keys, sort=True):
        v = g["value"].to_numpy(dtype=float)
        n = len(v)
        mean = float(v.mean())
        std = float(v.std(ddof=1)) if n > 1 else float("nan")
        if n > 1:
            half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1) * std / math.sqrt(n))
            lo, hi = mean - half, mean + half
        else:
            lo = hi = float("nan")
        rows.append(dict(zip(keys, key), mean=mean, std=std, n=n, ci_low=lo, ci_high=hi,
                         seeds=",".join(str(s) for s in sorted(g["seed"]))))
    return pd.DataFrame(rows, columns=keys + ["mean", "std", "n", "ci_low", "ci_high", "seeds"])
