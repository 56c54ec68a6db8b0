"""DMD's graph distillation unit (GD-Unit) and the distances it uses.

Written from the published code of DMD (Li, Wang, Cui, CVPR 2023; GitHub ``mdswyz/DMD``); no code was
copied. Citations are ``path:line`` in mdswyz/DMD, stored versions: ``run.py`` @ 24f32ca,
``trains/singleTask/distillnets/get_distillation_kernel{,_homo}.py``, ``trains/singleTask/utils/misc.py``
and ``trains/singleTask/DMD.py`` @ e4f6de3.

One unit per decoupled space (run.py:138-160): the *homogeneous* unit distils between the three
modality-invariant heads, the *heterogeneous* unit between the three cross-modal (modality-specific)
heads. Vertices are the modalities in DMD's stacking order [l, v, a] (DMD.py:85-103); the six directed
edges are enumerated as ``(student j, teacher i)`` for ``j`` in 0..2, ``i`` in 0..2, ``i != j``
(get_distillation_kernel_homo.py:51-58), i.e. ``v->l, a->l, l->v, a->v, l->a, v->a`` in teacher->student
notation.

Edge weights (``forward``, homo :34-62, hetero :34-60)::

    z_m   = [W_logit(logit_m), W_repr(repr_m)]                (2·gd per modality and sample)
    e_x   = W_edge([z_student, z_teacher])                     (one scalar per edge and sample)
    edges = softmax(alpha · e, over the six edges)             (6, B); alpha = 1/8

Nothing is detached here: the edge network sees the live logits/representations of both ends, so the
distillation losses also reach the teacher head *through the edge weights*.

Losses (``distillation_loss``, homo :65-86, hetero :63-82)::

    L_reg   = gd_reg · Σ_x (mean_b edges[x] − prior[x])²                  gd_reg = 10
    w_x     = edges[x] + prior[x]                                      (B,), not detached
    L_logit = Σ_x w_logit · mean_b( w_x,b · Σ_c |z_student − stopgrad(z_teacher)| )   (metric l1)
    L_repr  = Σ_x w_repr  · mean_b( w_x,b · dist(repr_student, stopgrad(repr_teacher)) )

with ``dist`` = the same l1 distance in the homogeneous unit and, in the heterogeneous unit,
``min_cosine`` (misc.py:62-70): torch's ``CosineEmbeddingLoss`` with target −1 and margin 0, i.e. the
batch mean of ``max(0, cos)`` — it *minimises* the cosine similarity between the student and the
detached teacher representation — multiplied by ``mean_b w_x``. The prior is
``softmax(scores / 0.25)`` with scores (0,0,1,0,1,0) (homo: mass on l->v, l->a) and (0,0,1,0,1,1)
(hetero: also v->a) (run.py:143,155; misc.py:56-60).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["EDGES", "GraphDistillUnit", "cosine_embedding_negative", "distance", "edge_prior",
           "edge_names"]

MODALITY_ORDER = ("l", "v", "a")
# (student j, teacher i) for every ordered pair, in the reference's loop order.
EDGES: tuple[tuple[int, int], ...] = tuple((j, i) for j in range(3) for i in range(3) if i != j)

# torch's CosineEmbeddingLoss adds this to both squared norms (aten Loss.cpp, EPSILON).
COSINE_EMBEDDING_EPS = 1e-12


def edge_names() -> tuple[str, ...]:
    """``"v->l"``-style names of the six edges (teacher -> student), in edge order."""
    return tuple(f"{MODALITY_ORDER[i]}->{MODALITY_ORDER[j]}" for j, i in EDGES)


def edge_prior(scores: Sequence[float], temperature: float) -> torch.Tensor:
    """``softmax(scores / temperature)`` as float32, computed in float64 like the reference's numpy
    ``softmax`` (misc.py:56-60) before ``torch.FloatTensor``."""
    s = torch.as_tensor(list(scores), dtype=torch.float64, device="cpu")
    return torch.softmax(s / temperature, dim=0).to(torch.float32)


def cosine_embedding_negative(x1: torch.Tensor, x2: torch.Tensor, dim: int, margin: float = 0.0) -> torch.Tensor:
    """``CosineEmbeddingLoss(margin)(x1, x2, target=-1)`` with the cosine taken along ``dim``:
    ``mean(max(0, cos − margin))``, ``cos = Σ x1·x2 / sqrt((Σ x1² + 1e-12)(Σ x2² + 1e-12))``.

    With 2-D inputs and ``dim=1`` this is exactly torch's loss. torch 1.9 (DMD's pinned version) also
    accepted 3-D inputs and then reduced along dim 1 whatever it was; ``dim`` makes that explicit.
    """
    prod = (x1 * x2).sum(dim)
    m1 = (x1 * x1).sum(dim) + COSINE_EMBEDDING_EPS
    m2 = (x2 * x2).sum(dim) + COSINE_EMBEDDING_EPS
    cos = prod / torch.sqrt(m1 * m2)
    return (cos - margin).clamp_min(0.0).mean()


def distance(student: torch.Tensor, teacher: torch.Tensor, metric: str,
             weights: torch.Tensor | None = None) -> torch.Tensor:
    """``distance_metric`` (misc.py:73-108) on (B, F) inputs; the teacher is detached, the weights not.

    ``l1``: Σ_f |s − t|; ``l2``: Σ_f (s − t)²; ``cosine``: 1 − cos(s, t) (torch's cosine_similarity);
    ``min_cosine`` (misc.py:62-70): the scalar batch mean of max(0, cos(s, t)) times the weights.
    Returns ``mean_b(d_b · w_b)`` (or ``mean_b d_b`` without weights).
    """
    teacher = teacher.detach()
    if metric == "min_cosine":
        dists = cosine_embedding_negative(student, teacher, dim=1)  # a scalar, as in the reference
    elif metric == "l1":
        dists = (student - teacher).abs().sum(1)
    elif metric == "l2":
        dists = (student - teacher).pow(2).sum(1)
    elif metric == "cosine":
        dists = 1.0 - F.cosine_similarity(student, teacher, dim=1)
    else:
        raise ValueError(f"unknown distillation metric {metric!r}")
    return dists.mean() if weights is None else (dists * weights).mean()


class GraphDistillUnit(nn.Module):
    """One GD-Unit over the three modalities (see the module docstring for the formulas).

    ``hidden_size`` is the width of the representations, ``gd_size`` the edge network's width,
    ``n_out`` the width of the logits (1 for regression). ``repr_metric`` is ``"l1"`` in the
    homogeneous unit and ``"min_cosine"`` in the heterogeneous one.
    """

    def __init__(self, hidden_size: int, gd_size: int, prior: torch.Tensor, reg: float = 10.0,
                 alpha: float = 1 / 8, w_logit: float = 1.0, w_repr: float = 10.0, metric: str = "l1",
                 repr_metric: str = "l1", n_out: int = 1):
        super().__init__()
        if prior.numel() != len(EDGES):
            raise ValueError(f"the edge prior needs {len(EDGES)} values, got {prior.numel()}")
        self.W_logit = nn.Linear(n_out, gd_size)
        self.W_repr = nn.Linear(hidden_size, gd_size)
        self.W_edge = nn.Linear(4 * gd_size, 1)
        self.register_buffer("prior", prior.detach().to(torch.float32).reshape(-1).clone(), persistent=False)
        self.reg = reg
        self.alpha = alpha
        self.w_logit = w_logit
        self.w_repr = w_repr
        self.metric = metric
        self.repr_metric = repr_metric

    def forward(self, logits: torch.Tensor, reprs: torch.Tensor) -> torch.Tensor:
        """logits (3, B, n_out), reprs (3, B, H) -> softmax-normalised edge weights (6, B)."""
        z = torch.cat([self.W_logit(logits), self.W_repr(reprs)], dim=-1)  # (3, B, 2·gd)
        raw = torch.cat([self.W_edge(torch.cat([z[j], z[i]], dim=-1)) for j, i in EDGES], dim=1)  # (B, 6)
        return torch.softmax(raw * self.alpha, dim=1).transpose(0, 1)

    def losses(self, logits: torch.Tensor, reprs: torch.Tensor, edges: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"reg", "logit", "repr"}`` as returned by the reference's ``distillation_loss`` (with the
        ``w_losses`` factors already applied, ``gd_reg`` inside ``reg``)."""
        prior = self.prior.to(edges.dtype)
        reg = (edges.mean(dim=1) - prior).pow(2).sum() * self.reg
        loss_logit = edges.new_zeros(())
        loss_repr = edges.new_zeros(())
        for x, (j, i) in enumerate(EDGES):
            w = edges[x] + prior[x]
            loss_logit = loss_logit + self.w_logit * distance(logits[j], logits[i], self.metric, w)
            loss_repr = loss_repr + self.w_repr * distance(reprs[j], reprs[i], self.repr_metric, w)
        return {"reg": reg, "logit": loss_logit, "repr": loss_repr}
