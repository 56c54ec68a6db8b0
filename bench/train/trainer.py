"""One training loop for every method and every execution path (the official EMOE/MMSA optimisation
semantics, switchable).

:func:`run_epochs` is the only epoch loop: batch order, summed gradient accumulation, the non-finite and
no-step guards (bench/train/guards.py), model selection, ``ReduceLROnPlateau``, early stopping, the
history row and the final evaluation are written here once, over a :class:`bench.train.members.Members`
object that computes the steps (one eager model here; static/CUDA-graph steps in static_step.py; a vmap
ensemble in multiseed.py).

Selection uses the validation split only: the checkpoint with the best validation loss (or the
configured ``select_on`` metric) is restored and the test split is evaluated exactly once. A
non-finite loss or an epoch without an optimiser step stops training.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from bench.data.tensors import DatasetBundle
from bench.method import Method, TrainHParams
from bench.metrics import HIGHER_IS_BETTER
from bench.train.evaluation import evaluate
from bench.train.guards import check_loss, check_stepped, guarded_term, method_label
from bench.train.members import Members, TermSums
from bench.train.seeding import seed_everything

SELECTION_RULE = (
    "checkpoint with the lowest validation loss (improvement > 1e-6; ties keep the earlier epoch); "
    "test split evaluated once, on that checkpoint"
)


@dataclass
class TrainOutcome:
    history: list[dict]
    best_epoch: int
    epochs_run: int
    stopped: str  # "early_stop" | "max_epochs"
    valid: dict
    test: dict
    test_outputs: dict[str, np.ndarray]
    n_optimizer_steps: int
    model_record: dict = field(default_factory=dict)
    n_parameters: int = 0


def _is_better(value: float, best: float, higher: bool) -> bool:
    if math.isnan(value):
        return False
    return value >= best + 1e-6 if higher else value <= best - 1e-6


# ------------------------------------------------------------------------------------ the loop
def _train_epoch(members: Members, epoch: int, active: list[int], perms: list[torch.Tensor],
                 label: str) -> tuple[TermSums, int, int]:
    """One pass over the training split for every active member: (loss sums, batches, optimiser steps)."""
    hp = members.hp
    members.start_epoch(epoch)
    order = members.batch_order(perms)
    sums = TermSums(members.sums_on_host)
    accum = max(1, hp.grad_accum)
    n_batches = pending = steps = 0
    for start in range(0, order.shape[-1], hp.batch_size):
        if pending == 0:
            members.zero_grad()
        terms = members.forward_backward(order[..., start:start + hp.batch_size])
        sums.add(terms)
        pending += 1
        n_batches += 1
        if members.sums_on_host:  # the losses are on the host anyway: stop at the first bad batch, before its step
            for k, value in zip(active, sums.current(guarded_term(terms))):
                check_loss(value, which="training", method=label, seed=members.seeds[k], epoch=epoch)
        if pending == accum:
            members.step()
            steps += 1
            pending = 0
    if pending and not hp.grad_accum_drop_tail:
        members.step()
        steps += 1
    return sums, n_batches, steps


def run_epochs(members: Members, on_epoch: Callable[[int, dict], None] | None = None) -> list[TrainOutcome]:
    """Train every member to early stopping (or ``hp.max_epochs``), each with its own batch order,
    plateau schedule, best-validation checkpoint and stopping epoch; then evaluate each selected
    checkpoint on the validation and test splits. ``on_epoch(k, row)`` sees every history row."""
    hp, seeds = members.hp, members.seeds
    n_members = len(seeds)
    label = method_label(members.method_cls)
    higher = HIGHER_IS_BETTER.get(hp.select_on, False)
    # Batch order has its own generator per member, so it does not depend on how much RNG the model consumed.
    order_gens = [torch.Generator().manual_seed(s) for s in seeds]
    plateau = [torch.optim.lr_scheduler.ReduceLROnPlateau(members.lr_holder(k), mode="min", factor=hp.plateau_factor,
                                                          patience=hp.plateau_patience)
               if hp.plateau_patience > 0 else None for k in range(n_members)]
    best_value = [-math.inf if higher else math.inf] * n_members
    best_epoch, n_steps, epochs_run = [0] * n_members, [0] * n_members, [0] * n_members
    best_state: list[object] = [None] * n_members
    stopped = [""] * n_members
    history: list[list[dict]] = [[] for _ in seeds]
    n_train = len(members.train_split)
    active = list(range(n_members))
    epoch = 0

    while active:
        epoch += 1
        t0 = time.perf_counter()
        perms = [torch.randperm(n_train, generator=order_gens[k]) for k in active]
        sums, n_batches, steps = _train_epoch(members, epoch, active, perms, label)
        if epoch == 1:
            check_stepped(steps, method=label, seed=",".join(map(str, seeds)), n_train=n_train,
                          batch_size=hp.batch_size, grad_accum=max(1, hp.grad_accum))
        valid = members.validate()
        train_sums = sums.per_member(len(active))
        still = []
        for k, term_sums, metrics in zip(active, train_sums, valid, strict=True):
            if term_sums:  # a non-finite batch loss makes the epoch's sum non-finite (NaN/inf propagate)
                check_loss(term_sums[guarded_term(term_sums)], which="training", method=label, seed=seeds[k],
                           epoch=epoch)
            check_loss(metrics["loss"], which="validation", method=label, seed=seeds[k], epoch=epoch)
            n_steps[k] += steps
            improved = _is_better(metrics[hp.select_on], best_value[k], higher)
            if improved:
                best_value[k], best_epoch[k] = metrics[hp.select_on], epoch
                best_state[k] = members.snapshot(k)
            members.end_epoch(k, epoch, metrics, improved)
            if plateau[k] is not None:
                plateau[k].step(metrics["loss"])
                members.lrs_changed(k)
            row = {"epoch": epoch, "train": {name: v / max(n_batches, 1) for name, v in term_sums.items()},
                   "valid": metrics, "lr": members.lr(k), "improved": improved,
                   "seconds": time.perf_counter() - t0}
            history[k].append(row)
            if on_epoch is not None:
                on_epoch(k, row)
            if epoch - best_epoch[k] >= hp.early_stop:
                stopped[k] = "early_stop"
            elif hp.max_epochs and epoch >= hp.max_epochs:
                stopped[k] = "max_epochs"
            if not stopped[k]:
                still.append(k)
                continue
            epochs_run[k] = epoch
            if best_state[k] is None:  # never improved (a NaN selection metric): keep the last weights
                best_state[k] = members.snapshot(k)
        members.retire(still)
        active = still

    outcomes = []
    for k in range(n_members):
        model = members.restore(k, best_state[k])
        valid_best, _ = members.evaluate(model, "valid", export=False)
        test_metrics, test_outputs = members.evaluate(model, "test", export=True)
        outcomes.append(TrainOutcome(
            history=history[k], best_epoch=best_epoch[k], epochs_run=epochs_run[k], stopped=stopped[k],
            valid=valid_best, test=test_metrics, test_outputs=test_outputs, n_optimizer_steps=n_steps[k],
            model_record=members.record(model), n_parameters=sum(p.numel() for p in model.parameters())))
    return outcomes


# ------------------------------------------------------------------------------------ one model
class SingleModel:
    """One seed's model stepped eagerly: the reference :class:`~bench.train.members.Members`."""

    sums_on_host = True

    def __init__(self, method_cls: type[Method], hp: TrainHParams, bundle: DatasetBundle, seed: int,
                 device: str | torch.device = "cpu"):
        seed_everything(seed)
        self.method_cls, self.hp, self.seeds = method_cls, hp, [int(seed)]
        self.device = torch.device(device)
        self.data = bundle.to(self.device)
        self.train_split = self.data.splits["train"]
        self.eval_bs = hp.eval_batch_size or hp.batch_size
        self.model = method_cls(hp, bundle.info()).to(self.device)
        self.optimizer = self.make_optimizer()
        self.epoch = 0

    def make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.param_groups())

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.model.train()
        self.model.on_epoch_start(epoch, self.train_split)

    def batch_order(self, perms: list[torch.Tensor]) -> torch.Tensor:
        (perm,) = perms
        return perm.to(self.device)

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def forward_backward(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = self.train_split.take(idx)
        out = self.model(batch)
        terms = self.model.loss_terms(out, batch)
        terms["total"].backward()
        if self.hp.grad_clip_value > 0 and self.hp.grad_clip_at == "backward":
            torch.nn.utils.clip_grad_value_(self.model.parameters(), self.hp.grad_clip_value)
        self.model.after_step(out, batch, self.epoch)
        return terms

    def step(self) -> None:
        _step(self.model, self.optimizer, self.hp)

    def validate(self) -> list[dict]:
        return [evaluate(self.model, self.data.splits["valid"], self.eval_bs, self.hp.val_loss)[0]]

    def snapshot(self, k: int) -> dict:
        return copy.deepcopy(self.model.state_dict())

    def end_epoch(self, k: int, epoch: int, valid: dict, improved: bool) -> None:
        self.model.on_epoch_end(epoch, valid, improved, self.optimizer)

    def lr_holder(self, k: int) -> torch.optim.Optimizer:
        return self.optimizer

    def lrs_changed(self, k: int) -> None:
        """The scheduler adjusted the optimiser itself."""

    def lr(self, k: int) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def retire(self, still: list[int]) -> None:
        """Nothing to release: the loop ends when its only member stops."""

    def restore(self, k: int, state: dict) -> Method:
        self.model.load_state_dict(state)
        return self.model

    def evaluate(self, model: Method, split: str, export: bool) -> tuple[dict, dict]:
        keys = self.method_cls.export_keys if export else ()
        return evaluate(model, self.data.splits[split], self.eval_bs, self.hp.val_loss, export_keys=keys)

    def record(self, model: Method) -> dict:
        return model.record()


def train(method_cls: type[Method], hp: TrainHParams, bundle: DatasetBundle, seed: int,
          device: str | torch.device = "cpu", on_epoch: Callable[[dict], None] | None = None,
          ) -> TrainOutcome:
    """Train one seed to early stopping (or ``hp.max_epochs``) and test the selected checkpoint."""
    members = SingleModel(method_cls, hp, bundle, seed, device)
    return run_epochs(members, None if on_epoch is None else lambda _k, row: on_epoch(row))[0]


def _step(model: Method, optimizer: torch.optim.Optimizer, hp: TrainHParams) -> None:
    if hp.grad_clip_value > 0 and hp.grad_clip_at == "step":
        torch.nn.utils.clip_grad_value_(model.parameters(), hp.grad_clip_value)
    optimizer.step()
