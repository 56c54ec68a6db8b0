"""The results store never crashes its readers, and a failed write leaves nothing half-written (issue 14).

A finished run whose ``result.json`` is damaged is warned about once, by path, and treated as not
finished: ``run`` retrains it, ``aggregate``/``check``/``report`` go on without it. Disk errors while
committing a run are one line naming the path; the previous run survives; temp files do not.
"""

import errno
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench import store
from bench.cli import main
from bench.errors import UserError

RUN = ["run", "--method", "lf_dnn", "--dataset", "synthetic-mosi", "--epochs", "1", "--quiet"]
GOOD = {"method": "m", "dataset": "d", "setting": "s", "seed": 1, "config_hash": "h", "config": {},
        "test": {"mae": 0.5}, "valid": {"mae": 0.6}, "data": {"name": "d", "source": "synthetic", "fingerprint": "f"},
        "provenance": {}, "selection": {"rule": "r"}}


@pytest.fixture(scope="module")
def two_seed_results(tmp_path_factory):
    """One real 1-epoch lf_dnn run, seeds 1111 and 1112, trained once and copied by each test."""
    out = tmp_path_factory.mktemp("template")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "bench-cache"))
        mp.delenv("BENCH_DATA_ROOT", raising=False)
        assert main(RUN + ["--seeds", "1111,1112", "--out", str(out)]) == 0
    return out


