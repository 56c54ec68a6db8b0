"""DMD: Decoupled Multimodal Distilling (Li, Wang, Cui, CVPR 2023) as ``mdswyz/DMD`` computes it.

Written from the published code; no code was copied. Citations are ``path:line`` in mdswyz/DMD, stored
versions: ``trains/singleTask/model/dmd.py`` (``dmd.py``), ``trains/singleTask/DMD.py`` (``DMD.py``,
the trainer), ``trains/singleTask/HingeLoss.py`` and the distillation files @ e4f6de3;
``config/config.json`` @ 88c574d; ``run.py``, ``train.py``, ``config.py`` @ 24f32ca. The README pins
PyTorch 1.9.0. EMOE (fuyyyyy/EMOE) is a fork of this code; the shared pieces come from
``bench.nn`` (the MulT/DMD transformer) and ``bench.nn.bert`` via :class:`bench.nn.text.TextInput`.

Forward (dmd.py:151-332), modality order [l, v, a]:

1. text: BERT last hidden state (``text_mode=bert``) or the frozen ``text`` features, dropped out with
   ``text_dropout``; per-modality bias-free Conv1d (no padding, kernel k_m) to d (skipped when the width
   already is d) -> ``origin_m`` (B, d, T'_m), T'_m = T_m - k_m + 1;
2. decoupling: ``s_m = encoder_s_m(origin_m)`` (per-modality 1x1 conv, modality-*specific*),
   ``c_m = encoder_c(origin_m)`` (one shared 1x1 conv, modality-*invariant*); reconstruction
   ``recon_m = decoder_m([s_m; c_m])`` (1x1 conv 2d->d) and ``s_r_m = encoder_s_m(recon_m)``;
   ``c_sim_m = align_c_m(flatten(c_m))`` (d·T'_m -> d, channel-major flatten) for the margin loss;
3. homogeneous branch: ``flatten(c_m)`` (time-major) -> bottleneck residual head
   (d·T' -> d -> d·T') -> ``pred_homo_m``; its GD representation is ``relu(proj1(.))`` (B, d) (the
   reference's in-place ReLU, dmd.py:192-196); a causal self-attention transformer per modality on
   ``c_m``, last step, concatenated (3d) -> residual head -> ``pred_c``;
4. heterogeneous branch: MulT on the specific features: six cross-modal transformers (query X,
   keys/values Y, attention dropout of the *source* Y) and three memory transformers (width 2d, depth
   ``max(nlevels, 3)``), last step ``h_m`` (2d) -> residual head -> ``pred_hetero_m``; its GD
   representation is the head's residual feature (2d);
5. fusion: ``[σ(W_l h_l), σ(W_v h_v), σ(W_a h_a), σ(W_c c_fusion)]`` (9d) -> residual head -> ``pred``;
6. the two GD-Units (:mod:`baselines._dmd_graph`) compute edge weights from the homo/hetero logits and
   representations (DMD.py:111-115); they are computed in ``forward`` so the test split exports them.

Objective (DMD.py:117-175): the sum of eight L1 terms (fused, 3 homo, 3 hetero, invariant) +
0.05·(homo logit + homo reg) + 0.05·(hetero logit + hetero repr + hetero reg) +
0.1·(cycle + recon + 0.1·(margin + ort)). The homo representation loss is computed but **not** added
(DMD.py:164-166). Training: one Adam (lr 1e-4) over the model and both GD-Units, no weight decay,
``clip_grad_value_(0.6)`` after every backward, 10 summed mini-batches per step with the epoch's tail
dropped, ReduceLROnPlateau(0.5, patience 5) on the validation loss, early stop 10 (DMD.py:32-195).

docs/baselines-dmd.md lists every switch, the defaults and the differences from the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from baselines._dmd_graph import GraphDistillUnit, cosine_embedding_negative, edge_names, edge_prior
from bench.config import Finite, NonNegFloat, PosFloat, PosInt, Prob, between, check_hparams
from bench.data.tensors import DataInfo, Split
from bench.errors import UserError
from bench.method import COMPACT_BUDGET, Method, TrainHParams
from bench.nn.text import TextInput
from bench.nn.transformer import TransformerEncoder
from bench.registry import register_method
from bench.text_hparams import TextEncoderHParams

MODALITIES = ("l", "v", "a")  # DMD's stacking order for the GD-Units (DMD.py:85-103)
_INFO_KEY = {"l": "text", "v": "vision", "a": "audio"}
# (target, source) pairs of the cross-modal transformers, in the reference's construction order.
CROSS = (("l", "a"), ("l", "v"), ("a", "l"), ("a", "v"), ("v", "l"), ("v", "a"))
# HingeLoss.compute_cosine's epsilon (HingeLoss.py:12-15).
_HINGE_EPS = 1e-8


# ------------------------------------------------------------------------------ hyper-parameters
@dataclass
class DMDHParams(TextEncoderHParams, TrainHParams):
    """All DMD settings. Defaults = mdswyz/DMD config/config.json for MOSI (:41-73) + run.py/DMD.py
    literals; :func:`DMD.default_hparams` switches to the MOSEI block (:74-95). Text: the shared
    :class:`TextEncoderHParams` (config.json:46-47 use_bert/use_finetune = true; features mode is ours)."""

    # --- model (config.json datasetParams)
    d_model: PosInt = 50  # dst_feature_dim_nheads[0]
    num_heads: PosInt = 10  # dst_feature_dim_nheads[1]
    nlevels: PosInt = 4
    memory_min_layers: PosInt = 3  # get_network(self_type='*_mem', layers=3): depth max(nlevels, 3)
    conv_kernel_l: PosInt = 5
    conv_kernel_a: PosInt = 5
    conv_kernel_v: PosInt = 5
    attn_dropout: Prob = 0.3  # source text; invariant text transformer; memory transformers
    attn_dropout_a: Prob = 0.2
    attn_dropout_v: Prob = 0.0
    relu_dropout: Prob = 0.0
    res_dropout: Prob = 0.0
    embed_dropout: Prob = 0.2
    text_dropout: Prob = 0.5
    output_dropout: Prob = 0.5
    attn_mask: bool = True  # commonParams attn_mask (causal / shifted-causal masks)
    position_embedding: bool = True  # DMD's transformer always adds sinusoidal positions
    attn_impl: Literal["sdpa", "math"] = "sdpa"  # same maths
    # proj_cosine_{l,v,a} are built and evaluated by the reference but enter no loss (dmd.py:65-67,212-214)
    build_unused: bool = True
    # --- objective (DMD.py:117-175, run.py:122-160)
    aux_task_weight: NonNegFloat = 1.0  # the 7 auxiliary L1 terms (homo, hetero, invariant heads)
    recon_weight: NonNegFloat = 0.1  # 0.1 · L_recon
    cycle_weight: NonNegFloat = 0.1  # 0.1 · L_s_sr
    margin_weight: NonNegFloat = 0.01  # 0.1 · 0.1 · L_sim (HingeLoss)
    ort_weight: NonNegFloat = 0.01  # 0.1 · 0.1 · L_ort
    # Axis of the s/c cosine in L_ort: "batch" = what torch 1.9 computed for the (T, B, d) inputs (cosine
    # over the batch, per time step and channel); "step" = per time step and sample, over channels (the
    # community fix for torch >= 1.10, mdswyz/DMD#6); "sample" = per sample over the flattened (T·d).
    ort_axis: Literal["batch", "step", "sample"] = "batch"
    margin_scale: NonNegFloat = 0.15  # HingeLoss margin = 0.15·|y_i − y_k| (HingeLoss.py:35)
    gd_homo_weight: NonNegFloat = 0.05
    gd_hetero_weight: NonNegFloat = 0.05
    gd_homo_repr_in_total: bool = False  # the reference computes it and leaves it out (DMD.py:166)
    gd_size_homo: PosInt = 64  # args.gd_size_low
    gd_size_hetero: PosInt = 32  # args.gd_size_high
    gd_reg: NonNegFloat = 10.0
    gd_alpha: Finite = 0.125  # edge logits × 1/8 before the softmax
    gd_w_logit: NonNegFloat = 1.0  # w_losses[0]
    gd_w_repr: NonNegFloat = 10.0  # w_losses[1]
    gd_metric: Literal["l1", "l2", "cosine"] = "l1"  # metric_low / metric_high
    gd_hetero_repr_metric: Literal["min_cosine", "l1", "l2", "cosine"] = "min_cosine"
    gd_prior_homo: Annotated[tuple[float, ...], between(None, None)] = (0.0, 0.0, 1.0, 0.0, 1.0, 0.0)
    gd_prior_hetero: Annotated[tuple[float, ...], between(None, None)] = (0.0, 0.0, 1.0, 0.0, 1.0, 1.0)
    gd_prior_temperature: PosFloat = 0.25
    # --- optimisation: one Adam over model + GD-Units; the config's weight_decay never reaches Adam
    apply_weight_decay: bool = False
    batch_size: int = 16
    learning_rate: float = 1e-4
    weight_decay: float = 0.005
    grad_accum: int = 10  # update_epochs
    grad_accum_drop_tail: bool = True
    grad_clip_value: float = 0.6  # grad_clip
    grad_clip_at: str = "backward"  # clip_grad_value_ after every backward (DMD.py:180-184)
    early_stop: int = 10
    max_epochs: int = 0  # while True
    plateau_patience: int = 5  # patience
    plateau_factor: float = 0.5
    # the reference's "Loss" is round(mean of per-batch L1 over a shuffled loader, 4); the project's
    # default is the per-sample mean (independent of batch order); batch_mean_4dp for parity
    val_loss: str = "sample_mean"

    def validate(self) -> None:
        def bad(msg: str):
            raise UserError(f"dmd hyper-parameters: {msg}")

        self.validate_text_encoder("dmd hyper-parameters")
        for dim in (self.d_model, 2 * self.d_model):
            if dim % self.num_heads:
                bad(f"d_model={self.d_model}: d_model and 2*d_model must be divisible by "
                    f"num_heads={self.num_heads}")
        for name in ("gd_prior_homo", "gd_prior_hetero"):
            if len(getattr(self, name)) != 6:
                bad(f"{name} needs 6 scores (one per edge v->l, a->l, l->v, a->v, l->a, v->a)")


# mdswyz/DMD config/config.json:52-73 (mosi) and :74-95 (mosei); the same for aligned and unaligned.
_BLOCKS: dict[str, dict] = {
    "mosi": dict(d_model=50, num_heads=10, nlevels=4, conv_kernel_l=5, conv_kernel_a=5, conv_kernel_v=5,
                 attn_dropout=0.3, attn_dropout_a=0.2, attn_dropout_v=0.0, relu_dropout=0.0, res_dropout=0.0,
                 embed_dropout=0.2, text_dropout=0.5, output_dropout=0.5, batch_size=16, learning_rate=1e-4,
                 grad_clip_value=0.6, plateau_patience=5, weight_decay=0.005),
    "mosei": dict(d_model=30, num_heads=6, nlevels=4, conv_kernel_l=5, conv_kernel_a=1, conv_kernel_v=3,
                  attn_dropout=0.4, attn_dropout_a=0.0, attn_dropout_v=0.0, relu_dropout=0.0, res_dropout=0.0,
                  embed_dropout=0.0, text_dropout=0.3, output_dropout=0.5, batch_size=16, learning_rate=1e-4,
                  grad_clip_value=0.6, plateau_patience=5, weight_decay=0.001),
}


# ------------------------------------------------------------------------------ losses
def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The reference's ``MSE`` module: Σ(target − pred)² / numel, gradient to both sides (DMD.py:13-21)."""
    return (target - pred).pow(2).sum() / pred.numel()


