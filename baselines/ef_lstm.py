"""EF-LSTM: early-fusion LSTM (Williams et al. 2018), as thuiar/MMSA defines it (a Table 1-2 row).

Sources (facts only, code written here): thuiar/MMSA ``src/MMSA/models/singleTask/EF_LSTM.py``
(stored index id 149879391; the file is not under a commit in the index),
thuiar/MMSA@177bc0462a61b355c554812dedd432a21f374130 ``src/MMSA/trains/singleTask/EF_LSTM.py``
(Adam with lr and weight decay, L1, early stopping) and
thuiar/MMSA@085d2ccd2a58dc515c8680d83e89ddc96903cf24 ``src/MMSA/config/config_regression.json``
("ef_lstm" block: need_data_aligned=true, need_model_aligned=true, need_normalized=false, early_stop=8).

The frame-aligned text, audio and vision features are concatenated per time step (in that order),
normalised by ``BatchNorm1d(T)`` -- MMSA's ``norm = BatchNorm1d(input_len)`` on a (B, T, D) tensor,
i.e. one statistic per *time step* over batch and features -- fed to a ``num_layers`` LSTM (inter-layer
dropout); the last layer's final hidden state goes through dropout -> Linear+ReLU -> dropout ->
Linear. Padded frames are run through the LSTM like real ones (no packing), as in MMSA.

Unaligned data: the config sets ``need_model_aligned=true``, so MMSA's ``AMIO`` wrapper pools unaligned
audio/vision to the text length (``AlignSubNet`` avg_pool) before the model; the same is done here with
:func:`baselines._align.avg_pool_align` (``align_pooling`` picks the MMSA version: contiguous windows or the
2.2.1 wheel's interleaved frames). Without that pooling frames of different lengths could not be
concatenated (``unaligned_input="refuse"`` raises a :class:`~bench.errors.UserError` instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from baselines._align import avg_pool_align
from bench.config import PosInt, Prob
from bench.data.tensors import DataInfo, Split
from bench.errors import UserError
from bench.method import COMPACT_BUDGET, Method, TrainHParams
from bench.registry import register_method


@dataclass
class EFLSTMHParams(TrainHParams):
    # MMSA config_regression.json "ef_lstm"
    hidden: PosInt = 128
    num_layers: PosInt = 4
    dropout: Prob = 0.5  # LSTM inter-layer dropout and both head dropouts
    # Unaligned audio/vision: "pool" to the text length (MMSA's need_model_aligned) or "refuse".
    unaligned_input: Literal["pool", "refuse"] = "pool"
    align_pooling: Literal["windows", "strided"] = "windows"  # baselines/_align.py
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.005
    early_stop: int = 8


_MOSEI = dict(hidden=256, num_layers=2, dropout=0.4, batch_size=128, learning_rate=5e-3, weight_decay=1e-4)


def _unaligned_error(lens: dict) -> UserError:
    return UserError(f"ef_lstm concatenates modalities frame by frame and needs aligned data (equal "
                     f"sequence lengths), got {lens} with unaligned_input=refuse; use the 'aligned' setting or "
                     "--set unaligned_input=pool (MMSA's need_model_aligned pooling)")


@register_method("ef_lstm")
class EFLSTM(Method):
    # budgets beside the model (see bench.method.Method.presets)
    presets: ClassVar[dict[str, dict[str, str]]] = {
        "compact": {**COMPACT_BUDGET, "batch_size": "32", "num_layers": "2", "dropout": "0.2", "weight_decay": "0"},
    }
    HParams = EFLSTMHParams
    settings = ("aligned", "unaligned")  # unaligned audio/vision pooled to the text length (need_model_aligned)
    default_setting = "aligned"
    description = "Early-fusion LSTM (MMSA): per-frame concatenation -> BatchNorm over time -> LSTM stack"

    @classmethod
    def default_hparams(cls, family: str, setting: str) -> EFLSTMHParams:
        return EFLSTMHParams(**(_MOSEI if family == "mosei" else {}))

    @classmethod
    def describe_groups(cls):
        return {"norm": ("norm",), "lstm": ("lstm",), "head": ("linear", "out")}

    def __init__(self, hp: EFLSTMHParams, info: DataInfo):
        super().__init__(hp, info)
        if not info.has_text_features:
            raise UserError("ef_lstm needs precomputed text features (the pickle's 'text' array); "
                            "this dataset has only BERT token ids")
        lens = {m: info.seq_lens[m] for m in ("text", "audio", "vision")}
        if len(set(lens.values())) != 1 and hp.unaligned_input == "refuse":
            raise _unaligned_error(lens)
        out_dim = info.num_classes if info.task == "classification" else 1
        d_in = info.dims["text"] + info.dims["audio"] + info.dims["vision"]
        self.norm = nn.BatchNorm1d(lens["text"])
        self.lstm = nn.LSTM(d_in, hp.hidden, num_layers=hp.num_layers, batch_first=True,
                            dropout=hp.dropout if hp.num_layers > 1 else 0.0)
        self.drop = nn.Dropout(hp.dropout)
        self.linear = nn.Linear(hp.hidden, hp.hidden)
        self.out = nn.Linear(hp.hidden, out_dim)

    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        t, a, v = batch.text, batch.audio, batch.vision
        lens = {"text": t.shape[1], "audio": a.shape[1], "vision": v.shape[1]}
        if len(set(lens.values())) != 1:
            if self.hp.unaligned_input == "refuse":
                raise _unaligned_error(lens)
            a, v = avg_pool_align(a, t.shape[1], self.hp.align_pooling), avg_pool_align(v, t.shape[1],
                                                                                         self.hp.align_pooling)
        x = self.norm(torch.cat([t, a, v], dim=-1))
        _, (h_n, _) = self.lstm(x)
        h = F.relu(self.linear(self.drop(h_n[-1])))
        out = self.out(self.drop(h))
        pred = out if self.info.task == "classification" else out.squeeze(-1)
        return {"pred": pred, "hidden": h}

    export_keys = ("hidden",)
