"""Run jobs in this process, one after another, or on N spawned local processes."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
import os
from collections.abc import Callable, Sequence

from bench.errors import UserError
from bench.executors.jobs import Job, JobResult, dedupe_jobs, finish, run_job


class LocalExecutor:
    """``workers=1``: sequentially here (the log goes through ``log``). ``workers=N``: N spawned
    processes, each with ``threads_per_worker`` torch threads (0 = cores / N); their log lines go to
    the workers' stdout. Results come back in job order."""

    name = "local"

    def __init__(self, workers: int = 1, threads_per_worker: int = 0):
        if workers < 1:
            raise UserError(f"--workers {workers}: expected >= 1")
        self.workers = int(workers)
        self.threads_per_worker = int(threads_per_worker)

    def run(self, jobs: Sequence[Job], log: Callable[[str], None] = print,
            raise_on_error: bool = True) -> list[JobResult]:
        jobs = [j.resolved() for j in dedupe_jobs(jobs)]
        if not jobs:
            return []
        if self.workers == 1 or len(jobs) == 1:
            results = []
            for i, job in enumerate(jobs, 1):
                res = job.run(log=log)
                log(_summary(i, len(jobs), res))
                results.append(res)
            return finish(results, raise_on_error)
        threads = self.threads_per_worker or max(1, (os.cpu_count() or 1) // self.workers)
        jobs = [j if j.threads else _with_threads(j, threads) for j in jobs]
        results: list[JobResult | None] = [None] * len(jobs)
        ctx = mp.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=min(self.workers, len(jobs)), mp_context=ctx) as pool:
            futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
            for n, fut in enumerate(cf.as_completed(futures), 1):
                i = futures[fut]
                try:
                    results[i] = fut.result()
                except Exception as e:  # noqa: BLE001 - a worker died (e.g. out of memory)
                    results[i] = JobResult(jobs[i].key, error=f"worker failed: {type(e).__name__}: {e}")
                log(_summary(n, len(jobs), results[i]))
        return finish(results, raise_on_error)


def _with_threads(job: Job, threads: int) -> Job:
    return dataclasses.replace(job, threads=threads)


def _summary(i: int, n: int, res: JobResult) -> str:
    if res.ok:
        reused = sum(r["reused"] for r in res.runs)
        return f"[{i}/{n}] {res.key}: {len(res.runs)} run(s), {reused} reused, {res.seconds:.1f}s ({res.worker})"
    return f"[{i}/{n}] {res.key}: FAILED {res.error.splitlines()[0]}"