def ort_loss(s: torch.Tensor, c: torch.Tensor, axis: str = "batch") -> torch.Tensor:
    """L_ort for one modality: ``CosineEmbeddingLoss(s, c, target=-1)`` (DMD.py:140-147), i.e. the
    mean of ``max(0, cos)``, on (B, d, T) specific/invariant features.

    ``batch``: the reference's inputs are (T, B, d) and torch 1.9 summed along dim 1, so the cosine is
    taken over the **batch** for every (time step, channel) and averaged over T·d; ``step``: over the
    channels for every (sample, time step) (mdswyz/DMD#6's ``reshape(-1, d)``); ``sample``: over the
    flattened (d·T) of each sample.
    """
    if axis == "batch":
        return cosine_embedding_negative(s, c, dim=0)
    if axis == "step":
        return cosine_embedding_negative(s, c, dim=1)
    if axis == "sample":
        return cosine_embedding_negative(s.flatten(1), c.flatten(1), dim=1)
    raise ValueError(f"unknown ort_axis {axis!r}")


def hinge_cosine(x: torch.Tensor) -> torch.Tensor:
    """HingeLoss.compute_cosine for all pairs: norms ``max(sqrt(Σx² + 1e-8), 1e-8)`` (N, N)."""
    norm = torch.sqrt(x.pow(2).sum(dim=1) + _HINGE_EPS).clamp_min(_HINGE_EPS)
    return (x @ x.t()) / (norm[:, None] * norm[None, :])


