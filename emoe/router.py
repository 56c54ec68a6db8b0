"""EMOE router networks: the official L2-normalised MLP and the paper's BatchNorm MLP.

Both map a flat (B, D) input to (B, n_experts) weights on the simplex (softmax over experts).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class L2NormMLPRouter(nn.Module):
    """Official router (fuyyyyy/EMOE trains/singleTask/model/router.py:5-16).

    ``w = softmax(l2(relu(normalize(l1(x)))) / t)``: the hidden vector is L2-normalised *before* the
    ReLU; no BatchNorm, no alpha. Hidden width ``floor(D / 8)`` unless given. PyTorch default init.
    """

    def __init__(self, in_dim: int, n_experts: int = 3, temperature: float = 0.1, hidden: int = 0):
        super().__init__()
        hidden = hidden or max(in_dim // 8, 1)
        self.temperature = temperature
        self.l1 = nn.Linear(in_dim, hidden)
        self.l2 = nn.Linear(hidden, n_experts)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(F.normalize(self.l1(x), p=2, dim=-1))
        return self.l2(h) / self.temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=-1)


class BNMLPRouter(nn.Module):
    """Paper router, Eq. 1 (our reading of an underspecified description, §13 rows 1-2).

    ``h = Linear(hidden -> E)(ReLU(BN(Linear(D -> hidden)(x))))``; ``w = softmax(alpha * h / t)``
    with a learnable per-expert scale ``alpha`` initialised to 1. A training batch of one sample
    uses the running BatchNorm statistics (BatchNorm cannot normalise a single sample).
    """

    def __init__(self, in_dim: int, n_experts: int = 3, temperature: float = 0.1, hidden: int = 0):
        super().__init__()
        hidden = hidden or 256
        self.temperature = temperature
        self.l1 = nn.Linear(in_dim, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.l2 = nn.Linear(hidden, n_experts)
        self.alpha = nn.Parameter(torch.ones(n_experts))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h = self.l1(x)
        if self.training and h.shape[0] == 1:
            h = F.batch_norm(h, self.bn.running_mean, self.bn.running_var, self.bn.weight, self.bn.bias,
                             training=False, eps=self.bn.eps)
        else:
            h = self.bn(h)
        return self.alpha * self.l2(F.relu(h)) / self.temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=-1)


def build_router(arch: str, in_dim: int, n_experts: int = 3, temperature: float = 0.1,
                 hidden: int = 0) -> nn.Module:
    if arch == "l2norm_mlp":
        return L2NormMLPRouter(in_dim, n_experts, temperature, hidden)
    if arch == "bn_mlp":
        return BNMLPRouter(in_dim, n_experts, temperature, hidden)
    raise ValueError(f"unknown router_arch {arch!r}")
