"""Measured training throughput per device class: what ``bench plan`` estimates wall time from.

``results/throughput/<device class>.csv`` (``cpu``, ``cuda``), one line per measured configuration:

``method, family, setting, shapes, budget, exec_mode, k, n_train, seconds_per_epoch, run_overhead_s, status,
script, machine, date, note, text``

* ``shapes``: the data's array shapes (``compact`` synthetic or ``full`` = the real files' shapes);
  ``budget``: the model budget (``compact`` table overrides or the methods' ``full`` configurations);
* ``seconds_per_epoch``: one training + validation epoch of ``k`` seeds trained together with
  ``exec_mode`` (``loop``: k = 1); ``run_overhead_s``: building the model and the final valid/test
  evaluation of one run;
* ``exec_mode``: ``loop``, ``vmap`` (k seeds in one ensemble) or ``loop+graphs`` (the static step, k = 1);
  ``text``: ``features`` (frozen text features, also methods without a text encoder) or ``bert`` (the run
  fine-tunes a bert-base-shaped BERT); a file without the column is all ``features``;
* ``status``: ``measured`` or ``extrapolated`` (the note says from what); ``script``/``machine``/``date``:
  where the number comes from (``scripts/measure_throughput.py``; on a GPU ``scripts/gpu_issue16.sh``).

A lookup never invents a figure: a configuration without a line of its own is estimated only from a line of
the same method, budget and text mode -- the same family in the other setting, another family in the same
setting, else another family and setting, scaled by the number of training samples -- and says so; otherwise it
is unknown.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from bench.text_encoder import uses_bert

COLUMNS = ("method", "family", "setting", "shapes", "budget", "exec_mode", "k", "n_train", "seconds_per_epoch",
           "run_overhead_s", "status", "script", "machine", "date", "note", "text")
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "results" / "throughput"


@dataclass(frozen=True)
class Entry:
    method: str
    family: str
    setting: str
    shapes: str
    budget: str
    exec_mode: str
    k: int
    n_train: int
    seconds_per_epoch: float
    run_overhead_s: float
    status: str
    script: str
    machine: str
    date: str
    note: str = ""
    text: str = "features"


@dataclass(frozen=True)
class Estimate:
    """Seconds for one configuration's group of seeds: ``epochs * per_epoch + overhead`` (None: unknown)."""

    per_epoch_s: float | None
    overhead_s: float
    how: str  # "measured", "scaled by samples", "other setting", "unknown", ...
    entry: Entry | None = None


def device_class(device: str) -> str:
    return "cuda" if str(device).startswith("cuda") else "cpu"


def table_path(dev_class: str, directory: Path | None = None) -> Path:
    return Path(directory or DEFAULT_DIR) / f"{dev_class}.csv"


def load(dev_class: str, directory: Path | None = None) -> list[Entry]:
    """Entries of ``<directory>/<dev_class>.csv`` (an empty list when there is no such file)."""
    path = table_path(dev_class, directory)
    if not path.exists():
        return []
    out = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            out.append(Entry(**{**row, "k": int(row["k"]), "n_train": int(row["n_train"]),
                                "seconds_per_epoch": float(row["seconds_per_epoch"]),
                                "run_overhead_s": float(row.get("run_overhead_s") or 0.0),
                                "text": row.get("text") or "features"}))
    return out


def write(entries: list[Entry], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for e in entries:
            w.writerow({c: getattr(e, c) for c in COLUMNS})


def sources(entries: list[Entry]) -> list[str]:
    """One line per (script, machine, date) the entries come from."""
    seen = []
    for e in entries:
        s = f"{e.script} on {e.machine}, {e.date}"
        if s not in seen:
            seen.append(s)
    return seen


def text_key(hp) -> str:
    """The ``text`` column of a configuration: ``bert`` when it fine-tunes a BERT, else ``features``."""

    return "bert" if uses_bert(hp) else "features"


def lookup(entries: list[Entry], method: str, family: str, setting: str, shapes: str, budget: str,
           n_train: int, exec_mode: str = "loop", k: int = 1, text: str = "features") -> Estimate:
    """Per-epoch seconds for ``k`` seeds of one configuration trained with ``exec_mode`` (loop: k seeds one after
    another = k x one seed; loop+graphs without a line of its own: the loop line). Falls back from the exact line
    to the other setting (same family) and then to another family scaled by training samples; otherwise unknown.
    Lines of another ``text`` mode are never used (a BERT epoch is not a frozen-features epoch)."""
    same = [e for e in entries if e.method == method and e.shapes == shapes and e.budget == budget
            and e.text == text]
    if exec_mode != "loop":  # vmap (k seeds together) or loop+graphs (the static step, k = 1)
        group = [e for e in same if e.exec_mode == exec_mode and e.k == (1 if exec_mode == "loop+graphs" else k)]
        picked = _pick(group, family, setting)
        if picked is not None:
            e, how = picked
            scale = n_train / e.n_train
            times = k if exec_mode == "loop+graphs" else 1
            return Estimate(times * e.seconds_per_epoch * scale, times * e.run_overhead_s, _how(how, scale), e)
    loops = [e for e in same if e.exec_mode == "loop" and e.k == 1]
    picked = _pick(loops, family, setting)
    if picked is None:
        return Estimate(None, 0.0, "unknown")
    e, how = picked
    scale = n_train / e.n_train
    note = (f"no {exec_mode} line: loop line, " if exec_mode == "loop+graphs" else "") + _how(how, scale) \
        + (f", {k} seeds one after another" if k > 1 else "")
    return Estimate(k * e.seconds_per_epoch * scale, k * e.run_overhead_s, note, e)


def _pick(cands: list[Entry], family: str, setting: str):
    for e in cands:
        if e.family == family and e.setting == setting:
            return e, "measured" if e.status == "measured" else e.status
    for e in cands:
        if e.family == family:
            return e, f"from {e.setting}"
    for e in cands:
        if e.setting == setting:
            return e, f"from {e.family}"
    for e in cands:  # the same method and budget in another family and setting: the roughest estimate, said
        return e, f"from {e.family}-{e.setting}"
    return None


def _how(how: str, scale: float) -> str:
    return how if abs(scale - 1.0) < 1e-9 else f"{how}, scaled x{scale:.2f} by training samples"
