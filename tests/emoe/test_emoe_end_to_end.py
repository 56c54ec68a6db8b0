"""EMOE through the CLI on synthetic data (both faces) and on the real mini set."""

import json

import pytest

from bench.cli import main
from tests.conftest import shared_data

SMALL = ["--set", "d_model=32", "--set", "n_heads=4", "--set", "n_layers=1"]


@pytest.mark.slow
def test_trains_on_mosi229(tmp_path, capsys):
    root = shared_data("mosi229")
    code = main(["run", "--method", "emoe", "--dataset", "mosi", "--setting", "unaligned", "--data-root", str(root),
                 "--seeds", "1111", "--epochs", "2", "--out", str(tmp_path), "--quiet", "--text", "frozen", *SMALL,
                 "--set", "grad_accum=1"])  # 139 samples = 9 batches of 16: grad_accum 10 would never step
    assert code == 0
    assert "[real data]" in capsys.readouterr().out
    r = json.loads(next(tmp_path.glob("runs/emoe/mosi-unaligned/*/seed-1111/result.json")).read_text())
    assert r["data"]["source"] == "real" and r["data"]["sizes"]["test"] == 43
    assert r["test"]["mae"] > 0 and r["selection"]["optimizer_steps"] == 2 * 9
