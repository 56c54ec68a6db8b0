"""Metrics and the task loss of a model on one split, and the validation-loss modes (written once).

Both the single model (:func:`evaluate`) and the vmap ensemble
(:meth:`bench.train.multiseed.VmapEnsemble.evaluate`) turn their per-batch losses into the reported
``loss`` through :func:`split_metrics`, so a loss mode means the same thing on every execution path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from bench.data.tensors import Split
from bench.method import Method
from bench.metrics import compute_metrics


def batches(n: int, batch_size: int):
    """Index tensors of consecutive mini-batches over ``range(n)`` (the last one may be smaller)."""
    idx = torch.arange(n)
    for start in range(0, n, batch_size):
        yield idx[start:start + batch_size]


def validation_loss(mode: str, loss_sum: float, batch_means: Sequence[float], n: int) -> float:
    """``sample_mean``: the per-sample loss averaged over the split; ``batch_mean_4dp``: the mean of the
    per-batch means rounded to 4 decimals (MMSA's reported validation loss, which its early stopping uses)."""
    if mode == "batch_mean_4dp":
        return round(float(np.mean(batch_means)), 4)
    return loss_sum / n


def split_metrics(task: str, pred: torch.Tensor, labels: np.ndarray, loss_sum: float,
                  batch_means: Sequence[float], mode: str) -> tuple[dict, np.ndarray]:
    """(metrics with ``loss``, predictions as numpy) of CPU predictions ``pred`` for one split.

    ``loss_sum`` is the per-sample task loss summed over the split (each path sums its per-batch float32
    sums in float64 in its own order: sequentially for one model, numpy's pairwise sum for an ensemble)."""
    p_np = pred.numpy() if task == "classification" else pred.reshape(-1).numpy()
    metrics = compute_metrics(task, p_np, labels)
    metrics["loss"] = validation_loss(mode, loss_sum, batch_means, len(labels))
    return metrics, p_np


@torch.no_grad()
def evaluate(model: Method, split: Split, batch_size: int, val_loss_mode: str = "sample_mean",
             export_keys: tuple[str, ...] = ()) -> tuple[dict, dict[str, np.ndarray]]:
    """Metrics + task loss on a split, in split order; returns (metrics, outputs as numpy)."""
    model.eval()
    preds, extras = [], {k: [] for k in export_keys}
    losses_sum, batch_means = 0.0, []
    for idx in batches(len(split), batch_size):
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
    labels = split.labels.cpu().numpy()
    metrics, p_np = split_metrics(model.info.task, torch.cat(preds), labels, losses_sum, batch_means,
                                  val_loss_mode)
    outputs = {"pred": p_np, "label": labels.copy()}  # a copy: never alias the dataset tensor
    for k, v in extras.items():
        if v:
            outputs[k] = torch.cat(v).numpy()
    return metrics, outputs
