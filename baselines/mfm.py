"""MFM: Multimodal Factorization Model (Tsai et al., ICLR 2019), as thuiar/MMSA defines it (EMOE Table 2 row).

Sources (facts only, code written here): MMSA 2.2.1 (PyPI wheel, 2022-10-25) ``MMSA/models/singleTask/MFM.py``,
``MMSA/models/singleTask/MFN.py``, ``MMSA/trains/singleTask/MFM.py``, ``MMSA/config/config_regression.json``
("mfm" block); the same model file is stored as thuiar/MMSA@0cab1258ba54600a7cd01820efc306f70d604c8b
``src/MMSA/models/singleTask/MFM.py`` and the trainer as
thuiar/MMSA@0cab1258ba54600a7cd01820efc306f70d604c8b ``src/MMSA/trains/singleTask/MFM.py``;
config at thuiar/MMSA@085d2ccd2a58dc515c8680d83e89ddc96903cf24 ``src/MMSA/config/config_regression.json``
("mfm": need_data_aligned=true, need_model_aligned=true, need_normalized=false, early_stop=8).
Model-side alignment: thuiar/MMSA@177bc0462a61b355c554812dedd432a21f374130 ``src/MMSA/models/AMIO.py`` and
``src/MMSA/models/subNets/AlignNets.py`` (thuiar/MMSA@d11d56ecbb765902c8c987131e512f4665cb998d: contiguous
windows; the 2.2.1 wheel: strided, see :func:`baselines._align.avg_pool_align`).
Original: pliang279/factorized@1e6cf289d54e386cd972c3542f99376fec151cf7 ``mfm_model.py`` / ``mfm_mosi.py``.

Model (all recurrences over *time*; inputs (B, T, D) with T the text length after alignment):

* **generative, modality-specific factors** ``z_m`` (m = l, a, v): a one-layer LSTM over the sequence,
  last hidden state -> Linear(z_m, z_m);
* **discriminative factor** ``z_y``: MMSA's Memory Fusion Network (three LSTMCells + delta-memory attention +
  gated multi-view memory) read at the last step, ``[h_l; h_a; h_v; mem]`` -> Linear -> ``z_y``. MMSA
  also builds the MFN's own output head (Linear, ReLU, Linear) and computes it but never uses it: built here
  (``build_unused``, for parameter-count parity) and never run;
* ``f_k = relu(fc2(dropout(relu(fc1(z_k)))))`` for k = y, l, a, v;
* decoders: ``[f_y; f_m]`` feeds an LSTMCell (hidden size ``|f_y| + |f_m|``) whose step-0 input is
  ``[f_y; f_m]`` and whose later inputs are its own previous hidden state, T steps, then Linear -> d_m;
* prediction ``y_hat = fc2(dropout(relu(fc1(f_y))))``.

Objective (trainer): ``L1(y_hat, y) + lda_xl*MSE(x_l_hat, x_l) + lda_xa*MSE(x_a_hat, x_a)
+ lda_xv*MSE(x_v_hat, x_v) + lda_mmd*(MMD(z_l) + MMD(z_a) + MMD(z_v) + MMD(z_y))``, where each MMD compares
the batch of factors with an equally sized fresh N(0, I) sample using the kernel
``k(x, y) = exp(-mean_d((x_d - y_d)^2) / dim)`` (i.e. ``exp(-||x - y||^2 / dim^2)``: the mean is divided by
``dim`` again) and the biased estimate ``mean k(g, g) + mean k(z, z) - 2 mean k(g, z)``. Validation loss =
L1 only (mean of per-batch values, 4 dp). Adam **without an lr argument** (torch default 1e-3: the config's
``learning_rate`` is never read) and with the config's ``weight_decay``; no scheduler, no clipping, early
stop 8.

Unaligned data: MMSA's AMIO applies ``AlignSubNet(avg_pool)`` (``need_model_aligned``) to audio and vision
before the model, pooling them to the text length; the same is done here (:func:`baselines._align.avg_pool_align`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from baselines._align import avg_pool_align
from bench.config import NonNegFloat, PosInt, Prob, check_hparams, choice
from bench.data.tensors import DataInfo, Split
from bench.errors import UserError
from bench.method import COMPACT_BUDGET, Method, TrainHParams
from bench.registry import register_method

ADAM_DEFAULT_LR = 1e-3  # what MMSA's MFM trainer gets from ``optim.Adam(params, weight_decay=...)``


# ------------------------------------------------------------------------------ model-side alignment
def align_to_text(batch: Split, pooling: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(text, audio, vision) with audio/vision pooled to the text length when their lengths differ (AMIO)."""
    t = batch.text.shape[1]
    a, v = batch.audio, batch.vision
    if not (a.shape[1] == t and v.shape[1] == t):
        a, v = avg_pool_align(a, t, pooling), avg_pool_align(v, t, pooling)
    return batch.text, a, v


