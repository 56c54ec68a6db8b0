"""MFN: Memory Fusion Network (Zadeh et al., AAAI 2018), as thuiar/MMSA defines it (a Table 1-2 row).

Sources (facts only, code written here): thuiar/MMSA@36b03b85a4e9b88138f70343e4ef48964e1f5720
``src/MMSA/models/singleTask/MFN.py`` (model), thuiar/MMSA@177bc0462a61b355c554812dedd432a21f374130
``src/MMSA/trains/singleTask/MFN.py`` (Adam with lr and weight decay, L1, early stopping),
``src/MMSA/models/AMIO.py`` and ``src/MMSA/data_loader.py`` (alignment and ``need_normalized``),
thuiar/MMSA@d11d56ecbb765902c8c987131e512f4665cb998d ``src/MMSA/models/subNets/AlignNets.py`` and
thuiar/MMSA@085d2ccd2a58dc515c8680d83e89ddc96903cf24 ``src/MMSA/config/config_regression.json`` ("mfn"
block: need_data_aligned=true, need_model_aligned=true, need_normalized=true, early_stop=8). The original
code is pliang279/MFN@8ced02cc206f2aa2f2f504fe36fc1b4fd5f251c7 ``test_mosi.py`` (same model). The MMSA
2.2.1 PyPI wheel has the same model, trainer, loader step and config block (checked by unpacking it).

Inputs (MMSA's data path for this config). ``need_normalized`` makes the loader average audio and vision
over *all* (padded) frames, giving (B, 1, D); AMIO's ``AlignSubNet('avg_pool')`` then stretches them to
the text length (:func:`baselines._align.avg_pool_align`: 49 copies of the mean appended, windows of
one frame), so the audio and vision LSTHMs read the **utterance mean repeated at every step**
(``av_input="time_mean"``). ``av_input="sequence"`` feeds the frame sequences instead (the original MFN,
and MMSA's Graph-MFN); unaligned sequences are avg-pooled to the text length as AlignSubNet does
(``align_pooling``: the two MMSA versions group frames differently, see :mod:`baselines._align`).

Model. Three ``LSTMCell`` s (text, audio, vision) unrolled from zero states over T steps. At step t the
**delta-memory attention** reads ``c* = [c_{t-1}; c_t]`` (cells of l, a, v at t-1, then at t),
``a = softmax(att1(c*))``, ``attended = a * c*``, candidate ``c^ = tanh(att2(attended))``; the
**multi-view gated memory** updates ``u_t = sigmoid(gamma1([attended; u_{t-1}])) * u_{t-1} +
sigmoid(gamma2([attended; u_{t-1}])) * c^`` from ``u_0 = 0``. Every block is Linear -> ReLU -> dropout
-> Linear. Output ``out([h_l; h_a; h_v; u]_T)`` (the last step, padded steps included, as MMSA).
Windowsize is 2 (the only value MMSA's code can run: it concatenates exactly two steps).

The attention and the candidate do not depend on the memory, so they are computed for all steps at
once; the LSTM input projections likewise. Only the cell recurrence and the gate loop are sequential.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from baselines._align import avg_pool_align, pool_geometry
from baselines.lf_dnn import _time_mean
from bench.config import PosInt, Prob
from bench.data.tensors import DataInfo, Split
from bench.errors import UserError
from bench.method import COMPACT_BUDGET, Method, TrainHParams
from bench.registry import register_method

MODALITIES = ("text", "audio", "vision")  # MMSA's order inside MFN: l, a, v


@dataclass
class MemoryFusionHParams(TrainHParams):
    """Fields shared by MFN and Graph-MFN (values: MMSA "mfn" MOSI block)."""

    # config "hidden_dims" = [text, audio, video]
    hidden_text: PosInt = 256
    hidden_audio: PosInt = 32
    hidden_vision: PosInt = 256
    mem_size: PosInt = 400  # "memsize"
    # "NN2Config" (MFN) / "NNConfig" (Graph-MFN): the memory candidate network att2
    att2_hidden: PosInt = 64
    att2_dropout: Prob = 0.0
    gamma1_hidden: PosInt = 256  # "gamma1Config" (retain gate)
    gamma1_dropout: Prob = 0.7
    gamma2_hidden: PosInt = 32  # "gamma2Config" (update gate)
    gamma2_dropout: Prob = 0.5
    out_hidden: PosInt = 128  # "outConfig"
    out_dropout: Prob = 0.0
    # Audio/vision input: "time_mean" = MMSA need_normalized=true (utterance mean repeated over the text
    # steps); "sequence" = frame sequences (avg-pooled to the text length when unaligned).
    av_input: Literal["time_mean", "sequence"] = "time_mean"
    # For "time_mean": "padded" = mean over all frames (MMSA's loader), "valid" = over the true lengths.
    time_average: Literal["padded", "valid"] = "padded"
    # Unaligned sequences -> text length (AlignSubNet avg_pool): "windows" = contiguous frame groups (MMSA
    # AlignNets.py @d11d56e), "strided" = interleaved groups (MMSA 2.2.1 wheel). Inert for "time_mean".
    align_pooling: Literal["windows", "strided"] = "windows"
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 0.0  # Adam's coupled L2, as MMSA's MFN trainer passes it
    early_stop: int = 8


@dataclass
class MFNHParams(MemoryFusionHParams):
    att1_hidden: PosInt = 32  # "NN1Config": the delta-memory attention network att1
    att1_dropout: Prob = 0.2


_MFN_MOSEI = dict(hidden_text=128, hidden_audio=32, hidden_vision=128, mem_size=128, att1_hidden=128,
                  att1_dropout=0.2, att2_hidden=128, att2_dropout=0.5, gamma1_hidden=256, gamma1_dropout=0.7,
                  gamma2_hidden=256, gamma2_dropout=0.0, out_hidden=128, out_dropout=0.5, batch_size=64,
                  learning_rate=5e-4, weight_decay=1e-4)


class MLP2(nn.Module):
    """MMSA's recurring block ``fc2(dropout(relu(fc1(x))))``."""

    def __init__(self, d_in: int, hidden: int, d_out: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(F.relu(self.fc1(x))))


