"""bench.train.trainer.run_epochs: the one epoch loop, driven by scripted members (no model, exact numbers),
and the guards it gives the static step."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from bench.train.guards import TrainingStopped
from bench.train.static_step import train_static
from bench.train.trainer import run_epochs
from tests.helpers import ToyHParams, make_bundle
from tests.test_multiseed import TinyMLP


class ScriptedMembers:
    """Members whose validation losses are given per epoch; records what the loop asks of them.

    Ten training samples in batches of 4 (4, 4, 2); batch b (1, 2, 3) reports total = b * (k + 1)."""

    method_cls = TinyMLP
    sums_on_host = False

    def __init__(self, hp, seeds, valid_losses):
        self.hp, self.seeds, self.valid_losses = hp, list(seeds), valid_losses
        self.train_split = make_bundle(sizes=(10, 4, 4)).splits["train"]
        self.active = list(range(len(seeds)))
        self.epoch = 0
        self.orders, self.steps, self.retired, self.restored = [], 0, [], {}
        self.views = [torch.optim.SGD([torch.zeros(1)], lr=hp.learning_rate) for _ in seeds]

    def start_epoch(self, epoch):
        self.epoch, self.batch = epoch, 0

    def batch_order(self, perms):
        self.orders.append([p.clone() for p in perms])
        return torch.stack(perms)

    def zero_grad(self):
        pass

    def forward_backward(self, idx):
        self.batch += 1
        return {"total": torch.tensor([float(self.batch * (k + 1)) for k in self.active])}

    def step(self):
        self.steps += 1

    def validate(self):
        return [{"loss": self.valid_losses[k][self.epoch - 1]} for k in self.active]

    def snapshot(self, k):
        return ("weights", k, self.epoch)

    def end_epoch(self, k, epoch, valid, improved):
        pass

    def lr_holder(self, k):
        return self.views[k]

    def lrs_changed(self, k):
        pass

    def lr(self, k):
        return self.views[k].param_groups[0]["lr"]

    def retire(self, still):
        self.retired.append(list(still))
        self.active = list(still)

    def restore(self, k, state):
        self.restored[k] = state
        return torch.nn.Identity()

    def evaluate(self, model, split, export):
        return {"loss": 0.0}, {}

    def record(self, model):
        return {}


def _hp(**kw):
    base = dict(batch_size=4, grad_accum=2, grad_accum_drop_tail=True, early_stop=2, max_epochs=0,
                plateau_patience=1, plateau_factor=0.5, learning_rate=0.1)
    return dataclasses.replace(ToyHParams(), **{**base, **kw})


def test_selection_plateau_stopping_and_retirement_per_member():
    # member 0: best at epoch 2 (the tie at 3 does not improve), stops at 4; member 1: best at 1, stops at 3
    m = ScriptedMembers(_hp(), [7, 8], [[1.0, 0.9, 0.9, 0.9], [1.0, 1.1, 1.2]])
    rows = []
    out = run_epochs(m, lambda k, row: rows.append((k, row["epoch"])))
    assert [(o.best_epoch, o.epochs_run, o.stopped) for o in out] == [(2, 4, "early_stop"), (1, 3, "early_stop")]
    assert m.restored == {0: ("weights", 0, 2), 1: ("weights", 1, 1)}
    assert m.retired == [[0, 1], [0, 1], [0], []]
    assert rows == [(0, 1), (1, 1), (0, 2), (1, 2), (0, 3), (1, 3), (0, 4)]
    # ReduceLROnPlateau(patience=1) halves after the second epoch without improvement
    assert [r["lr"] for r in out[0].history] == [0.1, 0.1, 0.1, 0.05]
    assert [r["lr"] for r in out[1].history] == [0.1, 0.1, 0.05]
    assert [r["improved"] for r in out[0].history] == [True, True, False, False]
    # 3 batches, grad_accum 2, tail dropped: one step per epoch; mean of b * (k + 1) over b = 1, 2, 3
    assert [o.n_optimizer_steps for o in out] == [4, 3] and m.steps == 4
    assert out[0].history[0]["train"] == {"total": 2.0} and out[1].history[0]["train"] == {"total": 4.0}
    # each member draws its own batch order from a generator seeded by its seed
    assert torch.equal(m.orders[0][1], torch.randperm(10, generator=torch.Generator().manual_seed(8)))
    assert len(m.orders[3]) == 1


def test_stepped_tail_and_max_epochs():
    m = ScriptedMembers(_hp(grad_accum_drop_tail=False, max_epochs=2, early_stop=5), [1], [[1.0, 0.5]])
    (out,) = run_epochs(m)
    assert out.n_optimizer_steps == 4 and out.stopped == "max_epochs" and out.best_epoch == 2


def test_a_nan_selection_metric_never_improves_and_the_last_weights_are_tested():
    m = ScriptedMembers(_hp(plateau_patience=0), [1], [[math.nan] * 5])
    m.validate = lambda: [{"loss": 1.0, "corr": math.nan}]
    m.hp = dataclasses.replace(m.hp, select_on="corr")
    (out,) = run_epochs(m)
    assert (out.best_epoch, out.epochs_run) == (0, 2) and m.restored == {0: ("weights", 0, 2)}


def test_a_non_finite_validation_loss_stops_the_run_naming_the_member():
    m = ScriptedMembers(_hp(), [7, 8], [[1.0, 0.9], [1.0, math.inf]])
    with pytest.raises(TrainingStopped, match=r"^tiny-mlp seed 8: the validation loss became inf in epoch 2"):
        run_epochs(m)


def test_the_static_step_has_the_loop_guards():
    hp = TinyMLP.HParams(learning_rate=1e30, max_epochs=2)
    with pytest.raises(TrainingStopped, match=r"^tiny-mlp seed 1: the training loss became (nan|inf) in epoch 1"):
        train_static(TinyMLP, hp, make_bundle(), seed=1, capture=False, adam="default")
    with pytest.raises(TrainingStopped, match=r"epoch 1 took no optimiser step \(0 training samples"):
        train_static(TinyMLP, TinyMLP.HParams(), make_bundle(sizes=(0, 24, 30)), seed=1)
