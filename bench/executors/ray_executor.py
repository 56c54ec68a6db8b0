"""Run jobs as Ray tasks: one task per (method, dataset, setting, seed group).

``ray.init(address=...)`` joins an existing cluster when an address is given (or ``RAY_ADDRESS`` is
set), else starts a local instance (``num_cpus`` caps it). Each task asks for ``cpus_per_task`` CPUs
and, when the cluster has GPUs, ``gpus_per_task`` GPUs (default 1; fractions pack several tasks on a
GPU); Ray then sets ``CUDA_VISIBLE_DEVICES`` and the run's ``--device auto`` picks that GPU. Every
task writes into the same results store (a shared filesystem on a multi-node cluster): finished
runs are skipped, and each run directory is renamed into place complete. Install: ``pip install
'emoe-bench[dist]'``.

Start-up is bounded: if ``ray.init`` has not returned within ``init_timeout`` seconds (default 120,
or ``$BENCH_RAY_INIT_TIMEOUT``) it is interrupted (SIGALRM; POSIX main thread) and the run stops with
a one-line error suggesting ``--executor local``. A local instance that cannot reach itself (no
loopback interface, a firewall) otherwise waits forever.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from collections.abc import Callable, Sequence

from bench.errors import UserError
from bench.executors.jobs import Job, JobResult, dedupe_jobs, finish, run_job

ENV_INIT_TIMEOUT = "BENCH_RAY_INIT_TIMEOUT"
DEFAULT_INIT_TIMEOUT = 120.0  # seconds; a local start takes 4-12 s on a busy 2-core machine


def _import_ray():
    try:
        import ray  # lazy: the optional 'dist' extra, only for --executor ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'emoe-bench[dist]' (or pip install ray)") from None
    return ray


def init_timeout_s() -> float:
    """``$BENCH_RAY_INIT_TIMEOUT`` (positive seconds) or the default."""
    raw = os.environ.get(ENV_INIT_TIMEOUT, "").strip()
    if not raw:
        return DEFAULT_INIT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise UserError(f"{ENV_INIT_TIMEOUT}={raw!r}: expected a positive number of seconds")
    return value


class _StartTimeout(BaseException):
    """Raised by the SIGALRM handler (a BaseException, so Ray's own ``except Exception`` cannot swallow it)."""


def _raise_start_timeout(signum, frame):
    raise _StartTimeout()


def _call_with_timeout(start: Callable[[], object], timeout: float, where: str) -> None:
    """Run ``start`` (``ray.init``) with a SIGALRM deadline; a UserError if it fails or does not return in time.

    ``ray.init`` must run in the main thread (off it, the local instance dies after start-up), so the
    deadline is an interval timer; where there is none (Windows, a non-main thread) it runs unbounded.
    Ray replaces the SIGTERM handler with one that exits silently: the caller's handler is put back.
    """
    main = threading.current_thread() is threading.main_thread()
    alarm = main and hasattr(signal, "setitimer")
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    previous = signal.signal(signal.SIGALRM, _raise_start_timeout) if alarm else None
    try:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, timeout)
        start()
    except _StartTimeout:
        raise UserError(f"Ray did not start within {timeout:g} s (connecting to {where}); a local instance needs "
                        f"a working loopback interface. Use --executor local instead, or raise "
                        f"{ENV_INIT_TIMEOUT}") from None
    except UserError:
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"Ray could not start ({where}): {type(e).__name__}: {first}; "
                        "use --executor local instead") from e
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        if sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 gpus_per_task: float | None = None, cpus_per_task: float = 1, shutdown: bool | None = None,
                 init_kwargs: dict | None = None, init_timeout: float | None = None):
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.num_cpus = num_cpus
        self.gpus_per_task = gpus_per_task
        self.cpus_per_task = cpus_per_task
        self.shutdown = shutdown  # None: shut down only an instance this executor started
        self.init_kwargs = dict(init_kwargs or {})
        self.init_timeout = init_timeout_s() if init_timeout is None else float(init_timeout)

    def _init(self, ray) -> bool:
        if ray.is_initialized():
            return False
        kw = {"include_dashboard": False, "log_to_driver": True, **self.init_kwargs}
        if self.address:
            kw["address"] = self.address
        else:
            kw["num_cpus"] = self.num_cpus
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
        _call_with_timeout(lambda: ray.init(**kw), self.init_timeout, where)
        return True

    def task_resources(self, ray) -> dict:
        gpus = self.gpus_per_task
        if gpus is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        return {"num_cpus": self.cpus_per_task, "num_gpus": gpus}

    def run(self, jobs: Sequence[Job], log: Callable[[str], None] = print,
            raise_on_error: bool = True) -> list[JobResult]:
        ray = _import_ray()
        jobs = [j.resolved() for j in dedupe_jobs(jobs)]
        if not jobs:
            return []
        started = self._init(ray)
        try:
            res = self.task_resources(ray)
            if not res["num_gpus"] and self.cpus_per_task and not any(j.threads for j in jobs):
                jobs = [dataclasses.replace(j, threads=max(1, int(self.cpus_per_task))) for j in jobs]
            task = ray.remote(max_retries=0, **res)(run_job)
            refs = {task.remote(job): i for i, job in enumerate(jobs)}
            log(f"ray: {len(jobs)} task(s), {res['num_cpus']} CPU / {res['num_gpus']} GPU each, "
                f"cluster {ray.cluster_resources()}")
            results: list[JobResult | None] = [None] * len(jobs)
            pending = list(refs)
            done_n = 0
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    i = refs[ref]
                    try:
                        results[i] = ray.get(ref)
                    except Exception as e:  # noqa: BLE001 - the task's worker died
                        results[i] = JobResult(jobs[i].key, error=f"ray task failed: {type(e).__name__}: {e}")
                    done_n += 1
                    r = results[i]
                    status = f"{len(r.runs)} run(s), {r.seconds:.1f}s ({r.worker})" if r.ok else \
                        f"FAILED {r.error.splitlines()[0]}"
                    log(f"[{done_n}/{len(jobs)}] {r.key}: {status}")
        finally:
            if self.shutdown or (self.shutdown is None and started):
                ray.shutdown()
        return finish(results, raise_on_error)
