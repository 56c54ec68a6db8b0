"""The first baselines train end to end through the CLI on synthetic-mosi and on the real mini set (the later
ones -- mfn, graph_mfn, mctn, mfm, mmim, mag_bert -- do so in their own test files)."""

import json

import pytest

from bench.cli import main
from tests.conftest import shared_data

# small sizes so each run takes seconds; the defaults are MMSA's (see docs/baselines.md)
SMALL = {
    "lf_dnn": [],
    "mult": ["--set", "d_model=8", "--set", "num_heads=2", "--set", "nlevels=1", "--set", "grad_accum=1"],
    "misa": ["--set", "hidden_size=16", "--set", "grad_accum=1"],
    "self_mm": ["--set", "grad_accum=1"],
    "dmd": ["--set", "d_model=8", "--set", "num_heads=2", "--set", "nlevels=1", "--set", "grad_accum=1"],
    "tfn": [],
    "lmf": [],
    "ef_lstm": [],
}


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(SMALL))
def test_trains_on_mosi229_through_cli(tmp_path, capsys, method):
    root = shared_data("mosi229")
    code = main(["run", "--method", method, "--dataset", "mosi", "--setting", "unaligned", "--data-root", str(root),
                 "--seeds", "1111", "--epochs", "1", "--out", str(tmp_path), "--quiet", "--text", "frozen",
                 *SMALL[method]])
    assert code == 0, capsys.readouterr().err
    r = json.loads(next(tmp_path.glob(f"runs/{method}/mosi-unaligned/*/seed-1111/result.json")).read_text())
    assert r["data"]["sizes"] == {"train": 139, "valid": 47, "test": 43} and r["data"]["standard"] is False