# ------------------------------------------------------------------------------ MMD prior matching
def mmsa_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(n, d), (m, d) -> (n, m): ``exp(-mean_d((x_i - y_j)^2) / d)`` (MMSA/original ``compute_kernel``)."""
    dim = x.shape[1]
    return torch.exp(-(x[:, None, :] - y[None, :, :]).pow(2).mean(dim=2) / float(dim))


def mmd(z: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Biased MMD^2 between factors ``z`` and a prior sample (both (n, d)); MMSA ``loss_MMD``."""
    return mmsa_kernel(prior, prior).mean() + mmsa_kernel(z, z).mean() - 2.0 * mmsa_kernel(prior, z).mean()


# ------------------------------------------------------------------------------ hyper-parameters
@dataclass
class MFMHParams(TrainHParams):
    # MMSA config_regression.json "mfm" (MOSI block); hidden_dims = [text, audio, video] of the MFN LSTMs
    hidden_text: PosInt = 128
    hidden_audio: PosInt = 32
    hidden_vision: PosInt = 128
    zy_size: PosInt = 80
    zl_size: PosInt = 64
    za_size: PosInt = 80
    zv_size: PosInt = 80
    fy_size: PosInt = 64
    fl_size: PosInt = 32
    fa_size: PosInt = 16
    fv_size: PosInt = 64
    zy_to_fy_dropout: Prob = 0.5
    zl_to_fl_dropout: Prob = 0.5
    za_to_fa_dropout: Prob = 0.7
    zv_to_fv_dropout: Prob = 0.5
    fy_to_y_dropout: Prob = 0.0
    lda_mmd: NonNegFloat = 100.0
    lda_xl: NonNegFloat = 0.5
    lda_xa: NonNegFloat = 0.01
    lda_xv: NonNegFloat = 0.5
    memsize: PosInt = 64
    # MMSA's MFN only works with 2 (it concatenates previous and current cell states)
    windowsize: Annotated[int, choice(2, why="MMSA's MFN concatenates exactly two steps of cell states")] = 2
    nn1_shape: PosInt = 32  # NN1Config (delta-memory attention)
    nn1_dropout: Prob = 0.7
    nn2_shape: PosInt = 64  # NN2Config (memory proposal)
    nn2_dropout: Prob = 0.0
    gamma1_shape: PosInt = 32  # gamma1Config (retain gate)
    gamma1_dropout: Prob = 0.0
    gamma2_shape: PosInt = 64  # gamma2Config (update gate)
    gamma2_dropout: Prob = 0.5
    out_shape: PosInt = 128  # outConfig: the MFN's own output head, built but unused inside MFM
    out_dropout: Prob = 0.2
    # MMSA's trainer builds Adam(params, weight_decay=wd) without lr -> torch's default 1e-3 (the original
    # MFM code does the same). False = that; True = use ``learning_rate`` (the config value).
    apply_config_lr: bool = False
    # Build the unused MFN output head (MMSA builds it; it never receives a gradient) for parameter parity.
    build_unused: bool = True
    # Unaligned data (MMSA AlignSubNet avg_pool): "windows" = contiguous windows (MMSA master),
    # "strided" = interleaved frames (MMSA 2.2.1 wheel).
    align_pooling: Literal["windows", "strided"] = "windows"
    batch_size: int = 64
    learning_rate: float = 2e-3  # the config value; inert unless apply_config_lr (see above)
    weight_decay: float = 1e-3
    early_stop: int = 8
    val_loss: str = "batch_mean_4dp"  # MMSA: round(mean of per-batch L1, 4)


