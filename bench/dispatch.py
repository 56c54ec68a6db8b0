"""Where ``bench run`` trains: here (default), on N local processes (``--jobs N``) or on Ray.

The command-line paths build their :class:`~bench.runner.RunRequest` list as usual; when the user
asked for parallel execution, :func:`run_elsewhere` first sends the missing runs to the executor
(``bench/executors``). The command then goes on exactly as before: every run is now finished, so
the in-process pass only reads the stored results (the resume rule) and renders them. A failed job
is reported and the command exits 2 after every other job has finished and been stored.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence

from bench.errors import UserError
from bench.runner import RunRequest

EXEC_HELP = ("how the missing seeds of one configuration are trained: loop (one after another; the reference), "
             "vmap (one vmap ensemble; EMOE features mode, MulT), procs (one process per seed, --workers at a "
             "time; LSTM/BERT models), auto (per configuration: vmap where the model allows it, else procs; "
             "loop on CPU and for a single seed). Default: auto on CUDA, loop on CPU")


def add_execution_args(p: argparse.ArgumentParser) -> None:
    from bench.executors import EXECUTORS
    from bench.train.multiseed import AMP_MODES, EXEC_CHOICES

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


def request_fields(args) -> dict:
    """The :class:`RunRequest` fields given by the execution options (validated)."""
    if args.workers < 0:
        raise UserError(f"--workers {args.workers}: expected >= 0 (0 = one process per seed)")
    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: expected >= 1")
    if args.seeds_per_job < 0:
        raise UserError(f"--seeds-per-job {args.seeds_per_job}: expected >= 0 (0 = all seeds in one job)")
    if args.executor == "ray" and args.jobs != 1:
        raise UserError("--jobs applies to --executor local; a Ray cluster schedules its own tasks")
    exec_mode = default_exec_mode(args)
    if args.workers and exec_mode not in ("procs", "auto"):
        raise UserError(f"--workers applies to --exec procs (got --exec {exec_mode})")
    graphs = getattr(args, "graphs", "auto")
    if graphs == "on" and exec_mode not in ("loop", "auto"):
        raise UserError(f"--graphs on applies to loop runs (--exec loop or auto), not --exec {exec_mode}")
    return {"exec_mode": exec_mode, "amp": args.amp, "compile": bool(args.compile), "workers": args.workers,
            "graphs": graphs}


def default_exec_mode(args) -> str:
    """``--exec`` as given, else ``auto`` when the run goes to a CUDA device and ``loop`` otherwise."""
    if args.exec_mode:
        return args.exec_mode
    device = getattr(args, "device", "auto") or "auto"
    if device == "auto":
        import torch

        return "auto" if torch.cuda.is_available() else "loop"
    return "auto" if device.startswith("cuda") else "loop"


def wants_executor(args) -> bool:
    return args.executor == "ray" or args.jobs > 1


def make_executor(args):
    from bench.executors import get_executor

    if args.executor == "ray":
        return get_executor("ray", address=args.ray_address, gpus_per_task=args.gpus_per_task,
                            cpus_per_task=args.cpus_per_task)
    return get_executor("local", workers=args.jobs, threads_per_worker=args.threads or 0)


def run_elsewhere(requests: Sequence[RunRequest], args, log: Callable[[str], None] = print) -> None:
    """Send ``requests`` (split into seed groups of ``--seeds-per-job``) to the chosen executor.

    Raises :class:`UserError` listing the failed jobs after all jobs ran; finished runs are stored.
    """
    from bench.executors import Job

    jobs = []
    for req in requests:
        size = args.seeds_per_job or len(req.seeds) or 1
        for i in range(0, len(req.seeds), size):
            jobs.append(Job(dataclasses.replace(req, seeds=list(req.seeds[i:i + size])),
                            threads=args.threads or 0))
    executor = make_executor(args)
    log(f"executor {executor.name}: {len(jobs)} job(s)")
    executor.run(jobs, log=log)
