"""``--exec auto``: pick the execution mode per configuration instead of one mode for a whole table.

``--exec vmap`` on a whole table stops at the first row vmap cannot batch (EF-LSTM); ``auto`` asks the same
capability check (:func:`bench.train.multiseed.vmap_blocker`, on a model built on the meta device: no
memory, no weights) for every configuration:

* CPU: ``loop`` (vmap is no faster than the loop on a CPU, docs/performance.md §4);
* one missing seed: ``loop`` (a one-member ensemble is slower and not the loop's result);
* a model vmap can batch: ``vmap`` (3-8x at K = 5-10 on an H200, §5);
* otherwise (LSTM, BERT, per-step hooks): ``procs`` on CUDA (one process per seed on the same GPU).

The choice is printed once per configuration and stored as today (``provenance.execution.exec_mode``,
with ``chosen_by: auto``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.data.tensors import DataInfo
from bench.train.multiseed import vmap_blocker


@dataclass(frozen=True)
class AutoChoice:
    mode: str
    reason: str


def vmap_reason(method_cls, hp, info: DataInfo) -> str | None:
    """Why vmap cannot batch this configuration (None: it can). Builds the model on the meta device."""

    try:
        with torch.device("meta"):
            model = method_cls(hp, info)
    except Exception as e:  # noqa: BLE001 - a model that cannot be built on meta is not risked in vmap
        return f"it cannot be inspected on the meta device ({type(e).__name__})"
    return vmap_blocker(model)


def choose(method_cls, hp, info: DataInfo, n_missing: int, device: str) -> AutoChoice:
    """The execution mode ``--exec auto`` uses for one configuration with ``n_missing`` seeds to train."""
    if not str(device).startswith("cuda"):
        return AutoChoice("loop", "CPU: vmap is no faster than the loop")
    if n_missing <= 1:
        return AutoChoice("loop", f"{n_missing} seed to train")
    why = vmap_reason(method_cls, hp, info)
    if why is None:
        return AutoChoice("vmap", f"{n_missing} seeds in one vmap ensemble")
    return AutoChoice("procs", f"vmap cannot batch it: {why}")
