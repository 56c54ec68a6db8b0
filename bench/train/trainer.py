"""One training loop for every method (the official EMOE/MMSA optimisation semantics, switchable).

Selection uses the validation split only: the checkpoint with the best validation loss (or the
configured ``select_on`` metric) is restored and the test split is evaluated exactly once. A
non-finite loss or an epoch without an optimiser step stops training (bench/train/guards.py).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from bench.data.tensors import DatasetBundle, Split
from bench.method import Method, TrainHParams
from bench.metrics import compute_metrics
from bench.train.guards import check_loss, check_stepped, guarded_term, method_label
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


def _batches(n: int, batch_size: int, order: torch.Tensor | None = None):
    idx = order if order is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield idx[start:start + batch_size]


@torch.no_grad()
def evaluate(model: Method, split: Split, batch_size: int, val_loss_mode: str = "sample_mean",
             export_keys: tuple[str, ...] = ()) -> tuple[dict, dict[str, np.ndarray]]:
    """Metrics + task loss on a split, in split order; returns (metrics, outputs as numpy)."""
    model.eval()
    device = next(iter(model.parameters())).device if any(True for _ in model.parameters()) else "cpu"
    preds, extras = [], {k: [] for k in export_keys}
    losses_sum, batch_means = 0.0, []
    for idx in _batches(len(split), batch_size):
        batch = split.take(idx.to(split.labels.device))
        out = model(batch)
        pred = out["pred"]
        per_sample = model.task_loss(pred, batch.labels, reduction="none")
        losses_sum += float(per_sample.sum())
        batch_means.append(float(per_sample.mean()))
        preds.append(pred.detach().float().cpu())
        for k in export_keys:
            if k in out and out[k] is not None:
                extras[k].append(out[k].detach().float().cpu())
    del device
    pred_all = torch.cat(preds)
    labels = split.labels.cpu()
    task = model.info.task
    p_np = pred_all.numpy() if task == "classification" else pred_all.reshape(-1).numpy()
    metrics = compute_metrics(task, p_np, labels.numpy())
    if val_loss_mode == "batch_mean_4dp":
        metrics["loss"] = round(float(np.mean(batch_means)), 4)
    else:
        metrics["loss"] = losses_sum / len(split)
    outputs = {"pred": p_np, "label": labels.numpy().copy()}  # a copy: never alias the dataset tensor
    for k, v in extras.items():
        if v:
            outputs[k] = torch.cat(v).numpy()
    return metrics, outputs


def _is_better(value: float, best: float, higher: bool) -> bool:
    if math.isnan(value):
        return False
    return value >= best + 1e-6 if higher else value <= best - 1e-6


def train(method_cls: type[Method], hp: TrainHParams, bundle: DatasetBundle, seed: int,
          device: str | torch.device = "cpu", on_epoch: Callable[[dict], None] | None = None,
          ) -> TrainOutcome:
    """Train one seed to early stopping (or ``hp.max_epochs``) and test the selected checkpoint."""
    from bench.metrics import HIGHER_IS_BETTER

    seed_everything(seed)
    device = torch.device(device)
    data = bundle.to(device)
    model = method_cls(hp, bundle.info()).to(device)
    optimizer = torch.optim.Adam(model.param_groups())
    scheduler = None
    if hp.plateau_patience > 0:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=hp.plateau_factor, patience=hp.plateau_patience)
    # Batch order has its own generator so it does not depend on how much RNG the model consumed.
    order_gen = torch.Generator().manual_seed(seed)
    eval_bs = hp.eval_batch_size or hp.batch_size
    train_split = data.splits["train"]
    select_on = hp.select_on
    higher = HIGHER_IS_BETTER.get(select_on, False)
    best_value = -math.inf if higher else math.inf
    best_state, best_epoch, history, n_steps = None, 0, [], 0
    epoch, stopped = 0, "early_stop"
    accum = max(1, hp.grad_accum)
    who = {"method": method_label(method_cls), "seed": seed}

    while True:
        epoch += 1
        t0 = time.perf_counter()
        model.train()
        model.on_epoch_start(epoch, train_split)
        perm = torch.randperm(len(train_split), generator=order_gen).to(device)
        term_sums: dict[str, float] = {}
        n_batches = 0
        pending = 0
        for idx in _batches(len(train_split), hp.batch_size, perm):
            if pending == 0:
                optimizer.zero_grad(set_to_none=True)
            batch = train_split.take(idx)
            out = model(batch)
            terms = model.loss_terms(out, batch)
            terms["total"].backward()
            if hp.grad_clip_value > 0 and hp.grad_clip_at == "backward":
                torch.nn.utils.clip_grad_value_(model.parameters(), hp.grad_clip_value)
            model.after_step(out, batch, epoch)
            pending += 1
            n_batches += 1
            for k, v in terms.items():
                term_sums[k] = term_sums.get(k, 0.0) + float(v.detach())
            check_loss(term_sums[guarded_term(terms)], which="training", **who, epoch=epoch)  # before the step
            if pending == accum:
                _step(model, optimizer, hp)
                n_steps += 1
                pending = 0
        if pending and not hp.grad_accum_drop_tail:
            _step(model, optimizer, hp)
            n_steps += 1
        if epoch == 1:
            check_stepped(n_steps, **who, n_train=len(train_split), batch_size=hp.batch_size, grad_accum=accum)
        valid_metrics, _ = evaluate(model, data.splits["valid"], eval_bs, hp.val_loss)
        check_loss(valid_metrics["loss"], which="validation", **who, epoch=epoch)
        value = valid_metrics[select_on]
        improved = _is_better(value, best_value, higher)
        if improved:
            best_value, best_epoch = value, epoch
            best_state = copy.deepcopy(model.state_dict())
        model.on_epoch_end(epoch, valid_metrics, improved, optimizer)
        if scheduler is not None:
            scheduler.step(valid_metrics["loss"])
        row = {
            "epoch": epoch,
            "train": {k: v / max(n_batches, 1) for k, v in term_sums.items()},
            "valid": valid_metrics,
            "lr": optimizer.param_groups[0]["lr"],
            "improved": improved,
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if epoch - best_epoch >= hp.early_stop:
            stopped = "early_stop"
            break
        if hp.max_epochs and epoch >= hp.max_epochs:
            stopped = "max_epochs"
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    valid_best, _ = evaluate(model, data.splits["valid"], eval_bs, hp.val_loss)
    test_metrics, test_outputs = evaluate(model, data.splits["test"], eval_bs, hp.val_loss,
                                          export_keys=method_cls.export_keys)
    return TrainOutcome(
        history=history, best_epoch=best_epoch, epochs_run=epoch, stopped=stopped,
        valid=valid_best, test=test_metrics, test_outputs=test_outputs, n_optimizer_steps=n_steps,
        model_record=model.record(), n_parameters=sum(p.numel() for p in model.parameters()),
    )


def _step(model: Method, optimizer: torch.optim.Optimizer, hp: TrainHParams) -> None:
    if hp.grad_clip_value > 0 and hp.grad_clip_at == "step":
        torch.nn.utils.clip_grad_value_(model.parameters(), hp.grad_clip_value)
    optimizer.step()
