"""The EMOE network as the official code computes it (fuyyyyy/EMOE ``models/singleTask/EMOE.py``), with
the paper-vs-code switches of docs/switches.md §1.

Forward order (modality order inside the model is always [l, v, a]):

1. text: BERT last hidden state (text_mode=bert) or the frozen text features (text_mode=features);
2. router (``mome``): on the raw inputs ``cat(T, vision', audio')`` (vision/audio resampled in time
   to the text length by a learnable ``Linear(T_m -> T_l)`` for unaligned data), flattened; or
   (``router_input=encoded``) on the time-means of the encoded features;
3. per-modality bias-free temporal Conv1d to d_model (skipped when a modality already has d_model
   channels, as in DMD/EMOE), then the shared 1x1 ``encoder_c`` (or per-modality ``encoders``);
4. per-modality pre-LN causal transformer; h_m = last time step;
5. residual unimodal heads on h_m, fusion of the pre-head h_m with the router weights, residual
   fused head.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from bench.data.tensors import DataInfo
from bench.errors import UserError
from bench.method import count_parameter_groups
from bench.nn.transformer import TransformerEncoder
from emoe.config import EMOEHParams
from emoe.router import build_router

MODALITIES = ("l", "v", "a")  # internal order; the router's weights follow it
_INFO_KEY = {"l": "text", "v": "vision", "a": "audio"}

# group -> submodule-name prefixes inside EMOENet (``Method.describe_groups`` adds "net.")
GROUPS: dict[str, tuple[str, ...]] = {
    "bert": ("bert",),
    "router": ("router",),
    "transfer_ali": ("transfer_ali",),
    "conv_proj": ("conv_proj",),
    "encoder_c": ("encoder_c",),
    "encoders_unused": ("encoders",),  # per-modality 1x1 convs: dead in the official face
    "transformers": ("transformers",),
    "unimodal_heads": ("unimodal_heads",),
    "fused_head": ("fused_head",),
}


class ResidualHead(nn.Module):
    """``feat = x + W2·drop(relu(W1·x))``; ``out = Linear(feat)`` (emoe.py:57-70)."""

    def __init__(self, dim: int, out_dim: int, dropout: float):
        super().__init__()
        self.proj1 = nn.Linear(dim, dim)
        self.proj2 = nn.Linear(dim, dim)
        self.out_layer = nn.Linear(dim, out_dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.proj2(F.dropout(F.relu(self.proj1(x)), p=self.dropout, training=self.training)) + x
        return feat, self.out_layer(feat)


class TimeResample(nn.Module):
    """Learnable ``Linear(T_in -> T_out)`` applied along time, per channel: (B,T_in,D) -> (B,T_out,D)."""

    def __init__(self, t_in: int, t_out: int):
        super().__init__()
        self.linear = nn.Linear(t_in, t_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.transpose(1, 2)).transpose(1, 2)


class EMOENet(nn.Module):
    """EMOE for one dataset geometry. ``bert_config`` (a ``transformers.BertConfig``) builds a random
    BERT instead of loading ``hp.text_model`` (tests, parameter counting on the meta device)."""

    def __init__(self, hp: EMOEHParams, info: DataInfo, bert_config=None):
        super().__init__()
        self.hp = hp
        self.info = info
        self.text_mode = "bert" if bert_config is not None else hp.resolved_text_mode()
        self.task = info.task
        self.out_dim = 1 if info.task == "regression" else int(info.num_classes)
        d = hp.d_model

        # ---- text source
        self.bert = None
        if self.text_mode == "bert":
            if not info.has_text_bert:
                raise UserError("text_mode=bert: this dataset has no text_bert token ids")
            from bench.nn.bert import BertTextEncoder

            if bert_config is not None:
                self.bert = BertTextEncoder(config=bert_config, finetune=hp.text_finetune)
            else:
                self.bert = BertTextEncoder(hp.text_model, finetune=hp.text_finetune)
            d_text = self.bert.hidden_size
        else:
            if not info.has_text_features:
                raise UserError("this dataset has no frozen text features; use BERT with "
                                "--set text_model=PATH (text_mode=bert)")
            d_text = int(info.dims["text"])
        in_dims = {"l": d_text, "v": int(info.dims["vision"]), "a": int(info.dims["audio"])}
        lens = {m: int(info.seq_lens[_INFO_KEY[m]]) for m in MODALITIES}
        kernels = {"l": hp.kernel_l, "v": hp.kernel_v, "a": hp.kernel_a}
        self.in_dims, self.lens = in_dims, lens

        # ---- router (+ time resampling of the raw inputs)
        self.router = None
        self.transfer_ali = None
        self.transfer_applied = {"v": False, "a": False}
        if hp.mome:
            if hp.router_input == "raw":
                t_l = lens["l"]
                self.transfer_applied = {m: info.setting == "unaligned" or lens[m] != t_l for m in ("v", "a")}
                # aligned: Linear(T_l -> T_l) exists but is unused, as in the official model
                self.transfer_ali = nn.ModuleDict({
                    m: TimeResample(lens[m] if self.transfer_applied[m] else t_l, t_l) for m in ("v", "a")
                })
                router_in = t_l * (in_dims["l"] + in_dims["v"] + in_dims["a"])
            else:
                router_in = len(MODALITIES) * d
            self.router = build_router(hp.router_arch, router_in, len(MODALITIES), hp.temperature,
                                       hp.router_hidden)

        # ---- temporal projections and encoders
        self.conv_proj = nn.ModuleDict()
        self.conv_applied = {}
        for m in MODALITIES:
            out_len = lens[m] - kernels[m] + 1
            if out_len < 1:
                raise UserError(f"emoe: kernel_{m}={kernels[m]} is longer than the {_INFO_KEY[m]} "
                                f"sequence ({lens[m]} steps)")
            self.conv_proj[m] = nn.Conv1d(in_dims[m], d, kernel_size=kernels[m], padding=0, bias=False)
            self.conv_applied[m] = in_dims[m] != d  # DMD/EMOE skip the conv when the width is d already
        self.encoder_c = nn.Conv1d(d, d, kernel_size=1, padding=0, bias=False)
        self.encoders = nn.ModuleDict({m: nn.Conv1d(d, d, kernel_size=1, padding=0, bias=False)
                                       for m in MODALITIES})

        # ---- transformers
        attn = {"l": hp.attn_dropout, "v": hp.attn_dropout_v, "a": hp.attn_dropout_a}
        self.transformers = nn.ModuleDict({
            m: TransformerEncoder(d, hp.n_heads, hp.n_layers, attn_dropout=attn[m],
                                  relu_dropout=hp.relu_dropout, res_dropout=hp.res_dropout,
                                  embed_dropout=hp.embed_dropout, attn_mask=True)
            for m in MODALITIES
        })

        # ---- heads
        self.unimodal_heads = nn.ModuleDict({m: ResidualHead(d, self.out_dim, hp.output_dropout)
                                             for m in MODALITIES})
        fused_dim = d * len(MODALITIES) if hp.fusion == "concat" else d
        self.fused_head = ResidualHead(fused_dim, self.out_dim, hp.output_dropout)

    # ------------------------------------------------------------------------------ forward
    def text_sequence(self, text: torch.Tensor) -> torch.Tensor:
        """(B,3,T) ids -> BERT (B,T,H), or frozen features (B,T,D) passed through."""
        return self.bert(text) if self.bert is not None else text

    def route(self, seq_l: torch.Tensor, vision: torch.Tensor, audio: torch.Tensor,
              encoded: dict[str, torch.Tensor]) -> torch.Tensor:
        b = seq_l.shape[0]
        if self.router is None:
            return seq_l.new_full((b, len(MODALITIES)), 1.0 / len(MODALITIES))
        if self.hp.router_input == "raw":
            v = self.transfer_ali["v"](vision) if self.transfer_applied["v"] else vision
            a = self.transfer_ali["a"](audio) if self.transfer_applied["a"] else audio
            x = torch.cat([seq_l, v, a], dim=2).flatten(1)
        else:
            x = torch.cat([encoded[m].mean(dim=2) for m in MODALITIES], dim=1)
        return self.router(x)

    def forward(self, text: torch.Tensor, audio: torch.Tensor,
                vision: torch.Tensor) -> dict[str, torch.Tensor]:
        """text: (B,3,T_l) token ids (bert) or (B,T_l,D_l) features; audio (B,T_a,D_a); vision (B,T_v,D_v)."""
        hp = self.hp
        seq_l = self.text_sequence(text)
        x = {
            "l": F.dropout(seq_l, p=hp.text_dropout, training=self.training).transpose(1, 2),
            "v": vision.transpose(1, 2),
            "a": audio.transpose(1, 2),
        }
        encoded = {}
        for m in MODALITIES:
            proj = self.conv_proj[m](x[m]) if self.conv_applied[m] else x[m]
            enc = self.encoder_c if hp.encoder_sharing == "shared" else self.encoders[m]
            encoded[m] = enc(proj)  # (B, d, T')
        w = self.route(seq_l, vision, audio, encoded)

        out: dict[str, torch.Tensor] = {"weights": w}
        hs, feats = [], []
        for m in MODALITIES:
            h = self.transformers[m](encoded[m].transpose(1, 2))[:, -1]  # last step, (B, d)
            feat, logit = self.unimodal_heads[m](h)
            out[f"feat_{m}"] = h
            out[f"proj_{m}"] = feat
            out[f"pred_{m}"] = self._squeeze(logit)
            hs.append(h)
            feats.append(feat)
        h_stack = torch.stack(hs, dim=1)  # (B, 3, d)
        weighted = w.unsqueeze(-1) * h_stack
        if hp.fusion == "sum":
            c = weighted.sum(dim=1)
        else:
            c = hp.concat_scale * weighted.flatten(1)
        c_feat, c_logit = self.fused_head(c)
        out["fused"] = c
        out["proj_c"] = c_feat
        out["pred"] = self._squeeze(c_logit)
        out["proj_stack"] = torch.stack(feats, dim=1)  # (B, 3, d): teacher input for feature-space L_ud
        return out

    def _squeeze(self, logit: torch.Tensor) -> torch.Tensor:
        return logit.squeeze(-1) if self.out_dim == 1 else logit


# ------------------------------------------------------------------------------------ counting
def count_parameters(model_or_method: nn.Module) -> dict[str, int]:
    """``{group: n_parameters, ..., "total": n}`` for an :class:`EMOENet` or an EMOE ``Method``
    (or any module whose class has ``describe_groups()``)."""
    if isinstance(model_or_method, EMOENet):
        return count_parameter_groups(model_or_method, GROUPS)
    describe = getattr(model_or_method, "describe_groups", None)
    groups = describe() if describe is not None else {}
    return count_parameter_groups(model_or_method, groups)
