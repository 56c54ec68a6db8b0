"""LF-DNN: late-fusion DNN (Williams et al. 2018), as thuiar/MMSA defines it (a Table 1-2 row).

Audio and vision are averaged over time (MMSA's ``need_normalized``: the mean over *all* frames of
the padded array), each goes through BatchNorm -> dropout -> three Linear+ReLU layers; text goes
through a one-layer LSTM over the frozen token features, whose final hidden state is projected.
The three vectors are concatenated and passed through a three-layer fusion MLP. L1 loss, Adam with
weight decay, no scheduler, early stopping after 8 epochs (MMSA trains/singleTask/LF_DNN.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from bench.config import PosInt, Prob
from bench.data.tensors import DataInfo, Split
from bench.errors import UserError
from bench.method import COMPACT_BUDGET, Method, TrainHParams
from bench.registry import register_method


@dataclass
class LFDNNHParams(TrainHParams):
    # MMSA config_regression.json "lf_dnn": hidden_dims = [text, audio, video]
    hidden_text: PosInt = 128
    hidden_audio: PosInt = 16
    hidden_vision: PosInt = 128
    text_out: PosInt = 256
    post_fusion_dim: PosInt = 128
    # MMSA "dropouts" = [audio, video, text, post_fusion]
    dropout_audio: Prob = 0.2
    dropout_vision: Prob = 0.2
    dropout_text: Prob = 0.2
    dropout_post: Prob = 0.2
    # MMSA's TextSubNet zeroes its dropout for a one-layer LSTM, so ``dropout_text`` is inert there.
    # "mmsa" reproduces that; "applied" uses dropout_text on the LSTM state.
    text_dropout_mode: Literal["mmsa", "applied"] = "mmsa"
    # Time averaging of audio/vision: "padded" = mean over all frames (MMSA), "valid" = over true lengths.
    time_average: Literal["padded", "valid"] = "padded"
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    early_stop: int = 8


_MOSEI = dict(hidden_audio=32, text_out=128, batch_size=64, learning_rate=2e-3, weight_decay=1e-3)


class _SubNet(nn.Module):
    """BatchNorm -> dropout -> three Linear+ReLU layers (the TFN-style pre-fusion subnet)."""

    def __init__(self, d_in: int, hidden: int, dropout: float):
        super().__init__()
        self.norm = nn.BatchNorm1d(d_in)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList([nn.Linear(d_in, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)])

    def forward(self, x):
        x = self.drop(self.norm(x))
        for layer in self.layers:
            x = F.relu(layer(x))
        return x


def _time_mean(x: torch.Tensor, lengths: torch.Tensor | None, mode: str) -> torch.Tensor:
    if mode == "valid" and lengths is not None:
        steps = torch.arange(x.shape[1], device=x.device)
        mask = (steps[None, :] < lengths[:, None]).to(x.dtype)
        return (x * mask[..., None]).sum(1) / lengths.clamp(min=1)[:, None].to(x.dtype)
    return x.mean(dim=1)


class LateFusionEncoders(Method):
    """The unimodal encoders shared by LF-DNN, TFN and LMF (MMSA's SubNet/TextSubNet pair): time-averaged
    audio/vision through :class:`_SubNet`, text through a one-layer LSTM whose last state is projected."""

    def _build_encoders(self, hp, info: DataInfo, text_out: int) -> int:
        """Create the encoders (names fixed: they key checkpoints and parameter groups); return out_dim."""
        if not info.has_text_features:
            raise UserError(f"{self.name} needs precomputed text features (the pickle's 'text' array); "
                            "this dataset has only BERT token ids")
        self.audio_subnet = _SubNet(info.dims["audio"], hp.hidden_audio, hp.dropout_audio)
        self.vision_subnet = _SubNet(info.dims["vision"], hp.hidden_vision, hp.dropout_vision)
        self.text_lstm = nn.LSTM(info.dims["text"], hp.hidden_text, num_layers=1, batch_first=True)
        self.text_drop = nn.Dropout(0.0 if hp.text_dropout_mode == "mmsa" else hp.dropout_text)
        self.text_proj = nn.Linear(hp.hidden_text, text_out)
        return info.num_classes if info.task == "classification" else 1

    def _encode(self, batch: Split) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(h_audio, h_vision, h_text)."""
        hp = self.hp
        h_a = self.audio_subnet(_time_mean(batch.audio, batch.audio_lengths, hp.time_average))
        h_v = self.vision_subnet(_time_mean(batch.vision, batch.vision_lengths, hp.time_average))
        _, (h_n, _) = self.text_lstm(batch.text)
        return h_a, h_v, self.text_proj(self.text_drop(h_n[-1]))


@register_method("lf_dnn")
class LFDNN(LateFusionEncoders):
    # budgets beside the model (see bench.method.Method.presets)
    presets: ClassVar[dict[str, dict[str, str]]] = {
        "compact": {**COMPACT_BUDGET, "batch_size": "32"},
    }
    HParams = LFDNNHParams
    description = "Late-fusion DNN (MMSA): time-averaged audio/vision MLPs + text LSTM, fused by an MLP"

    @classmethod
    def default_hparams(cls, family: str, setting: str) -> LFDNNHParams:
        return LFDNNHParams(**(_MOSEI if family == "mosei" else {}))

    @classmethod
    def describe_groups(cls):
        return {"text_subnet": ("text_lstm", "text_proj"), "audio_subnet": ("audio_subnet",),
                "vision_subnet": ("vision_subnet",), "post_fusion": ("post_fusion",)}

    def __init__(self, hp: LFDNNHParams, info: DataInfo):
        super().__init__(hp, info)
        out_dim = self._build_encoders(hp, info, hp.text_out)
        fused = hp.text_out + hp.hidden_audio + hp.hidden_vision
        self.post_fusion = nn.Sequential(
            nn.Dropout(hp.dropout_post),
            nn.Linear(fused, hp.post_fusion_dim), nn.ReLU(),
            nn.Linear(hp.post_fusion_dim, hp.post_fusion_dim), nn.ReLU(),
            nn.Linear(hp.post_fusion_dim, out_dim),
        )

    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        h_a, h_v, h_t = self._encode(batch)
        fused = torch.cat([h_a, h_v, h_t], dim=-1)  # MMSA's order: audio, video, text
        out = self.post_fusion(fused)
        pred = out if self.info.task == "classification" else out.squeeze(-1)
        return {"pred": pred, "fused": fused}

    export_keys = ("fused",)
