"""Self-MM (Yu et al. 2021) as thuiar/MMSA implements it (``models/multiTask/SELF_MM.py`` and
``trains/multiTask/SELF_MM.py`` @ a94e65d; docs/baselines.md).

Text = the [CLS] vector of fine-tuned BERT (features mode: the first time step of the frozen ``text``
features, i.e. the [CLS] position of MMSA's BERT features). Audio/vision = one unidirectional LSTM over
the packed sequence (own lengths on unaligned data, the text length on aligned data), final hidden
state → Dropout → Linear. Four 3-layer heads (fusion on cat[text, audio, vision], text, audio, vision):
``h = ReLU(L1(Dropout(x)))``, ``ŷ = L3(ReLU(L2(h)))``; ``h`` (post-ReLU, computed with dropout active)
is the feature the label generator uses.

ULGM (unimodal label generation module) keeps, for the whole training split, one feature row per
sample and modality, the positive/negative class centres and the generated unimodal labels. Labels
start at the multimodal label y_m and from epoch 2 on are moved, after each batch's backward, towards
ŷ_s = clamp(0.5·α_s·y_m + 0.5·(y_m + δ_s − δ_f), −H, H) with momentum (n−1)/(n+1), n = epoch.
Loss = Σ_m mean(w_m·|ŷ_m − y_m^gen|) with w_M = 1, w_s = tanh(|y_s − y_m|). Because a sample's label
first moves after its own epoch-2 batch, w_s is exactly 0 for every sample in epochs 1 *and* 2: the
unimodal heads get their first non-zero gradient in epoch 3 (as in MMSA; coupled weight decay still
moves them before that). The state lives in non-persistent buffers on the model's device and is
updated by vectorised indexing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from baselines._eras import apply_era, era_defaults
from bench.config import NonNegFloat, PosFloat, PosInt, Prob
from bench.data.tensors import DataInfo, Split
from bench.errors import UserError
from bench.method import COMPACT_BUDGET, Method, TrainHParams
from bench.nn.text import TextInput, av_lengths
from bench.registry import register_method
from bench.text_hparams import TextEncoderHParams

HEADS = ("f", "t", "a", "v")  # fusion, text, audio, vision: rows of the ULGM label table
OUT_KEYS = {"t": "T", "a": "A", "v": "V"}
MIN = 1e-8  # MMSA's epsilon in the label update


@dataclass
class SelfMMHParams(TextEncoderHParams, TrainHParams):
    # "current" = MMSA config_regression.json (equal to the 2021 table values, 9a87fa0: "table2021" is
    # the same); "original" = thuiar/Self-MM config (config/config_regression.py)
    hparams_era: Literal["current", "table2021", "original"] = "current"
    hparams_family: Literal["mosi", "mosei"] = "mosi"
    # --- text: TextEncoderHParams (MMSA use_finetune)
    # --- audio/vision subnets (one-layer unidirectional LSTM + Linear)
    a_lstm_hidden: PosInt = 16
    v_lstm_hidden: PosInt = 32
    a_lstm_dropout: Prob = 0.0
    v_lstm_dropout: Prob = 0.0
    audio_out: PosInt = 16
    video_out: PosInt = 32
    # "auto": own lengths when the data has them (unaligned), else the text length (MMSA aligned);
    # "text": always the text length; "own": always own lengths (error on aligned data without them)
    lengths_from: Literal["auto", "text", "own"] = "auto"
    # --- heads
    post_fusion_dim: PosInt = 128
    post_text_dim: PosInt = 32
    post_audio_dim: PosInt = 16
    post_video_dim: PosInt = 32
    post_fusion_dropout: Prob = 0.0
    post_text_dropout: Prob = 0.1
    post_audio_dropout: Prob = 0.1
    post_video_dropout: Prob = 0.0
    # --- ULGM
    H: PosFloat = 3.0  # clamp of the generated labels
    exclude_zero: bool = True  # MMSA excludeZero: label-0 samples are in neither centre
    # --- optimisation: Adam with coupled L2, five groups (BERT decay / no-decay, audio, video, other)
    learning_rate_bert: PosFloat = 5e-5
    learning_rate_audio: PosFloat = 5e-3
    learning_rate_video: PosFloat = 5e-3
    learning_rate_other: PosFloat = 1e-3
    weight_decay_bert: NonNegFloat = 1e-3
    weight_decay_audio: NonNegFloat = 1e-3
    weight_decay_video: NonNegFloat = 1e-3
    weight_decay_other: NonNegFloat = 1e-3
    batch_size: int = 16
    learning_rate: float = 1e-3  # unused (per-group rates above); kept equal to learning_rate_other
    grad_accum: int = 4  # MMSA update_epochs
    grad_clip_value: float = 0.0  # Self-MM does not clip
    early_stop: int = 8

    def validate(self) -> None:
        apply_era(self, ERAS)
        self.validate_text_encoder("self_mm")


_MOSI = dict(batch_size=16, learning_rate_bert=5e-5, learning_rate_audio=5e-3, learning_rate_video=5e-3,
             learning_rate_other=1e-3, learning_rate=1e-3, weight_decay_bert=1e-3, weight_decay_audio=1e-3,
             weight_decay_video=1e-3, weight_decay_other=1e-3, a_lstm_hidden=16, v_lstm_hidden=32,
             post_fusion_dim=128, post_text_dim=32, post_audio_dim=16, post_video_dim=32,
             post_fusion_dropout=0.0, post_text_dropout=0.1, post_audio_dropout=0.1, post_video_dropout=0.0)
_MOSEI = dict(batch_size=32, learning_rate_bert=5e-5, learning_rate_audio=5e-3, learning_rate_video=1e-4,
              learning_rate_other=1e-3, learning_rate=1e-3, weight_decay_bert=1e-3, weight_decay_audio=0.0,
              weight_decay_video=0.0, weight_decay_other=1e-2, a_lstm_hidden=16, v_lstm_hidden=32,
              post_fusion_dim=128, post_text_dim=32, post_audio_dim=16, post_video_dim=32,
              post_fusion_dropout=0.1, post_text_dropout=0.0, post_audio_dropout=0.0, post_video_dropout=0.0)
# MMSA config_regression.json "self_mm" (same today and at table time) and thuiar/Self-MM's own config.
ERAS = {
    "mosi": {"current": _MOSI, "table2021": _MOSI,
             "original": dict(_MOSI, batch_size=32, learning_rate_audio=1e-3, learning_rate_video=1e-4,
                              weight_decay_audio=1e-2, a_lstm_hidden=32, v_lstm_hidden=64, post_text_dim=64,
                              post_fusion_dropout=0.1, post_text_dropout=0.0, post_audio_dropout=0.1,
                              post_video_dropout=0.1)},
    "mosei": {"current": _MOSEI, "table2021": _MOSEI,
              "original": dict(_MOSEI, batch_size=32, a_lstm_hidden=32, v_lstm_hidden=32, post_video_dim=16,
                               post_fusion_dropout=0.0, post_text_dropout=0.1, post_audio_dropout=0.0,
                               post_video_dropout=0.1)},
}


class AuViSubNet(nn.Module):
    """Packed one-layer LSTM; final hidden state → Dropout → Linear (MMSA ``AuViSubNet``)."""

    def __init__(self, d_in: int, hidden: int, d_out: int, dropout: float):
        super().__init__()
        self.rnn = nn.LSTM(d_in, hidden, num_layers=1, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.clamp(1, x.shape[1]).to("cpu", torch.int64)
        _, (h, _) = self.rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        return self.linear(self.dropout(h[0]))


class Head(nn.Module):
    """``h = ReLU(L1(Dropout(x)))``; ``y = L3(ReLU(L2(h)))``; returns (h, y)."""

    def __init__(self, d_in: int, d_hidden: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.layer_1 = nn.Linear(d_in, d_hidden)
        self.layer_2 = nn.Linear(d_hidden, d_hidden)
        self.layer_3 = nn.Linear(d_hidden, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.layer_1(self.dropout(x)))
        return h, self.layer_3(torch.relu(self.layer_2(h)))


@register_method("self_mm")
class SelfMM(Method):
    # budgets beside the model (see bench.method.Method.presets)
    presets: ClassVar[dict[str, dict[str, str]]] = {
        "compact": {**COMPACT_BUDGET, "grad_accum": "1"},
    }
    HParams = SelfMMHParams
    families = ("mosi", "mosei")
    export_keys = ("fused", "T", "A", "V")
    description = ("Self-MM (MMSA): BERT [CLS] + LSTM audio/vision, fusion and unimodal heads trained on "
                   "self-generated unimodal labels (ULGM)")

    @classmethod
    def default_hparams(cls, family: str, setting: str, era: str = "current") -> SelfMMHParams:
        return era_defaults("self_mm", SelfMMHParams, ERAS, family, era)

    @classmethod
    def describe_groups(cls) -> dict[str, tuple[str, ...]]:
        return {"bert": ("text",), "audio_encoder": ("audio_model",), "vision_encoder": ("video_model",),
                "fusion_head": ("heads.f",), "text_head": ("heads.t",), "audio_head": ("heads.a",),
                "vision_head": ("heads.v",)}

    def __init__(self, hp: SelfMMHParams, info: DataInfo, bert_config=None):
        super().__init__(hp, info)
        if info.task != "regression":
            raise UserError("self_mm: only the regression form (MOSI/MOSEI) is implemented")
        self.text = TextInput("self_mm", info, hp.text_mode, hp.text_model, hp.text_finetune, bert_config)
        d_t = self.text.dim
        self.audio_model = AuViSubNet(int(info.dims["audio"]), hp.a_lstm_hidden, hp.audio_out,
                                      hp.a_lstm_dropout)
        self.video_model = AuViSubNet(int(info.dims["vision"]), hp.v_lstm_hidden, hp.video_out,
                                      hp.v_lstm_dropout)
        self.heads = nn.ModuleDict({
            "f": Head(d_t + hp.audio_out + hp.video_out, hp.post_fusion_dim, hp.post_fusion_dropout),
            "t": Head(d_t, hp.post_text_dim, hp.post_text_dropout),
            "a": Head(hp.audio_out, hp.post_audio_dim, hp.post_audio_dropout),
            "v": Head(hp.video_out, hp.post_video_dim, hp.post_video_dropout),
        })
        self.feature_dims = {"f": hp.post_fusion_dim, "t": hp.post_text_dim, "a": hp.post_audio_dim,
                             "v": hp.post_video_dim}
        # ULGM state, allocated for the training split by on_epoch_start(1, train); not in state_dict.
        self.register_buffer("ulgm_labels", torch.zeros(len(HEADS), 0), persistent=False)  # rows f,t,a,v
        for m in HEADS:
            self.register_buffer(f"ulgm_features_{m}", torch.zeros(0, self.feature_dims[m]), persistent=False)
            self.register_buffer(f"ulgm_centres_{m}", torch.zeros(2, self.feature_dims[m]), persistent=False)
        self.lengths_used = ""

    # ------------------------------------------------------------------------------ forward
    def _lengths(self, batch: Split) -> tuple[torch.Tensor, torch.Tensor]:
        len_a, len_v, self.lengths_used = av_lengths(batch, self.hp.lengths_from, "self_mm")
        return len_a, len_v

    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        seq, _ = self.text(batch)
        x_t = seq[:, 0, :]  # [CLS]
        len_a, len_v = self._lengths(batch)
        x_a = self.audio_model(batch.audio, len_a)
        x_v = self.video_model(batch.vision, len_v)
        inputs = {"f": torch.cat([x_t, x_a, x_v], dim=-1), "t": x_t, "a": x_a, "v": x_v}
        out: dict[str, torch.Tensor] = {}
        for m in HEADS:
            h, y = self.heads[m](inputs[m])
            out[f"feature_{m}"] = h
            out["pred" if m == "f" else OUT_KEYS[m]] = y.squeeze(-1)
        out["fused"] = out["feature_f"]
        return out

    # ------------------------------------------------------------------------------ ULGM
    @property
    def ulgm_ready(self) -> bool:
        return self.ulgm_labels.shape[1] > 0

    def generated_labels(self) -> dict[str, torch.Tensor]:
        """The current ULGM labels per training-split position: keys "M" (= y_m), "T", "A", "V"."""
        return {"M" if m == "f" else OUT_KEYS[m]: self.ulgm_labels[i].clone() for i, m in enumerate(HEADS)}

    def on_epoch_start(self, epoch: int, train: Split) -> None:
        if epoch != 1:
            return
        n, dev = len(train), train.labels.device
        if int(train.index.max()) >= n or int(train.index.min()) < 0:
            raise UserError("self_mm: sample index must be the position in the training split")
        labels = torch.zeros(len(HEADS), n, device=dev)
        labels[:, train.index] = train.labels.float().to(dev)
        self.ulgm_labels = labels
        for m in HEADS:
            setattr(self, f"ulgm_features_{m}", torch.zeros(n, self.feature_dims[m], device=dev))
            setattr(self, f"ulgm_centres_{m}", torch.zeros(2, self.feature_dims[m], device=dev))

    def after_step(self, out: dict[str, torch.Tensor], batch: Split, epoch: int) -> None:
        """MMSA order after backward: update labels (epoch > 1, previous batch's centres), write the
        batch's features, recompute all centres."""
        if not self.ulgm_ready:
            raise RuntimeError("self_mm: ULGM state is not initialised; call on_epoch_start(1, train) first")
        idx = batch.index.to(self.ulgm_labels.device)
        feats = {m: out[f"feature_{m}"].detach().float() for m in HEADS}
        if epoch > 1:
            self.update_labels(feats, idx, epoch)
        for m in HEADS:
            getattr(self, f"ulgm_features_{m}")[idx] = feats[m]
        self.update_centres()

    def _delta(self, m: str, feat: torch.Tensor) -> torch.Tensor:
        c = getattr(self, f"ulgm_centres_{m}")
        d_pos = torch.norm(feat - c[0], dim=-1)
        d_neg = torch.norm(feat - c[1], dim=-1)
        return (d_neg - d_pos) / (d_pos + MIN)

    @torch.no_grad()
    def update_labels(self, feats: dict[str, torch.Tensor], idx: torch.Tensor, epoch: int) -> None:
        y_m = self.ulgm_labels[0, idx]
        delta_f = self._delta("f", feats["f"])
        n = float(epoch)
        for row, m in enumerate(HEADS[1:], start=1):
            delta_s = self._delta(m, feats[m])
            alpha = delta_s / (delta_f + MIN)
            new = 0.5 * alpha * y_m + 0.5 * (y_m + delta_s - delta_f)
            new = new.clamp(-self.hp.H, self.hp.H)
            self.ulgm_labels[row, idx] = (n - 1) / (n + 1) * self.ulgm_labels[row, idx] + 2 / (n + 1) * new

    @torch.no_grad()
    def update_centres(self) -> None:
        """Class centres over *all* training rows; unimodal partitions use the generated labels,
        fusion uses y_m. An empty side gives NaN, as in MMSA."""
        for row, m in enumerate(HEADS):
            lab, feat = self.ulgm_labels[row], getattr(self, f"ulgm_features_{m}")
            pos = lab > 0 if self.hp.exclude_zero else lab >= 0
            c = getattr(self, f"ulgm_centres_{m}")
            c[0] = feat[pos].mean(dim=0)
            c[1] = feat[lab < 0].mean(dim=0)

    # ------------------------------------------------------------------------------ objective
    def loss_terms(self, out: dict[str, torch.Tensor], batch: Split) -> dict[str, torch.Tensor]:
        """Σ_m mean(w_m·|ŷ_m − label_m|); before ULGM is initialised every label is y_m (epoch-1 state)."""
        if self.ulgm_ready:
            labels = self.ulgm_labels[:, batch.index.to(self.ulgm_labels.device)]
        else:
            labels = batch.labels.float().unsqueeze(0).expand(len(HEADS), -1)
        preds = {"f": out["pred"], "t": out["T"], "a": out["A"], "v": out["V"]}
        terms: dict[str, torch.Tensor] = {}
        for row, m in enumerate(HEADS):
            err = (preds[m].reshape(-1) - labels[row]).abs()
            if m == "f":
                terms["M"] = err.mean()
            else:
                terms[OUT_KEYS[m]] = (torch.tanh((labels[row] - labels[0]).abs()) * err).mean()
        terms["total"] = terms["M"] + terms["T"] + terms["A"] + terms["V"]
        return terms

    def param_groups(self) -> list[dict[str, Any]]:
        hp = self.hp
        bert_decay, bert_no_decay = [], []
        if self.text.bert is not None:
            for mod in self.text.bert.modules():
                for name, p in mod.named_parameters(recurse=False):
                    # MMSA: no decay for names containing "bias", "LayerNorm.bias", "LayerNorm.weight"
                    no_decay = "bias" in name or isinstance(mod, nn.LayerNorm)
                    (bert_no_decay if no_decay else bert_decay).append(p)
        taken = {id(p) for p in self.text.parameters()} | {id(p) for p in self.audio_model.parameters()} \
            | {id(p) for p in self.video_model.parameters()}
        other = [p for p in self.parameters() if id(p) not in taken]
        groups = [
            {"params": bert_decay, "lr": hp.learning_rate_bert, "weight_decay": hp.weight_decay_bert},
            {"params": bert_no_decay, "lr": hp.learning_rate_bert, "weight_decay": 0.0},
            {"params": list(self.audio_model.parameters()), "lr": hp.learning_rate_audio,
             "weight_decay": hp.weight_decay_audio},
            {"params": list(self.video_model.parameters()), "lr": hp.learning_rate_video,
             "weight_decay": hp.weight_decay_video},
            {"params": other, "lr": hp.learning_rate_other, "weight_decay": hp.weight_decay_other},
        ]
        return [g for g in groups if g["params"]]

    def record(self) -> dict[str, Any]:
        return {"text_mode": self.text.mode, "text_source": self.text.source, "text_dim": self.text.dim,
                "text_vector": "[CLS] (BERT position 0)" if self.text.mode == "bert" else "text[:, 0, :]",
                "lengths_from": self.hp.lengths_from, "hparams_era": self.hp.hparams_era,
                "train_samples": int(self.ulgm_labels.shape[1])}