def margin_loss(feats: torch.Tensor, ids: torch.Tensor, scale: float = 0.15) -> torch.Tensor:
    """DMD's ``HingeLoss`` (HingeLoss.py:19-57), vectorised.

    ``feats`` (N, F) with ``ids`` (N,) (the regression labels). For each anchor i, positives are the
    other rows with exactly the same label, negatives the rows with a different label; the anchor's loss
    is the mean over all (positive j, negative k) pairs of ``max(0, scale·|y_i − y_k| − cos(i,j) +
    cos(i,k))``; anchors without a positive or without a negative are skipped; the result is the mean
    over the remaining anchors (0 when none remain).
    """
    ids = ids.reshape(-1)
    n = feats.shape[0]
    cos = hinge_cosine(feats)
    same = ids[:, None] == ids[None, :]
    eye = torch.eye(n, dtype=torch.bool, device=feats.device)
    pos = same & ~eye
    neg = ~same
    margin = scale * (ids[:, None] - ids[None, :]).abs().to(cos.dtype)  # (anchor, negative)
    hinge = (margin[:, None, :] - cos[:, :, None] + cos[:, None, :]).clamp_min(0.0)  # (i, j, k)
    pair = pos[:, :, None] & neg[:, None, :]
    n_pos, n_neg = pos.sum(dim=1), neg.sum(dim=1)
    valid = (n_pos > 0) & (n_neg > 0)
    per_anchor = (hinge * pair).sum(dim=(1, 2)) / (n_pos * n_neg).clamp_min(1).to(cos.dtype)
    return (per_anchor * valid).sum() / valid.sum().clamp_min(1).to(cos.dtype)


