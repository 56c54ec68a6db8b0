"""What the one epoch loop (:func:`bench.train.trainer.run_epochs`) needs from the models it trains.

A :class:`Members` object holds K models of one method, member ``k`` trained with seed ``seeds[k]``,
all stepped together. The loop owns everything that decides *what* happens (batch order, gradient
accumulation, guards, selection, the plateau scheduler, early stopping, the history row, the final
evaluation); a Members implementation owns only *how* a step or an evaluation is computed:

* :class:`bench.train.trainer.SingleModel` -- one model, eager PyTorch (the reference);
* :class:`bench.train.static_step.StaticModel` -- the same model stepped through static buffers
  (CUDA graphs on a GPU, ``--graphs on``);
* ``bench.train.multiseed._EnsembleMembers`` -- K models as one vmap ensemble (``--exec vmap``).

Members leave the stack when they stop (:meth:`Members.retire`); calls that act on "the active members"
take or return them in the order of ``active`` as the loop passes it.
"""

from __future__ import annotations

from typing import Protocol

import torch

from bench.data.tensors import Split
from bench.method import Method, TrainHParams


class Members(Protocol):
    method_cls: type[Method]
    hp: TrainHParams
    seeds: list[int]
    train_split: Split
    # True: loss terms are read on the host after every batch, so the loop stops at the first non-finite
    # batch; False: they are summed on the device and read once per epoch (no per-step synchronisation).
    sums_on_host: bool

    def start_epoch(self, epoch: int) -> None:
        """Training mode and the method's ``on_epoch_start`` hook."""

    def batch_order(self, perms: list[torch.Tensor]) -> torch.Tensor:
        """The active members' epoch permutations (CPU) as the index tensor :meth:`forward_backward`
        slices along its last dimension."""

    def zero_grad(self) -> None: ...

    def forward_backward(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """One mini-batch per active member: forward, loss terms, backward (gradients are summed into
        ``.grad``), backward-time clipping, the ``after_step`` hook. Returns the loss terms, each of shape
        () for one member or (K,) for K."""

    def step(self) -> None:
        """One optimiser step (with step-time clipping)."""

    def validate(self) -> list[dict]:
        """Validation metrics (``loss`` in ``hp.val_loss`` mode) of every active member."""

    def snapshot(self, k: int) -> object:
        """A copy of member ``k``'s weights and buffers (the best-epoch checkpoint)."""

    def end_epoch(self, k: int, epoch: int, valid: dict, improved: bool) -> None:
        """The method's ``on_epoch_end`` hook for member ``k`` (before the plateau scheduler)."""

    def lr_holder(self, k: int) -> torch.optim.Optimizer:
        """An optimiser whose ``param_groups`` learning rates are member ``k``'s (what ReduceLROnPlateau
        adjusts); :meth:`lrs_changed` is called after the scheduler changed them."""

    def lrs_changed(self, k: int) -> None: ...

    def lr(self, k: int) -> float:
        """Member ``k``'s current learning rate of its first parameter group (the history's ``lr``)."""

    def retire(self, still: list[int]) -> None:
        """Only the members ``still`` keep training."""

    def restore(self, k: int, state: object) -> Method:
        """A model carrying ``state`` (a :meth:`snapshot` of member ``k``) for the final evaluation."""

    def evaluate(self, model: Method, split: str, export: bool) -> tuple[dict, dict]:
        """(metrics, outputs) of ``model`` on the named split; ``export``: with the method's export keys."""

    def record(self, model: Method) -> dict:
        """The result's model record."""


class TermSums:
    """Each loss term summed over an epoch's batches in float64 starting from 0.0, per member.

    The same float64 additions on the host or on the device, so where the sum lives changes no bit."""

    def __init__(self, on_host: bool):
        self.on_host = on_host
        self.sums: dict[str, torch.Tensor] = {}

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for name, v in terms.items():
            v = v.detach()
            if self.on_host:
                v = v.cpu()
            v = v.double()
            self.sums[name] = self.sums[name] + v if name in self.sums else v + 0.0

    def current(self, name: str) -> list[float]:
        """The running sum of ``name`` for every member (a host read)."""
        return self.sums[name].reshape(-1).tolist()

    def per_member(self, n_members: int) -> list[dict[str, float]]:
        values = {name: s.reshape(-1).tolist() for name, s in self.sums.items()}
        return [{name: v[i] for name, v in values.items()} for i in range(n_members)]
