"""``bench plan --table N``: the runs a table (or figure) still needs and what they will cost.

The runs are the ones ``bench run --table N`` would train: the table's planned configurations (bench/tables.py)
times the seeds, minus the finished runs in the results store (same config hash, the resume rule). The wall time
is estimated from the committed throughput table of the device class (bench/throughput.py): per configuration
``epochs x seconds per epoch + overhead``, where epochs is the run's cap (``max_epochs`` / ``--epochs``) or, for
runs that stop only early, an assumption that is printed. Configurations without a throughput line are
"unknown", never guessed. ``bench run --table N`` prints the same plan before it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import throughput
from bench.errors import UserError


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
    from bench import store
    from bench.registry import get_method
    from bench.runner import load_bundle, run_spec
    from bench.train import autoexec

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
    from bench.train.static_step import resolve_graphs

    if req.amp != "off" or req.compile:
        return req.graphs == "on"
    return resolve_graphs(req.graphs, cls, hp, device)[0] == "on"


def shape_bundle(req):
    """A synthetic dataset as the generator would make it -- names, fingerprint, sizes and shapes -- with meta
    tensors (no memory, no generation: full-size synthetic MOSEI alone would be gigabytes)."""
    import torch

    from bench.data.synthetic import SYNTHETIC_FAMILIES, make_params, planned_shapes
    from bench.data.tensors import DatasetBundle, Split

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


def table_plan(number: int | None, args, figure: int | None = None,
               log: Callable[[str], None] = print) -> tuple[list[PlanRow], str]:
    """The plan of ``--table N`` (or ``--figure N``) under the run options in ``args``; returns rows and text."""
    from bench import dispatch
    from bench.config import parse_sets
    from bench.runner import RunRequest, resolve_device
    from bench.tables import budget, choose_settings, data_source, plan, require_table
    from bench.text_encoder import text_choice
    from bench.train.seeding import seeds_from_arg

    source, data_root = data_source(args)
    size = budget(source, args.profile)
    text = text_choice(args)
    if figure is not None:
        from bench.figures import default_seeds, plan_figure, require_figure

        fspec = require_figure(figure)
        planned = plan_figure(fspec, source, size, parse_sets(args.sets), text=text)
        n_seeds = default_seeds(fspec, source, size)
    else:
        from bench.tables import DEFAULT_TABLE_SEEDS

        spec, _ = choose_settings(require_table(number), None, source, data_root)
        planned = plan(spec, source, size, parse_sets(args.sets), text=text)
        n_seeds = DEFAULT_TABLE_SEEDS[source]
    seeds = seeds_from_arg(args.seeds, n_seeds)
    device = args.device if args.device.startswith("cuda") else resolve_device(args.device)  # no GPU needed
    fields = dispatch.request_fields(_with_device(args, device))
    requests = [RunRequest(method=p.row.method, dataset=p.dataset, setting=p.setting, seeds=seeds,
                           overrides=p.overrides, epochs=args.epochs, data_root=str(data_root) if data_root else None,
                           out=args.out, device=device, profile=args.profile or "compact", data_seed=args.data_seed,
                           clean_nan=args.clean_nan, **fields) for p in planned]
    dev_class = throughput.device_class(device)
    directory = Path(args.throughput_dir) if getattr(args, "throughput_dir", None) else None
    entries = throughput.load(dev_class, directory)
    rows = plan_requests([(p.row.label, p.setting) for p in planned], requests, size, entries, device,
                         assume=getattr(args, "assume_epochs", None))
    return rows, format_plan(rows, entries, dev_class, throughput.table_path(dev_class, directory))


def _with_device(args, device: str):
    import argparse

    ns = argparse.Namespace(**vars(args))
    ns.device = device
    return ns


def add_plan_parser(sub, add_data_args) -> None:
    p = sub.add_parser("plan", help="the runs a table/figure still needs and their estimated wall time")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--table", type=int, default=None)
    what.add_argument("--figure", type=int, default=None)
    p.add_argument("--seeds", default=None, help="seeds: 1111,1112 | 1111-1115 | 5x (a count); default: the table's")
    p.add_argument("--device", default="auto",
                   help="device class to estimate for: cpu or cuda (default auto = this machine's)")
    p.add_argument("--out", default="results", help="results directory whose finished runs are reused")
    p.add_argument("--epochs", type=int, default=None, help="cap on training epochs, as for bench run")
    p.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--exec", dest="exec_mode", default=None, choices=("auto", "loop", "vmap", "procs"),
                   help="execution mode to plan for (default: auto on cuda, loop on cpu)")
    p.add_argument("--assume-epochs", type=int, default=None,
                   help="epochs assumed for runs without an epoch cap (default 3 x the early-stopping patience)")
    p.add_argument("--graphs", choices=("auto", "on", "off"), default="auto",
                   help="static step (CUDA graphs) for loop runs, as for bench run (default auto); its rows use the "
                        "loop+graphs throughput lines")
    p.add_argument("--throughput-dir", default=None, help="directory of <device>.csv (default results/throughput)")
    add_data_args(p)  # includes --text-model / --text (BERT rows: bert-base throughput lines)
    p.set_defaults(func=cmd_plan, force=False, amp="off", compile=False, workers=0, jobs=1, seeds_per_job=0,
                   executor="local")


def cmd_plan(args) -> int:
    if args.device not in ("auto", "cpu") and not args.device.startswith("cuda"):
        raise UserError(f"--device {args.device!r}: expected auto, cpu or cuda")
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs {args.epochs}: expected a positive number of epochs")
    if args.assume_epochs is not None and args.assume_epochs < 1:
        raise UserError(f"--assume-epochs {args.assume_epochs}: expected a positive number")
    _, text = table_plan(args.table, args, figure=args.figure)
    print(f"plan for {'table ' + str(args.table) if args.table is not None else 'figure ' + str(args.figure)}")
    print(text)
    return 0
