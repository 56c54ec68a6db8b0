"""EMOE loss terms as pure functions (fuyyyyy/EMOE ``trains/singleTask/EMOE.py``; paper Eq. 4-12).

Official total (fuyyyyy/EMOE trains/singleTask/EMOE.py:82)::

    L = L_multi + (L_l + L_v + L_a)/3 + lambda1 * (L_entropy + alpha * L_sim) + lambda2 * L_ud

Weights and modality-indexed tensors are in [l, v, a] order.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

MODALITIES = ("l", "v", "a")


# ------------------------------------------------------------------------------ task losses
def task_loss(pred: torch.Tensor, labels: torch.Tensor, task: str, reduction: str = "mean") -> torch.Tensor:
    """L1 (regression, pred (B,)) or cross-entropy (classification, pred (B,C))."""
    if task == "classification":
        return F.cross_entropy(pred, labels.long(), reduction=reduction)
    return F.l1_loss(pred.reshape(-1), labels.reshape(-1).to(pred.dtype), reduction=reduction)


def unimodal_errors(preds: torch.Tensor, labels: torch.Tensor, task: str,
                    cls_importance: str = "one_minus_p_sq") -> torch.Tensor:
    """Per-sample per-modality error c (B, 3).

    Regression (Eq. 5, EMOE.py:63-66): ``c = (y - y_m)^2`` with preds (B, 3).
    Classification (ours), preds (B, 3, C): ``(1 - p_true)^2`` or the per-sample cross-entropy.
    """
    if task == "classification":
        logp = torch.log_softmax(preds, dim=-1)
        idx = labels.long().view(-1, 1, 1).expand(-1, preds.shape[1], 1)
        logp_true = logp.gather(-1, idx).squeeze(-1)
        if cls_importance == "ce":
            return -logp_true
        return (1.0 - logp_true.exp()) ** 2
    return (labels.reshape(-1, 1).to(preds.dtype) - preds) ** 2


def importance_target(errors: torch.Tensor, eps: float = 0.1, norm: str = "sum") -> torch.Tensor:
    """Modality importance I (B, 3) from errors c (B, 3).

    ``sum`` (official, EMOE.py:67-71): ``(1/(c+eps)) / sum_m (1/(c+eps))``;
    ``softmax`` (Eq. 5): ``softmax_m(1/(c+eps))``.
    """
    inv = 1.0 / (errors + eps)
    if norm == "softmax":
        return torch.softmax(inv, dim=1)
    if norm == "sum":
        return inv / inv.sum(dim=1, keepdim=True)
    raise ValueError(f"unknown importance_norm {norm!r}")


# ------------------------------------------------------------------------------ router losses
def sim_loss(weights: torch.Tensor, target: torch.Tensor, mode: str = "mse_mean") -> torch.Tensor:
    """L_sim: ``mse_mean`` = mean over batch and modalities (EMOE.py:72); ``mse_sum`` = squared error
    summed over modalities, mean over the batch (Eq. 6, S read as squared error)."""
    sq = (weights - target) ** 2
    if mode == "mse_mean":
        return sq.mean()
    if mode == "mse_sum":
        return sq.sum(dim=1).mean()
    raise ValueError(f"unknown sim_loss {mode!r}")


def entropy_loss(weights: torch.Tensor, mode: str = "clamp", eps: float = 1e-9) -> torch.Tensor:
    """L_entropy = mean_b [ N * sum_m w log w ], N = number of experts (= -N x entropy).

    ``clamp`` (functions.py:63-67): p = max(w, eps) in both factors; ``add_eps`` (Eq. 7):
    w * log(w + eps). Minimum -N ln N at uniform weights.
    """
    n = weights.shape[1]
    if mode == "clamp":
        p = weights.clamp_min(eps)
        return (n * (p * p.log()).sum(dim=1)).mean()
    if mode == "add_eps":
        return (n * (weights * (weights + eps).log()).sum(dim=1)).mean()
    raise ValueError(f"unknown entropy_log {mode!r}")


# ------------------------------------------------------------------------------ distillation
def ud_teacher(weights: torch.Tensor, stack: torch.Tensor, combine: str = "sum") -> torch.Tensor:
    """z_uni = C(z_l, z_v, z_a, W) from a (B, 3, ...) stack: weighted sum over modalities, or the
    concatenation of the weighted parts (official concat teacher: no x3 scale, EMOE.py:77-79)."""
    w = weights.reshape(weights.shape + (1,) * (stack.dim() - 2))
    weighted = w * stack
    if combine == "sum":
        return weighted.sum(dim=1)
    return weighted.flatten(1)


def ud_loss(student: torch.Tensor, teacher: torch.Tensor, mode: str = "softmax_mse") -> torch.Tensor:
    """L_ud = D(student -> teacher).

    ``softmax_mse`` (functions.py:57-61): mean_{b,k} (softmax(s)_k - softmax(t)_k)^2 over the last
    dim, no temperature; ``l1`` / ``mse``: elementwise mean; ``kl``: KL(softmax(t) || softmax(s)),
    batch mean (Hinton KD with T = 1).
    """
    if mode == "softmax_mse":
        return ((torch.softmax(student, dim=-1) - torch.softmax(teacher, dim=-1)) ** 2).mean()
    if mode == "l1":
        return (student - teacher).abs().mean()
    if mode == "mse":
        return ((student - teacher) ** 2).mean()
    if mode == "kl":
        return F.kl_div(torch.log_softmax(student, dim=-1), torch.softmax(teacher, dim=-1),
                        reduction="batchmean")
    raise ValueError(f"unknown ud_loss {mode!r}")


# ------------------------------------------------------------------------------ total
def emoe_terms(out: dict[str, torch.Tensor], labels: torch.Tensor, hp,
               task: str = "regression") -> dict[str, torch.Tensor]:
    """All named terms and ``total`` from the model outputs (see :class:`emoe.model.EMOENet`).

    Always present: ``multi`` (fused task loss), ``uni_l``/``uni_v``/``uni_a``, ``uni`` (their mean),
    ``task`` (= multi + uni, or multi alone when ``keep_unimodal_loss`` is off). With ``hp.mome``:
    ``entropy`` (if ``router_entropy``), ``sim`` (if ``weight_importance_sim``) and ``balance`` =
    entropy + alpha * sim. ``ud`` when ``hp.ud``. Disabled terms are absent, not zero.
    """
    terms: dict[str, torch.Tensor] = {}
    terms["multi"] = task_loss(out["pred"], labels, task)
    uni = [task_loss(out[f"pred_{m}"], labels, task) for m in MODALITIES]
    for m, v in zip(MODALITIES, uni, strict=True):
        terms[f"uni_{m}"] = v
    terms["uni"] = (uni[0] + uni[1] + uni[2]) / 3.0
    total = terms["multi"] + (terms["uni"] if hp.keep_unimodal_loss else 0.0)
    terms["task"] = terms["multi"] + terms["uni"] if hp.keep_unimodal_loss else terms["multi"]

    w = out["weights"]
    if hp.mome and (hp.router_entropy or hp.weight_importance_sim):
        balance = w.new_zeros(())
        if hp.router_entropy:
            terms["entropy"] = entropy_loss(w, hp.entropy_log, hp.entropy_eps)
            balance = balance + terms["entropy"]
        if hp.weight_importance_sim:
            preds = torch.stack([out[f"pred_{m}"] for m in MODALITIES], dim=1)  # (B,3) or (B,3,C)
            errors = unimodal_errors(preds, labels, task, hp.cls_importance)
            target = importance_target(errors, hp.importance_eps, hp.importance_norm)
            if hp.importance_detach:
                target = target.detach()
            terms["sim"] = sim_loss(w, target, hp.sim_loss)
            balance = balance + hp.alpha * terms["sim"]
        terms["balance"] = balance
        total = total + hp.lambda1 * balance

    if hp.ud:
        if hp.ud_space == "features":
            student = out["proj_c"]
            teacher = ud_teacher(w, out["proj_stack"], hp.fusion)
        else:
            student = out["pred"]
            preds = torch.stack([out[f"pred_{m}"] for m in MODALITIES], dim=1)
            teacher = ud_teacher(w, preds, "sum")  # the fused head emits one logit vector
        if hp.ud_teacher_detach:
            teacher = teacher.detach()
        terms["ud"] = ud_loss(student, teacher, hp.ud_loss)
        total = total + hp.lambda2 * terms["ud"]

    terms["total"] = total
    return terms
