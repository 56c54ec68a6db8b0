"""Command-line options shared by several commands (data, text encoder, execution, published-number checks)."""

from __future__ import annotations

import argparse

from bench.executors import EXECUTORS
from bench.text_encoder import ENV_TEXT_MODEL, TEXT_CHOICES
from bench.train.multiseed import AMP_MODES, EXEC_CHOICES
from bench.verdict import COMBINED_FLOOR

EXEC_HELP = ("how the missing seeds of one configuration are trained: loop (one after another; the reference), "
             "vmap (one vmap ensemble; EMOE features mode, MulT), procs (one process per seed, --workers at a "
             "time; LSTM/BERT models), auto (per configuration: vmap where the model allows it, else procs; "
             "loop on CPU and for a single seed). Default: auto on CUDA, loop on CPU")



def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None,
                   help="root of real data in MMSA/MIntRec layout (default: $BENCH_DATA_ROOT; "
                        "none = synthetic default)")
    p.add_argument("--profile", choices=("compact", "full"), default=None,
                   help="synthetic data size, and for tables/figures the model budget: compact (smaller models, "
                        "20 epochs; the default on synthetic data) or full (the methods' own configurations; the "
                        "default on real data)")
    p.add_argument("--clean-nan", action="store_true", help="replace NaN/inf in features by 0 instead of failing")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic generator (default 0)")
    add_text_args(p)



def add_text_args(p) -> None:
    p.add_argument("--text-model", default=None, metavar="PATH",
                   help=f"BERT checkpoint (local directory or cached name; default ${ENV_TEXT_MODEL}) for the "
                        "methods whose paper fine-tunes BERT (EMOE, MMIM, DMD, MISA, Self-MM; MulT, MAG-BERT on "
                        "MIntRec)")
    p.add_argument("--text", choices=TEXT_CHOICES, default=None,
                   help="frozen: run those methods on the frozen text features (needed on real data without "
                        "--text-model; tables mark such rows); bert: require --text-model")



def add_execution_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("execution (docs/performance.md)")
    g.add_argument("--exec", dest="exec_mode", choices=EXEC_CHOICES, default=None, help=EXEC_HELP)
    g.add_argument("--graphs", choices=("auto", "on", "off"), default="auto",
                   help="loop runs: device-bound static step (CUDA graph of forward+backward per batch shape, no "
                        "per-step host sync; recorded). on: for every method that allows it, fused Adam (last-bit "
                        "rounding differs); auto (default): on CUDA, for the configurations whose captured step "
                        "equals the loop step bitwise (static_step.CAPTURE_EQUAL: EMOE, MulT, ...), with torch's "
                        "Adam -- the same numbers; off on CPU")
    g.add_argument("--amp", choices=AMP_MODES, default="off",
                   help="bf16 autocast of forward and loss (changes the numbers; part of the run's config hash)")
    g.add_argument("--compile", action="store_true", help="torch.compile the forward / the vmapped step (recorded)")
    g.add_argument("--workers", type=int, default=0,
                   help="--exec procs: processes at a time (default one per seed)")
    g.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local (this machine; --jobs processes) or ray (one task per method/dataset/setting/seed "
                        "group; needs the 'dist' extra). Default local")
    g.add_argument("--jobs", type=int, default=1,
                   help="--executor local: configurations trained at once in separate processes (default 1 = here)")
    g.add_argument("--seeds-per-job", type=int, default=0,
                   help="seeds per executor job (default 0 = all seeds of a configuration in one job)")
    g.add_argument("--ray-address", default=None,
                   help="--executor ray: cluster address (default $RAY_ADDRESS, else a local Ray instance)")
    g.add_argument("--cpus-per-task", type=float, default=1, help="--executor ray: CPUs per task (default 1)")
    g.add_argument("--gpus-per-task", type=float, default=None,
                   help="--executor ray: GPUs per task (default 1 when the cluster has GPUs, else 0)")


def add_published_args(c) -> None:
    c.add_argument("--published-as", default="single", metavar="single|peak:K",
                   help="--against published: the paper's number is one run (single, default) or the best of K "
                        "runs (peak:K); docs/verdicts.md")
    c.add_argument("--alpha", type=float, default=0.05,
                   help="--against published: probability that a faithful reproduction fails the table (default 0.05)")
    c.add_argument("--assume-std", action="append", default=[], metavar="METRIC=STD",
                   help="--against published: a known seed std (fraction) for a metric instead of the sample std; "
                        "needed for cells with one seed")
    c.add_argument("--seed-std", default="moderated", choices=("moderated", "own"),
                   help="--against published: each cell's seed std moderated over the table (default; more power "
                        "with few seeds) or its own sample std; docs/verdicts.md")
    c.add_argument("--combined-floor", default=f"{COMBINED_FLOOR:g}", metavar="K",
                   help="--against published: a row or the table fails only when its mean gap is beyond K floors "
                        f"(default {COMBINED_FLOOR:g}: a significant systematic shift within every cell's floor "
                        "fails when beyond a tenth of a floor; 0 = any significant shift; 1 = only beyond one "
                        "floor, as cells); docs/verdicts.md")
    c.add_argument("--power-tables", default="1000", metavar="N",
                   help="--against published: simulate the check's own power with N tables (default 1000; 0 = "
                        "do not): how often it would catch every cell 1σ worse or a whole row 3σ worse")
    c.add_argument("--from-csv", default=None, metavar="PATH",
                   help="--against published: per-seed results as a long CSV (columns method,dataset,setting,seed,"
                        "split,metric,value[,row][,text]) instead of a results directory")
    c.add_argument("--csv", default=None, metavar="PATH",
                   help="write the per-cell verdicts as CSV (default for --against published on a results "
                        "directory: <results>/check-tableN-published.csv)")
