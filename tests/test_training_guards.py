"""A non-finite loss or an epoch without an optimiser step stops training; nothing is stored as finished."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bench.cli import main
from bench.runner import RunRequest, run
from bench.train import multiseed, trainer
from bench.train.guards import TrainingStopped
from bench.train.multiseed import train_many
from bench.train.trainer import train
from tests.helpers import ToyHParams, ToyMethod, make_bundle
from tests.test_multiseed import TinyMLP

STOP_HINT = "training stopped and nothing was stored (lower learning_rate, or check the data for extreme values)"


def test_infinite_learning_rate_stops_in_the_first_epoch():
    with pytest.raises(TrainingStopped) as e:
        train(ToyMethod, ToyHParams(learning_rate=float("inf")), make_bundle(), seed=1111)
    assert str(e.value) == f"toy seed 1111: the training loss became nan in epoch 1; {STOP_HINT}"


def test_one_batch_epoch_is_caught_by_the_validation_loss():
    """With one batch per epoch the ruinous step comes last: the validation loss shows it."""
    hp = ToyHParams(learning_rate=float("inf"), batch_size=64, max_epochs=1)
    with pytest.raises(TrainingStopped) as e:
        train(ToyMethod, hp, make_bundle(sizes=(64, 24, 30)), seed=7)
    assert str(e.value) == f"toy seed 7: the validation loss became nan in epoch 1; {STOP_HINT}"


def test_vmap_member_with_nonfinite_loss_stops_the_ensemble():
    hp = ToyHParams(learning_rate=float("inf"), dropout=0.0)
    with pytest.raises(TrainingStopped) as e:
        train_many(TinyMLP, hp, make_bundle(), [21, 22], exec_mode="vmap")
    assert str(e.value) == f"tiny-mlp seed 21: the training loss became nan in epoch 1; {STOP_HINT}"


@pytest.mark.parametrize("exec_mode", ["loop", "vmap"])
def test_no_optimiser_step_is_refused(exec_mode):
    """5 batches of 16 with grad_accum 8 and the tail dropped: the model would never be updated."""
    hp = ToyHParams(grad_accum=8, dropout=0.0)
    seeds = [3] if exec_mode == "loop" else [3, 4]
    method = ToyMethod if exec_mode == "loop" else TinyMLP
    with pytest.raises(TrainingStopped) as e:
        train_many(method, hp, make_bundle(sizes=(80, 24, 30)), seeds, exec_mode=exec_mode)
    who = "toy seed 3" if exec_mode == "loop" else "tiny-mlp seed 3,4"
    assert str(e.value) == (f"{who}: epoch 1 took no optimiser step (80 training samples = 5 batches of 16, fewer "
                            "than grad_accum=8 with the tail dropped), so the model would stay untrained; lower "
                            "grad_accum or batch_size, or set grad_accum_drop_tail=false")
    ok = train(ToyMethod, dataclasses.replace(hp, grad_accum_drop_tail=False), make_bundle(sizes=(80, 24, 30)), 3)
    assert ok.n_optimizer_steps == ok.epochs_run  # stepping the tail: one step per epoch


def test_empty_train_split_is_never_trained():
    with pytest.raises(TrainingStopped, match=r"^toy seed 1: epoch 1 took no optimiser step \(0 training samples"):
        train(ToyMethod, ToyHParams(), make_bundle(sizes=(0, 24, 30)), seed=1)


def test_runner_stores_no_finished_run(tmp_path):
    req = RunRequest(method="toy", dataset="toy", seeds=[1111, 1112], overrides={"learning_rate": "1e30"},
                     out=str(tmp_path), device="cpu")
    with pytest.raises(TrainingStopped, match=r"toy seed 1111: the training loss became (nan|inf)"):
        run(req, bundle=make_bundle(), log=lambda _: None, progress=False, method_cls=ToyMethod)
    assert not list(tmp_path.rglob("done")) and not list(tmp_path.rglob("result.json"))


def test_cli_huge_learning_rate_is_one_line_and_not_done(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["run", "--method", "lf_dnn", "--dataset", "synthetic-mosi", "--setting", "aligned", "--epochs", "1",
               "--seeds", "1111", "--out", str(out), "--set", "learning_rate=1e30", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0] == f"error: lf_dnn seed 1111: the training loss became nan in epoch 1; {STOP_HINT}"
    assert not list(out.rglob("done")) and not list(out.rglob("result.json"))


def _no_guards(monkeypatch):
    for mod in (trainer, multiseed):
        monkeypatch.setattr(mod, "check_loss", lambda *a, **k: None)
        monkeypatch.setattr(mod, "check_stepped", lambda *a, **k: None)


def _numbers(outcomes):
    return [(o.history, o.valid, o.test, o.best_epoch, o.n_optimizer_steps, o.test_outputs["pred"].tolist())
            for o in outcomes]


@pytest.mark.parametrize(("method", "exec_mode"), [(ToyMethod, "loop"), (TinyMLP, "vmap")])
def test_guards_leave_ordinary_runs_bitwise_unchanged(monkeypatch, method, exec_mode):
    """Checks only read losses already computed: every number of a normal run is identical without them
    (tests/test_regression_gate.py compares a whole table with the committed reference)."""
    hp = ToyHParams(max_epochs=4, early_stop=2)
    guarded = _numbers(train_many(method, hp, make_bundle(), [5, 6], exec_mode=exec_mode))
    _no_guards(monkeypatch)
    unguarded = _numbers(train_many(method, hp, make_bundle(), [5, 6], exec_mode=exec_mode))
    for g, u in zip(guarded, unguarded, strict=True):
        for x, y in zip(g[:-1], u[:-1], strict=True):
            if isinstance(x, list):  # history rows: drop wall-clock seconds
                x = [{k: v for k, v in r.items() if k != "seconds"} for r in x]
                y = [{k: v for k, v in r.items() if k != "seconds"} for r in y]
            assert x == y
        assert np.array_equal(g[-1], u[-1])


class InfiniteAuxiliary(ToyMethod):
    """An objective whose total is +inf (a constant auxiliary term, like MMIM's -beta*H for a singular
    covariance) while the task loss and every gradient stay finite: the model still trains."""

    def loss_terms(self, out, batch):
        task = self.task_loss(out["pred"], batch.labels)
        return {"total": task + float("inf"), "task": task}


def test_infinite_auxiliary_term_with_finite_task_loss_trains():
    out = train(InfiniteAuxiliary, ToyHParams(max_epochs=2), make_bundle(), seed=1)
    assert out.history[0]["train"]["total"] == float("inf") and np.isfinite(out.history[0]["train"]["task"])
    assert out.epochs_run == 2 and np.isfinite(out.test["loss"])
