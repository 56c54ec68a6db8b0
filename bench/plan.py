"""``bench plan --table N``: the runs a table (or figure) still needs and what they will cost.

The runs are the ones ``bench run --table N`` would train: the table's planned configurations (bench/report/planning.py)
times the seeds, minus the finished runs in the results store (same config hash, the resume rule). The wall time
is estimated from the committed throughput table of the device class (bench/throughput.py): per configuration
``epochs x seconds per epoch + overhead``, where epochs is the run's cap (``max_epochs`` / ``--epochs``) or, for
runs that stop only early, an assumption that is printed. Configurations without a throughput line are
"unknown", never guessed. ``bench run --table N`` prints the same plan before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench import store, throughput
from bench.data.synthetic import SYNTHETIC_FAMILIES, make_params, planned_shapes
from bench.data.tensors import DatasetBundle, Split
from bench.registry import get_method
from bench.runner import load_bundle, run_spec
from bench.train import autoexec
from bench.train.static_step import resolve_graphs


@dataclass
class PlanRow:
    label: str
    setting: str
    method: str
    seeds: int
    reused: int
    exec_mode: str
    epochs: int
    epochs_assumed: bool
    estimate: throughput.Estimate

    @property
    def todo(self) -> int:
        return self.seeds - self.reused

    @property
    def seconds(self) -> float | None:
        if self.todo == 0:
            return 0.0
        if self.estimate.per_epoch_s is None:
            return None
        return self.epochs * self.estimate.per_epoch_s + self.estimate.overhead_s


def assumed_epochs(hp, assume: int | None) -> tuple[int, bool]:
    """(epochs, assumed?): the run's cap, else ``assume`` or 3 x the early-stopping patience."""
    if hp.max_epochs:
        return int(hp.max_epochs), False
    return (int(assume) if assume else 3 * int(hp.early_stop)), True


def plan_requests(labels: list[tuple[str, str]], requests: list, budget: str, entries: list, device: str,
                  bundles: dict | None = None, assume: int | None = None) -> list[PlanRow]:
    """One :class:`PlanRow` per request (``labels``: (row label, setting) of each). ``bundles`` caches the
    loaded data per (dataset, setting) and is filled in (``bench run`` trains from it afterwards)."""

    bundles = {} if bundles is None else bundles
    shells: dict = {}
    rows = []
    for (label, setting), req in zip(labels, requests, strict=True):
        key = (req.dataset, req.setting)
        if key in bundles:
            bundle = bundles[key]
        elif req.dataset.startswith("synthetic-"):  # shapes and fingerprint only: nothing is generated
            if key not in shells:
                shells[key] = shape_bundle(req)
            bundle = shells[key]
        else:
            bundles[key] = bundle = load_bundle(req)
        cls = get_method(req.method)
        hp, spec = run_spec(req, bundle, cls)
        reused = 0 if req.force else sum(store.is_done(store.run_dir(Path(req.out), spec, s)) for s in req.seeds)
        todo = len(req.seeds) - reused
        mode = req.exec_mode
        if mode == "auto":
            mode = autoexec.choose(cls, hp, bundle.info(), todo, device).mode if todo else "-"
        if mode == "loop" and graphs_used(req, cls, hp, device):
            mode = "loop+graphs"
        shapes = "full" if bundle.source == "real" else req.profile
        epochs, assumed = assumed_epochs(hp, assume)
        est = throughput.lookup(entries, req.method, bundle.family, bundle.setting, shapes, budget,
                                len(bundle.train), exec_mode=mode, k=max(todo, 1), text=throughput.text_key(hp))
        rows.append(PlanRow(label, setting, req.method, len(req.seeds), reused, mode, epochs, assumed, est))
    return rows


def graphs_used(req, cls, hp, device) -> bool:
    """Whether ``bench run`` would train this loop configuration with the static step (--graphs on / auto)."""

    if req.amp != "off" or req.compile:
        return req.graphs == "on"
    return resolve_graphs(req.graphs, cls, hp, device)[0] == "on"


def shape_bundle(req):
    """A synthetic dataset as the generator would make it -- names, fingerprint, sizes and shapes -- with meta
    tensors (no memory, no generation: full-size synthetic MOSEI alone would be gigabytes)."""
    import torch


    p = make_params(req.dataset, req.setting, req.profile, req.data_seed)
    splits = {}
    for name, fields in planned_shapes(req.dataset, req.setting, req.profile).items():
        kw = {k: torch.empty(shape, device="meta") for k, shape in fields.items()}
        kw["index"] = torch.empty(fields["labels"], dtype=torch.long, device="meta")
        splits[name] = Split(**kw)
    return DatasetBundle(name=req.dataset, family=SYNTHETIC_FAMILIES[req.dataset], setting=req.setting, task=p.task,
                         splits=splits, source="synthetic", num_classes=p.num_classes, fingerprint=p.key())


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else (f"{m} min {s:02d} s" if m else f"{s} s")


def format_plan(rows: list[PlanRow], entries: list, dev_class: str, path: Path) -> str:
    from tabulate import tabulate

    table = []
    for r in rows:
        sec = r.seconds
        per = r.estimate.per_epoch_s
        table.append([r.label, r.setting, r.method, r.seeds, r.reused, r.todo, r.exec_mode if r.todo else "-",
                      f"{r.epochs}{'*' if r.epochs_assumed else ''}" if r.todo else "-",
                      "-" if not r.todo else ("unknown" if per is None else f"{per:.2f}"),
                      "-" if not r.todo else ("unknown" if sec is None else _hms(sec)),
                      r.estimate.how if r.todo else "all reused"])
    text = tabulate(table, headers=["row", "setting", "method", "seeds", "reused", "to run", "exec", "epochs",
                                    "s/epoch (group)", "estimate", "throughput"])
    runs = sum(r.todo for r in rows)
    known = [r.seconds for r in rows if r.todo and r.seconds is not None]
    unknown = [r for r in rows if r.todo and r.seconds is None]
    lines = [text, "",
             f"runs to train: {runs} of {sum(r.seeds for r in rows)} ({sum(r.reused for r in rows)} finished runs "
             f"reused); estimated wall time on {dev_class}: {_hms(sum(known))}"
             + (f" + unknown for {len(unknown)} configuration(s) ({', '.join(sorted({r.method for r in unknown}))}: "
                "no throughput line)" if unknown else "")]
    if any(r.epochs_assumed and r.todo for r in rows):
        lines.append("epochs*: the run stops only early; the estimate assumes that many epochs (--assume-epochs)")
    if any(r.todo and r.exec_mode == "procs" for r in rows):
        lines.append("procs rows are estimated as the seeds one after another (an upper bound)")
    src = throughput.sources(entries)
    lines.append(f"throughput: {path}" + (f" ({'; '.join(src)})" if src else " (missing: every row is unknown)"))
    return "\n".join(lines)
