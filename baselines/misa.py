"""MISA (Hazarika et al. 2020) as thuiar/MMSA implements it (``models/singleTask/MISA.py`` and
``trains/singleTask/MISA.py`` @ a94e65d; docs/baselines.md).

Each modality becomes one utterance vector: text = masked mean of the BERT last hidden state (or of the
frozen ``text`` features); audio/vision = two stacked bidirectional LSTMs (hidden = input width) with a
LayerNorm between them, packed by length, whose final states are concatenated (4·D). Each vector is
projected to H, split into a private (per modality) and a shared (one module for all three) sigmoid
subspace, and reconstructed from their sum. The six subspace vectors form a length-6 sequence for one
``nn.TransformerEncoderLayer`` (torch defaults); the concatenated outputs go through the fusion MLP.

Loss: MSE(pred, y) + diff_weight·L_diff + sim_weight·L_cmd + recon_weight·L_recon, with L_diff the sum
of six soft-orthogonality terms, L_cmd the mean of three 5-moment CMDs between the shared vectors and
L_recon the mean of three reconstruction MSEs against the projected vectors. Validation loss: MSE.

MMSA packs audio *and* vision with the **text token count** (``lengths_from="text"``), so only the
first ~#tokens frames of unaligned audio/vision are read; ``lengths_from="own"`` uses their own lengths.

MIntRec form (family ``mintrec``, EMOE Table 3), as the thuiar/MIntRec framework
computes it (thuiar/MIntRec @ 8d30e9b; files read at 2fef2c2 ``backbones/FusionNets/MISA.py``,
``methods/MISA/manager.py``, ``methods/MISA/utils.py``, ``utils/functions.py``, and ccf08df
``configs/misa_bert.py``; no code copied): the same network with hidden size 256 on fine-tuned BERT text
(768), video 256 and audio 768, a ``num_classes``-way fusion head and cross-entropy. ``use_cmd_sim=False``
replaces CMD by an **adversarial** similarity loss (``similarity="adversarial"``): each shared vector
passes a gradient-reversal layer (identity forward, gradient × −``reverse_grad_weight`` backward) into a
discriminator ``Linear(H,H) → ReLU → Dropout(dropout) → Linear(H,3)`` that is trained with
cross-entropy to tell text (0), video (1) and audio (2) apart, so the shared encoders learn to confuse
it. Loss: CE + 0.7·L_diff + 0.7·L_domain + 0.6·L_recon; Adam lr 3e-5 over every parameter (BERT
included), no clipping, no accumulation; ``ExponentialLR(0.5)`` stepped after every epoch whose dev
macro-F1 did not improve (``lr_decay_gamma``, applied in :meth:`MISA.on_epoch_end`); selection on dev
macro-F1, patience 8, at most 100 epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from baselines._eras import apply_era, era_defaults
from bench.config import Fraction, NonNegFloat, NonNegInt, PosInt, Prob
from bench.data.tensors import DataInfo, Split
from bench.errors import UserError
from bench.method import COMPACT_BUDGET, Method, TrainHParams
from bench.nn.text import TextInput, freeze_bert_layers
from bench.registry import register_method
from bench.text_hparams import TextEncoderHParams

MODALITIES = ("t", "v", "a")


@dataclass
class MISAHParams(TextEncoderHParams, TrainHParams):
    # --- era: "current" = MMSA config_regression.json today; "table2021" = the v1 values behind MMSA's
    # published table (changed in 36bb33d); "original" = declare-lab/MISA src/config.py + solver.py
    hparams_era: Literal["current", "table2021", "original"] = "current"
    hparams_family: Literal["mosi", "mosei", "mintrec"] = "mosi"  # which per-dataset table the era switch reads
    # --- text: TextEncoderHParams (MMSA: use_finetune, asserted use_bert)
    bert_freeze_layers: NonNegInt = 0  # original MISA freezes encoder layers 0-8 on MOSEI (solver.py:46-50)
    # --- model (MMSA misa block)
    hidden_size: PosInt = 128
    dropout: Prob = 0.2  # fusion-head dropout only (between Linear(6H,3H) and ReLU)
    fusion_heads: PosInt = 2  # nn.TransformerEncoderLayer(d_model=H, nhead=2), torch defaults otherwise
    # "text": MMSA packs audio/vision with the BERT token count (MISA.py:194,200); "own": their lengths
    lengths_from: Literal["text", "own"] = "text"
    lstm_hh_init: Literal["torch", "orthogonal"] = "torch"  # original MISA: orthogonal weight_hh
    # MMSA builds tlayer_norm = LayerNorm(2·D_text) and sp_discriminator = Linear(H, 4) although no loss
    # uses them (they count in MMSA's #params); False leaves them out.
    build_unused: bool = True
    # --- loss weights
    diff_weight: NonNegFloat = 0.1
    sim_weight: NonNegFloat = 0.3
    recon_weight: NonNegFloat = 1.0
    cmd_moments: PosInt = 5
    # similarity term: "cmd" (MMSA, use_cmd_sim=True) or "adversarial" (thuiar/MIntRec use_cmd_sim=False:
    # a modality discriminator behind a gradient-reversal layer scaled by reverse_grad_weight)
    similarity: Literal["cmd", "adversarial"] = "cmd"
    reverse_grad_weight: NonNegFloat = 0.8
    # thuiar/MIntRec: ExponentialLR(gamma).step() after every epoch whose selection metric did not improve
    # (methods/MISA/manager.py); 0 = off (MMSA has no scheduler). Applied by MISA.on_epoch_end.
    lr_decay_gamma: Fraction = 0.0
    # --- optimisation: Adam, one group; MMSA never passes weight_decay to Adam (trains/MISA.py:24)
    apply_weight_decay: bool = False
    batch_size: int = 16
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    grad_accum: int = 2  # MMSA update_epochs
    grad_clip_value: float = 0.8
    grad_clip_at: str = "backward"  # MMSA clips after every backward (trains/MISA.py:76-78)
    early_stop: int = 8

    def validate(self) -> None:
        apply_era(self, ERAS)
        self.validate_text_encoder("misa")
        if self.hidden_size % self.fusion_heads:
            raise UserError(f"misa: hidden_size={self.hidden_size} must be divisible by "
                            f"fusion_heads={self.fusion_heads}")


_COMMON = dict(learning_rate=1e-4, hidden_size=128, grad_accum=2, early_stop=8, max_epochs=0,
               lstm_hh_init="torch", bert_freeze_layers=0)
_ORIGINAL = dict(learning_rate=1e-4, hidden_size=128, dropout=0.5, diff_weight=0.3, sim_weight=1.0,
                 recon_weight=1.0, grad_clip_value=1.0, weight_decay=0.0, grad_accum=1, early_stop=6,
                 max_epochs=500, lstm_hh_init="orthogonal")
# MMSA config_regression.json "misa" @ a94e65d and declare-lab/MISA src/config.py, solver.py.
ERAS = {
    "mosi": {
        "current": dict(_COMMON, batch_size=16, dropout=0.2, diff_weight=0.1, sim_weight=0.3,
                        recon_weight=1.0, grad_clip_value=0.8, weight_decay=0.0),
        "table2021": dict(_COMMON, batch_size=64, dropout=0.2, diff_weight=0.3, sim_weight=0.8,
                          recon_weight=0.8, grad_clip_value=1.0, weight_decay=0.002),
        "original": dict(_ORIGINAL, batch_size=64, bert_freeze_layers=0),
    },
    "mosei": {
        "current": dict(_COMMON, batch_size=64, dropout=0.5, diff_weight=0.3, sim_weight=0.8,
                        recon_weight=1.0, grad_clip_value=0.8, weight_decay=5e-5),
        "table2021": dict(_COMMON, batch_size=32, dropout=0.2, diff_weight=0.1, sim_weight=1.0,
                          recon_weight=0.8, grad_clip_value=0.8, weight_decay=0.0),
        "original": dict(_ORIGINAL, batch_size=16, bert_freeze_layers=9),
    },
    # thuiar/MIntRec configs/misa_bert.py + methods/MISA/manager.py: one block.
    # train/eval batch 16/8, wait_patience 8, eval_monitor f1, 100 epochs, rnncell lstm, use_cmd_sim False,
    # reverse_grad_weight 0.8, hidden 256, dropout_rate 0.1, diff/sim/recon 0.7/0.7/0.6, lr 3e-5,
    # grad_clip -1 (off), gamma 0.5; zero_grad every batch (no accumulation); Adam without weight decay;
    # dev loss = AverageMeter's per-sample mean; fine-tuned bert-base-uncased text.
    "mintrec": {
        "current": dict(batch_size=16, eval_batch_size=8, learning_rate=3e-5, hidden_size=256, dropout=0.1,
                        diff_weight=0.7, sim_weight=0.7, recon_weight=0.6, similarity="adversarial",
                        reverse_grad_weight=0.8, lr_decay_gamma=0.5, grad_clip_value=0.0, grad_accum=1,
                        weight_decay=0.0, early_stop=8, max_epochs=100, select_on="f1", val_loss="sample_mean",
                        text_mode="bert", lstm_hh_init="torch", bert_freeze_layers=0),
    },
}


# ------------------------------------------------------------------------------ losses
def diff_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Soft orthogonality: centre each over the batch, divide rows by their *detached* L2 norm + 1e-6,
    return the mean of the squared entries of ``Xnᵀ Yn`` (D_x × D_y)."""
    x = x.reshape(x.shape[0], -1)
    y = y.reshape(y.shape[0], -1)
    x = x - x.mean(dim=0, keepdim=True)
    y = y - y.mean(dim=0, keepdim=True)
    xn = x / (x.norm(p=2, dim=1, keepdim=True).detach() + 1e-6)
    yn = y / (y.norm(p=2, dim=1, keepdim=True).detach() + 1e-6)
    return (xn.t() @ yn).pow(2).mean()


