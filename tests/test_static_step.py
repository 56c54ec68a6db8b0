"""bench.train.static_step: the device-bound trainer computes what the loop path computes.

On CPU the static-buffer step runs eagerly (no capture); with torch's default Adam it must equal
``trainer.train`` bitwise -- including the epoch's smaller last batch (run at its own shape, not padded),
summed gradient accumulation with the tail dropped or stepped, value clipping, dropout (same RNG
consumption) and BatchNorm statistics (emoe-paper's router). Fused Adam rounds in the last bits only.
CUDA-graph capture itself is checked on a GPU by ``scripts/gpu_issue16.py equality``.
"""

from __future__ import annotations

import pytest
import torch

from bench.errors import UserError
from bench.train.static_step import StaticStep, static_blocker, train_static
from bench.train.trainer import train
from tests.helpers import ToyMethod, make_bundle
from tests.test_multiseed import TinyMLP, tiny_hp


@pytest.fixture(scope="module")
def bundle():
    # 45 training samples, batch 8: five full batches and a last batch of 5
    return make_bundle(sizes=(45, 16, 16))


def _assert_same_outcome(a, b):
    assert a.history and len(a.history) == len(b.history)
    for ra, rb in zip(a.history, b.history):
        assert ra["train"] == rb["train"] and ra["valid"] == rb["valid"] and ra["lr"] == rb["lr"]
    assert a.best_epoch == b.best_epoch and a.n_optimizer_steps == b.n_optimizer_steps
    assert a.test == b.test and a.valid == b.valid
    assert (a.test_outputs["pred"] == b.test_outputs["pred"]).all()


@pytest.mark.parametrize("method,extra", [
    ("emoe", dict(grad_accum=2, grad_accum_drop_tail=True, weight_decay=0.01)),  # 6 batches: 3 steps, no tail
    ("emoe", dict(grad_accum=4, grad_accum_drop_tail=False, attn_dropout=0.2, embed_dropout=0.1)),  # tail stepped
    ("emoe-paper", dict(grad_accum=1, grad_clip_value=0.05)),  # BatchNorm router, a last batch of 5
    ("mult", dict(grad_accum=3, grad_clip_value=0.05, grad_clip_at="backward", plateau_patience=1)),
])
def test_static_step_equals_the_loop_path_bitwise(bundle, method, extra):
    cls, hp = tiny_hp(method, max_epochs=3, early_stop=10, **extra)
    ref = train(cls, hp, bundle, seed=7)
    got = train_static(cls, hp, bundle, seed=7, capture=False, adam="default")
    _assert_same_outcome(got, ref)
    assert got.model_record["static_step"] == {"capture": False, "adam": "default", "captured_sizes": [],
                                               "capture_error": None}


def test_the_last_smaller_batch_is_run_at_its_own_shape(bundle):
    """A tail of 5 is a separate static buffer, never padded to 8: the step sees exactly 5 samples."""
    cls, hp = tiny_hp("emoe", batch_size=8)
    torch.manual_seed(0)
    model = cls(hp, bundle.info())
    step = StaticStep(model, bundle.splits["train"], hp)
    step(torch.arange(8))
    terms = step(torch.arange(40, 45))
    assert sorted(step.idx) == [5, 8]
    # the tail's loss is the mean over its 5 samples, as the loop path computes it
    plain = cls.loss_terms(model, model(bundle.splits["train"].take(torch.arange(40, 45))),
                           bundle.splits["train"].take(torch.arange(40, 45)))
    assert float(terms["multi"]) == float(plain["multi"].detach())


@pytest.mark.parametrize("adam", ["fused", "foreach"])
def test_fused_and_foreach_adam_differ_from_the_loop_only_in_rounding(bundle, adam):
    cls, hp = tiny_hp("emoe", max_epochs=2, early_stop=10, grad_accum=1)
    ref = train(cls, hp, bundle, seed=3)
    got = train_static(cls, hp, bundle, seed=3, capture=False, adam=adam)
    for ra, rb in zip(got.history, ref.history):
        assert ra["valid"]["loss"] == pytest.approx(rb["valid"]["loss"], abs=1e-5)
    assert got.test["mae"] == pytest.approx(ref.test["mae"], abs=1e-5)


