"""TFN: Tensor Fusion Network (Zadeh et al. 2017), as thuiar/MMSA defines it (a Table 1-2 row).

Sources (facts only, code written here): thuiar/MMSA@177bc0462a61b355c554812dedd432a21f374130
``src/MMSA/models/singleTask/TFN.py`` (model), ``src/MMSA/trains/singleTask/TFN.py`` (optimiser,
early stopping), thuiar/MMSA@32488b00b8a545d5b910ce2c88a2ff99a41ae617
``src/MMSA/models/subNets/FeatureNets.py`` (SubNet / TextSubNet) and
thuiar/MMSA@085d2ccd2a58dc515c8680d83e89ddc96903cf24 ``src/MMSA/config/config_regression.json``
("tfn" block: need_data_aligned=false, need_normalized=true, early_stop=8).

Audio and vision are averaged over time (``need_normalized``: mean over *all* padded frames) and go
through the LF-DNN SubNet; text goes through a one-layer LSTM whose final hidden state is
projected to ``text_out``. Each vector gets a constant 1 prepended and the three are combined by
the outer product ``[1; h_a] (x) [1; h_v] (x) [1; h_t]`` (flattened, audio index slowest), then a
dropout + three-layer post-fusion MLP. For regression MMSA squashes the output with
``6 * sigmoid(.) - 3``. MMSA's trainer optimises every parameter except the two constant range
buffers with Adam, lr only (no weight decay), L1 loss, early stopping after 8 epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from baselines.lf_dnn import LateFusionEncoders
from bench.config import PosInt, Prob
from bench.data.tensors import DataInfo, Split
from bench.method import COMPACT_BUDGET, TrainHParams
from bench.registry import register_method


@dataclass
class TFNHParams(TrainHParams):
    # MMSA config_regression.json "tfn": hidden_dims = [text, audio, video]
    hidden_text: PosInt = 128
    hidden_audio: PosInt = 32
    hidden_vision: PosInt = 128
    text_out: PosInt = 32
    post_fusion_dim: PosInt = 64
    # MMSA "dropouts" = [audio, video, text, post_fusion]
    dropout_audio: Prob = 0.3
    dropout_vision: Prob = 0.3
    dropout_text: Prob = 0.3
    dropout_post: Prob = 0.5
    # MMSA's TextSubNet zeroes its dropout for a one-layer LSTM ("mmsa"); "applied" uses dropout_text.
    text_dropout_mode: Literal["mmsa", "applied"] = "mmsa"
    # Time averaging of audio/vision: "padded" = mean over all frames (MMSA), "valid" = over true lengths.
    time_average: Literal["padded", "valid"] = "padded"
    # Regression head: "sigmoid_range" = 6 * sigmoid(x) - 3 (MMSA), "linear" = raw output.
    output_activation: Literal["sigmoid_range", "linear"] = "sigmoid_range"
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.0  # MMSA's TFN trainer passes no weight decay to Adam
    early_stop: int = 8


_MOSEI = dict(hidden_audio=16, text_out=128, post_fusion_dim=16, dropout_audio=0.4, dropout_vision=0.4,
              dropout_text=0.4, dropout_post=0.4, batch_size=128, learning_rate=5e-3)


def tensor_fusion(h_a: torch.Tensor, h_v: torch.Tensor, h_t: torch.Tensor) -> torch.Tensor:
    """Flattened outer product of ``[1; h_a]``, ``[1; h_v]``, ``[1; h_t]``: (B, (A+1)(V+1)(T+1)).

    Element ``((i * (V+1) + j) * (T+1) + k)`` is ``a'_i * v'_j * t'_k`` (audio index slowest, as MMSA).
    """
    one = h_a.new_ones(h_a.shape[0], 1)
    a = torch.cat([one, h_a], dim=-1)
    v = torch.cat([one, h_v], dim=-1)
    t = torch.cat([one, h_t], dim=-1)
    return torch.einsum("bi,bj,bk->bijk", a, v, t).reshape(h_a.shape[0], -1)


@register_method("tfn")
class TFN(LateFusionEncoders):
    # budgets beside the model (see bench.method.Method.presets)
    presets: ClassVar[dict[str, dict[str, str]]] = {
        "compact": {**COMPACT_BUDGET, "batch_size": "32", "hidden_audio": "8", "hidden_vision": "16", "text_out": "16"},
    }
    HParams = TFNHParams
    default_setting = "unaligned"  # MMSA's need_data_aligned=false
    description = "Tensor Fusion Network (MMSA): outer product of [1;h] modality vectors + post-fusion MLP"

    @classmethod
    def default_hparams(cls, family: str, setting: str) -> TFNHParams:
        return TFNHParams(**(_MOSEI if family == "mosei" else {}))

    @classmethod
    def describe_groups(cls):
        return {"text_subnet": ("text_lstm", "text_proj"), "audio_subnet": ("audio_subnet",),
                "vision_subnet": ("vision_subnet",), "post_fusion": ("post_fusion",)}

    def __init__(self, hp: TFNHParams, info: DataInfo):
        super().__init__(hp, info)
        out_dim = self._build_encoders(hp, info, hp.text_out)
        fused = (hp.hidden_audio + 1) * (hp.hidden_vision + 1) * (hp.text_out + 1)
        self.post_fusion = nn.Sequential(
            nn.Dropout(hp.dropout_post),
            nn.Linear(fused, hp.post_fusion_dim), nn.ReLU(),
            nn.Linear(hp.post_fusion_dim, hp.post_fusion_dim), nn.ReLU(),
            nn.Linear(hp.post_fusion_dim, out_dim),
        )

    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        hp = self.hp
        h_a, h_v, h_t = self._encode(batch)
        fused = tensor_fusion(h_a, h_v, h_t)
        out = self.post_fusion(fused)
        if self.info.task == "classification":
            return {"pred": out, "fused": fused}
        out = out.squeeze(-1)
        if hp.output_activation == "sigmoid_range":
            out = 6.0 * torch.sigmoid(out) - 3.0
        return {"pred": out, "fused": fused}

    # The fused tensor has (A+1)(V+1)(T+1) = 140k entries per MOSI sample: too big to export.
    export_keys = ()

    def record(self):
        return {"text_dropout_effective": self.text_drop.p}

