"""``python -m bench``: the parser, and the only place that turns user errors into exit code 2.

Each command lives in its own module of this package; bench/report renders, bench/runner trains."""

from __future__ import annotations

import argparse
import sys

from bench.cli import check_cmd, figure_cmd, info_cmds, plan_cmd, run_cmd
from bench.cli.args import add_data_args, add_execution_args, add_published_args, add_text_args
from bench.cli.signals import interrupt_exit_code, sigterm_as_interrupt
from bench.errors import UserError
from bench.os_errors import os_error_line

EPILOG = """examples:
  python -m bench run --table 4
  python -m bench plan --table 1 --seeds 5 --device cuda --profile full
  python -m bench run --method lf_dnn --dataset synthetic-mosi --seeds 1111,1112
  python -m bench run --method lf_dnn --dataset mosi --setting unaligned --data-root ../shared/data/mosi229
  python -m bench ls methods
  python -m bench describe lf_dnn --dataset mosi --setting unaligned --json
  python -m bench data verify --data-root /data/MMSA
"""


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
    add_data_args(r)
    add_execution_args(r)

    ls = sub.add_parser("ls", help="list methods, datasets or tables")
    ls.add_argument("what", choices=("methods", "datasets", "tables"))

    d = sub.add_parser("describe", help="parameter counts per group and resolved hyper-parameters")
    d.add_argument("method")
    d.add_argument("--dataset", default="mosi")
    d.add_argument("--setting", choices=("aligned", "unaligned"), default=None)
    d.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", default=[])
    d.add_argument("--json", action="store_true", help="machine-readable output")
    add_data_args(d)

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
    add_published_args(c)
    add_text_args(c)

    rp = sub.add_parser("report", help="Markdown report over all tables (verdicts, gaps, provenance)")
    rp.add_argument("--results", default="results")
    add_text_args(rp)
    rp.add_argument("--reference-dir", default=None)
    rp.add_argument("--output", default=None, help="file to write (default <results>/report.md)")
    rp.add_argument("--power-tables", default="1000", metavar="N",
                    help="tables simulated for each real-data table's power against the paper (default 1000; 0 = none)")

    ag = sub.add_parser("aggregate", help="write the long-format CSV and the per-cell summary of all runs")
    ag.add_argument("--out", default="results")

    figure_cmd.add_parser(sub)
    plan_cmd.add_parser(sub)
    return ap


COMMANDS = {"run": run_cmd.cmd_run, "ls": info_cmds.cmd_ls, "describe": info_cmds.cmd_describe,
            "data": info_cmds.cmd_data, "aggregate": info_cmds.cmd_aggregate, "check": check_cmd.cmd_check,
            "report": check_cmd.cmd_report, "figure": figure_cmd.cmd_figure, "plan": plan_cmd.cmd_plan}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with sigterm_as_interrupt():
            return COMMANDS[args.command](args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, I/O error, a path longer than the OS allows: one line naming the path
        print(f"error: {os_error_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (bench/cli/signals.py)
        print("interrupted: finished runs are kept; rerun the same command to resume", file=sys.stderr)
        return interrupt_exit_code(e)
