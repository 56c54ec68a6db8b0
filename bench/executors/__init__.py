"""Executors: run many (method, dataset, setting, seed group) jobs here, on local processes or on Ray.

A :class:`Job` carries one :class:`bench.runner.RunRequest` and runs it with
:func:`bench.runner.run` wherever it lands, so every executor writes the same results store with the
same resume rule (finished runs are reused; ``store.write_run`` renames a complete directory into
place). ``get_executor("local" | "ray", **options).run(jobs)`` returns one :class:`JobResult` per job,
in job order.

    jobs = expand_jobs(["emoe", "mult"], ["mosi"], seeds=[1111, 1112, 1113], seeds_per_job=1,
                       out="results", epochs=1)
    results = get_executor("ray", address=None).run(jobs)
"""

from __future__ import annotations

from bench.errors import UserError, did_you_mean
from bench.executors.jobs import (
    ENV_FORWARDED,
    EXECUTORS,
    Executor,
    Job,
    JobResult,
    dedupe_jobs,
    expand_jobs,
    finish,
    run_job,
)
from bench.executors.local import LocalExecutor
from bench.executors.ray_executor import RayExecutor

__all__ = ["ENV_FORWARDED", "EXECUTORS", "Executor", "Job", "JobResult", "dedupe_jobs", "expand_jobs", "finish",
           "get_executor", "run_job"]


def get_executor(name: str, **options) -> Executor:
    """``local`` (options: workers, threads_per_worker) or ``ray`` (address, num_cpus, gpus_per_task,
    cpus_per_task, shutdown)."""
    if name == "local":
        return LocalExecutor(**options)
    if name == "ray":
        return RayExecutor(**options)
    raise UserError(f"unknown executor {name!r}.{did_you_mean(str(name), EXECUTORS)}")