def lstm_cell_states(cell: nn.LSTMCell, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unroll ``cell`` from zero states over x (B, T, D): (h, c), each (T+1, B, H) with index 0 the zeros.

    Same maths as calling ``cell`` step by step (gates i, f, g, o; ``c' = f c + i g``, ``h' = o tanh c'``);
    the input projection of all steps is one matrix product.
    """
    b, t, _ = x.shape
    hid = cell.hidden_size
    xw = F.linear(x, cell.weight_ih, cell.bias_ih) + cell.bias_hh  # (B, T, 4H)
    h = x.new_zeros(b, hid)
    c = x.new_zeros(b, hid)
    hs, cs = [h], [c]
    for step in range(t):
        gates = xw[:, step] + F.linear(h, cell.weight_hh)
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
        cs.append(c)
    return torch.stack(hs), torch.stack(cs)


def delta_memory_attention(c_prev: torch.Tensor, c_new: torch.Tensor, att1: nn.Module):
    """MFN's delta-memory attention: ``c* = [c_prev; c_new]``, ``a = softmax(att1(c*))``; returns
    (c*, a, a * c*). Works on any leading dims (here (T, B, .))."""
    c_star = torch.cat([c_prev, c_new], dim=-1)
    attention = F.softmax(att1(c_star), dim=-1)
    return c_star, attention, attention * c_star


def gated_memory_update(mem: torch.Tensor, attended: torch.Tensor, c_hat: torch.Tensor,
                        gamma1: nn.Module, gamma2: nn.Module):
    """One multi-view gated memory step: returns (u', gamma1, gamma2) with
    ``u' = gamma1 * u + gamma2 * c_hat`` and both gates ``sigmoid(net([attended; u]))``."""
    both = torch.cat([attended, mem], dim=-1)
    g1 = torch.sigmoid(gamma1(both))
    g2 = torch.sigmoid(gamma2(both))
    return g1 * mem + g2 * c_hat, g1, g2


class MemoryFusionBase(Method):
    """What MFN and Graph-MFN share: aligned inputs, the three LSTHM cells, the memory and the head."""

    families = ("mosi", "mosei")
    settings = ("aligned", "unaligned")  # unaligned audio/vision are avg-pooled to the text length (AMIO)
    default_setting = "aligned"  # MMSA need_data_aligned=true

    def _build_lstms(self, hp: MemoryFusionHParams, info: DataInfo) -> None:
        if not info.has_text_features:
            raise UserError(f"{self.name} needs precomputed text features (the pickle's 'text' array); "
                            "this dataset has only BERT token ids")
        if info.seq_lens.get("text") is None:
            raise UserError(f"{self.name} aligns audio/vision to the text length, which this dataset lacks")
        self.lstm_l = nn.LSTMCell(info.dims["text"], hp.hidden_text)
        self.lstm_a = nn.LSTMCell(info.dims["audio"], hp.hidden_audio)
        self.lstm_v = nn.LSTMCell(info.dims["vision"], hp.hidden_vision)

    def _build_memory(self, hp: MemoryFusionHParams, att_dim: int, info: DataInfo) -> None:
        """att2 (candidate), gamma1/gamma2 (gates) and the output network, in MMSA's construction order."""
        self.att2 = MLP2(att_dim, hp.att2_hidden, hp.mem_size, hp.att2_dropout)
        self.gamma1 = MLP2(att_dim + hp.mem_size, hp.gamma1_hidden, hp.mem_size, hp.gamma1_dropout)
        self.gamma2 = MLP2(att_dim + hp.mem_size, hp.gamma2_hidden, hp.mem_size, hp.gamma2_dropout)
        out_dim = info.num_classes if info.task == "classification" else 1
        total_h = hp.hidden_text + hp.hidden_audio + hp.hidden_vision
        self.out = MLP2(total_h + hp.mem_size, hp.out_hidden, out_dim, hp.out_dropout)

    def aligned_inputs(self, batch: Split) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(text, audio, vision), all (B, T_text, D): MMSA's loader (need_normalized) + AlignSubNet."""
        hp = self.hp
        dst = batch.text.shape[1]
        out = [batch.text]
        for x, lens in ((batch.audio, batch.audio_lengths), (batch.vision, batch.vision_lengths)):
            if hp.av_input == "time_mean":
                m = _time_mean(x, lens, hp.time_average)
                x = torch.where(torch.isnan(m), torch.zeros_like(m), m)[:, None, :]  # MMSA: NaN -> 0
            out.append(avg_pool_align(x, dst, hp.align_pooling))
        return out[0], out[1], out[2]

    def lstm_states(self, x_l, x_a, x_v):
        """[(h, c)] for text, audio, vision; each tensor (T+1, B, H), index 0 = the zero initial state."""
        return [lstm_cell_states(cell, x) for cell, x in ((self.lstm_l, x_l), (self.lstm_a, x_a),
                                                          (self.lstm_v, x_v))]

    def memory(self, attended: torch.Tensor, c_hat: torch.Tensor) -> torch.Tensor:
        """Run the gated memory over T steps from zeros; attended (T, B, d), c_hat (T, B, mem) -> u_T."""
        mem = attended.new_zeros(attended.shape[1], self.hp.mem_size)
        for step in range(attended.shape[0]):
            mem, _, _ = gated_memory_update(mem, attended[step], c_hat[step], self.gamma1, self.gamma2)
        return mem

    def head(self, states, mem: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pred, fused) from the last hidden states and the last memory."""
        fused = torch.cat([states[0][0][-1], states[1][0][-1], states[2][0][-1], mem], dim=-1)
        out = self.out(fused)
        return (out if self.info.task == "classification" else out.squeeze(-1)), fused

    def record(self) -> dict:
        hp, lens = self.hp, self.info.seq_lens
        align = {}
        for m in ("audio", "vision"):
            raw = 1 if hp.av_input == "time_mean" else lens[m]
            pad, pool = (0, 1) if raw == lens["text"] else pool_geometry(raw, lens["text"])
            align[m] = {"frames_in": raw, "pad_last_frame": pad, "pool": pool}
        return {"av_input": hp.av_input, "steps": lens["text"], "align_avg_pool": align,
                "align_pooling": hp.align_pooling,
                "trainable_parameters": sum(p.numel() for p in self.parameters() if p.requires_grad)}


@register_method("mfn")
class MFN(MemoryFusionBase):
    # budgets beside the model (see bench.method.Method.presets)
    presets: ClassVar[dict[str, dict[str, str]]] = {
        "compact": {**COMPACT_BUDGET, "batch_size": "32"},
        "tiny": {"hidden_text": "16", "hidden_audio": "8", "hidden_vision": "8", "mem_size": "16", "att1_hidden": "8",
                 "att2_hidden": "8", "gamma1_hidden": "8", "gamma2_hidden": "8", "out_hidden": "16"},
    }
    HParams = MFNHParams
    description = ("Memory Fusion Network (MMSA): LSTHMs + delta-memory attention + multi-view gated memory; "
                   "audio/vision time-averaged and repeated (need_normalized)")
    export_keys = ("fused",)

    @classmethod
    def default_hparams(cls, family: str, setting: str) -> MFNHParams:
        """MMSA's "mfn" block for ``family`` (the same for aligned and unaligned data)."""
        return MFNHParams(**(_MFN_MOSEI if family == "mosei" else {}))

    @classmethod
    def describe_groups(cls):
        return {"lstms": ("lstm_l", "lstm_a", "lstm_v"), "attention": ("att1",), "memory": ("att2",),
                "gates": ("gamma1", "gamma2"), "head": ("out",)}

    def __init__(self, hp: MFNHParams, info: DataInfo):
        super().__init__(hp, info)
        self._build_lstms(hp, info)
        att_dim = 2 * (hp.hidden_text + hp.hidden_audio + hp.hidden_vision)  # windowsize 2
        self.att1 = MLP2(att_dim, hp.att1_hidden, att_dim, hp.att1_dropout)
        self._build_memory(hp, att_dim, info)

    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        states = self.lstm_states(*self.aligned_inputs(batch))
        cells = torch.cat([c for _, c in states], dim=-1)  # (T+1, B, H_l + H_a + H_v)
        _, attention, attended = delta_memory_attention(cells[:-1], cells[1:], self.att1)
        c_hat = torch.tanh(self.att2(attended))
        mem = self.memory(attended, c_hat)
        pred, fused = self.head(states, mem)
        return {"pred": pred, "fused": fused, "attention": attention.transpose(0, 1)}  # attention (B, T, 2H)
