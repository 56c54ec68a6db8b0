"""MCTN: Multimodal Cyclic Translation Network (Pham et al., AAAI 2019), as thuiar/MMSA defines it (EMOE Table 1).

Sources (facts only, code written here): thuiar/MMSA@38a3973fd11199ba8c1314601b5faf421448b042
``src/MMSA/models/singleTask/MCTN.py`` and ``src/MMSA/trains/singleTask/MCTN.py`` (identical to the MMSA 2.2.1
PyPI wheel); config thuiar/MMSA@085d2ccd2a58dc515c8680d83e89ddc96903cf24 ``src/MMSA/config/config_regression.json``
("mctn": need_data_aligned=true, need_model_aligned=false, use_bert=false, early_stop=8; MOSI block only:
init_lr 1e-4, batch_size 32, grad_clip 1.0, hid_dim 32, output_dim 768, max_seq_len 50).
Original: hainow/MCTN@d75b916783b57475da003edb14f4700c46a59611 ``seq2seq/mctn_models.py``,
``models/regression_model.py``, ``configs/hierarchical_mctn.yaml``.

Model (hierarchical MCTN, text -> vision <-> text, then joint -> audio). Audio and vision are zero-padded on the
feature axis to ``pad_dim`` = the widest modality (MMSA: ``maxn``, 768 on MOSI), all three are cut to the first
``max_seq_len`` steps, then

* ``seq2seq1(text, vision)``: bidirectional one-layer LSTM encoder (hid) whose two directions are **summed**
  (the "joint" sequence); decoder state ``s = tanh(W_s (h_fwd + h_bwd))`` (no bias); at every target step
  t >= 1 additive attention ``softmax_j(v . tanh(W_a [s; joint_j]))`` gives a context ``c``; a bidirectional
  LSTM run for **one step from a zero state** on ``[target_{t-1}; c]`` (ground truth: MMSA's two
  teacher-forcing branches both read the target) gives ``o`` (directions summed) and the next ``s``;
  ``Linear(2 hid, pad_dim)([o; c])`` predicts step t; step 0 of the output is **zeros**;
* the cyclic back-translation reuses **the same** seq2seq1 on the predicted vision: ``seq2seq1(vision_hat, text)``;
* ``seq2seq2(joint, audio)`` translates the first encoder's joint sequence into audio; its encoder output
  feeds the regression: a one-layer LSTM, attention pooling over time ``softmax_t(tanh(w . a_t))``, Linear -> 1.

Loss (MMSA hard-codes the weights): ``0.1 MSE(v_hat, v) + 0.1 MSE(t_hat, t) + 0.1 MSE(a_hat, a) + 1.0 L1(y_hat, y)``,
each MSE over the padded (B, T, pad_dim) tensors (padding columns and the zero step 0 included). MMSA's
validation ``Loss`` (the selection criterion) is this **whole** objective, not the L1 alone
(``selection_loss="total"``). Adam(lr 1e-4) without weight decay; ``clip_grad_norm_(1.0)`` before every step
(done in :meth:`MCTN.after_step`); early stop 8.

**Sequence layout quirk** (``seq_layout="mmsa"``, the default): MMSA feeds batch-first (B, T, D) tensors to
sequence-first ``nn.LSTM`` modules, so every recurrence (encoders, decoder loop, regression LSTM) runs over
the *samples of the mini-batch* with the T time steps as the LSTM batch; attention in the decoders is over
samples; the regression's attention pooling happens to be over time. A prediction therefore depends on the
other samples in its batch (and their order). ``seq_layout="time"`` runs the same network over time, as the
original MCTN does.

Unaligned data: MMSA declares need_data_aligned=true; ``unaligned_input="refuse"`` (default) raises a
:class:`~bench.errors.UserError` as ``ef_lstm`` does. ``"truncate"`` is what MMSA's code computes if handed
the unaligned file (first ``max_seq_len`` frames of each modality); ``"avg_pool"`` pools audio/vision to the
text length with MMSA's AlignSubNet (``baselines._align.avg_pool_align``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from baselines._align import avg_pool_align
from bench.config import NonNegFloat, PosInt, check_hparams
from bench.data.tensors import DataInfo, Split
from bench.errors import UserError
from bench.method import COMPACT_BUDGET, Method, TrainHParams
from bench.registry import register_method


@dataclass
class MCTNHParams(TrainHParams):
    # MMSA config_regression.json "mctn" (MOSI; MMSA has no MOSEI/SIMS block)
    hid_dim: PosInt = 32
    max_seq_len: PosInt = 50  # original MCTN: 20 (MMSA's first version hard-coded 20 as well)
    # Loss weights (hard-coded in MMSA's MCTN.forward; the original's hierarchical_mctn.yaml has the same values)
    weight_vision: NonNegFloat = 0.1  # forward translation text -> vision
    weight_text: NonNegFloat = 0.1  # cyclic back-translation vision_hat -> text
    weight_audio: NonNegFloat = 0.1  # second-level translation joint -> audio
    weight_label: NonNegFloat = 1.0  # L1 on the sentiment
    # The original adds Keras l2(0.01) on the regression output kernel; MMSA has none (0.0).
    regression_l2: NonNegFloat = 0.0
    # "mmsa": recurrences over the batch axis (MMSA's seq-first LSTMs on batch-first tensors);
    # "time": over time steps (the original MCTN).
    seq_layout: Literal["mmsa", "time"] = "mmsa"
    # Unaligned inputs: "refuse" (MMSA need_data_aligned=true), "truncate" (MMSA's code on the unaligned file),
    # "avg_pool" (MMSA AlignSubNet to the text length, then truncate).
    unaligned_input: Literal["refuse", "truncate", "avg_pool"] = "refuse"
    align_pooling: Literal["windows", "strided"] = "windows"  # for unaligned_input=avg_pool (see baselines.mfm)
    # Validation/test "loss" (selection): "total" = MMSA (the training objective incl. reconstructions),
    # "task" = the L1 alone.
    selection_loss: Literal["total", "task"] = "total"
    grad_clip_norm: NonNegFloat = 1.0  # MMSA grad_clip, applied with clip_grad_norm_ after every backward
    batch_size: int = 32
    learning_rate: float = 1e-4  # init_lr
    weight_decay: float = 0.0  # MMSA's Adam gets lr only
    early_stop: int = 8
    val_loss: str = "batch_mean_4dp"  # MMSA: round(mean of per-batch losses, 4)


# ------------------------------------------------------------------------------ seq2seq (sequence-first)
class _Encoder(nn.Module):
    """Bidirectional one-layer LSTM (seq-first). Returns the direction-summed outputs ("joint", (L, N, h))
    and the decoder's initial state ``s = tanh(W (h_fwd + h_bwd))`` (N, h)."""

    def __init__(self, d_in: int, hid: int):
        super().__init__()
        self.hid = hid
        self.rnn = nn.LSTM(d_in, hid, num_layers=1, bidirectional=True)
        self.fc = nn.Linear(hid, hid, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, (h_n, _) = self.rnn(x)
        joint = out[..., :self.hid] + out[..., self.hid:]
        return joint, torch.tanh(self.fc(h_n[-1] + h_n[-2]))


class _Attention(nn.Module):
    """Additive attention: ``softmax_j(v . tanh(W [s; joint_j]))`` -> (N, L)."""

    def __init__(self, hid: int):
        super().__init__()
        self.hid = hid
        self.attn = nn.Linear(2 * hid, hid, bias=False)
        self.v = nn.Linear(hid, 1, bias=False)

    def keys(self, joint: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(joint as (N, L, h), its share ``W_j joint_j`` of the energy) -- fixed for a whole decoding."""
        keys = joint.transpose(0, 1)
        return keys, F.linear(keys, self.attn.weight[:, self.hid:])

    def weights(self, s: torch.Tensor, key_proj: torch.Tensor) -> torch.Tensor:
        energy = torch.tanh(F.linear(s, self.attn.weight[:, :self.hid]).unsqueeze(1) + key_proj)
        return torch.softmax(self.v(energy).squeeze(2), dim=1)

    def forward(self, s: torch.Tensor, joint: torch.Tensor) -> torch.Tensor:
        return self.weights(s, self.keys(joint)[1])


class _Decoder(nn.Module):
    """One decoding step of MMSA's ``Decoder``: context ``c`` from attention; a bidirectional one-layer LSTM run
    for **one step from a zero state** on ``[previous target; c]``, directions summed (``o``; for a single step
    this is also the next state ``s = h_fwd + h_bwd``); prediction ``Linear(2h, d_out)([o; c])``.

    The LSTM is kept as an ``nn.LSTM`` (MMSA's parameters), but its step is computed from the gates: with a
    zero state ``c = sigmoid(i) * tanh(g)``, ``h = sigmoid(o) * tanh(c)`` and ``W_hh`` only multiplies zeros
    (MMSA's ``W_hh`` never gets a non-zero gradient either). Same maths, ~50x faster on CPU than a call per step.
    """

    def __init__(self, d_out: int, hid: int):
        super().__init__()
        self.hid = hid
        self.d_out = d_out
        self.rnn = nn.LSTM(d_out + hid, hid, num_layers=1, bidirectional=True)
        self.fc_out = nn.Linear(2 * hid, d_out)

    def gate_params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W on the previous target, W on the context, bias) of both directions stacked: 8h rows."""
        r = self.rnn
        w = torch.cat([r.weight_ih_l0, r.weight_ih_l0_reverse])
        b = torch.cat([r.bias_ih_l0 + r.bias_hh_l0, r.bias_ih_l0_reverse + r.bias_hh_l0_reverse])
        return w[:, :self.d_out], w[:, self.d_out:], b

    def cell(self, gates: torch.Tensor) -> torch.Tensor:
        """(N, 8h) pre-activations of both directions -> h_fwd + h_bwd (N, h)."""
        h = self.hid
        g = gates.view(gates.shape[0], 2, 4, h)  # (direction, [i, f, g, o]) as torch packs them
        c = torch.sigmoid(g[:, :, 0]) * torch.tanh(g[:, :, 2])
        return (torch.sigmoid(g[:, :, 3]) * torch.tanh(c)).sum(dim=1)

    def forward(self, prev: torch.Tensor, s: torch.Tensor, joint: torch.Tensor,
                attention: _Attention) -> tuple[torch.Tensor, torch.Tensor]:
        """One step (reference form): (N, d_out), (N, h), (L, N, h) -> (prediction (N, d_out), next s)."""
        keys, key_proj = attention.keys(joint)
        c = torch.bmm(attention.weights(s, key_proj).unsqueeze(1), keys).squeeze(1)
        w_x, w_c, b = self.gate_params()
        o = self.cell(F.linear(prev, w_x, b) + F.linear(c, w_c))
        return self.fc_out(torch.cat([o, c], dim=1)), o


def translate(encoder: _Encoder, decoder: _Decoder, attention: _Attention, src: torch.Tensor,
              trg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MMSA ``Seq2Seq.forward`` (seq-first ``src`` (L, N, d_in), ``trg`` (L', N, d_out)) -> (joint, outputs).

    ``outputs[0]`` is zeros; ``outputs[t]`` (t >= 1) is decoded from ``trg[t-1]`` (always the ground truth, so
    that part of the LSTM input and the output layer are applied to all steps at once; only the attention state
    ``s`` is sequential).
    """
    joint, s = encoder(src)
    keys, key_proj = attention.keys(joint)
    w_x, w_c, b = decoder.gate_params()
    pre = F.linear(trg[:-1], w_x, b)  # (L'-1, N, 8h)
    os_, cs = [], []
    for t in range(trg.shape[0] - 1):
        c = torch.bmm(attention.weights(s, key_proj).unsqueeze(1), keys).squeeze(1)
        s = decoder.cell(pre[t] + F.linear(c, w_c))
        os_.append(s)
        cs.append(c)
    first = trg.new_zeros((1,) + trg.shape[1:])
    if not os_:
        return joint, first
    steps = decoder.fc_out(torch.cat([torch.stack(os_), torch.stack(cs)], dim=2))
    return joint, torch.cat([first, steps])


class _Regression(nn.Module):
    """One-layer LSTM (seq-first) + attention pooling over time + Linear(h, 1) (MMSA ``Regression``)."""

    def __init__(self, hid: int, out_dim: int):
        super().__init__()
        self.rnn = nn.LSTM(hid, hid, num_layers=1)
        self.linear = nn.Linear(hid, 1)
        self.linear2 = nn.Linear(hid, out_dim)

    def forward(self, joint: torch.Tensor, time_first: bool) -> tuple[torch.Tensor, torch.Tensor]:
        act, _ = self.rnn(joint)
        act = act.transpose(0, 1) if time_first else act  # -> (B, T, h)
        weights = torch.softmax(torch.tanh(self.linear(act)).squeeze(2), dim=1)  # over time
        sent = (act * weights.unsqueeze(2)).sum(dim=1)
        return self.linear2(sent), sent


# ------------------------------------------------------------------------------ the method
@register_method("mctn")
class MCTN(Method):
    # budgets beside the model (see bench.method.Method.presets)
    presets: ClassVar[dict[str, dict[str, str]]] = {
        "compact": {**COMPACT_BUDGET, "learning_rate": "1e-3"},
        "tiny": {"hid_dim": "8", "max_seq_len": "12"},
    }
    HParams = MCTNHParams
    families = ("mosi",)  # MMSA's "mctn" block has MOSI values only
    settings = ("aligned",)  # need_data_aligned=true; unaligned data needs --set unaligned_input=truncate|avg_pool
    default_setting = "aligned"
    export_keys = ("fused",)
    description = ("Multimodal Cyclic Translation Network (MMSA): text->vision->text cyclic seq2seq, "
                   "joint->audio seq2seq, attention-LSTM regression; 0.1 MSE x3 + L1")

    @classmethod
    def default_hparams(cls, family: str, setting: str) -> MCTNHParams:
        if family != "mosi":
            raise UserError(f"mctn has no configuration for {family!r}: MMSA's 'mctn' block covers MOSI only")
        return MCTNHParams()

    @classmethod
    def describe_groups(cls):
        return {"seq2seq1": ("encoder1", "attn1", "decoder1"), "seq2seq2": ("encoder2", "attn2", "decoder2"),
                "regression": ("regression",)}

    def __init__(self, hp: MCTNHParams, info: DataInfo):
        super().__init__(hp, info)
        check_hparams(hp)
        if not info.has_text_features:
            raise UserError("mctn (MMSA, use_bert=false) needs precomputed text features (the pickle's 'text' "
                            "array); this dataset has only BERT token ids")
        self._check_lengths({m: info.seq_lens[m] for m in ("text", "audio", "vision")})
        self.pad_dim = max(info.dims["text"], info.dims["audio"], info.dims["vision"])
        out_dim = info.num_classes if info.task == "classification" else 1
        h = hp.hid_dim
        self.encoder1, self.attn1, self.decoder1 = _Encoder(self.pad_dim, h), _Attention(h), _Decoder(self.pad_dim, h)
        self.encoder2, self.attn2, self.decoder2 = _Encoder(h, h), _Attention(h), _Decoder(self.pad_dim, h)
        self.regression = _Regression(h, out_dim)
        self._eval_stash: tuple[torch.Tensor, torch.Tensor] | None = None

    # --------------------------------------------------------------- inputs
    def _check_lengths(self, lens: dict[str, int]) -> None:
        mode, cap = self.hp.unaligned_input, self.hp.max_seq_len
        if len(set(lens.values())) == 1 or mode == "avg_pool":
            return
        if mode == "refuse":
            raise UserError(f"mctn needs aligned data (MMSA's need_data_aligned=true), got sequence lengths {lens}; "
                            "use the 'aligned' setting, or --set unaligned_input=truncate (what MMSA's code does "
                            "with the unaligned file) or unaligned_input=avg_pool")
        cut = {m: min(n, cap) for m, n in lens.items()}
        if len(set(cut.values())) != 1:
            raise UserError(f"mctn: unaligned_input=truncate keeps the first max_seq_len={cap} steps, but the "
                            f"lengths {lens} differ after cutting ({cut}); use unaligned_input=avg_pool")

    def prepare(self, batch: Split) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(text, audio, vision), each (B, T, pad_dim): aligned or pooled, cut to max_seq_len, zero-padded."""
        hp = self.hp
        t, a, v = batch.text, batch.audio, batch.vision
        self._check_lengths({"text": t.shape[1], "audio": a.shape[1], "vision": v.shape[1]})
        if hp.unaligned_input == "avg_pool" and not (a.shape[1] == v.shape[1] == t.shape[1]):
            a, v = avg_pool_align(a, t.shape[1], hp.align_pooling), avg_pool_align(v, t.shape[1], hp.align_pooling)
        cap = hp.max_seq_len
        return tuple(F.pad(x[:, :cap], (0, self.pad_dim - x.shape[2])) for x in (t, a, v))

    # --------------------------------------------------------------- forward / losses
    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        hp = self.hp
        text, audio, vision = self.prepare(batch)
        time_first = hp.seq_layout == "time"

        def to_rnn(x):  # (B, T, D) -> the (L, N, D) the seq-first LSTMs see
            return x.transpose(0, 1) if time_first else x

        def from_rnn(x):
            return x.transpose(0, 1) if time_first else x

        joint, vision_hat = translate(self.encoder1, self.decoder1, self.attn1, to_rnn(text), to_rnn(vision))
        _, text_hat = translate(self.encoder1, self.decoder1, self.attn1, vision_hat, to_rnn(text))
        joint2, audio_hat = translate(self.encoder2, self.decoder2, self.attn2, joint, to_rnn(audio))
        out, sent = self.regression(joint2, time_first)
        pred = out if self.info.task == "classification" else out.squeeze(-1)
        res = {"pred": pred, "fused": sent,
               "vision_hat": from_rnn(vision_hat), "vision": vision, "text_hat": from_rnn(text_hat), "text": text,
               "audio_hat": from_rnn(audio_hat), "audio": audio}
        if not self.training and hp.selection_loss == "total":
            self._eval_stash = (pred, self.recon_per_sample(res).detach())
        return res

    def recon_per_sample(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) weighted per-sample reconstruction MSE; its batch mean is the weighted sum of the three MSEs."""
        hp = self.hp
        per = {m: (out[f"{m}_hat"] - out[m]).pow(2).mean(dim=(1, 2)) for m in ("vision", "text", "audio")}
        return hp.weight_vision * per["vision"] + hp.weight_text * per["text"] + hp.weight_audio * per["audio"]

    def loss_terms(self, out: dict[str, torch.Tensor], batch: Split) -> dict[str, torch.Tensor]:
        hp = self.hp
        task = Method.task_loss(self, out["pred"], batch.labels)
        rec = {m: F.mse_loss(out[f"{m}_hat"], out[m]) for m in ("vision", "text", "audio")}
        total = (hp.weight_vision * rec["vision"] + hp.weight_text * rec["text"] + hp.weight_audio * rec["audio"]
                 + hp.weight_label * task)
        terms = {"task": task, "recon_vision": rec["vision"], "recon_text": rec["text"], "recon_audio": rec["audio"]}
        if hp.regression_l2 > 0:
            terms["l2"] = hp.regression_l2 * self.regression.linear2.weight.pow(2).sum()
            total = total + terms["l2"]
        return {"total": total, **terms}

    def task_loss(self, pred: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """The evaluation loss. With ``selection_loss="total"`` the per-sample values the trainer's ``evaluate``
        asks for (``reduction="none"`` on the ``pred`` an eval-mode forward just returned) get the weighted
        per-sample reconstruction error added, so the validation loss is MMSA's whole objective
        (``weight_label * L1 + sum_m w_m MSE_m``). Anything else is the plain task loss."""
        base = super().task_loss(pred, labels, reduction)
        stash, self._eval_stash = self._eval_stash, None
        if reduction == "none" and stash is not None and stash[0] is pred:
            return self.hp.weight_label * base + stash[1]
        return base

    def after_step(self, out, batch, epoch) -> None:
        """MMSA clips the gradient norm to ``grad_clip`` before each optimiser step (one backward per step)."""
        if self.hp.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters(), self.hp.grad_clip_norm)

    def record(self):
        return {"pad_dim": self.pad_dim, "seq_layout": self.hp.seq_layout,
                "unaligned_input": self.hp.unaligned_input, "selection_loss": self.hp.selection_loss}
