"""Where ``bench run`` trains: here (default), on N local processes (``--jobs N``) or on Ray.

The command-line paths build their :class:`~bench.runner.RunRequest` list as usual; when the user
asked for parallel execution, :func:`run_elsewhere` first sends the missing runs to the executor
(``bench/executors``). The command then goes on exactly as before: every run is now finished, so
the in-process pass only reads the stored results (the resume rule) and renders them. A failed job
is reported and the command exits 2 after every other job has finished and been stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from bench.executors import Job, get_executor
from bench.run_settings import RunSettings
from bench.runner import RunRequest


def wants_executor(settings: RunSettings) -> bool:
    return settings.executor == "ray" or settings.jobs > 1


def make_executor(settings: RunSettings):
    if settings.executor == "ray":
        return get_executor("ray", address=settings.ray_address, gpus_per_task=settings.gpus_per_task,
                            cpus_per_task=settings.cpus_per_task)
    return get_executor("local", workers=settings.jobs, threads_per_worker=settings.threads or 0)


def run_elsewhere(requests: Sequence[RunRequest], settings: RunSettings, log: Callable[[str], None] = print) -> None:
    """Send ``requests`` (split into seed groups of ``--seeds-per-job``) to the chosen executor.

    Raises :class:`UserError` listing the failed jobs after all jobs ran; finished runs are stored.
    """
    jobs = []
    for req in requests:
        size = settings.seeds_per_job or len(req.seeds) or 1
        for i in range(0, len(req.seeds), size):
            jobs.append(Job(dataclasses.replace(req, seeds=list(req.seeds[i:i + size])),
                            threads=settings.threads or 0))
    executor = make_executor(settings)
    log(f"executor {executor.name}: {len(jobs)} job(s)")
    executor.run(jobs, log=log)
