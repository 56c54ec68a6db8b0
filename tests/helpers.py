"""Test-only toy data and a toy method (never registered)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bench.data.tensors import DatasetBundle, Split
from bench.method import Method, TrainHParams


def make_split(n: int, gen: torch.Generator, t: int = 6) -> Split:
    text = torch.randn(n, t, 8, generator=gen)
    audio = torch.randn(n, t, 3, generator=gen)
    vision = torch.randn(n, t, 4, generator=gen)
    y = (text[:, :, 0].mean(1) * 4 + 0.5 * audio[:, :, 1].mean(1)).clamp(-3, 3)
    return Split(labels=y.float(), audio=audio, vision=vision, text=text)


def make_bundle(sizes=(64, 24, 30), seed: int = 0) -> DatasetBundle:
    gen = torch.Generator().manual_seed(seed)
    splits = {k: make_split(n, gen) for k, n in zip(("train", "valid", "test"), sizes)}
    return DatasetBundle(name="toy", family="mosi", setting="aligned", task="regression", splits=splits,
                         source="synthetic", fingerprint=f"toy-{seed}-{sizes}")


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