def test_methods_with_per_step_hooks_are_refused(bundle):
    assert static_blocker(TinyMLP) is None
    assert "after_step" in static_blocker(ToyMethod)
    with pytest.raises(UserError, match="--graphs off"):
        train_static(ToyMethod, ToyMethod.HParams(), bundle, seed=1)


def test_graphs_on_through_the_cli_records_the_static_step(tmp_path):
    import json

    from bench.cli import main

    code = main(["run", "--method", "emoe", "--dataset", "synthetic-mosi", "--seeds", "1111", "--epochs", "1",
                 "--out", str(tmp_path), "--quiet", "--threads", "1", "--device", "cpu", "--graphs", "on",
                 "--set", "d_model=16", "--set", "n_heads=2", "--set", "n_layers=1", "--set", "grad_accum=1"])
    assert code == 0
    (res,) = [json.loads(f.read_text()) for f in tmp_path.glob("runs/emoe/*/*/seed-*/result.json")]
    assert res["provenance"]["execution"] == {"exec_mode": "loop", "amp": "off", "compile": False, "static_step": True}
    assert res["model"]["static_step"]["capture"] is False  # CPU: the same static step, eagerly


def test_graphs_on_refuses_amp_and_vmap(tmp_path, capsys):
    from bench.cli import main

    base = ["run", "--method", "emoe", "--dataset", "synthetic-mosi", "--seeds", "1", "--out", str(tmp_path),
            "--device", "cpu", "--graphs", "on"]
    assert main(base + ["--amp", "bf16"]) == 2
    assert main(base + ["--exec", "vmap"]) == 2
    err = capsys.readouterr().err
    assert "does not combine with --amp" in err and "not --exec vmap" in err



@pytest.mark.parametrize("graphs,method,device,text,expected", [
    ("auto", "emoe", "cuda", None, ("on", "default")),  # proven bitwise: captured with torch's Adam
    ("auto", "mult", "cuda:0", None, ("on", "default")),
    ("auto", "emoe", "cpu", None, ("off", "fused")),  # never on CPU: CPU numbers stay as they were
    ("auto", "emoe", "cuda", "random:bert-mini", ("off", "fused")),  # BERT mode: its own key, emoe+bert
    ("auto", "lf_dnn", "cuda", None, ("off", "fused")),  # not in the proven set
    ("auto", "self_mm", "cuda", None, ("off", "fused")),  # per-step hooks
    ("on", "lf_dnn", "cpu", None, ("on", "fused")),  # explicit: as requested, fused Adam
    ("off", "emoe", "cuda", None, ("off", "fused")),
])
def test_graphs_switch_resolution(graphs, method, device, text, expected, monkeypatch):
    from bench.registry import get_method
    from bench.train import static_step
    from bench.train.static_step import resolve_graphs

    # the proven set grows with GPU evidence (scripts/gpu16b_to_docs.py); the rule is tested on a fixed one
    monkeypatch.setattr(static_step, "CAPTURE_EQUAL", frozenset({"emoe", "mult"}))

    cls = get_method(method)
    hp = cls.default_hparams("mosi", "unaligned")
    if text:
        import dataclasses

        hp = dataclasses.replace(hp, text_model=text)
    assert resolve_graphs(graphs, cls, hp, device) == expected


def test_graphs_auto_on_cpu_trains_the_loop_path(tmp_path):
    """The CLI default (--graphs auto) on CPU: no static step is recorded."""
    from bench.cli import main

    assert main(["run", "--method", "lf_dnn", "--dataset", "synthetic-mosi", "--setting", "aligned", "--epochs", "1",
                 "--seeds", "1111", "--out", str(tmp_path), "--quiet", "--threads", "1", "--device", "cpu",
                 "--set", "batch_size=64"]) == 0
    import json

    (res,) = [json.loads(p.read_text()) for p in tmp_path.rglob("result.json")]
    assert "static_step" not in res["provenance"]["execution"] and "static_step" not in res.get("model", {})
