"""LMF: Low-rank Multimodal Fusion (Liu et al. 2018), as thuiar/MMSA defines it (a Table 1-2 row).

Sources (facts only, code written here): thuiar/MMSA@177bc0462a61b355c554812dedd432a21f374130
``src/MMSA/models/singleTask/LMF.py`` (model), ``src/MMSA/trains/singleTask/LMF.py`` (optimiser),
thuiar/MMSA@32488b00b8a545d5b910ce2c88a2ff99a41ae617 ``src/MMSA/models/subNets/FeatureNets.py`` and
thuiar/MMSA@085d2ccd2a58dc515c8680d83e89ddc96903cf24 ``src/MMSA/config/config_regression.json``
("lmf" block: need_data_aligned=false, need_normalized=true, early_stop=8).

Pre-fusion subnets are TFN's (time-averaged audio/vision SubNets, text LSTM projected to
``text_out = hidden_text // 2``). Each ``[1; h_m]`` is projected by a rank-``r`` factor
``W_m`` of shape (r, d_m + 1, out); the fused output is
``sum_i w_i * prod_m ([1; h_m] W_m[i]) + b`` -- the TFN outer-product weight restricted to rank r.

MMSA quirks reproduced (with switches):

* the optimiser is ``Adam([factors @ factor_lr, subnets @ learning_rate], weight_decay)`` built from
  ``list(model.parameters())[:3]`` and ``[5:]``, so ``fusion_weights`` and ``fusion_bias`` are
  never updated (they stay at their Xavier / zero init): ``train_fusion_weights=False``;
* the post-fusion dropout is constructed but never applied (no switch: ``dropout_post`` is inert);
* regression output is linear (no sigmoid range, unlike TFN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from baselines.lf_dnn import LateFusionEncoders
from bench.config import PosFloat, PosInt, Prob
from bench.data.tensors import DataInfo, Split
from bench.method import COMPACT_BUDGET, TrainHParams
from bench.registry import register_method


@dataclass
class LMFHParams(TrainHParams):
    # MMSA config_regression.json "lmf": hidden_dims = [text, audio, video]; text_out = hidden_text // 2
    hidden_text: PosInt = 128
    hidden_audio: PosInt = 16
    hidden_vision: PosInt = 128
    rank: PosInt = 3
    # MMSA "dropouts" = [audio, video, text, post_fusion]; the post-fusion one is never applied by MMSA.
    dropout_audio: Prob = 0.3
    dropout_vision: Prob = 0.3
    dropout_text: Prob = 0.3
    dropout_post: Prob = 0.3
    factor_lr: PosFloat = 1e-3  # Adam lr of the three modality factors
    # MMSA leaves fusion_weights / fusion_bias out of the optimiser; True trains them at learning_rate.
    train_fusion_weights: bool = False
    text_dropout_mode: Literal["mmsa", "applied"] = "mmsa"
    time_average: Literal["padded", "valid"] = "padded"
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.005
    early_stop: int = 8


_MOSEI = dict(rank=4, dropout_audio=0.2, dropout_vision=0.2, dropout_text=0.2, dropout_post=0.2,
              batch_size=32, weight_decay=1e-3)


def low_rank_fusion(hs: list[torch.Tensor], factors: list[torch.Tensor], weights: torch.Tensor,
                    bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``hs[m]``: (B, d_m); ``factors[m]``: (r, d_m + 1, out); weights (1, r); bias (1, out).

    Returns the output (B, out) and the per-rank products (B, r, out).
    """
    prod = None
    for h, w in zip(hs, factors):
        h1 = torch.cat([h.new_ones(h.shape[0], 1), h], dim=-1)
        proj = torch.einsum("bd,rdo->bro", h1, w)
        prod = proj if prod is None else prod * proj
    out = torch.einsum("r,bro->bo", weights[0], prod) + bias
    return out, prod


@register_method("lmf")
class LMF(LateFusionEncoders):
    # budgets beside the model (see bench.method.Method.presets)
    presets: ClassVar[dict[str, dict[str, str]]] = {
        "compact": {**COMPACT_BUDGET, "batch_size": "32"},
    }
    HParams = LMFHParams
    default_setting = "unaligned"  # MMSA's need_data_aligned=false
    description = "Low-rank Multimodal Fusion (MMSA): rank-r modality factors over [1;h] vectors"

    @classmethod
    def default_hparams(cls, family: str, setting: str) -> LMFHParams:
        return LMFHParams(**(_MOSEI if family == "mosei" else {}))

    @classmethod
    def describe_groups(cls):
        return {"factors": ("audio_factor", "video_factor", "text_factor"),
                "fusion_weights": ("fusion_weights", "fusion_bias"),
                "text_subnet": ("text_lstm", "text_proj"), "audio_subnet": ("audio_subnet",),
                "vision_subnet": ("vision_subnet",)}

    def __init__(self, hp: LMFHParams, info: DataInfo):
        super().__init__(hp, info)
        text_out = hp.hidden_text // 2
        out_dim = self._build_encoders(hp, info, text_out)
        self.audio_factor = nn.Parameter(torch.empty(hp.rank, hp.hidden_audio + 1, out_dim))
        self.video_factor = nn.Parameter(torch.empty(hp.rank, hp.hidden_vision + 1, out_dim))
        self.text_factor = nn.Parameter(torch.empty(hp.rank, text_out + 1, out_dim))
        self.fusion_weights = nn.Parameter(torch.empty(1, hp.rank))
        self.fusion_bias = nn.Parameter(torch.zeros(1, out_dim))
        for p in (self.audio_factor, self.video_factor, self.text_factor, self.fusion_weights):
            nn.init.xavier_normal_(p)

    def param_groups(self):
        hp = self.hp
        factors = [self.audio_factor, self.video_factor, self.text_factor]
        fusion = {id(self.fusion_weights), id(self.fusion_bias)}
        skip = {id(p) for p in factors} | fusion
        rest = [p for p in self.parameters() if id(p) not in skip]
        if hp.train_fusion_weights:
            rest += [self.fusion_weights, self.fusion_bias]
        return [{"params": factors, "lr": hp.factor_lr, "weight_decay": hp.weight_decay},
                {"params": rest, "lr": hp.learning_rate, "weight_decay": hp.weight_decay}]

    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        h_a, h_v, h_t = self._encode(batch)
        out, prod = low_rank_fusion([h_a, h_v, h_t], [self.audio_factor, self.video_factor, self.text_factor],
                                    self.fusion_weights, self.fusion_bias)
        pred = out if self.info.task == "classification" else out.squeeze(-1)
        return {"pred": pred, "fused": prod.flatten(1)}

    export_keys = ("fused",)
