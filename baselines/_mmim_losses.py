"""The three estimators of MMIM (Han et al. 2021) as plain functions, so they can be checked by hand.

Facts from thuiar/MMSA@4338bded208c8fcaabd5fc58afa5db981573d970 ``src/MMSA/models/singleTask/MMIM.py``
(``MMILB.forward``, ``CPC.forward``; = PyPI MMSA 2.2.1) and declare-lab/Multimodal-Infomax@34f92d2
``src/modules/encoders.py`` (identical arithmetic). Code written here.
"""

from __future__ import annotations

import torch


def cpc_nce(x: torch.Tensor, x_pred: torch.Tensor) -> torch.Tensor:
    """CPC / InfoNCE term of one modality (to be *minimised*; MMSA calls it ``nce``).

    ``x`` (B, D) is the modality vector, ``x_pred`` (B, D) its prediction from the fused vector. Both
    are L2-normalised per row; with ``s_ij = <x_i, x_pred_j>`` the result is
    ``-(1/B) Σ_i [s_ii - log Σ_j exp(s_ij)]`` (no temperature; a zero row gives NaN, as in MMSA).
    """
    x_pred = x_pred / x_pred.norm(dim=1, keepdim=True)
    x = x / x.norm(dim=1, keepdim=True)
    pos = (x * x_pred).sum(dim=-1)
    neg = torch.logsumexp(x @ x_pred.t(), dim=-1)
    return -(pos - neg).mean()


def gaussian_lld(mu: torch.Tensor, logvar: torch.Tensor, y: torch.Tensor,
                 with_logvar: bool = False) -> torch.Tensor:
    """MMILB likelihood term: ``mean_b Σ_d -(mu - y)² / (2·exp(logvar))``.

    MMSA and the original code drop the ``-logvar/2`` normaliser (and the constant) of the Gaussian
    log-density, so maximising this term only pushes the variance up (it tends to 0 from below as
    ``logvar`` grows). ``with_logvar=True`` adds ``-logvar/2`` per dimension: the log-density of
    ``N(mu, exp(logvar))`` up to the constant ``-log(2π)/2`` per dimension.
    """
    positive = -(mu - y) ** 2 / 2.0 / torch.exp(logvar)
    if with_logvar:
        positive = positive - logvar / 2.0
    return positive.sum(dim=-1).mean()


def covariance(z: torch.Tensor) -> torch.Tensor:
    """Population covariance ``(1/N) Σ_n (z_n - z̄)(z_n - z̄)ᵀ`` of the rows of ``z`` (N, D) -> (D, D)."""
    c = z - z.mean(dim=0)
    return (c.unsqueeze(-1) @ c.unsqueeze(1)).mean(dim=0)


def gaussian_entropy(pos_all: torch.Tensor, neg_all: torch.Tensor) -> torch.Tensor:
    """MMSA's ``H = 0.25·(logdet Σ_pos + logdet Σ_neg)`` over the projected positive / negative samples
    (memory + current batch). This is the data-dependent part of the two Gaussian entropies
    ``½ logdet(2πe Σ)`` averaged over the two classes, without the constants. A singular covariance gives
    ``-inf`` (and a negative determinant NaN), as in MMSA."""
    return 0.25 * (torch.logdet(covariance(pos_all)) + torch.logdet(covariance(neg_all)))
