"""Jobs and their shared machinery (one RunRequest per job, dedupe, results); executors are in local.py and
ray_executor.py, chosen by :func:`bench.executors.get_executor`."""

from __future__ import annotations

import dataclasses
import importlib
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from bench import runner
from bench.errors import UserError
from bench.runner import RunRequest

EXECUTORS = ("local", "ray")
# Environment variables a job takes from the process that submits it (the workers may be started
# elsewhere, e.g. by a Ray raylet): the data root and the synthetic-data cache.
ENV_FORWARDED = ("BENCH_DATA_ROOT", "BENCH_CACHE", "CUBLAS_WORKSPACE_CONFIG", "TQDM_DISABLE")


@dataclass
class JobResult:
    key: str
    runs: list[dict] = field(default_factory=list)  # {"seed", "path", "reused", "test"} per seed
    seconds: float = 0.0
    error: str | None = None
    worker: str = ""  # host:pid that ran it

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Job:
    """One :class:`RunRequest` to run somewhere (picklable: plain data only).

    ``method_ref`` ("package.module:Class") bypasses the registry (plug-ins, tests); ``pythonpath``
    entries are put on ``sys.path`` first. ``env`` is applied in the worker before the run;
    ``threads`` sets torch's intra-op threads there (0 = leave as is).
    """

    request: RunRequest
    method_ref: str | None = None
    pythonpath: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    threads: int = 0

    @property
    def key(self) -> str:
        r = self.request
        seeds = ",".join(str(s) for s in r.seeds)
        return f"{r.method}/{r.dataset}-{r.setting or 'default'}/seeds {seeds}"

    def resolved(self) -> Job:
        """A copy ready to travel: absolute output/data paths, forwarded environment variables."""
        r = self.request
        req = dataclasses.replace(
            r, out=str(Path(r.out).expanduser().resolve()),
            data_root=None if r.data_root in (None, "") else str(Path(r.data_root).expanduser().resolve()),
            seeds=list(r.seeds), overrides=dict(r.overrides))
        env = {k: os.environ[k] for k in ENV_FORWARDED if k in os.environ}
        env.update(self.env)
        return dataclasses.replace(self, request=req, env=env,
                                   pythonpath=tuple(str(Path(p).resolve()) for p in self.pythonpath))

    def method_class(self):
        if not self.method_ref:
            return None
        for p in reversed(self.pythonpath):
            if p not in sys.path:
                sys.path.insert(0, p)
        mod, _, name = self.method_ref.partition(":")
        if not name:
            raise UserError(f"method_ref {self.method_ref!r}: expected 'package.module:Class'")
        return getattr(importlib.import_module(mod), name)

    def run(self, log: Callable[[str], None] | None = print) -> JobResult:
        """Run the request in this process; errors are returned in :attr:`JobResult.error`."""
        t0 = time.perf_counter()
        worker = f"{socket.gethostname()}:{os.getpid()}"
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            if self.threads:
                torch.set_num_threads(self.threads)
            records = runner.run(self.request, log=log or (lambda _msg: None), progress=False,
                                 method_cls=self.method_class())
            runs = [{"seed": r.seed, "path": str(r.path), "reused": r.reused, "test": r.result.get("test")}
                    for r in records]
            return JobResult(self.key, runs, time.perf_counter() - t0, None, worker)
        except Exception as e:  # noqa: BLE001 - reported per job, the other jobs go on
            msg = f"{type(e).__name__}: {e}"
            if not isinstance(e, UserError):
                msg += "\n" + "".join(traceback.format_exception(e)[-6:])
            return JobResult(self.key, [], time.perf_counter() - t0, msg, worker)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def run_job(job: Job) -> JobResult:
    """Module-level entry point for workers (picklable by reference)."""
    return job.run(log=print)


# ------------------------------------------------------------------------------------ job lists
def expand_jobs(methods: Sequence[str], datasets: Sequence[str], settings: Sequence[str | None] | None = None,
                seeds: Sequence[int] = (1111,), seeds_per_job: int = 0, **request_fields) -> list[Job]:
    """Every (method, dataset, setting) with its seeds split into groups of ``seeds_per_job``
    (0 = all seeds in one job, the unit for ``--exec vmap``/``procs``); ``request_fields`` go to
    :class:`RunRequest` (``out``, ``epochs``, ``overrides``, ``device``, ``profile`` ...)."""
    seeds = [int(s) for s in seeds]
    size = seeds_per_job or len(seeds) or 1
    groups = [seeds[i:i + size] for i in range(0, len(seeds), size)]
    jobs = []
    for m in methods:
        for d in datasets:
            for s in (settings or [None]):
                for g in groups:
                    jobs.append(Job(RunRequest(method=m, dataset=d, setting=s, seeds=list(g), **request_fields)))
    return jobs


def _identity(job: Job) -> tuple:
    r = dataclasses.asdict(job.request)
    r.pop("seeds")
    return (job.method_ref, repr(sorted(r.items(), key=lambda kv: kv[0])))


def dedupe_jobs(jobs: Iterable[Job]) -> list[Job]:
    """Drop seeds that an earlier job with the same request already covers (two workers must not
    train the same run at once); jobs left without seeds disappear."""
    seen: dict[tuple, set[int]] = {}
    out = []
    for job in jobs:
        done = seen.setdefault(_identity(job), set())
        seeds = [s for s in job.request.seeds if s not in done]
        done.update(seeds)
        if seeds:
            out.append(job if seeds == list(job.request.seeds)
                       else dataclasses.replace(job, request=dataclasses.replace(job.request, seeds=seeds)))
    return out


# ------------------------------------------------------------------------------------ executors
class Executor(Protocol):
    name: str

    def run(self, jobs: Sequence[Job], log: Callable[[str], None] = print,
            raise_on_error: bool = True) -> list[JobResult]: ...


def finish(results: list[JobResult], raise_on_error: bool) -> list[JobResult]:
    failed = [r for r in results if not r.ok]
    if failed and raise_on_error:
        lines = "; ".join(f"{r.key}: {r.error.splitlines()[0]}" for r in failed)
        raise UserError(f"{len(failed)} of {len(results)} job(s) failed: {lines}")
    return results
