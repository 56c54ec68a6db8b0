"""``bench run``: train a method over seeds, or every missing run of a paper table (bench/cli/table_cmd.py)."""

from __future__ import annotations

import dataclasses

from bench import dispatch
from bench.cli.console import print_data_banner, print_summary
from bench.cli.settings import run_settings
from bench.cli.table_cmd import run_table
from bench.config import parse_sets
from bench.errors import UserError
from bench.runner import load_bundle, run
from bench.store import require_results_dir
from bench.text_guard import single_run_overrides
from bench.train.seeding import seeds_from_arg


# --------------------------------------------------------------------------------------- run
def cmd_run(args) -> int:
    """``bench run``: a paper table (``--table N``) or one method on one dataset over seeds."""
    if args.table is None and (not args.method or not args.dataset):
        raise UserError("run needs --method and --dataset (or --table N); see: bench ls methods, bench ls datasets")
    settings = run_settings(args)
    require_results_dir(settings.out)
    if args.table is not None:
        return run_table(args, settings)
    overrides = single_run_overrides(args.method, args.dataset, args.setting, parse_sets(args.sets), settings.text,
                                     settings.epochs)
    req = settings.request(args.method, args.dataset, args.setting, seeds_from_arg(args.seeds), overrides)
    bundle = load_bundle(req)
    print_data_banner(bundle)
    req = dataclasses.replace(req, setting=bundle.setting)
    if dispatch.wants_executor(settings):
        dispatch.run_elsewhere([req], settings)
        req = dataclasses.replace(req, force=False)  # the executor trained them: read them back
    records = run(req, bundle=bundle, progress=False if args.quiet else None)
    print_summary(records)
    return 0
