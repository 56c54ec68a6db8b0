"""``bench plan``: runs still needed (finished runs subtracted) and the wall-time arithmetic from the throughput
table; missing throughput lines are "unknown", never guessed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import throughput
from bench.cli import main
from bench.plan import format_plan, plan_requests
from bench.runner import RunRequest, run

SRC = dict(status="measured", script="scripts/measure_throughput.py", machine="test box", date="2026-12-04")


def _entry(method, family="mosi", setting="aligned", shapes="compact", budget="compact", exec_mode="loop", k=1,
           n_train=400, spe=1.0, overhead=0.0):
    return throughput.Entry(method, family, setting, shapes, budget, exec_mode, k, n_train, spe, overhead, **SRC)


def test_lookup_scales_by_samples_and_falls_back_by_setting_then_family():
    entries = [_entry("lf_dnn", n_train=200, spe=2.0, overhead=0.5), _entry("tfn", setting="unaligned", spe=3.0)]
    est = throughput.lookup(entries, "lf_dnn", "mosi", "aligned", "compact", "compact", n_train=400, k=3)
    assert est.per_epoch_s == pytest.approx(3 * 2.0 * 2) and est.overhead_s == pytest.approx(1.5)
    assert est.how == "measured, scaled x2.00 by training samples, 3 seeds one after another"
    other = throughput.lookup(entries, "tfn", "mosi", "aligned", "compact", "compact", n_train=400)
    assert other.per_epoch_s == 3.0 and other.how == "from unaligned"
    fam = throughput.lookup(entries, "lf_dnn", "mosei", "aligned", "compact", "compact", n_train=600)
    assert fam.per_epoch_s == pytest.approx(6.0) and fam.how.startswith("from mosi, scaled x3.00")
    rough = throughput.lookup(entries, "tfn", "mosei", "aligned", "compact", "compact", n_train=800)
    assert rough.per_epoch_s == pytest.approx(6.0)
    assert rough.how == "from mosi-unaligned, scaled x2.00 by training samples"
    assert throughput.lookup(entries, "lf_dnn", "mosi", "aligned", "full", "full", n_train=400).per_epoch_s is None
    assert throughput.lookup(entries, "mult", "mosi", "aligned", "compact", "compact", 400).how == "unknown"


def test_vmap_lines_are_used_for_a_group_of_k_seeds():
    entries = [_entry("emoe", spe=1.0), _entry("emoe", exec_mode="vmap", k=5, spe=1.8)]
    assert throughput.lookup(entries, "emoe", "mosi", "aligned", "compact", "compact", 400, "vmap", 5).per_epoch_s \
        == 1.8
    # no vmap line for K = 3: the seeds one after another
    assert throughput.lookup(entries, "emoe", "mosi", "aligned", "compact", "compact", 400, "vmap", 3).per_epoch_s \
        == 3.0


def test_plan_subtracts_finished_runs_and_adds_the_known_rows(tmp_path):
    out = str(tmp_path / "res")
    run(RunRequest(method="lf_dnn", dataset="synthetic-mosi", setting="aligned", seeds=[1111], epochs=1, out=out,
                   device="cpu"), log=lambda _: None, progress=False)
    reqs = [RunRequest(method=m, dataset="synthetic-mosi", setting="aligned", seeds=[1111, 1112, 1113], epochs=1,
                       out=out, device="cpu") for m in ("lf_dnn", "tfn")]
    entries = [_entry("lf_dnn", spe=2.0, overhead=0.5)]
    rows = plan_requests([("LF-DNN", "aligned"), ("TFN", "aligned")], reqs, "compact", entries, "cpu")
    assert [(r.reused, r.todo) for r in rows] == [(1, 2), (0, 3)]
    assert rows[0].seconds == pytest.approx(1 * (2 * 2.0) + 2 * 0.5)  # 1 epoch x 2 seeds x 2 s + 2 x 0.5 s
    assert rows[1].seconds is None
    text = format_plan(rows, entries, "cpu", Path("cpu.csv"))
    assert "runs to train: 5 of 6 (1 finished runs reused); estimated wall time on cpu: 5 s + unknown for 1 " \
           "configuration(s) (tfn: no throughput line)" in text
    assert "throughput: cpu.csv (scripts/measure_throughput.py on test box, 2026-12-04)" in text


def test_plan_cli_table_4(tmp_path, capsys):
    tdir = tmp_path / "tp"
    throughput.write([_entry("emoe", spe=1.5, overhead=2.0)], tdir / "cpu.csv")
    assert main(["plan", "--table", "4", "--device", "cpu", "--out", str(tmp_path / "r"),
                 "--throughput-dir", str(tdir)]) == 0
    text = capsys.readouterr().out
    # 4 rows x 3 seeds, 20 epochs (the compact cap) each: 4 x (3 x 1.5 x 20 + 3 x 2) = 384 s
    assert "runs to train: 12 of 12 (0 finished runs reused); estimated wall time on cpu: 6 min 24 s" in text


def test_plan_cli_for_cuda_uses_the_auto_choice(tmp_path, capsys):
    tdir = tmp_path / "tp"
    throughput.write([_entry("emoe", spe=1.0), _entry("emoe", exec_mode="vmap", k=5, spe=1.25, overhead=4.0)],
                     tdir / "cuda.csv")
    assert main(["plan", "--table", "5", "--device", "cuda", "--seeds", "5x", "--out", str(tmp_path / "r"),
                 "--throughput-dir", str(tdir)]) == 0
    text = capsys.readouterr().out
    assert " vmap " in text
    # 3 rows x (20 epochs x 1.25 s + 4 s) = 87 s
    assert "estimated wall time on cuda: 1 min 27 s" in text


def test_plan_cli_errors(capsys):
    assert main(["plan", "--table", "9"]) == 2
    assert main(["plan", "--table", "4", "--device", "tpu"]) == 2
    err = capsys.readouterr().err
    assert "table 9 is not available" in err and "--device 'tpu'" in err


@pytest.mark.parametrize("dataset,setting", [("synthetic-mosi", "aligned"), ("synthetic-mintrec", "unaligned")])
def test_the_shape_only_bundle_has_the_generated_bundles_config_hash(dataset, setting):
    """bench plan finds finished runs of synthetic data without generating it: same hash, info and sizes."""
    from bench.plan import shape_bundle
    from bench.runner import load_bundle, run_spec

    req = RunRequest(method="emoe", dataset=dataset, setting=setting)
    real, shell = load_bundle(req), shape_bundle(req)
    assert run_spec(req, shell)[1].config_hash == run_spec(req, real)[1].config_hash
    assert shell.info() == real.info() and len(shell.train) == len(real.train)


def test_graphs_lines_are_used_where_the_run_would_capture(tmp_path, capsys):
    """On CUDA, --graphs auto (the default) captures EMOE loop runs: the plan reads the loop+graphs line; with
    --graphs off it reads the loop line; a missing loop+graphs line falls back to the loop line, said aloud."""
    tdir = tmp_path / "tp"
    lines = [_entry("emoe", spe=1.0), _entry("emoe", exec_mode="loop+graphs", spe=0.25, overhead=1.0)]
    throughput.write(lines, tdir / "cuda.csv")
    base = ["plan", "--table", "5", "--device", "cuda", "--seeds", "2x", "--exec", "loop", "--out",
            str(tmp_path / "r"), "--throughput-dir", str(tdir)]
    assert main(base) == 0
    text = capsys.readouterr().out
    # 3 rows x 2 seeds x (20 epochs x 0.25 s + 1 s) = 36 s
    assert " loop+graphs " in text and "estimated wall time on cuda: 36 s" in text
    assert main([*base, "--graphs", "off"]) == 0
    assert "estimated wall time on cuda: 2 min 00 s" in capsys.readouterr().out  # 3 x 2 x 20 x 1.0 s
    throughput.write(lines[:1], tdir / "cuda.csv")
    assert main(base) == 0
    text = capsys.readouterr().out
    assert "no loop+graphs line: loop line" in text and "estimated wall time on cuda: 2 min 00 s" in text


def test_bert_runs_read_only_bert_lines(tmp_path, capsys):
    """--text-model puts EMOE on a BERT: the plan then needs a text=bert line and never uses a features line."""
    tdir = tmp_path / "tp"
    throughput.write([_entry("emoe", spe=1.0)], tdir / "cpu.csv")
    base = ["plan", "--table", "4", "--device", "cpu", "--seeds", "1x", "--out", str(tmp_path / "r"),
            "--throughput-dir", str(tdir), "--text-model", "random:bert-base-uncased"]
    assert main(base) == 0
    assert "unknown for 4 configuration(s) (emoe: no throughput line)" in capsys.readouterr().out
    bert = throughput.Entry("emoe", "mosi", "aligned", "compact", "compact", "loop", 1, 400, 3.0, 0.0, **SRC,
                            text="bert")
    throughput.write([_entry("emoe", spe=1.0), bert], tdir / "cpu.csv")
    assert main(base) == 0
    # 4 rows x 1 seed x 20 epochs x 3 s = 240 s
    assert "estimated wall time on cpu: 4 min 00 s" in capsys.readouterr().out


def test_a_throughput_file_without_the_text_column_is_all_features(tmp_path):
    path = tmp_path / "cpu.csv"
    path.write_text("method,family,setting,shapes,budget,exec_mode,k,n_train,seconds_per_epoch,run_overhead_s,"
                    "status,script,machine,date,note\nlf_dnn,mosi,aligned,compact,compact,loop,1,400,0.5,0.1,"
                    "measured,s,m,2026-12-04,n\n")
    (e,) = throughput.load("cpu", tmp_path)
    assert e.text == "features" and e.seconds_per_epoch == 0.5


def test_the_measuring_script_never_trains_on_a_one_sample_last_batch():
    """TFN/LMF's BatchNorm cannot train on a batch of one: scripts/measure_throughput.py drops that one sample
    (a measurement-only change; the plan scales by training samples) and leaves other sizes alone."""
    import importlib.util

    from tests.helpers import make_bundle

    spec = importlib.util.spec_from_file_location("measure_throughput",
                                                  Path(__file__).resolve().parents[1] / "scripts/measure_throughput.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    b = make_bundle(sizes=(33, 5, 5))
    assert len(mod.no_single_tail(b, 32).train) == 32 and len(mod.no_single_tail(b, 16).train) == 32
    assert len(mod.no_single_tail(b, 8).train) == 32 and len(mod.no_single_tail(b, 10).train) == 33
    assert len(mod.no_single_tail(b, 32).splits["valid"]) == 5