_MOSEI = dict(hidden_text=256, hidden_audio=32, hidden_vision=256, zy_size=32, zl_size=256, za_size=80, zv_size=80,
              fy_size=16, fl_size=32, fa_size=80, fv_size=32, zy_to_fy_dropout=0.2, zl_to_fl_dropout=0.7,
              za_to_fa_dropout=0.7, zv_to_fv_dropout=0.7, fy_to_y_dropout=0.2, lda_mmd=10.0, lda_xl=5.0,
              lda_xa=2.0, lda_xv=5.0, memsize=64, windowsize=2, nn1_shape=1278, nn1_dropout=0.5, nn2_shape=32,
              nn2_dropout=0.7, gamma1_shape=64, gamma1_dropout=0.5, gamma2_shape=128, gamma2_dropout=0.2,
              out_shape=256, out_dropout=0.0, batch_size=64, learning_rate=1e-3, weight_decay=5e-4)


# ------------------------------------------------------------------------------ modules
class _MFN(nn.Module):
    """MMSA's Memory Fusion Network body; ``forward`` returns ``[h_l; h_a; h_v; mem]`` at the last step."""

    def __init__(self, dims: tuple[int, int, int], hp: MFMHParams):
        super().__init__()
        d_l, d_a, d_v = dims
        self.hidden = (hp.hidden_text, hp.hidden_audio, hp.hidden_vision)
        total = sum(self.hidden)
        att_in = total * hp.windowsize
        gamma_in = att_in + hp.memsize
        self.memsize = hp.memsize
        self.lstm_l = nn.LSTMCell(d_l, hp.hidden_text)
        self.lstm_a = nn.LSTMCell(d_a, hp.hidden_audio)
        self.lstm_v = nn.LSTMCell(d_v, hp.hidden_vision)
        self.att1_fc1 = nn.Linear(att_in, hp.nn1_shape)
        self.att1_fc2 = nn.Linear(hp.nn1_shape, att_in)
        self.att1_drop = nn.Dropout(hp.nn1_dropout)
        self.att2_fc1 = nn.Linear(att_in, hp.nn2_shape)
        self.att2_fc2 = nn.Linear(hp.nn2_shape, hp.memsize)
        self.att2_drop = nn.Dropout(hp.nn2_dropout)
        self.gamma1_fc1 = nn.Linear(gamma_in, hp.gamma1_shape)
        self.gamma1_fc2 = nn.Linear(hp.gamma1_shape, hp.memsize)
        self.gamma1_drop = nn.Dropout(hp.gamma1_dropout)
        self.gamma2_fc1 = nn.Linear(gamma_in, hp.gamma2_shape)
        self.gamma2_fc2 = nn.Linear(hp.gamma2_shape, hp.memsize)
        self.gamma2_drop = nn.Dropout(hp.gamma2_dropout)

    @staticmethod
    def _mlp(x, fc1, drop, fc2):
        return fc2(drop(F.relu(fc1(x))))

    def forward(self, x_l: torch.Tensor, x_a: torch.Tensor, x_v: torch.Tensor) -> torch.Tensor:
        b = x_l.shape[0]
        state = [(x_l.new_zeros(b, h), x_l.new_zeros(b, h)) for h in self.hidden]
        mem = x_l.new_zeros(b, self.memsize)
        cells = (self.lstm_l, self.lstm_a, self.lstm_v)
        for t in range(x_l.shape[1]):
            prev_c = torch.cat([c for _, c in state], dim=1)
            state = [cell(x[:, t], hc) for cell, x, hc in zip(cells, (x_l, x_a, x_v), state, strict=True)]
            c_star = torch.cat([prev_c] + [c for _, c in state], dim=1)
            attention = torch.softmax(self._mlp(c_star, self.att1_fc1, self.att1_drop, self.att1_fc2), dim=1)
            attended = attention * c_star
            c_hat = torch.tanh(self._mlp(attended, self.att2_fc1, self.att2_drop, self.att2_fc2))
            both = torch.cat([attended, mem], dim=1)
            gamma1 = torch.sigmoid(self._mlp(both, self.gamma1_fc1, self.gamma1_drop, self.gamma1_fc2))
            gamma2 = torch.sigmoid(self._mlp(both, self.gamma2_fc1, self.gamma2_drop, self.gamma2_fc2))
            mem = gamma1 * mem + gamma2 * c_hat
        return torch.cat([h for h, _ in state] + [mem], dim=1)