def margin_inputs(c_sim: dict[str, torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack the aligned invariant vectors as the reference does (DMD.py:150-160): rows
    ``[c_l[0], c_v[0], c_a[0], c_l[1], ...]`` with each sample's label repeated three times."""
    feats = torch.stack([c_sim[m] for m in MODALITIES], dim=1).flatten(0, 1)  # (3B, d)
    ids = labels.reshape(-1, 1).expand(-1, len(MODALITIES)).reshape(-1)
    return feats, ids


# ------------------------------------------------------------------------------ modules
class ResidualHead(nn.Module):
    """``h = relu(W1·x)``; ``feat = x + W2·drop(h)``; ``out = Linear(feat)``; returns (h, feat, out).

    ``hidden`` = ``dim`` for the hetero/invariant/fusion heads; the homogeneous heads are a bottleneck
    (d·T' -> d -> d·T', dmd.py:94-102). The same residual pattern as EMOE's heads and MulT's output head.
    """

    def __init__(self, dim: int, hidden: int, out_dim: int, dropout: float):
        super().__init__()
        self.proj1 = nn.Linear(dim, hidden)
        self.proj2 = nn.Linear(hidden, dim)
        self.out_layer = nn.Linear(dim, out_dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = F.relu(self.proj1(x))
        feat = self.proj2(F.dropout(h, p=self.dropout, training=self.training)) + x
        return h, feat, self.out_layer(feat)


def _conv1x1(d_in: int, d_out: int) -> nn.Conv1d:
    return nn.Conv1d(d_in, d_out, kernel_size=1, padding=0, bias=False)


@register_method("dmd")
class DMD(Method):
    # budgets beside the model (see bench.method.Method.presets)
    presets: ClassVar[dict[str, dict[str, str]]] = {
        "compact": {**COMPACT_BUDGET, "d_model": "16", "num_heads": "2", "nlevels": "1",
                    "grad_accum": "1", "learning_rate": "1e-3"},
    }
    HParams = DMDHParams
    families = ("mosi", "mosei")
    settings = ("aligned", "unaligned")
    default_setting = "aligned"  # commonParams need_data_aligned: true (config.json:43)
    export_keys = ("fused", "edges_homo", "edges_hetero")
    description = ("DMD (CVPR 2023, mdswyz/DMD): specific/invariant decoupling with reconstruction, "
                   "margin and orthogonality losses; homogeneous/heterogeneous graph distillation")

    @classmethod
    def default_hparams(cls, family: str, setting: str) -> DMDHParams:
        """config.json's block for ``family`` (the same for aligned and unaligned data)."""
        if family not in _BLOCKS:
            raise UserError(f"dmd has no configuration for {family!r} (supported: mosi, mosei)")
        if setting not in cls.settings:
            raise UserError(f"dmd: unknown setting {setting!r} (aligned | unaligned)")
        hp = DMDHParams(**_BLOCKS[family])
        check_hparams(hp)
        return hp

    @classmethod
    def describe_groups(cls) -> dict[str, tuple[str, ...]]:
        return {
            "bert": ("text",),
            "conv_proj": ("conv_proj",),
            "encoder_specific": ("encoder_s",),
            "encoder_invariant": ("encoder_c",),
            "decoders": ("decoder",),
            "proj_cosine_unused": ("proj_cosine",),
            "align_c": ("align_c",),
            "invariant_transformers": ("self_attn_c",),
            "invariant_head": ("invariant_head",),
            "crossmodal": ("crossmodal",),
            "memory": ("memory",),
            "homo_heads": ("homo_heads",),
            "hetero_heads": ("hetero_heads",),
            "fusion_gates": ("gates",),
            "fusion_head": ("fusion_head",),
            "gd_homo": ("gd_homo",),
            "gd_hetero": ("gd_hetero",),
        }

    def __init__(self, hp: DMDHParams, info: DataInfo, bert_config=None):
        super().__init__(hp, info)
        check_hparams(hp)
        if info.task != "regression":
            raise UserError("dmd: only the regression form (MOSI/MOSEI) is implemented")
        d = hp.d_model
        self.text = TextInput("dmd", info, hp.text_mode, hp.text_model, hp.text_finetune, bert_config)
        in_dims = {"l": self.text.dim, "v": int(info.dims["vision"]), "a": int(info.dims["audio"])}
        kernels = {"l": hp.conv_kernel_l, "v": hp.conv_kernel_v, "a": hp.conv_kernel_a}
        self.conv_applied = {m: in_dims[m] != d for m in MODALITIES}  # dmd.py:158-160
        lens = {}
        for m in MODALITIES:
            t = info.seq_lens[_INFO_KEY[m]]
            if t is None:
                raise UserError(f"dmd: the {_INFO_KEY[m]} sequence length is unknown")
            t = int(t)
            lens[m] = t - kernels[m] + 1 if self.conv_applied[m] else t
            if lens[m] < 1:
                raise UserError(f"dmd: conv_kernel_{m}={kernels[m]} is longer than the {_INFO_KEY[m]} "
                                f"sequence ({t} steps)")
        # The reference hard-codes these lengths (dmd.py:18-27: MOSI 50/50/50 or l 50, v 500, a 375;
        # MOSEI 50/50/50 or 50/500/500); here they come from the data.
        self.lens = lens
        out_dim = 1

        # Construction order follows dmd.py:46-124, then the two GD-Units (run.py:137-160).
        self.conv_proj = nn.ModuleDict({m: nn.Conv1d(in_dims[m], d, kernel_size=kernels[m], padding=0,
                                                     bias=False) for m in ("l", "a", "v")})
        self.encoder_s = nn.ModuleDict({m: _conv1x1(d, d) for m in MODALITIES})
        self.encoder_c = _conv1x1(d, d)
        self.decoder = nn.ModuleDict({m: _conv1x1(2 * d, d) for m in MODALITIES})
        self.proj_cosine = (nn.ModuleDict({m: nn.Linear(d * lens[m], d) for m in MODALITIES})
                            if hp.build_unused else None)
        self.align_c = nn.ModuleDict({m: nn.Linear(d * lens[m], d) for m in MODALITIES})
        src_drop = {"l": hp.attn_dropout, "a": hp.attn_dropout_a, "v": hp.attn_dropout_v}
        self.self_attn_c = nn.ModuleDict({m: self._encoder(d, hp.nlevels, src_drop[m]) for m in MODALITIES})
        self.invariant_head = ResidualHead(3 * d, 3 * d, out_dim, hp.output_dropout)
        # get_network: 'la' uses attn_dropout_a, 'lv' attn_dropout_v, 'al'/'vl' attn_dropout (dmd.py:126-149)
        self.crossmodal = nn.ModuleDict({f"{q}_with_{s}": self._encoder(d, hp.nlevels, src_drop[s])
                                         for q, s in CROSS})
        mem_layers = max(hp.nlevels, hp.memory_min_layers)
        self.memory = nn.ModuleDict({m: self._encoder(2 * d, mem_layers, hp.attn_dropout)
                                     for m in ("l", "a", "v")})
        self.homo_heads = nn.ModuleDict({m: ResidualHead(d * lens[m], d, out_dim, hp.output_dropout)
                                         for m in MODALITIES})
        self.hetero_heads = nn.ModuleDict({m: ResidualHead(2 * d, 2 * d, out_dim, hp.output_dropout)
                                           for m in MODALITIES})
        self.gates = nn.ModuleDict({"l": nn.Linear(2 * d, 2 * d), "v": nn.Linear(2 * d, 2 * d),
                                    "a": nn.Linear(2 * d, 2 * d), "c": nn.Linear(3 * d, 3 * d)})
        self.fusion_head = ResidualHead(9 * d, 9 * d, out_dim, hp.output_dropout)
        self.gd_homo = GraphDistillUnit(
            hidden_size=d, gd_size=hp.gd_size_homo,
            prior=edge_prior(hp.gd_prior_homo, hp.gd_prior_temperature), reg=hp.gd_reg, alpha=hp.gd_alpha,
            w_logit=hp.gd_w_logit, w_repr=hp.gd_w_repr, metric=hp.gd_metric, repr_metric=hp.gd_metric,
            n_out=out_dim)
        self.gd_hetero = GraphDistillUnit(
            hidden_size=2 * d, gd_size=hp.gd_size_hetero,
            prior=edge_prior(hp.gd_prior_hetero, hp.gd_prior_temperature), reg=hp.gd_reg,
            alpha=hp.gd_alpha, w_logit=hp.gd_w_logit, w_repr=hp.gd_w_repr, metric=hp.gd_metric,
            repr_metric=hp.gd_hetero_repr_metric, n_out=out_dim)

    def _encoder(self, dim: int, layers: int, attn_dropout: float) -> TransformerEncoder:
        hp = self.hp
        return TransformerEncoder(
            dim, hp.num_heads, layers, attn_dropout=attn_dropout, relu_dropout=hp.relu_dropout,
            res_dropout=hp.res_dropout, embed_dropout=hp.embed_dropout, attn_mask=hp.attn_mask,
            position_embedding=hp.position_embedding, final_norm=True, impl=hp.attn_impl)

    # ------------------------------------------------------------------------------ forward
    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        hp = self.hp
        seq, _ = self.text(batch)
        x = {"l": F.dropout(seq, p=hp.text_dropout, training=self.training).transpose(1, 2),
             "v": batch.vision.transpose(1, 2), "a": batch.audio.transpose(1, 2)}
        out: dict[str, torch.Tensor] = {}
        s, c, c_sim = {}, {}, {}
        for m in MODALITIES:
            origin = self.conv_proj[m](x[m]) if self.conv_applied[m] else x[m]  # (B, d, T')
            s[m] = self.encoder_s[m](origin)
            c[m] = self.encoder_c(origin)
            c_sim[m] = self.align_c[m](c[m].flatten(1))  # channel-major flatten (dmd.py:171-173)
            recon = self.decoder[m](torch.cat([s[m], c[m]], dim=1))
            out[f"origin_{m}"], out[f"s_{m}"], out[f"c_{m}"] = origin, s[m], c[m]
            out[f"recon_{m}"] = recon
            out[f"s_r_{m}"] = self.encoder_s[m](recon)
            out[f"c_sim_{m}"] = c_sim[m]

        # homogeneous (modality-invariant) branch
        logits_homo, reprs_homo, c_last = [], [], []
        for m in MODALITIES:
            c_seq = c[m].transpose(1, 2)  # (B, T', d)
            hidden, _, logit = self.homo_heads[m](c_seq.flatten(1))  # time-major flatten (dmd.py:191)
            out[f"pred_homo_{m}"] = logit.squeeze(-1)
            logits_homo.append(logit)
            reprs_homo.append(hidden)
            c_last.append(self.self_attn_c[m](c_seq)[:, -1])
        c_fusion = torch.cat(c_last, dim=1)  # (B, 3d)
        _, _, logit_c = self.invariant_head(c_fusion)
        out["pred_c"] = logit_c.squeeze(-1)

        # heterogeneous (modality-specific) branch: MulT on s
        s_seq = {m: s[m].transpose(1, 2) for m in MODALITIES}
        last = {}
        for q in MODALITIES:
            others = [src for tgt, src in CROSS if tgt == q]
            h = torch.cat([self.crossmodal[f"{q}_with_{src}"](s_seq[q], s_seq[src]) for src in others], dim=-1)
            last[q] = self.memory[q](h)[:, -1]  # (B, 2d)
        logits_hetero, reprs_hetero = [], []
        for m in MODALITIES:
            _, feat, logit = self.hetero_heads[m](last[m])
            out[f"pred_hetero_{m}"] = logit.squeeze(-1)
            logits_hetero.append(logit)
            reprs_hetero.append(feat)

        # fusion (dmd.py:280-290)
        fused = torch.cat([torch.sigmoid(self.gates[m](last[m])) for m in MODALITIES]
                          + [torch.sigmoid(self.gates["c"](c_fusion))], dim=1)  # (B, 9d)
        _, _, pred = self.fusion_head(fused)
        out["pred"] = pred.squeeze(-1)
        out["fused"] = fused

        # graph distillation inputs and edge weights (DMD.py:81-115)
        out["logits_homo"] = torch.stack(logits_homo)  # (3, B, 1)
        out["reprs_homo"] = torch.stack(reprs_homo)  # (3, B, d)
        out["logits_hetero"] = torch.stack(logits_hetero)
        out["reprs_hetero"] = torch.stack(reprs_hetero)  # (3, B, 2d)
        out["edges_homo"] = self.gd_homo(out["logits_homo"], out["reprs_homo"]).transpose(0, 1)  # (B, 6)
        out["edges_hetero"] = self.gd_hetero(out["logits_hetero"], out["reprs_hetero"]).transpose(0, 1)
        return out

    # ------------------------------------------------------------------------------ objective
    def loss_terms(self, out: dict[str, torch.Tensor], batch: Split) -> dict[str, torch.Tensor]:
        """Named terms (unweighted, as the reference computes them) and their weighted ``total``."""
        hp = self.hp
        y = batch.labels
        task = self.task_loss(out["pred"], y)
        uni_homo = sum(self.task_loss(out[f"pred_homo_{m}"], y) for m in MODALITIES)
        uni_hetero = sum(self.task_loss(out[f"pred_hetero_{m}"], y) for m in MODALITIES)
        invariant = self.task_loss(out["pred_c"], y)
        recon = sum(mse(out[f"recon_{m}"], out[f"origin_{m}"]) for m in MODALITIES)
        cycle = sum(mse(out[f"s_{m}"], out[f"s_r_{m}"]) for m in MODALITIES)
        ort = sum(ort_loss(out[f"s_{m}"], out[f"c_{m}"], hp.ort_axis) for m in MODALITIES)
        feats, ids = margin_inputs({m: out[f"c_sim_{m}"] for m in MODALITIES}, y)
        margin = margin_loss(feats, ids.to(feats.dtype), hp.margin_scale)
        homo = self.gd_homo.losses(out["logits_homo"], out["reprs_homo"], out["edges_homo"].transpose(0, 1))
        hetero = self.gd_hetero.losses(out["logits_hetero"], out["reprs_hetero"],
                                       out["edges_hetero"].transpose(0, 1))
        gd_homo = homo["logit"] + homo["reg"] + (homo["repr"] if hp.gd_homo_repr_in_total else 0.0)
        gd_hetero = hetero["logit"] + hetero["repr"] + hetero["reg"]
        total = (task + hp.aux_task_weight * (uni_homo + uni_hetero + invariant)
                 + hp.gd_homo_weight * gd_homo + hp.gd_hetero_weight * gd_hetero
                 + hp.cycle_weight * cycle + hp.recon_weight * recon
                 + hp.margin_weight * margin + hp.ort_weight * ort)
        return {
            "total": total, "task": task, "uni_homo": uni_homo, "uni_hetero": uni_hetero,
            "invariant": invariant, "recon": recon, "cycle": cycle, "margin": margin, "ort": ort,
            "gd_homo_logit": homo["logit"], "gd_homo_repr": homo["repr"], "gd_homo_reg": homo["reg"],
            "gd_hetero_logit": hetero["logit"], "gd_hetero_repr": hetero["repr"],
            "gd_hetero_reg": hetero["reg"],
        }

    def param_groups(self) -> list[dict[str, Any]]:
        """One Adam group over the model and both GD-Units (DMD.py:35-39); no weight decay unless
        ``apply_weight_decay`` (the config lists one, the optimiser never receives it)."""
        wd = self.hp.weight_decay if self.hp.apply_weight_decay else 0.0
        return [{"params": [p for p in self.parameters() if p.requires_grad],
                 "lr": self.hp.learning_rate, "weight_decay": wd}]

    def record(self) -> dict[str, Any]:
        hp = self.hp
        return {
            "text_mode": self.text.mode, "text_source": self.text.source, "text_dim": self.text.dim,
            "text_pretrained": (None if self.text.bert is None else not str(self.text.source).startswith("random")),
            "conv_applied": dict(self.conv_applied), "conv_lengths": dict(self.lens),
            "memory_layers": max(hp.nlevels, hp.memory_min_layers), "ort_axis": hp.ort_axis,
            "edges": list(edge_names()),
            "weight_decay_applied": hp.weight_decay if hp.apply_weight_decay else 0.0,
            "parameters": sum(p.numel() for p in self.parameters()),
        }