@pytest.fixture
def results(two_seed_results, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(two_seed_results, out)
    store._WARNED.clear()  # warnings are once per run and process: each test starts afresh
    return out


def _seed_dir(out: Path, seed: int) -> Path:
    (path,) = (out / "runs").glob(f"*/*/*/seed-{seed}")
    return path


def _run(capsys, *argv):
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _truncated(text):
    return text[: len(text) // 2]


def _drop_test(text):
    r = json.loads(text)
    del r["test"]
    return json.dumps(r)


def _text_metric(text):
    r = json.loads(text)
    r["test"]["mae"] = "0.7x"
    return json.dumps(r)


CORRUPTIONS = {  # case -> (rewrite of the good result.json text, fragment of the warning)
    "truncated": (_truncated, "unreadable (JSONDecodeError"),
    "empty_object": (lambda _t: "{}", "missing key 'method'"),
    "missing_test": (_drop_test, "missing key 'test'"),
    "non_numeric_metric": (_text_metric, "test metric 'mae' is '0.7x', expected a number"),
    "json_list": (lambda _t: "[1, 2]", "expected a JSON object, found list"),
    "not_utf8": (lambda _t: b"\xff\xfe{", "unreadable (UnicodeDecodeError"),
}


def _corrupt(out: Path, case: str) -> Path:
    rewrite, _ = CORRUPTIONS[case]
    file = _seed_dir(out, 1111) / "result.json"
    new = rewrite(file.read_text())
    file.write_bytes(new if isinstance(new, bytes) else new.encode())
    return file


def _one_warning(err: str, file: Path, fragment: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.startswith("warning: ")]
    assert lines == [f"warning: {file}: {lines[0].split(': ', 2)[2]}"], err
    assert fragment in lines[0] and "treated as not finished" in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_result_is_warned_once_and_skipped_by_aggregate(capsys, results, case):
    file = _corrupt(results, case)
    code, out, err = _run(capsys, "aggregate", "--out", str(results))
    assert code == 0
    _one_warning(err, file, CORRUPTIONS[case][1])
    import pandas as pd

    long = pd.read_csv(results / "runs-long.csv")
    assert sorted(set(long["seed"])) == [1112]  # the good run is kept, the corrupt one is not a row
    assert f"{len(long)} rows" in out


@pytest.mark.parametrize("case", ["truncated"])  # every case goes through the same reader (aggregate test)
def test_corrupt_result_does_not_crash_check_or_report(capsys, results, case):
    file = _corrupt(results, case)
    code, out, err = _run(capsys, "check", "--table", "1", "--results", str(results))
    assert code in (0, 1) and "Table 1" in out
    _one_warning(err, file, CORRUPTIONS[case][1])
    store._WARNED.clear()
    code, out, err = _run(capsys, "report", "--results", str(results))
    assert code == 0 and (results / "report.md").is_file()
    _one_warning(err, file, CORRUPTIONS[case][1])


@pytest.mark.parametrize("case", ["truncated", "missing_test"])
def test_rerun_retrains_a_corrupt_run_and_reuses_the_good_one(capsys, results, case):
    file = _corrupt(results, case)
    code, out, err = _run(capsys, *RUN, "--seeds", "1111,1112", "--out", str(results))
    assert code == 0
    _one_warning(err, file, CORRUPTIONS[case][1])
    assert "seed 1112] finished run reused" in out
    assert "seed 1111] test MAE" in out  # trained again
    assert store.validate_result(json.loads(file.read_text())) is None


def test_done_marker_without_result_json_is_not_finished(capsys, results):
    path = _seed_dir(results, 1111)
    (path / "result.json").unlink()
    assert store.load_finished(path) is None
    assert store.load_finished(path) is None
    err = capsys.readouterr().err
    assert err.count("warning: ") == 1 and f"{path / 'result.json'}: unreadable (FileNotFoundError" in err


def test_validate_result_accepts_complete_and_null_metrics():
    assert store.validate_result(GOOD) is None
    assert store.validate_result({**GOOD, "test": {"mae": None, "acc7": 1}}) is None  # NaN is stored as null
    assert store.validate_result({**GOOD, "seed": True}) == "'seed' is bool, expected int"
    assert store.validate_result({**GOOD, "test": {}}) == "'test' has no metrics"
    assert store.validate_result({**GOOD, "valid": {"loss": [1]}}) == "valid metric 'loss' is [1], expected a number"
    no_fingerprint = {**GOOD, "data": {"name": "d", "source": "real"}}
    assert store.validate_result(no_fingerprint) == "'data' lacks 'fingerprint' (str)"


def test_garbage_preds_npz_is_a_one_line_error(tmp_path):
    from bench.report.figure_numbers import read_preds

    (tmp_path / "preds.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(UserError) as e:
        read_preds(SimpleNamespace(path=tmp_path))
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'preds.npz'}: unreadable (") and "--force" in msg and "\n" not in msg


def test_pickled_object_in_preds_npz_is_refused_not_loaded(tmp_path):
    from bench.report.figure_numbers import read_preds

    np.savez(tmp_path / "preds.npz", obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError, match="unreadable \\(ValueError: Object arrays cannot be loaded"):
        read_preds(SimpleNamespace(path=tmp_path))


# ------------------------------------------------------------------------------- disk errors
def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def _leftovers(parent: Path, name: str):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}.") and not p.name.endswith(".lock"))


def test_disk_full_on_the_final_rename_keeps_the_previous_run(tmp_path, monkeypatch):
    final = tmp_path / "seed-1"
    store.write_run(final, {**GOOD, "round": 1}, {"y": np.arange(3)})
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst) == final and "tmp-old" not in Path(src).name:  # the new run's rename in fails
            _enospc()
        return real_replace(src, dst)

    monkeypatch.setattr(store.os, "replace", replace)
    with pytest.raises(store.StoreWriteError) as e:
        store.write_run(final, {**GOOD, "round": 2}, {"y": np.arange(4)})
    assert str(e.value).startswith(f"cannot write {final}: No space left on device (errno {errno.ENOSPC})")
    monkeypatch.setattr(store.os, "replace", real_replace)
    assert store.load_finished(final)["round"] == 1  # the earlier finished run is back in place
    with np.load(final / "preds.npz") as z:
        assert z["y"].tolist() == [0, 1, 2]
    assert _leftovers(tmp_path, "seed-1") == []


@pytest.mark.parametrize("where", ["preds", "result", "done"])
def test_disk_full_while_writing_leaves_no_temp_and_no_run(tmp_path, monkeypatch, where):
    final = tmp_path / "seed-1"
    if where == "preds":
        monkeypatch.setattr(store.np, "savez_compressed", _enospc)
    elif where == "result":
        monkeypatch.setattr(store.json, "dump", _enospc)
    else:
        monkeypatch.setattr(Path, "write_text", _enospc)
    with pytest.raises(store.StoreWriteError) as e:
        store.write_run(final, GOOD, {"y": np.arange(3)})
    assert str(e.value).startswith(f"cannot write {final}: No space left on device")
    assert not final.exists()
    assert _leftovers(tmp_path, "seed-1") == []


def test_disk_full_on_a_json_write_removes_its_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "config.json"
    monkeypatch.setattr(store.os, "replace", _enospc)
    with pytest.raises(store.StoreWriteError, match=f"cannot write {target}: No space left on device"):
        store.write_json_atomic(target, {"a": 1}, locked=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".config.json.lock"]


def test_disk_full_during_run_is_one_line_and_nothing_is_marked_done(capsys, results, monkeypatch):
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == "seed-1113":
            _enospc()
        return real_replace(src, dst)

    monkeypatch.setattr(store.os, "replace", replace)
    code, out, err = _run(capsys, *RUN, "--seeds", "1113", "--out", str(results))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: cannot write ") and "/seed-1113: No space left on device" in err
    assert list((results / "runs").glob("*/*/*/seed-1113")) == []
    assert list((results / "runs").glob("*/*/*/.seed-1113.tmp-*")) == []


def test_a_previous_run_left_aside_by_a_killed_writer_is_put_back(tmp_path, monkeypatch):
    """A writer killed between its two renames leaves the old run as ``.seed-1.tmp-old-<pid>`` and no
    ``seed-1``: the next writer restores it first, so even a failing write does not lose it."""
    final = tmp_path / "seed-1"
    store.write_run(final, {**GOOD, "round": 1})
    os.replace(final, tmp_path / ".seed-1.tmp-old-99999")
    monkeypatch.setattr(store.json, "dump", _enospc)
    with pytest.raises(store.StoreWriteError):
        store.write_run(final, {**GOOD, "round": 2})
    monkeypatch.undo()
    assert store.load_finished(final)["round"] == 1
    assert _leftovers(tmp_path, "seed-1") == []


@pytest.mark.parametrize("option", ["--out", "--data-root"])
def test_path_longer_than_the_os_allows_is_one_line(capsys, tmp_path, option):
    long = str(tmp_path / ("a" * 300))
    argv = [*RUN, "--seeds", "1111", "--out", str(tmp_path / "out")]
    if option == "--out":
        argv[-1] = long
    else:
        argv[argv.index("synthetic-mosi")] = "mosi"
        argv += ["--data-root", long, "--setting", "unaligned"]
    code, out, err = _run(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "File name too long" in err  # the data loader or the CLI guard names the path
    assert "a" * 20 in err  # the path is named


# ------------------------------------------------------------------------------- stale temp files
def test_rerun_removes_a_stale_config_tmp_left_by_a_kill(capsys, results):
    config_dir = _seed_dir(results, 1111).parent
    stale = config_dir / ".config.json.k1ll3d.tmp"
    stale.write_text('{"spec": ')  # what a kill during the config.json write leaves
    stale_run = config_dir / ".seed-1112.tmp-abc"
    stale_run.mkdir()
    code, out, _ = _run(capsys, *RUN, "--seeds", "1111,1112", "--out", str(results))
    assert code == 0 and out.count("finished run reused") == 2
    assert not stale.exists()
    assert json.loads((config_dir / "config.json").read_text())["config_hash"] == config_dir.name
    code, _, _ = _run(capsys, *RUN, "--seeds", "1112", "--out", str(results), "--force")
    assert code == 0 and not stale_run.exists()  # a run's temp dirs go when that run is written
