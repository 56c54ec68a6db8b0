"""``python -m bench``: the only place that prints for humans and turns user errors into exit code 2."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from bench.errors import UserError

EPILOG = """examples:
  python -m bench run --table 4
  python -m bench plan --table 1 --seeds 5 --device cuda --profile full
  python -m bench run --method lf_dnn --dataset synthetic-mosi --seeds 1111,1112
  python -m bench run --method lf_dnn --dataset mosi --setting unaligned --data-root ../shared/data/mosi229
  python -m bench ls methods
  python -m bench describe lf_dnn --dataset mosi --setting unaligned --json
  python -m bench data verify --data-root /data/MMSA
"""

SYNTHETIC_BANNER = ("[synthetic data] results below come from the embedded synthetic dataset: "
                    "they test the pipeline and are never comparable with the paper's numbers")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None,
                   help="root of real data in MMSA/MIntRec layout (default: $BENCH_DATA_ROOT; "
                        "none = synthetic default)")
    p.add_argument("--profile", choices=("compact", "full"), default=None,
                   help="synthetic data size, and for tables/figures the model budget: compact (smaller models, "
                        "20 epochs; the default on synthetic data) or full (the methods' own configurations; the "
                        "default on real data)")
    p.add_argument("--clean-nan", action="store_true", help="replace NaN/inf in features by 0 instead of failing")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic generator (default 0)")
    from bench.text_encoder import add_text_args

    add_text_args(p)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bench", description="emoe-bench: reproduce EMOE and its baselines.",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser("run", help="train methods over seeds (finished runs are reused)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    r.add_argument("--table", type=int, default=None, help="run every missing run of paper table N")
    r.add_argument("--method", default=None, help="registered method name (see: bench ls methods)")
    r.add_argument("--dataset", default=None, help="dataset name (see: bench ls datasets)")
    r.add_argument("--setting", choices=("aligned", "unaligned"), default=None)
    r.add_argument("--seeds", default=None, help="seeds: a list 1111,1112, a range 1111-1115, or a count 3x "
                                                 "(= 1111-1113); a lone number is one seed (default 1111-1115; "
                                                 "--table: 3x on synthetic, 5x on real data)")
    r.add_argument("--epochs", type=int, default=None, help="cap on training epochs (sets max_epochs)")
    r.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", default=[],
                   help="override a hyper-parameter (repeatable)")
    r.add_argument("--out", default="results", help="results directory (default: results)")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    r.add_argument("--force", action="store_true", help="rerun finished runs")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.add_argument("--threads", type=int, default=None,
                   help="torch intra-op CPU threads (default: torch's choice; results can differ in the last "
                        "bits between thread counts, and the count is recorded)")
    _add_data_args(r)
    from bench.dispatch import add_execution_args

    add_execution_args(r)

    ls = sub.add_parser("ls", help="list methods, datasets or tables")
    ls.add_argument("what", choices=("methods", "datasets", "tables"))

    d = sub.add_parser("describe", help="parameter counts per group and resolved hyper-parameters")
    d.add_argument("method")
    d.add_argument("--dataset", default="mosi")
    d.add_argument("--setting", choices=("aligned", "unaligned"), default=None)
    d.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", default=[])
    d.add_argument("--json", action="store_true", help="machine-readable output")
    _add_data_args(d)

    da = sub.add_parser("data", help="verify real data files or generate synthetic data")
    dsub = da.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True
    v = dsub.add_parser("verify", help="check presence and SHA-256 of the real data files")
    v.add_argument("--data-root", default=None)
    s = dsub.add_parser("synth", help="generate (and cache) a synthetic dataset; print its shapes")
    s.add_argument("--dataset", default="synthetic-mosi")
    s.add_argument("--setting", choices=("aligned", "unaligned"), default=None)
    s.add_argument("--profile", choices=("compact", "full"), default="compact")
    s.add_argument("--data-seed", type=int, default=0)

    c = sub.add_parser("check", help="regression gate: compare a table's cells with published or reference numbers")
    c.add_argument("--table", type=int, required=True)
    c.add_argument("--against", choices=("published", "reference"), default="published")
    c.add_argument("--results", default="results", help="results directory holding runs/ (default: results)")
    c.add_argument("--source", choices=("synthetic", "real"), default="synthetic",
                   help="which results --against reference compares (default synthetic)")
    c.add_argument("--reference-dir", default=None, help="directory of reference CSVs (default results/reference)")
    c.add_argument("--k", type=float, default=None, help="band width in standard errors (default 2)")
    c.add_argument("--floor", action="append", default=[], metavar="METRIC=VALUE",
                   help="absolute band floor per metric, as a fraction (defaults: acc/F1 0.01, mae/corr 0.02)")
    c.add_argument("--rows", default=None, help="comma list of row labels to check (default all)")
    c.add_argument("--same-seeds", action="store_true",
                   help="--against reference: compare with the reference values of the same seeds only")
    c.add_argument("--update", action="store_true", help="write the reference CSV from the current results")
    c.add_argument("--profile", choices=("compact", "full"), default="compact")
    c.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", default=[])
    c.add_argument("--epochs", type=int, default=None)
    from bench.check_cli import add_published_args
    from bench.text_encoder import add_text_args

    add_published_args(c)
    add_text_args(c)

    rp = sub.add_parser("report", help="Markdown report over all tables (verdicts, gaps, provenance)")
    rp.add_argument("--results", default="results")
    add_text_args(rp)
    rp.add_argument("--reference-dir", default=None)
    rp.add_argument("--output", default=None, help="file to write (default <results>/report.md)")

    ag = sub.add_parser("aggregate", help="write the long-format CSV and the per-cell summary of all runs")
    ag.add_argument("--out", default="results")

    # --- figure N (parser and command live in bench/figures.py) ---
    from bench.figures import add_figure_parser

    add_figure_parser(sub, _add_data_args)
    from bench.plan import add_plan_parser

    add_plan_parser(sub, _add_data_args)
    return ap


def main(argv: list[str] | None = None) -> int:
    from bench import cli_guards

    args = build_parser().parse_args(argv)
    try:
        with cli_guards.sigterm_as_interrupt():
            return {"run": cmd_run, "ls": cmd_ls, "describe": cmd_describe, "data": cmd_data,
                    "aggregate": cmd_aggregate, "check": cmd_check, "report": cmd_report,
                    "figure": lambda a: a.func(a), "plan": lambda a: a.func(a)}[args.command](args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, I/O error, a path longer than the OS allows: one line naming the path
        print(f"error: {cli_guards.os_error_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (cli_guards)
        print("interrupted: finished runs are kept; rerun the same command to resume", file=sys.stderr)
        return cli_guards.interrupt_exit_code(e)


# --------------------------------------------------------------------------------------- run
def cmd_run(args) -> int:
    from bench.config import parse_sets
    from bench.data import resolve_data_root
    from bench.train.seeding import seeds_from_arg

    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads {args.threads}: expected a positive number")
        import torch

        torch.set_num_threads(args.threads)
    from bench.store import require_results_dir

    require_results_dir(args.out)
    if args.table is not None:
        from bench.tables_cli import run_table

        return run_table(args)
    if not args.method or not args.dataset:
        raise UserError("run needs --method and --dataset (or --table N); see: bench ls methods, bench ls datasets")
    from bench import dispatch
    from bench.runner import RunRequest, load_bundle, run
    from bench.text_encoder import single_run_overrides

    data_root = resolve_data_root(args.data_root)
    overrides = single_run_overrides(args.method, args.dataset, args.setting, parse_sets(args.sets), args)
    req = RunRequest(method=args.method, dataset=args.dataset, setting=args.setting,
                     seeds=seeds_from_arg(args.seeds), overrides=overrides, epochs=args.epochs,
                     data_root=str(data_root) if data_root else None, out=args.out, device=args.device,
                     force=args.force, profile=args.profile or "compact", clean_nan=args.clean_nan,
                     data_seed=args.data_seed,
                     **dispatch.request_fields(args))
    bundle = load_bundle(req)
    _print_data_banner(bundle)
    req = dataclasses.replace(req, setting=bundle.setting)
    if dispatch.wants_executor(args):
        dispatch.run_elsewhere([req], args)
        req = dataclasses.replace(req, force=False)  # the executor trained them: read them back
    records = run(req, bundle=bundle, progress=False if args.quiet else None)
    _print_summary(records)
    return 0


def _print_data_banner(bundle) -> None:
    if bundle.source == "synthetic":
        print(SYNTHETIC_BANNER)
    else:
        files = ", ".join(f"{Path(f['path']).name} sha256 {str(f.get('sha256'))[:12]} ({f.get('status')})"
                          for f in bundle.files)
        print(f"[real data] {bundle.name}-{bundle.setting}: {files}")
        if not bundle.standard:
            print("[real data] not the standard published files: numbers are not comparable with the paper")
    for note in bundle.notes:
        print(f"[data] {note}")


def _print_summary(records) -> None:
    import numpy as np

    if len(records) < 2:
        return
    keys = [k for k in ("mae", "corr", "non0_acc2", "has0_acc2", "acc7", "acc", "f1") if k in records[0].result["test"]]
    parts = []
    for k in keys:
        vals = np.array([r.result["test"].get(k) for r in records], dtype=float)
        parts.append(f"{k} {np.nanmean(vals):.4f} ± {np.nanstd(vals, ddof=1):.4f}")
    print(f"test over {len(records)} seeds (mean ± sample std): " + ", ".join(parts))


# ---------------------------------------------------------------------------------------- ls
def cmd_ls(args) -> int:
    from bench.registry import datasets, methods

    if args.what == "methods":
        for name, cls in sorted(methods().items()):
            print(f"{name:14s} {', '.join(cls.families):22s} {cls.description}")
    elif args.what == "datasets":
        from bench.data import settings_for

        for name in sorted(datasets()):
            kind = "synthetic (embedded default)" if name.startswith("synthetic-") else "real (needs --data-root)"
            print(f"{name:18s} {'/'.join(settings_for(name)):18s} {kind}")
    else:
        from bench.tables_cli import list_tables

        list_tables()
    return 0


# ---------------------------------------------------------------------------------- describe
def cmd_describe(args) -> int:
    from bench.config import parse_sets
    from bench.data import resolve_data_root, settings_for
    from bench.describe import canonical_info, describe
    from bench.registry import get_dataset_loader, get_method
    from bench.runner import default_setting, resolve_hparams

    method_cls = get_method(args.method)
    get_dataset_loader(args.dataset)
    setting = args.setting or default_setting(method_cls, settings_for(args.dataset))
    data_root = resolve_data_root(args.data_root)
    if args.dataset.startswith("synthetic-") or data_root is not None:
        from bench.data import load_dataset

        bundle = load_dataset(args.dataset, setting, data_root=data_root, profile=args.profile or "compact",
                              clean_nan=args.clean_nan, seed=args.data_seed)
        info = bundle.info()
    else:
        info = canonical_info(args.dataset, setting)
    from bench.text_encoder import text_choice, text_overrides

    sets = parse_sets(args.sets)
    sets = {**text_overrides(method_cls, info.family, setting, text_choice(args), sets), **sets}
    hp = resolve_hparams(method_cls, info.family, setting, sets)
    d = describe(method_cls, hp, info)
    if args.json:
        print(json.dumps(d, indent=1, default=str))
        return 0
    print(f"{d['method']} on {args.dataset}-{setting}: dims {d['dims']}, lengths {d['seq_lens']}")
    print("parameters:")
    for g, n in d["parameters"].items():
        print(f"  {g:24s} {n:>14,d}")
    print("hyper-parameters:")
    for k, v in d["hparams"].items():
        print(f"  {k:24s} {v}")
    return 0


# -------------------------------------------------------------------------------------- data
def cmd_data(args) -> int:
    from bench.data import load_dataset, resolve_data_root, settings_for

    if args.data_command == "verify":
        from bench.data.verify import verify_root

        root = resolve_data_root(args.data_root)
        if root is None:
            raise UserError("data verify needs --data-root (or BENCH_DATA_ROOT) pointing at the MMSA/MIntRec data root")
        rows = verify_root(root)
        bad = 0
        for r in rows:
            sha = (r.get("sha256") or "-")[:16]
            print(f"{r['status']:9s} {r['dataset']:8s} {r['setting']:10s} {sha:16s} {r['path']}")
            bad += r["status"] == "mismatch"
        present = sum(r["status"] != "missing" for r in rows)
        print(f"{present} of {len(rows)} expected files present; {bad} checksum mismatch(es)")
        return 0
    setting = args.setting or settings_for(args.dataset)[0]
    bundle = load_dataset(args.dataset, setting, profile=args.profile, seed=args.data_seed)
    print(f"{bundle.name}-{setting} ({bundle.source}, profile {args.profile}, data seed {args.data_seed}) "
          f"fingerprint {bundle.fingerprint[:16]}")
    for split, s in bundle.splits.items():
        shapes = {k: tuple(v.shape) for k, v in s.tensors().items() if k != "index"}
        print(f"  {split:5s} n={len(s):6d} {shapes}")
    return 0


def cmd_aggregate(args) -> int:
    from bench import store

    long = store.to_long(Path(args.out))
    if long.empty:
        raise UserError(f"no finished runs under {Path(args.out) / 'runs'}")
    summary = store.summarize(long)
    long_path = Path(args.out) / "runs-long.csv"
    sum_path = Path(args.out) / "runs-summary.csv"
    long.to_csv(long_path, index=False)
    summary.to_csv(sum_path, index=False)
    print(f"{len(long)} rows -> {long_path}; {len(summary)} cells -> {sum_path}")
    return 0


# ------------------------------------------------------------------------------------- check
def _check_options(args):
    from bench.check_cli import check_options

    return check_options(args)


def cmd_check(args) -> int:
    from bench.check_cli import cmd_check as run_check

    return run_check(args)


def cmd_report(args) -> int:
    from bench.check import build_report

    text = build_report(Path(args.results), _check_options(args),
                        Path(args.reference_dir) if args.reference_dir else None)
    out = Path(args.output) if args.output else Path(args.results) / "report.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written: {out}")
    return 0
