"""`bench run` execution options end to end: --exec, --amp, --workers, --jobs, --executor ray.

The modes themselves are tested in tests/test_multiseed.py and tests/test_executors.py; here: the
flags reach them, results record how they were produced, the config hash follows --amp, resume
works across modes, and bad combinations are one-line errors (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.config import RunSpec

TINY_EMOE = ["--set", "d_model=16", "--set", "n_heads=2", "--set", "n_layers=1", "--set", "grad_accum=1"]


def _run(tmp_path: Path, *extra: str, method: str = "emoe", seeds: str = "1111,1112", out: str = "out") -> int:
    sets = TINY_EMOE if method == "emoe" else []
    return main(["run", "--method", method, "--dataset", "synthetic-mosi", "--seeds", seeds, "--epochs", "1",
                 "--out", str(tmp_path / out), "--quiet", "--threads", "1", *sets, *extra])


def _results(tmp_path: Path, out: str = "out", method: str = "emoe") -> dict[int, dict]:
    found = {}
    for f in (tmp_path / out).glob(f"runs/{method}/*/*/seed-*/result.json"):
        r = json.loads(f.read_text())
        found[r["seed"]] = r
    return found


def test_exec_vmap_trains_the_seeds_together_and_records_it(tmp_path, capsys):
    assert _run(tmp_path, "--exec", "vmap") == 0
    assert "training seeds 1111, 1112 together (--exec vmap)" in capsys.readouterr().out
    res = _results(tmp_path)
    assert sorted(res) == [1111, 1112]
    for r in res.values():
        ex = r["provenance"]["execution"]
        assert ex["exec_mode"] == "vmap" and ex["ensemble_seeds"] == [1111, 1112] and ex["amp"] == "off"
        assert r["provenance"]["exec_mode"] == "vmap" and r["provenance"]["wall_time_shared_by"] == 2
        assert r["selection"]["epochs_run"] == 1
    # same configuration: a second call (any mode) reuses both runs
    assert _run(tmp_path, "--exec", "loop") == 0
    assert capsys.readouterr().out.count("finished run reused") == 2


def test_exec_procs_equals_loop_bitwise(tmp_path):
    assert _run(tmp_path, "--exec", "loop", out="loop") == 0
    assert _run(tmp_path, "--exec", "procs", "--workers", "2", out="procs") == 0
    loop, procs = _results(tmp_path, "loop"), _results(tmp_path, "procs")
    for seed in (1111, 1112):
        assert procs[seed]["test"] == loop[seed]["test"]
        assert procs[seed]["valid"] == loop[seed]["valid"]
        assert procs[seed]["config_hash"] == loop[seed]["config_hash"]
        assert procs[seed]["provenance"]["execution"] == {"exec_mode": "procs", "amp": "off", "compile": False,
                                                          "workers": 2, "threads_per_worker": None}
        assert loop[seed]["provenance"]["execution"] == {"exec_mode": "loop", "amp": "off", "compile": False}


def test_amp_is_part_of_the_config_hash_only_when_on(tmp_path):
    base = RunSpec(method="m", dataset="d", setting="s", hparams={"a": 1}, data_fingerprint="f")
    # default float32 runs keep the hash they had before the numerics field existed
    legacy = '{"data_fingerprint": "f", "dataset": "d", "hparams": {"a": 1}, "method": "m", "setting": "s"}'
    assert base.canonical() == legacy
    bf16 = RunSpec(method="m", dataset="d", setting="s", hparams={"a": 1}, data_fingerprint="f",
                   numerics={"amp": "bf16"})
    assert bf16.config_hash != base.config_hash

    assert _run(tmp_path, "--amp", "bf16", seeds="1111") == 0
    assert _run(tmp_path, seeds="1111") == 0
    runs = list((tmp_path / "out").glob("runs/emoe/*/*/seed-1111/result.json"))
    by_amp = {json.loads(f.read_text())["provenance"]["execution"]["amp"]: f for f in runs}
    assert set(by_amp) == {"bf16", "off"}
    assert by_amp["bf16"].parent.parent != by_amp["off"].parent.parent  # two config directories


def test_amp_failure_is_a_one_line_error(tmp_path, capsys):
    # oneDNN has no bf16 LSTM on CPU: LF-DNN's text LSTM fails under autocast
    code = _run(tmp_path, "--amp", "bf16", method="lf_dnn", seeds="1111")
    err = capsys.readouterr().err
    if code == 0:
        pytest.skip("this torch build runs bf16 LSTMs on CPU")
    assert code == 2 and err.startswith("error: --amp bf16 failed for lf_dnn") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--exec", "vmap"], "cannot run with --exec vmap"),
    (["--workers", "2"], "--workers applies to --exec procs"),
    (["--jobs", "0"], "--jobs 0: expected >= 1"),
    (["--executor", "ray", "--jobs", "2"], "--jobs applies to --executor local"),
    (["--seeds-per-job", "-1"], "--seeds-per-job -1"),
])
def test_bad_execution_options_exit_2(tmp_path, capsys, argv, message):
    assert _run(tmp_path, *argv, method="misa") == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_jobs_run_seed_groups_in_local_processes(tmp_path, capsys):
    assert _run(tmp_path, "--jobs", "2", "--seeds-per-job", "1", method="lf_dnn") == 0
    out = capsys.readouterr().out
    assert "executor local: 2 job(s)" in out
    assert "lf_dnn/synthetic-mosi-unaligned/seeds 1111" in out and "lf_dnn/synthetic-mosi-unaligned/seeds 1112" in out
    # the in-process pass afterwards only reads them back
    assert out.count("finished run reused") == 2
    res = _results(tmp_path, method="lf_dnn")
    assert sorted(res) == [1111, 1112]
    # each group trained in another process: same numbers as training here with one thread
    assert _run(tmp_path, method="lf_dnn", out="here") == 0
    here = _results(tmp_path, "here", method="lf_dnn")
    assert all(here[s]["test"] == res[s]["test"] for s in (1111, 1112))


def test_table_runs_through_the_executor(tmp_path, capsys):
    code = main(["run", "--table", "6", "--seeds", "1111", "--epochs", "1", "--out", str(tmp_path), "--quiet",
                 "--threads", "1", *TINY_EMOE, "--jobs", "2"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "executor local: 4 job(s)" in out and out.count("finished run reused") == 4
    assert (tmp_path / "tables" / "table6-synthetic.md").exists()


@pytest.mark.slow
def test_executor_ray_local_instance(tmp_path, capsys, ray_local):
    assert _run(tmp_path, "--executor", "ray", "--seeds-per-job", "1", method="lf_dnn") == 0
    out = capsys.readouterr().out
    assert "executor ray: 2 job(s)" in out and "ray: 2 task(s)" in out
    assert out.count("finished run reused") == 2
    res = _results(tmp_path, method="lf_dnn")
    assert sorted(res) == [1111, 1112]
    assert all(r["provenance"]["execution"]["exec_mode"] == "loop" for r in res.values())
