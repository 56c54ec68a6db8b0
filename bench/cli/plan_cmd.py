"""``bench plan --table N`` / ``--figure N``: the runs still needed and their estimated wall time (bench/plan.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import plan, throughput
from bench.cli.args import add_data_args
from bench.cli.settings import run_settings
from bench.config import parse_sets
from bench.errors import UserError
from bench.plan import PlanRow
from bench.report.figure_specs import require_figure
from bench.report.planning import budget, choose_settings, default_seeds, plan_figure
from bench.report.planning import plan as plan_table
from bench.report.specs import DEFAULT_TABLE_SEEDS, require_table
from bench.runner import resolve_device
from bench.train.seeding import seeds_from_arg


def add_parser(sub) -> None:
    """The ``plan`` subcommand."""
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
    p.set_defaults(force=False, amp="off", compile=False, workers=0, jobs=1, seeds_per_job=0,
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


def table_plan(number: int | None, args, figure: int | None = None) -> tuple[list[PlanRow], str]:
    """The plan of ``--table N`` (or ``--figure N``) under the run options in ``args``; returns rows and text."""
    device = args.device if args.device.startswith("cuda") else resolve_device(args.device)  # no GPU needed
    settings = run_settings(argparse.Namespace(**{**vars(args), "device": device}))
    source, data_root = settings.source, settings.data_root
    size = budget(source, args.profile)
    if figure is not None:
        fspec = require_figure(figure)
        planned = plan_figure(fspec, source, size, parse_sets(args.sets), text=settings.text)
        n_seeds = default_seeds(fspec, source, size)
    else:
        spec, _ = choose_settings(require_table(number), None, source, data_root)
        planned = plan_table(spec, source, size, parse_sets(args.sets), text=settings.text)
        n_seeds = DEFAULT_TABLE_SEEDS[source]
    seeds = seeds_from_arg(args.seeds, n_seeds)
    requests = [settings.request(p.row.method, p.dataset, p.setting, seeds, p.overrides) for p in planned]
    dev_class = throughput.device_class(device)
    directory = Path(args.throughput_dir) if getattr(args, "throughput_dir", None) else None
    entries = throughput.load(dev_class, directory)
    rows = plan.plan_requests([(p.row.label, p.setting) for p in planned], requests, size, entries, device,
                              assume=getattr(args, "assume_epochs", None))
    return rows, plan.format_plan(rows, entries, dev_class, throughput.table_path(dev_class, directory))
