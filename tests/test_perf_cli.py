"""``python -m bench.perf`` (the loop-vs-vmap throughput tool) end to end on a tiny MulT."""

import json

from bench import perf


def test_perf_script_smoke(tmp_path, capsys):
    """``python -m bench.perf`` end to end on a tiny MulT (loop and vmap; procs: tests/test_multiseed)."""
    out = tmp_path / "perf.json"
    rc = perf.main(["--models", "mult", "--k", "1,2", "--modes", "loop,vmap", "--steps", "1", "--warmup", "0",
                    "--batch-size", "2", "--set", "d_model=10", "--set", "nlevels=1", "--set", "num_heads=2",
                    "--json", str(out)])
    assert rc == 0
    payload = json.loads(out.read_text())
    assert payload["machine"]["device"] == "cpu" and "torch" in payload["machine"]
    rows = payload["rows"]
    assert [(r["mode"], r["K"]) for r in rows] == [("loop", 1), ("vmap", 1), ("loop", 2), ("vmap", 2)]
    assert all(r["samples_per_s"] > 0 and r["speedup_vs_loop"] > 0 for r in rows)
    assert "member steps/s" in capsys.readouterr().out