class _Encoder(nn.Module):
    """One-layer LSTM over time; the last hidden state -> Linear(z, z) (MMSA ``encoderLSTM``; the LSTMCell
    loop there equals one ``nn.LSTM`` pass without packing)."""

    def __init__(self, d: int, z: int):
        super().__init__()
        self.lstm = nn.LSTM(d, z, batch_first=True)
        self.fc1 = nn.Linear(z, z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x)
        return self.fc1(h_n[-1])


class _Decoder(nn.Module):
    """MMSA ``decoderLSTM``: LSTMCell(h, h) fed ``f`` at step 0 and its own hidden state after; Linear(h, d)."""

    def __init__(self, h: int, d: int):
        super().__init__()
        self.lstm = nn.LSTMCell(h, h)
        self.fc1 = nn.Linear(h, d)

    def forward(self, f: torch.Tensor, steps: int) -> torch.Tensor:
        """(B, h) -> (B, steps, d)."""
        hx, cx = f.new_zeros(f.shape), f.new_zeros(f.shape)
        inp, hs = f, []
        for _ in range(steps):
            hx, cx = self.lstm(inp, (hx, cx))
            hs.append(hx)
            inp = hx
        return self.fc1(torch.stack(hs, dim=1))


class _Factor(nn.Module):
    """``z -> relu(fc2(dropout(relu(fc1(z)))))`` (MMSA ``z*_to_f*``)."""

    def __init__(self, z: int, f: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(z, f)
        self.fc2 = nn.Linear(f, f)
        self.drop = nn.Dropout(dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc2(self.drop(F.relu(self.fc1(z)))))


@register_method("mfm")
class MFM(Method):
    # budgets beside the model (see bench.method.Method.presets)
    presets: ClassVar[dict[str, dict[str, str]]] = {
        "compact": {**COMPACT_BUDGET, "batch_size": "32"},
        "tiny": {"hidden_text": "16", "hidden_audio": "8", "hidden_vision": "8", "zy_size": "8", "zl_size": "8",
                 "za_size": "8", "zv_size": "8", "fy_size": "8", "fl_size": "8", "fa_size": "8", "fv_size": "8",
                 "memsize": "8", "nn1_shape": "8", "nn2_shape": "8", "gamma1_shape": "8", "gamma2_shape": "8",
                 "out_shape": "8"},
    }
    HParams = MFMHParams
    default_setting = "aligned"  # MMSA need_data_aligned=true; unaligned data is pooled (need_model_aligned=true)
    export_keys = ("fused",)
    description = ("Multimodal Factorization Model (MMSA): MFN discriminative factor + per-modality generative "
                   "factors, LSTM decoders, L1 + weighted MSE reconstructions + MMD prior matching")

    @classmethod
    def default_hparams(cls, family: str, setting: str) -> MFMHParams:
        """MMSA's "mfm" block for ``family`` (the same for aligned and unaligned data)."""
        if family not in ("mosi", "mosei"):
            raise UserError(f"mfm has no configuration for {family!r} (supported: mosi, mosei)")
        return MFMHParams(**(_MOSEI if family == "mosei" else {}))

    @classmethod
    def describe_groups(cls):
        return {
            "encoders": ("encoder_l", "encoder_a", "encoder_v"),
            "mfn": ("mfn",),
            "zy_proj": ("last_to_zy",),
            "factor_mlps": ("zy_to_fy", "zl_to_fl", "za_to_fa", "zv_to_fv"),
            "decoders": ("decoder_l", "decoder_a", "decoder_v"),
            "head": ("fy_to_y_fc1", "fy_to_y_fc2"),
            "unused_mfn_head": ("mfn_out_fc1", "mfn_out_fc2"),
        }

    def __init__(self, hp: MFMHParams, info: DataInfo):
        super().__init__(hp, info)
        check_hparams(hp)
        if not info.has_text_features:
            raise UserError("mfm (MMSA, use_bert unset) needs precomputed text features (the pickle's 'text' "
                            "array); this dataset has only BERT token ids")
        dims = (info.dims["text"], info.dims["audio"], info.dims["vision"])
        out_dim = info.num_classes if info.task == "classification" else 1
        self.encoder_l = _Encoder(dims[0], hp.zl_size)
        self.encoder_a = _Encoder(dims[1], hp.za_size)
        self.encoder_v = _Encoder(dims[2], hp.zv_size)
        self.decoder_l = _Decoder(hp.fy_size + hp.fl_size, dims[0])
        self.decoder_a = _Decoder(hp.fy_size + hp.fa_size, dims[1])
        self.decoder_v = _Decoder(hp.fy_size + hp.fv_size, dims[2])
        self.mfn = _MFN(dims, hp)
        last_mfn = hp.hidden_text + hp.hidden_audio + hp.hidden_vision + hp.memsize
        if hp.build_unused:  # MMSA's MFN output head: computed there, never in the loss -> never trained
            self.mfn_out_fc1 = nn.Linear(last_mfn, hp.out_shape)
            self.mfn_out_fc2 = nn.Linear(hp.out_shape, out_dim)
        self.last_to_zy = nn.Linear(last_mfn, hp.zy_size)
        self.zy_to_fy = _Factor(hp.zy_size, hp.fy_size, hp.zy_to_fy_dropout)
        self.zl_to_fl = _Factor(hp.zl_size, hp.fl_size, hp.zl_to_fl_dropout)
        self.za_to_fa = _Factor(hp.za_size, hp.fa_size, hp.za_to_fa_dropout)
        self.zv_to_fv = _Factor(hp.zv_size, hp.fv_size, hp.zv_to_fv_dropout)
        self.fy_to_y_fc1 = nn.Linear(hp.fy_size, hp.fy_size)
        self.fy_to_y_fc2 = nn.Linear(hp.fy_size, out_dim)
        self.fy_to_y_drop = nn.Dropout(hp.fy_to_y_dropout)

    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        x_l, x_a, x_v = align_to_text(batch, self.hp.align_pooling)
        z_l, z_a, z_v = self.encoder_l(x_l), self.encoder_a(x_a), self.encoder_v(x_v)
        z_y = self.last_to_zy(self.mfn(x_l, x_a, x_v))
        f_y, f_l = self.zy_to_fy(z_y), self.zl_to_fl(z_l)
        f_a, f_v = self.za_to_fa(z_a), self.zv_to_fv(z_v)
        steps = x_l.shape[1]
        out = self.fy_to_y_fc2(self.fy_to_y_drop(F.relu(self.fy_to_y_fc1(f_y))))
        pred = out if self.info.task == "classification" else out.squeeze(-1)
        return {
            "pred": pred, "fused": f_y,
            "z_l": z_l, "z_a": z_a, "z_v": z_v, "z_y": z_y,
            "x_l": x_l, "x_a": x_a, "x_v": x_v,
            "x_l_hat": self.decoder_l(torch.cat([f_y, f_l], dim=1), steps),
            "x_a_hat": self.decoder_a(torch.cat([f_y, f_a], dim=1), steps),
            "x_v_hat": self.decoder_v(torch.cat([f_y, f_v], dim=1), steps),
        }

    def loss_terms(self, out: dict[str, torch.Tensor], batch: Split) -> dict[str, torch.Tensor]:
        hp = self.hp
        task = self.task_loss(out["pred"], batch.labels)
        rec = {m: F.mse_loss(out[f"x_{m}_hat"], out[f"x_{m}"]) for m in ("l", "a", "v")}
        gen = hp.lda_xl * rec["l"] + hp.lda_xa * rec["a"] + hp.lda_xv * rec["v"]
        # one fresh N(0, I) sample per factor, the factor's size (MMSA draws torch.randn(z.size()))
        mmds = {k: mmd(out[f"z_{k}"], torch.randn_like(out[f"z_{k}"])) for k in ("l", "a", "v", "y")}
        mmd_sum = mmds["l"] + mmds["a"] + mmds["v"] + mmds["y"]
        total = task + gen + hp.lda_mmd * mmd_sum
        return {"total": total, "task": task, "gen": gen, "mmd": hp.lda_mmd * mmd_sum,
                "recon_text": rec["l"], "recon_audio": rec["a"], "recon_vision": rec["v"]}

    def param_groups(self):
        lr = self.hp.learning_rate if self.hp.apply_config_lr else ADAM_DEFAULT_LR
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr,
                 "weight_decay": self.hp.weight_decay}]

    def record(self):
        seq = self.info.seq_lens
        pooled = seq["audio"] != seq["text"] or seq["vision"] != seq["text"]
        return {"effective_learning_rate": self.hp.learning_rate if self.hp.apply_config_lr else ADAM_DEFAULT_LR,
                "model_aligned": f"avg_pool ({self.hp.align_pooling}) to text length {seq['text']}" if pooled
                else "already aligned"}
