"""A test-only toy method (never registered) and the trainer tests' toy data."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bench.data.tensors import DatasetBundle
from bench.method import Method, TrainHParams
from tests import toy


def make_bundle(sizes=(64, 24, 30), seed: int = 0) -> DatasetBundle:
    """The trainer tests' geometry of the one toy builder (tests/toy.py): aligned, 6 steps, text 8 / audio 3 /
    vision 4, no padding (the loop-vs-vmap tolerances were measured on unpadded data)."""
    return toy.make_bundle("aligned", sizes=sizes, seed=seed, dims=(8, 3, 4), lens=(6, 6, 6), padded=False)


@dataclass
class ToyHParams(TrainHParams):
    hidden: int = 16
    dropout: float = 0.1
    batch_size: int = 16
    learning_rate: float = 1e-2
    early_stop: int = 3
    max_epochs: int = 6


class ToyMethod(Method):
    """Mean-pooled features -> MLP with dropout (so determinism covers the dropout RNG)."""

    name = "toy"
    HParams = ToyHParams
    export_keys = ("hidden",)

    def __init__(self, hp, info):
        super().__init__(hp, info)
        d = info.dims["text"] + info.dims["audio"] + info.dims["vision"]
        self.net = nn.Sequential(nn.Linear(d, hp.hidden), nn.ReLU(), nn.Dropout(hp.dropout))
        self.head = nn.Linear(hp.hidden, 1)
        self.grads_seen: list[torch.Tensor] = []

    def forward(self, batch):
        x = torch.cat([batch.text.mean(1), batch.audio.mean(1), batch.vision.mean(1)], dim=-1)
        h = self.net(x)
        return {"pred": self.head(h).squeeze(-1), "hidden": h}

    def after_step(self, out, batch, epoch):
        self.grads_seen.append(self.head.weight.grad.detach().clone())