def cmd(x1: torch.Tensor, x2: torch.Tensor, n_moments: int = 5) -> torch.Tensor:
    """Central moment discrepancy without the 1/|b-a|^k scaling: ‖E x1 − E x2‖ + Σ_{k=2..K}
    ‖E(x1−E x1)^k − E(x2−E x2)^k‖, expectations over the batch, ‖·‖ = sqrt of the sum of squares."""
    m1, m2 = x1.mean(dim=0), x2.mean(dim=0)
    s1, s2 = x1 - m1, x2 - m2
    total = (m1 - m2).pow(2).sum() ** 0.5
    for k in range(2, n_moments + 1):
        total = total + (s1.pow(k).mean(dim=0) - s2.pow(k).mean(dim=0)).pow(2).sum() ** 0.5
    return total


class _GradReverse(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by ``-weight``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad.neg() * ctx.weight, None


def grad_reverse(x: torch.Tensor, weight: float) -> torch.Tensor:
    """Gradient-reversal layer (Ganin & Lempitsky 2015; thuiar/MIntRec ``ReverseLayerF``)."""
    return _GradReverse.apply(x, weight)


def domain_loss(logits_t: torch.Tensor, logits_v: torch.Tensor, logits_a: torch.Tensor) -> torch.Tensor:
    """MIntRec's ``_get_domain_loss``: mean cross-entropy of the stacked discriminator logits
    ``[t; v; a]`` against the modality labels text 0, video 1, audio 2."""
    logits = torch.cat([logits_t, logits_v, logits_a], dim=0)
    labels = torch.cat([torch.full((x.shape[0],), k, dtype=torch.long, device=x.device)
                        for k, x in enumerate((logits_t, logits_v, logits_a))])
    return F.cross_entropy(logits, labels)


def sum_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MMSA's MSE module: sum of squared differences / numel (both sides carry gradient)."""
    return (target - pred).pow(2).sum() / pred.numel()


# ------------------------------------------------------------------------------ modules
class SequenceEncoder(nn.Module):
    """MISA's ``extract_features``: biLSTM(D→D) → LayerNorm(2D) on the padded outputs → biLSTM(2D→D),
    both packed with the same lengths; returns cat(h1, h2) over directions (B, 4D), in MMSA's order
    [h1_fwd, h2_fwd, h1_bwd, h2_bwd] (``cat(dim=2).permute(1,0,2).view(B,-1)``)."""

    def __init__(self, d: int):
        super().__init__()
        self.rnn1 = nn.LSTM(d, d, bidirectional=True, batch_first=True)
        self.norm = nn.LayerNorm(2 * d)
        self.rnn2 = nn.LSTM(2 * d, d, bidirectional=True, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.clamp(1, x.shape[1]).to("cpu", torch.int64)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out1, (h1, _) = self.rnn1(packed)
        padded1, _ = pad_packed_sequence(out1, batch_first=True)
        packed2 = pack_padded_sequence(self.norm(padded1), lengths, batch_first=True, enforce_sorted=False)
        _, (h2, _) = self.rnn2(packed2)
        return torch.cat([h1, h2], dim=2).permute(1, 0, 2).reshape(x.shape[0], -1)


def _project(d_in: int, h: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, h), nn.ReLU(), nn.LayerNorm(h))


@register_method("misa")
class MISA(Method):
    # budgets beside the model (see bench.method.Method.presets)
    presets: ClassVar[dict[str, dict[str, str]]] = {
        "compact": {**COMPACT_BUDGET, "hidden_size": "64", "grad_accum": "1", "learning_rate": "1e-3"},
        "tiny": {"hidden_size": "16", "grad_accum": "1"},
    }
    HParams = MISAHParams
    families = ("mosi", "mosei", "mintrec")
    export_keys = ("fused",)
    description = ("MISA (MMSA; MIntRec form on mintrec): modality-invariant/-specific subspaces with CMD "
                   "(MIntRec: adversarial), soft-orthogonality and reconstruction losses, 6-token transformer fusion")

    @classmethod
    def default_hparams(cls, family: str, setting: str, era: str = "current") -> MISAHParams:
        return era_defaults("misa", MISAHParams, ERAS, family, era)

    @classmethod
    def describe_groups(cls) -> dict[str, tuple[str, ...]]:
        return {
            "bert": ("text",),
            "text_proj": ("project_t", "text_layer_norm"),
            "audio_encoder": ("encoder_a", "project_a"),
            "vision_encoder": ("encoder_v", "project_v"),
            "private_shared": ("private", "shared"),
            "reconstruction": ("recon",),
            "fusion": ("fusion_transformer", "fusion"),
            "discriminator": ("discriminator",),  # similarity="adversarial" only (MIntRec)
            "discriminator_unused": ("sp_discriminator",),
        }

    def __init__(self, hp: MISAHParams, info: DataInfo, bert_config=None):
        super().__init__(hp, info)
        h = hp.hidden_size
        out_dim = info.num_classes if info.task == "classification" else 1
        self.text = TextInput("misa", info, hp.text_mode, hp.text_model, hp.text_finetune, bert_config)
        freeze_bert_layers(self.text, hp.bert_freeze_layers)
        d_t, d_a, d_v = self.text.dim, int(info.dims["audio"]), int(info.dims["vision"])
        self.encoder_v = SequenceEncoder(d_v)
        self.encoder_a = SequenceEncoder(d_a)
        self.text_layer_norm = nn.LayerNorm(2 * d_t) if hp.build_unused else None  # MMSA tlayer_norm, unused
        self.project_t = _project(d_t, h)
        self.project_v = _project(4 * d_v, h)
        self.project_a = _project(4 * d_a, h)
        self.private = nn.ModuleDict({m: nn.Sequential(nn.Linear(h, h), nn.Sigmoid()) for m in MODALITIES})
        self.shared = nn.Sequential(nn.Linear(h, h), nn.Sigmoid())  # one module for all three modalities
        self.recon = nn.ModuleDict({m: nn.Linear(h, h) for m in MODALITIES})
        self.discriminator = None
        if hp.similarity == "adversarial":  # MIntRec builds it here when use_cmd_sim is False
            self.discriminator = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Dropout(hp.dropout),
                                               nn.Linear(h, len(MODALITIES)))
        self.sp_discriminator = nn.Linear(h, 4) if hp.build_unused else None
        layer = nn.TransformerEncoderLayer(d_model=h, nhead=hp.fusion_heads)  # dim_ff 2048, dropout 0.1
        self.fusion_transformer = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.fusion = nn.Sequential(nn.Linear(6 * h, 3 * h), nn.Dropout(hp.dropout), nn.ReLU(),
                                    nn.Linear(3 * h, out_dim))
        if hp.lstm_hh_init == "orthogonal":
            for name, p in self.named_parameters():
                if "weight_hh" in name and not p.is_meta:
                    nn.init.orthogonal_(p)
        self.lr_decays = 0  # times on_epoch_end decayed the lr (MIntRec ExponentialLR steps)
        self.epoch_end_calls = 0  # how often the trainer called on_epoch_end

    # ------------------------------------------------------------------------------ forward
    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        seq, mask = self.text(batch)
        mask_len = mask.sum(dim=1, keepdim=True)
        utt_t = (seq * mask.unsqueeze(-1)).sum(dim=1) / mask_len.clamp(min=1)
        text_len = mask_len.squeeze(1).round().long()
        len_a = len_v = text_len
        if self.hp.lengths_from == "own":
            len_a = batch.audio_lengths if batch.audio_lengths is not None else text_len
            len_v = batch.vision_lengths if batch.vision_lengths is not None else text_len
        utt = {"t": utt_t, "v": self.encoder_v(batch.vision, len_v), "a": self.encoder_a(batch.audio, len_a)}
        out: dict[str, torch.Tensor] = {}
        for m, proj in (("t", self.project_t), ("v", self.project_v), ("a", self.project_a)):
            orig = proj(utt[m])
            out[f"orig_{m}"] = orig
            out[f"private_{m}"] = self.private[m](orig)
            out[f"shared_{m}"] = self.shared(orig)
            out[f"recon_{m}"] = self.recon[m](out[f"private_{m}"] + out[f"shared_{m}"])
        if self.discriminator is not None:  # MIntRec: discriminator on the gradient-reversed shared codes
            w = self.hp.reverse_grad_weight
            for m in ("t", "v", "a"):
                out[f"domain_{m}"] = self.discriminator(grad_reverse(out[f"shared_{m}"], w))
        if self.sp_discriminator is not None:  # computed as in MMSA; enters no loss
            out["sp_logits"] = self.sp_discriminator(
                torch.cat([out["private_t"], out["private_v"], out["private_a"],
                           (out["shared_t"] + out["shared_v"] + out["shared_a"]) / 3.0]))
        tokens = torch.stack([out["private_t"], out["private_v"], out["private_a"],
                              out["shared_t"], out["shared_v"], out["shared_a"]], dim=0)  # (6, B, H)
        h = self.fusion_transformer(tokens)
        fused = torch.cat(list(h.unbind(0)), dim=1)  # (B, 6H)
        out["fused"] = fused
        logits = self.fusion(fused)
        out["pred"] = logits if self.info.task == "classification" else logits.squeeze(-1)
        return out

    # ------------------------------------------------------------------------------ objective
    def task_loss(self, pred: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """MSE (MMSA's MISA criterion, also its validation loss); cross-entropy for MIntRec."""
        if self.info.task == "classification":
            return F.cross_entropy(pred, labels, reduction=reduction)
        return F.mse_loss(pred.reshape(-1), labels.reshape(-1).to(pred.dtype), reduction=reduction)

    def loss_terms(self, out: dict[str, torch.Tensor], batch: Split) -> dict[str, torch.Tensor]:
        hp = self.hp
        task = self.task_loss(out["pred"], batch.labels)
        p, s = {m: out[f"private_{m}"] for m in MODALITIES}, {m: out[f"shared_{m}"] for m in MODALITIES}
        l_diff = (diff_loss(p["t"], s["t"]) + diff_loss(p["v"], s["v"]) + diff_loss(p["a"], s["a"])
                  + diff_loss(p["a"], p["t"]) + diff_loss(p["a"], p["v"]) + diff_loss(p["t"], p["v"]))
        l_recon = sum(sum_mse(out[f"recon_{m}"], out[f"orig_{m}"]) for m in MODALITIES) / 3.0
        if hp.similarity == "adversarial":  # MIntRec use_cmd_sim=False: similarity = domain loss, no CMD
            l_dom = domain_loss(out["domain_t"], out["domain_v"], out["domain_a"])
            total = task + hp.diff_weight * l_diff + hp.sim_weight * l_dom + hp.recon_weight * l_recon
            return {"total": total, "task": task, "diff": l_diff, "domain": l_dom, "recon": l_recon}
        k = hp.cmd_moments
        l_cmd = (cmd(s["t"], s["v"], k) + cmd(s["t"], s["a"], k) + cmd(s["a"], s["v"], k)) / 3.0
        total = task + hp.diff_weight * l_diff + hp.sim_weight * l_cmd + hp.recon_weight * l_recon
        return {"total": total, "task": task, "diff": l_diff, "cmd": l_cmd, "recon": l_recon}

    def on_epoch_end(self, epoch: int, valid: dict, improved: bool, optimizer: torch.optim.Optimizer) -> None:
        """MIntRec's schedule: ``ExponentialLR(gamma).step()`` after every epoch whose selection metric did
        not improve (``early_stopping.counter != 0``), i.e. every group's lr times ``lr_decay_gamma``.

        Called by the trainer after validation and selection (see the report/docs: the shared trainer
        must call this hook; :meth:`record` says how often it was called)."""
        self.epoch_end_calls += 1
        gamma = self.hp.lr_decay_gamma
        if gamma > 0 and not improved:
            for group in optimizer.param_groups:  # ExponentialLR's chainable form: lr <- gamma * lr
                group["lr"] *= gamma
            self.lr_decays += 1

    def param_groups(self) -> list[dict[str, Any]]:
        wd = self.hp.weight_decay if self.hp.apply_weight_decay else 0.0
        return [{"params": [p for p in self.parameters() if p.requires_grad],
                 "lr": self.hp.learning_rate, "weight_decay": wd}]

    def record(self) -> dict[str, Any]:
        rec = {"text_mode": self.text.mode, "text_source": self.text.source, "text_dim": self.text.dim,
               "lengths_from": self.hp.lengths_from, "hparams_era": self.hp.hparams_era,
               "weight_decay_applied": self.hp.weight_decay if self.hp.apply_weight_decay else 0.0}
        if self.hp.similarity != "cmd" or self.hp.lr_decay_gamma > 0:  # MOSI/MOSEI records stay as they were
            rec.update(similarity=self.hp.similarity, lr_decay_gamma=self.hp.lr_decay_gamma,
                       lr_decays=self.lr_decays, epoch_end_calls=self.epoch_end_calls)
        return rec
