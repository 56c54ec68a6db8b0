import json
import subprocess
import sys

import pytest

from bench.cli import main
from tests.conftest import shared_data


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("argv, fragment", [
    (["run", "--method", "lf_dnnn", "--dataset", "synthetic-mosi"], "Did you mean 'lf_dnn'"),
    (["run", "--method", "lf_dnn", "--dataset", "synthetic-mosy"], "Did you mean 'synthetic-mosi'"),
    (["run", "--method", "lf_dnn", "--dataset", "synthetic-mosi", "--set", "hiden_text=3"], "hidden_text"),
    (["run", "--method", "lf_dnn", "--dataset", "synthetic-mosi", "--set", "batch_size=x"], "type int"),
    (["run", "--method", "lf_dnn", "--dataset", "mosi"], "MOSI/Processed"),
    (["run", "--method", "lf_dnn", "--dataset", "synthetic-mosi", "--seeds", "a"], "--seeds"),
    (["run", "--method", "lf_dnn", "--dataset", "synthetic-mosi", "--epochs", "0"], "--epochs"),
    (["run", "--method", "lf_dnn"], "needs --method and --dataset"),
    (["run", "--table", "99"], "table 99 is not available"),
    (["run", "--method", "lf_dnn", "--dataset", "synthetic-mintrec"], "no configuration for mintrec"),
])
def test_user_errors_exit_2_with_one_line(capsys, argv, fragment):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert fragment in err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_out_that_is_a_file_is_refused_before_training(capsys, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    for argv in (["run", "--method", "lf_dnn", "--dataset", "synthetic-mosi", "--epochs", "1"],
                 ["run", "--table", "4"], ["figure", "6"]):
        code, out, err = _run(capsys, *argv, "--out", str(blocker / "results"), "--quiet")
        assert code == 2 and err.count("\n") == 1, err
        assert f"{blocker} is a file, not a directory" in err and "Traceback" not in err
        assert "seed" not in out  # nothing trained


def test_no_traceback_from_a_real_process(tmp_path):
    p = subprocess.run([sys.executable, "-m", "bench", "run", "--method", "nope", "--dataset", "synthetic-mosi",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and "unknown method 'nope'" in p.stderr


def test_run_twice_trains_then_reuses(capsys, tmp_path):
    argv = ["run", "--method", "lf_dnn", "--dataset", "synthetic-mosi", "--seeds", "1111,1112",
            "--epochs", "2", "--out", str(tmp_path), "--quiet"]
    code, out, _ = _run(capsys, *argv)
    assert code == 0
    assert "[synthetic data]" in out and out.count("test MAE") == 2
    results = sorted(tmp_path.glob("runs/lf_dnn/synthetic-mosi-unaligned/*/seed-*/result.json"))
    assert [p.parent.name for p in results] == ["seed-1111", "seed-1112"]
    r = json.loads(results[0].read_text())
    assert r["data"]["source"] == "synthetic" and r["selection"]["epochs_run"] == 2
    assert r["config"]["max_epochs"] == 2 and r["provenance"]["git"]["commit"]
    code, out2, _ = _run(capsys, *argv)
    assert code == 0 and out2.count("finished run reused") == 2
    code, out3, _ = _run(capsys, "aggregate", "--out", str(tmp_path))
    assert code == 0 and (tmp_path / "runs-summary.csv").exists()


def test_ls_and_describe(capsys):
    code, out, _ = _run(capsys, "ls", "methods")
    assert code == 0 and "lf_dnn" in out
    code, out, _ = _run(capsys, "ls", "datasets")
    assert "synthetic-mosi" in out and "mosi " in out
    code, out, _ = _run(capsys, "describe", "lf_dnn", "--dataset", "mosi", "--setting", "unaligned", "--json")
    d = json.loads(out)
    assert d["parameters"]["total"] == 597_171 and d["dims"] == {"text": 768, "audio": 5, "vision": 20}
    assert d["hparams"]["batch_size"] == 128


def test_data_verify_reports_missing_and_present(capsys, tmp_path):
    (tmp_path / "MOSI" / "Processed").mkdir(parents=True)
    (tmp_path / "MOSI" / "Processed" / "aligned_50.pkl").write_bytes(b"not the real file")
    code, out, _ = _run(capsys, "data", "verify", "--data-root", str(tmp_path))
    assert code == 0
    assert "mismatch" in out and "missing" in out


@pytest.mark.slow
def test_mosi229_end_to_end(capsys, tmp_path):
    root = shared_data("mosi229")
    code, out, _ = _run(capsys, "run", "--method", "lf_dnn", "--dataset", "mosi", "--setting", "unaligned",
                        "--data-root", str(root), "--seeds", "1111", "--epochs", "3", "--out", str(tmp_path), "--quiet")
    assert code == 0
    assert "[real data]" in out and "not comparable" in out
    r = json.loads(next(tmp_path.glob("runs/lf_dnn/mosi-unaligned/*/seed-1111/result.json")).read_text())
    assert r["data"]["source"] == "real" and r["data"]["standard"] is False
    assert r["data"]["sizes"] == {"train": 139, "valid": 47, "test": 43}
