"""The interface every model implements (one registered class per file).

A method is an ``nn.Module`` that knows (1) its per-dataset default hyper-parameters, (2) how to
build itself for a dataset's dimensions, (3) its forward pass on a :class:`~bench.data.tensors.Split`
batch and (4) its named loss terms. The shared trainer owns optimisation, selection and devices.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from bench.config import Factor, NonNegFloat, NonNegInt, PosFloat, PosInt, choice
from bench.data.tensors import DataInfo, Split
from bench.metrics import HIGHER_IS_BETTER


@dataclass
class TrainHParams:
    """Optimisation settings read by the shared trainer; every method's hyper-parameters extend it.

    Defaults are MMSA's common values; methods override them per dataset in ``default_hparams``.
    """

    batch_size: PosInt = 32
    learning_rate: PosFloat = 1e-3
    weight_decay: NonNegFloat = 0.0
    # Gradients of this many mini-batches are summed (not averaged) before one optimiser step, as
    # MMSA/EMOE do; the epoch's trailing ``n_batches % grad_accum`` batches are computed and discarded
    # when ``grad_accum_drop_tail`` (the official behaviour), else stepped at the end of the epoch.
    grad_accum: PosInt = 1
    grad_accum_drop_tail: bool = True
    grad_clip_value: NonNegFloat = 0.0  # elementwise value clipping (clip_grad_value_); 0 = off
    # When to clip: "step" (once, on the accumulated gradient) or "backward" (after every backward,
    # on the partially accumulated gradient, as MMSA's MulT/MISA trainers do).
    grad_clip_at: Annotated[str, choice("step", "backward")] = "step"
    early_stop: PosInt = 8  # epochs without validation improvement before stopping
    max_epochs: NonNegInt = 0  # 0 = no cap (the official code loops until early stopping)
    plateau_patience: NonNegInt = 0  # ReduceLROnPlateau(factor) on the validation loss; 0 = no scheduler
    plateau_factor: Factor = 0.5
    # Validation loss: "sample_mean" (true per-sample mean) or "batch_mean_4dp" (MMSA/EMOE's
    # mean of per-batch means rounded to 4 decimals, for parity).
    val_loss: Annotated[str, choice("sample_mean", "batch_mean_4dp")] = "sample_mean"
    eval_batch_size: NonNegInt = 0  # 0 = same as batch_size
    # Selection criterion on the validation split: "loss" or a metric key (e.g. "f1" for MIntRec).
    select_on: Annotated[str, choice(*HIGHER_IS_BETTER)] = "loss"


# The budget every method gets under ``--profile compact`` (synthetic tables on 2 CPU cores) unless its
# ``presets["compact"]`` narrows the model too: 20 epochs, patience 6.
COMPACT_BUDGET: dict[str, str] = {"max_epochs": "20", "early_stop": "6"}


class Method(nn.Module):
    """Base class. Subclasses set ``HParams`` and implement ``default_hparams``, ``__init__`` and
    ``forward``; the default objective is the task loss on ``out["pred"]``.
    """

    name: ClassVar[str] = "?"
    HParams: ClassVar[type] = TrainHParams
    families: ClassVar[tuple[str, ...]] = ("mosi", "mosei")  # hyper-parameter blocks it supports
    settings: ClassVar[tuple[str, ...]] = ("aligned", "unaligned")
    # Output keys saved with the test predictions (router weights, fused features, ...).
    export_keys: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    # Named budgets beside the model (as timm keeps ``default_cfgs`` beside each model), as ``--set`` strings:
    # "compact" = synthetic tables on 2 CPU cores; "tiny" = the smallest model for contract tests.
    presets: ClassVar[dict[str, dict[str, str]]] = {"compact": COMPACT_BUDGET}

    def __init__(self, hp: TrainHParams, info: DataInfo):
        super().__init__()
        self.hp = hp
        self.info = info

    @classmethod
    def preset(cls, name: str) -> dict[str, str]:
        """``--set`` overrides of a named budget; "tiny" builds on "compact" (its epochs), a missing name is {}."""
        if name == "tiny":
            return {**cls.preset("compact"), **cls.presets.get("tiny", {})}
        return dict(cls.presets.get(name, {}))

    # ----------------------------------------------------------------- hyper-parameters
    @classmethod
    def default_hparams(cls, family: str, setting: str) -> TrainHParams:
        """The reference implementation's values for this dataset family and setting."""
        return cls.HParams()

    @classmethod
    def describe_groups(cls) -> dict[str, tuple[str, ...]]:
        """Parameter groups for ``bench describe``: group name -> submodule-name prefixes."""
        return {}

    # ----------------------------------------------------------------- training interface
    def forward(self, batch: Split) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def loss_terms(self, out: dict[str, torch.Tensor], batch: Split) -> dict[str, torch.Tensor]:
        """Named loss terms; ``"total"`` is what the trainer backpropagates."""
        task = self.task_loss(out["pred"], batch.labels)
        return {"total": task, "task": task}

    def task_loss(self, pred: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """L1 for regression (MMSA/EMOE), cross-entropy for classification (MIntRec)."""
        if self.info.task == "classification":
            return F.cross_entropy(pred, labels, reduction=reduction)
        return F.l1_loss(pred.reshape(-1), labels.reshape(-1).to(pred.dtype), reduction=reduction)

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimiser parameter groups; the default is one group with the method's lr and decay."""
        return [{"params": [p for p in self.parameters() if p.requires_grad],
                 "lr": self.hp.learning_rate, "weight_decay": self.hp.weight_decay}]

    def on_epoch_start(self, epoch: int, train: Split) -> None:
        """Hook for methods with per-epoch state (Self-MM's label generation)."""

    def after_step(self, out: dict[str, torch.Tensor], batch: Split, epoch: int) -> None:
        """Hook called after each training batch's backward pass (Self-MM updates its labels)."""

    def on_epoch_end(self, epoch: int, valid: dict[str, float], improved: bool,
                     optimizer: torch.optim.Optimizer) -> None:
        """Hook called after each epoch's validation and checkpoint selection, before the plateau
        scheduler (``improved``: this epoch is the new best; MISA-MIntRec decays its lr here)."""

    def record(self) -> dict[str, Any]:
        """Facts about the built model worth storing with the result (e.g. the text mode used)."""
        return {}


def hparam_fields(hp_cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(hp_cls)}


def count_parameter_groups(module: nn.Module, groups: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """Parameters per group (a group = submodule-name prefixes; first match wins), ``other`` for the
    unmatched ones (omitted when 0) and ``total``. Reads only ``numel``, so it works on the meta device."""
    counts = {g: 0 for g in groups}
    other = 0
    for name, p in module.named_parameters():
        for g, prefixes in groups.items():
            if any(name == pre or name.startswith(pre + ".") for pre in prefixes):
                counts[g] += p.numel()
                break
        else:
            other += p.numel()
    if other:
        counts["other"] = other
    counts["total"] = sum(p.numel() for p in module.parameters())
    return counts
