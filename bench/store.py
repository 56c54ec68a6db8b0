"""The results store: one directory per (config hash, seed), written atomically with a ``done`` marker.

Layout: ``<out>/runs/<method>/<dataset>-<setting>/<config_hash>/config.json`` and
``.../seed-<n>/{result.json, preds.npz, done}``. A run is finished iff ``done`` exists and its
``result.json`` passes :func:`validate_result`; a finished-looking run whose result is unreadable or
incomplete is reported once (stderr, by path) and treated as not finished, so ``run`` retrains it and
every reader goes on without it. A run that was interrupted leaves only a ``.tmp-*`` directory (or a
``.<file>.*.tmp`` file), which is ignored and cleaned up under the writers' lock on the next write.
A failed write (disk full, I/O error) removes its temp files, keeps the previous run, and is a
:class:`StoreWriteError` naming the path.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; single-writer use is still atomic
    fcntl = None

import pandas as pd
from scipy import stats

from bench.config import RunSpec
from bench.errors import UserError
from bench.metrics import HIGHER_IS_BETTER
from bench.os_errors import os_error_line

if TYPE_CHECKING:
    import pandas as pd

RESULT_SCHEMA = "emoe-bench/result/v1"
# What every reader of a result indexes directly (aggregate, check, report, tables, figures).
_REQUIRED = {"method": str, "dataset": str, "setting": str, "seed": int, "config_hash": str, "config": dict,
             "test": dict, "valid": dict, "data": dict, "provenance": dict, "selection": dict}
_REQUIRED_DATA = {"name": str, "source": str, "fingerprint": str}


class CorruptResult(UserError):
    """A run directory marked ``done`` whose ``result.json`` cannot be read or lacks what readers need."""


class StoreWriteError(UserError):
    """Writing a run or a file of the store failed (disk full, I/O error); nothing half-written is left."""


def require_results_dir(out) -> Path:
    """Check, before any training, that ``<out>/runs`` can be created and written (nothing is created here),
    so a bad ``--out`` (a file on the way, no permission) is a one-line error up front instead of a
    traceback after the first run has trained."""
    runs = Path(out) / "runs"
    existing = runs
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
    except OSError as e:  # ENAMETOOLONG, ELOOP, EACCES on the way
        raise UserError(f"--out: {os_error_line(e)}") from None
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
    """The ``done`` marker and a ``result.json`` exist (cheap; :func:`load_finished` also validates)."""
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


def _write_error(path: Path, e: OSError) -> StoreWriteError:
    why = e.strerror or type(e).__name__
    return StoreWriteError(f"cannot write {path}: {why} (errno {e.errno}); nothing was half-written: free space "
                           "or fix the directory, then rerun the same command")


def write_json_atomic(path: Path, obj, locked: bool = False) -> None:
    """Write ``path`` via a temp file + rename; the temp file never outlives a failed write.

    ``locked``: writers of ``path`` serialise on ``.<name>.lock``, so any ``.<name>.*.tmp`` found under
    the lock is a killed writer's leftover and is removed (used for the shared ``config.json``).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _write_error(path.parent, e) from None
    with _locked(path.parent / f".{path.name}.lock") if locked else contextlib.nullcontext():
        if locked:
            for stale in path.parent.glob(f".{path.name}.*.tmp"):
                with contextlib.suppress(OSError):
                    stale.unlink()
        try:
            _dump_json(path, obj)
        except OSError as e:
            raise _write_error(path, e) from None


def _dump_json(path: Path, obj) -> None:
    """Temp file + rename; on an OSError the temp file is removed and the error re-raised."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(_clean(obj), f, indent=1, sort_keys=True, default=_json_default)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(path: Path):
    """Exclusive advisory lock on ``path`` (created if missing); a no-op without fcntl (Windows)."""
    if fcntl is None:
        yield
        return
    try:
        f = open(path, "a")  # noqa: SIM115 - closed below
    except OSError as e:
        raise _write_error(path, e) from None
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_run(final: Path, result: dict, outputs: dict[str, np.ndarray] | None = None) -> Path:
    """Write result.json (+ preds.npz) and the done marker into a temp dir, then rename into place.

    Writers of the same run serialise on ``.<name>.lock`` (two workers may finish the same run), so a
    temp dir seen under the lock is a crashed writer's and can go; the previous directory is renamed
    aside before the new one is renamed in, so a reader never sees a half-deleted run. If any step
    fails with an OSError (disk full, I/O error) the temp dir is removed, the previous run is put
    back, and a :class:`StoreWriteError` names the path.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _write_error(final.parent, e) from None
    with _locked(final.parent / f".{final.name}.lock"):
        _recover_or_clean(final)
        tmp = old = None
        try:
            tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
            _dump_json(tmp / "result.json", result)
            if outputs:
                np.savez_compressed(tmp / "preds.npz", **outputs)
            (tmp / "done").write_text("ok\n")
            if final.exists():
                old = final.parent / f".{final.name}.tmp-old-{os.getpid()}"
                os.replace(final, old)
            os.replace(tmp, final)
        except OSError as e:
            if old is not None and not final.exists():
                with contextlib.suppress(OSError):
                    os.replace(old, final)  # the earlier finished run stays
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise _write_error(final, e) from None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    _WARNED.discard(final / "result.json")
    return final


