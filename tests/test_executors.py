"""bench.executors: jobs, the local executor, the Ray executor, and concurrent writes of one run."""

from __future__ import annotations

import json
import multiprocessing as mp
import pickle
from pathlib import Path

import numpy as np
import pytest

from bench import store
from bench.errors import UserError
from bench.executors import Job, dedupe_jobs, expand_jobs, get_executor
from bench.runner import RunRequest

REPO = Path(__file__).resolve().parents[1]
TOY = "tests.helpers:ToyMethod"


def toy_job(tmp_path, seeds, **kw) -> Job:
    req = RunRequest(method="toy", dataset="synthetic-mosi", setting="aligned", seeds=list(seeds),
                     out=str(tmp_path / "results"), device="cpu", overrides={"max_epochs": "1"}, **kw)
    return Job(req, method_ref=TOY, pythonpath=(str(REPO),))


def test_expand_jobs_groups_seeds():
    jobs = expand_jobs(["emoe", "mult"], ["mosi"], ["aligned", "unaligned"], seeds=[1, 2, 3],
                       seeds_per_job=2, out="r", epochs=1)
    assert len(jobs) == 2 * 2 * 2
    assert [j.request.seeds for j in jobs[:2]] == [[1, 2], [3]]
    assert jobs[0].key == "emoe/mosi-aligned/seeds 1,2" and jobs[0].request.epochs == 1
    assert [j.request.seeds for j in expand_jobs(["emoe"], ["mosi"], seeds=[1, 2, 3])] == [[1, 2, 3]]


def test_dedupe_drops_seeds_already_covered(tmp_path):
    a, b, c = toy_job(tmp_path, [1, 2]), toy_job(tmp_path, [2, 3]), toy_job(tmp_path, [1])
    other = toy_job(tmp_path, [1], epochs=2)  # a different request: kept
    out = dedupe_jobs([a, b, c, other])
    assert [j.request.seeds for j in out] == [[1, 2], [3], [1]]
    assert out[2] is other


def test_job_pickles_and_resolves_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = Job(RunRequest(method="emoe", dataset="mosi", out="rel", data_root="data"))
    r = pickle.loads(pickle.dumps(job.resolved()))
    assert Path(r.request.out).is_absolute() and Path(r.request.out) == tmp_path / "rel"
    assert Path(r.request.data_root) == tmp_path / "data"
    assert "BENCH_CACHE" in r.env  # forwarded from the conftest's environment


def test_unknown_executor():
    with pytest.raises(UserError, match="local"):
        get_executor("slurm")


def test_local_sequential_runs_then_reuses(tmp_path):
    jobs = [toy_job(tmp_path, [1, 2]), toy_job(tmp_path, [3])]
    lines = []
    res = get_executor("local").run(jobs, log=lines.append)
    assert [r.ok for r in res] == [True, True]
    assert [run["seed"] for r in res for run in r.runs] == [1, 2, 3]
    assert not any(run["reused"] for r in res for run in r.runs)
    assert all(store.is_done(Path(run["path"])) for r in res for run in r.runs)
    assert any(line.startswith("[2/2]") for line in lines)
    again = get_executor("local").run(jobs, log=lambda _m: None)
    assert all(run["reused"] for r in again for run in r.runs)


def test_local_reports_failed_jobs(tmp_path):
    bad = Job(RunRequest(method="toy", dataset="no-such-data", setting="aligned", out=str(tmp_path)),
              method_ref=TOY, pythonpath=(str(REPO),))
    good = toy_job(tmp_path, [1])
    res = get_executor("local").run([bad, good], log=lambda _m: None, raise_on_error=False)
    assert not res[0].ok and "no-such-data" in res[0].error and res[1].ok
    with pytest.raises(UserError, match="1 of 2 job"):
        get_executor("local").run([bad, good], log=lambda _m: None)


@pytest.mark.slow
def test_local_processes(tmp_path):
    jobs = [toy_job(tmp_path, [1]), toy_job(tmp_path, [2])]
    res = get_executor("local", workers=2, threads_per_worker=1).run(jobs, log=lambda _m: None)
    assert [r.ok for r in res] == [True, True], [r.error for r in res]
    assert len({r.worker for r in res}) == 2  # two processes
    seq = get_executor("local").run([toy_job(tmp_path / "seq", [1])], log=lambda _m: None)
    # same seed, same thread count: the worker's result equals the in-process one
    assert res[0].runs[0]["test"] == seq[0].runs[0]["test"]


# ------------------------------------------------------------------------------------ concurrent writes
def _writer(path: str, writer: int, rounds: int, barrier, errors) -> None:
    barrier.wait()
    for i in range(rounds):
        result = {"writer": writer, "round": i, "payload": list(range(200))}
        try:
            store.write_run(Path(path), result, {"writer": np.full(50, writer), "round": np.full(50, i)})
        except OSError as e:  # recorded: the store must not raise either (see the strict test)
            errors.put(f"{writer}/{i}: {type(e).__name__}: {e}")


def _ctx():
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def _race(path: Path, rounds: int):
    ctx = _ctx()
    barrier, errors = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(path), w, rounds, barrier, errors)) for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    errs = []
    while not errors.empty():
        errs.append(errors.get())
    return errs


def _assert_consistent(path: Path):
    assert store.is_done(path)
    result = json.loads((path / "result.json").read_text())
    with np.load(path / "preds.npz") as z:
        # result.json and preds.npz come from the same write (never mixed)
        assert (z["writer"] == result["writer"]).all() and (z["round"] == result["round"]).all()
    leftovers = [p.name for p in path.parent.iterdir() if p.name != path.name]
    return result, leftovers


def test_two_processes_writing_the_same_run_never_corrupt_it(tmp_path):
    """Two workers finishing the same run at once: the directory that remains is one complete write."""
    path = tmp_path / "runs" / "m" / "d-s" / "hash" / "seed-1"
    _race(path, rounds=30)
    _assert_consistent(path)
    assert store.read_result(path)["payload"] == list(range(200))


def test_two_processes_writing_the_same_run_both_succeed(tmp_path):
    path = tmp_path / "seed-1"
    errs = _race(path, rounds=30)
    _, leftovers = _assert_consistent(path)
    assert errs == []
    assert [n for n in leftovers if not n.endswith(".lock")] == []


# ------------------------------------------------------------------------------------ ray
@pytest.mark.slow
def test_ray_executor_local_instance(tmp_path, ray_local):
    ray = ray_local
    jobs = [toy_job(tmp_path, [1]), toy_job(tmp_path, [2]), toy_job(tmp_path, [1])]  # a duplicate
    ex = get_executor("ray", shutdown=False)
    lines = []
    res = ex.run(jobs, log=lines.append)
    assert [r.ok for r in res] == [True, True], [r.error for r in res]
    assert ex.task_resources(ray) == {"num_cpus": 1, "num_gpus": 0}
    paths = [Path(r.runs[0]["path"]) for r in res]
    assert all(store.is_done(p) for p in paths) and paths[0] != paths[1]
    assert lines[0].startswith("ray: 2 task(s)")
    again = ex.run(jobs, log=lambda _m: None)
    assert all(r.runs[0]["reused"] for r in again)
    assert ray.is_initialized()  # an instance it did not start is left running
    seq = get_executor("local").run([toy_job(tmp_path / "seq", [1])], log=lambda _m: None)
    assert res[0].runs[0]["test"] == seq[0].runs[0]["test"]
