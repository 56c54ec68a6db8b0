"""The one place the command line becomes a :class:`~bench.run_settings.RunSettings`: execution options
validated, ``--exec`` resolved against the device, ``--threads`` applied, the data root and text choice read."""

from __future__ import annotations

import torch

from bench.data import resolve_data_root
from bench.errors import UserError
from bench.run_settings import RunSettings
from bench.text_encoder import text_choice


def apply_threads(threads: int | None) -> None:
    """``--threads N``: torch intra-op CPU threads for this process (recorded with every run)."""
    if threads is None:
        return
    if threads < 1:
        raise UserError(f"--threads {threads}: expected a positive number")
    torch.set_num_threads(threads)


def default_exec_mode(args) -> str:
    """``--exec`` as given, else ``auto`` when the run goes to a CUDA device and ``loop`` otherwise."""
    if args.exec_mode:
        return args.exec_mode
    device = getattr(args, "device", "auto") or "auto"
    if device == "auto":
        return "auto" if torch.cuda.is_available() else "loop"
    return "auto" if device.startswith("cuda") else "loop"


def _execution(args) -> dict:
    """The execution options (validated)."""
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
            "graphs": graphs, "executor": args.executor, "jobs": args.jobs, "seeds_per_job": args.seeds_per_job,
            "ray_address": getattr(args, "ray_address", None), "cpus_per_task": getattr(args, "cpus_per_task", 1),
            "gpus_per_task": getattr(args, "gpus_per_task", None)}


def run_settings(args) -> RunSettings:
    """Built once per command, before anything is planned or trained."""
    apply_threads(getattr(args, "threads", None))
    execution = _execution(args)  # validated before the text choice, as before
    return RunSettings(out=args.out, device=args.device, force=getattr(args, "force", False),
                       quiet=getattr(args, "quiet", False), threads=getattr(args, "threads", None),
                       profile=args.profile, epochs=args.epochs, data_root=resolve_data_root(args.data_root),
                       clean_nan=args.clean_nan, data_seed=args.data_seed, text=text_choice(args), **execution)