def _recover_or_clean(final: Path) -> None:
    """Under the run's lock: put back a previous run left aside by a writer killed between its two
    renames, then remove every other temp dir of this run (all crashed writers')."""
    if not final.exists():
        for old in sorted(final.parent.glob(f".{final.name}.tmp-old-*")):
            if (old / "done").is_file():
                with contextlib.suppress(OSError):
                    os.replace(old, final)
                break
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def read_result(path: Path) -> dict:
    """The parsed ``result.json`` of a run directory (any JSON object); :class:`CorruptResult` names the
    file when it is unreadable or not a JSON object."""
    file = Path(path) / "result.json"
    try:
        with open(file, encoding="utf-8") as f:
            obj = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0] if str(e) else ""
        raise CorruptResult(f"{file}: unreadable ({type(e).__name__}: {why})") from None
    if not isinstance(obj, dict):
        raise CorruptResult(f"{file}: expected a JSON object, found {type(obj).__name__}")
    return obj


def _is_metric(v) -> bool:
    return v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool))


def validate_result(r: dict) -> str | None:
    """Why ``r`` cannot be used by the readers (a short phrase), or None when it can."""
    for key, kind in _REQUIRED.items():
        if key not in r:
            return f"missing key {key!r}"
        if not isinstance(r[key], kind) or (kind is int and isinstance(r[key], bool)):
            return f"{key!r} is {type(r[key]).__name__}, expected {kind.__name__}"
    if not r["test"]:
        return "'test' has no metrics"
    for split in ("valid", "test"):
        for metric, value in r[split].items():
            if not _is_metric(value):
                return f"{split} metric {metric!r} is {value!r}, expected a number"
    for key, kind in _REQUIRED_DATA.items():
        if not isinstance(r["data"].get(key), kind):
            return f"'data' lacks {key!r} ({kind.__name__})"
    if not isinstance(r["data"].get("files", []), list):
        return "'data.files' is not a list"
    return None


_WARNED: set[Path] = set()


def _warn_once(file: Path, why: str) -> None:
    if file in _WARNED:
        return
    _WARNED.add(file)
    print(f"warning: {file}: {why}; treated as not finished (`bench run` with the same arguments retrains it)",
          file=sys.stderr)


def load_finished(path: Path) -> dict | None:
    """The result of a finished run, or None when ``path`` is not finished: no ``done`` marker, or a
    ``result.json`` that is unreadable or incomplete (then warned once per run on stderr, by path)."""
    path = Path(path)
    if not (path / "done").is_file():
        return None
    try:
        r = read_result(path)
    except CorruptResult as e:
        _warn_once(path / "result.json", str(e).split(": ", 1)[-1])
        return None
    why = validate_result(r)
    if why is not None:
        _warn_once(path / "result.json", why)
        return None
    return r


def iter_results(out: Path):
    """Every finished, readable result under ``<out>/runs`` (unfinished and temp dirs are skipped; a
    corrupt one is warned about and skipped)."""
    root = Path(out) / "runs"
    if not root.is_dir():
        return
    for done in sorted(root.glob("*/*/*/seed-*/done")):
        if done.parent.name.startswith("."):
            continue
        r = load_finished(done.parent)
        if r is not None:
            yield done.parent, r


def incomplete_runs(out: Path) -> list[Path]:
    root = Path(out) / "runs"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("*/*/*/.seed-*.tmp-*"))


def to_long(out: Path) -> pd.DataFrame:
    """Tidy long format: one row per (run, split, metric)."""
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
