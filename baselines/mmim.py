"""MMIM: MultiModal InfoMax (Han, Chen & Poria, EMNLP 2021), as thuiar/MMSA defines it.

Sources (facts only, code written here):
- thuiar/MMSA@4338bded208c8fcaabd5fc58afa5db981573d970 ``src/MMSA/models/singleTask/MMIM.py`` (model) and
  ``src/MMSA/trains/singleTask/MMIM.py`` (two-stage trainer); both byte-identical to PyPI MMSA 2.2.1.
  An older stored version (30c2d8d7711a78cfd43b893f2580c421f3075ec9) differs only in the MOSEI stage-1
  cut-off (``len(dataloader)`` = 3 split names, i.e. 2 batches) and a ``squeeze``.
- thuiar/MMSA@085d2ccd2a58dc515c8680d83e89ddc96903cf24 ``src/MMSA/config/config_regression.json``, block
  "mmim" (= MMSA 2.2.1): per-dataset values below.
- declare-lab/Multimodal-Infomax@98cb107cbe8c25493b93517e264851d7c917ad89 ``src/model.py``,
  ``src/solver.py``, ``src/main.py``, @34f92d25fe3a9931356eb775798f8a3f2854e78b ``src/modules/encoders.py``
  and @2fde0aa3795f3e85a37901236f1671af5ff2d5ab ``src/config.py``, ``environment.yml`` (torch 1.7.1): the
  original code, whose differences are switches (``hparams_era="original"``, ``zero_grad_mode``, ...).

Model. Text = the [CLS] vector of fine-tuned BERT (features mode: ``text[:, 0, :]``). Audio / vision =
one LSTM (bidirectional in MMSA) over the packed sequence, the *first layer's* final states
(``h_n[0]``, ``h_n[1]``) -> Dropout -> Linear to ``d_aout`` / ``d_vout``. Fusion: ``Dropout`` on
``cat[t, a, v]`` -> ``tanh(L1)`` -> ``tanh(L2)`` (= the fused vector z, ``d_prjh``) -> ``L3`` (prediction).

MI terms (:mod:`baselines._mmim_losses`):
- MMILB for the pairs (t -> v), (t -> a) (and (v -> a) with ``add_va``): ``mu = MLP_mu(x)``,
  ``logvar = MLP_logvar(x)`` (no final activation: ``mmilb_last_activation`` is built but never applied
  in MMSA or the original), ``lld = mean_b Σ_d -(mu - y)² / (2 exp(logvar))`` (no ``-logvar/2`` term;
  ``lld_form="full"`` adds it).
- Entropy with memory: in stage 2, ``y`` is projected by ``entropy_prj = tanh(Linear(y, y//4))``; the
  positive-label and negative-label rows of the current batch are concatenated with those of the last
  ``mem_size`` batches (stored detached) and ``H = 0.25 (logdet Σ_pos + logdet Σ_neg)``.
- CPC between the fused vector and each modality: ``x_pred = Linear(z)``, both unit-normalised,
  ``nce = -mean_i [s_ii - logsumexp_j s_ij]``; ``nce = nce_t + nce_v + nce_a``.

Training, one epoch = two passes over the training split (MMSA ``do_train``):
1. stage 1 (``contrast=True``): fresh shuffle; per batch ``zero_grad``, loss ``-lld`` (no labels, no
   entropy), backward through the whole model, ``clip_grad_norm_(all parameters, grad_clip)``, step of
   the **MMILB optimiser only** (Adam over the ``mi_*`` parameters, ``lr_mmilb``); on MOSEI only the
   first half of the batches (``i / n_batches >= 0.5`` stops).
2. stage 2: loss ``L1 + alpha·nce - beta·lld`` (``L1`` only without ``contrast``), minus ``beta·H`` from
   the batch *after* the first one that has a full memory (``i_batch > mem_size``); clip the norm over
   all parameters (``mi_*`` gradients of this loss included), step the **main optimiser** (Adam: BERT
   ``lr_bert``/``weight_decay_bert``, the rest except ``mi_*`` ``lr_main``/``weight_decay_main``).
   ``mi_*`` parameters are therefore only trained by stage 1, and ``entropy_prj`` (inside ``mi_*`` but
   absent from the stage-1 loss) is never trained on torch >= 2 (see ``zero_grad_mode``).
ReduceLROnPlateau(x0.5, patience ``when`` = 20) on the main optimiser; selection on the minimum
validation L1, early stop 8, no epoch cap. All non-BERT weights with >= 2 dims are re-initialised with
``xavier_normal_`` (biases keep torch's init).

Harness mapping (bench/method.py has one optimiser and one backward per batch): stage 1 runs inside
``on_epoch_start`` with this method's own MMILB Adam; stage 2 is the trainer's loop over
``param_groups()`` (BERT + main); the memory update, the norm clipping and the clearing of the ``mi_*``
gradients (which the trainer's ``optimizer.zero_grad`` does not touch) happen in ``after_step``, which the
trainer calls after ``backward`` and before ``optimizer.step`` (exact with ``grad_accum=1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from baselines._eras import apply_era, era_defaults
from baselines._mmim_losses import cpc_nce, gaussian_entropy, gaussian_lld
from bench.config import NonNegFloat, PosFloat, PosInt, Prob, between, choice
from bench.data.tensors import DataInfo, Split
from bench.errors import UserError
from bench.method import Method, TrainHParams
from bench.nn.text import TextInput, av_lengths
from bench.registry import register_method
from bench.text_hparams import TextEncoderHParams

PAIRS = ("tv", "ta", "va")  # MMILB pairs (x -> y); "va" only with add_va


@dataclass
class MMIMHParams(TextEncoderHParams, TrainHParams):
    # "current" = MMSA config_regression.json "mmim" (+ MMSA's trainer on torch >= 2); "original" =
    # declare-lab/Multimodal-Infomax as its README runs it (src/config.py defaults, torch 1.7.1)
    hparams_era: Literal["current", "original"] = "current"
    hparams_family: Literal["mosi", "mosei"] = "mosi"
    # --- text: TextEncoderHParams (MMSA asserts use_bert; features mode is the suite's BERT-free option)
    # --- audio / vision LSTM encoders
    d_ah: PosInt = 16
    d_vh: PosInt = 16
    d_aout: Annotated[int, between(4, None, why="the entropy projection has d_aout//4 outputs")] = 16
    d_vout: Annotated[int, between(4, None, why="the entropy projection has d_vout//4 outputs")] = 16
    n_layer: PosInt = 1
    bidirectional: bool = True  # MMSA true; the original's --bidirectional flag is off unless given
    dropout_a: Prob = 0.1  # used (LSTM + final-state dropout) only when n_layer > 1, as in MMSA
    dropout_v: Prob = 0.1
    # "auto": own lengths on unaligned data, the text length (mask sum) on aligned data (MMSA)
    lengths_from: Literal["auto", "text", "own"] = "auto"
    # --- fusion and MI estimators
    d_prjh: PosInt = 128
    dropout_prj: Prob = 0.1
    cpc_layers: PosInt = 1
    cpc_activation: str = "Tanh"  # torch.nn class name, used only when cpc_layers > 1
    mmilb_mid_activation: str = "ReLU"
    mmilb_last_activation: str = "Tanh"
    # MMSA and the original build ``mmilb_last_activation`` but never apply it: "none" (theirs) or "last"
    # (append it to the log-variance MLP, as the CLUB code they cite does)
    logvar_activation: Literal["none", "last"] = "none"
    # MMSA and the original omit the Gaussian log-density's -logvar/2 term from lld (so stage 1 can raise
    # lld towards 0 just by inflating the variance); "full" includes it
    lld_form: Literal["mmsa", "full"] = "mmsa"
    add_va: bool = False
    mem_size: PosInt = 1
    contrast: bool = True
    alpha: NonNegFloat = 0.1  # weight of the CPC term
    beta: NonNegFloat = 0.1  # weight of the lld and entropy terms
    # MOSEI 0.5: stage 1 stops at the first batch with i / n_batches >= this
    stage1_fraction: Annotated[float, between(0, 1, lo_open=True)] = 1.0
    # --- optimisation: two Adam optimisers (main = BERT + rest, MMILB)
    lr_main: PosFloat = 1e-3
    weight_decay_main: NonNegFloat = 1e-4
    lr_bert: PosFloat = 5e-5
    weight_decay_bert: NonNegFloat = 1e-4
    lr_mmilb: PosFloat = 1e-3
    weight_decay_mmilb: NonNegFloat = 1e-4
    grad_clip_norm: NonNegFloat = 1.0  # MMSA grad_clip: clip_grad_norm_ over all parameters, both stages
    init: Literal["xavier", "torch"] = "xavier"  # xavier_normal_ on every non-BERT weight with dim > 1
    # How a gradient is cleared between steps: "set_to_none" (torch >= 2 ``zero_grad``) or "zeros"
    # (torch 1.x, the original's 1.7.1). With "zeros" the MMILB Adam also moves parameters whose gradient
    # is an all-zero tensor, by weight decay alone: entropy_prj drifts towards 0 from epoch 2 on.
    zero_grad_mode: Literal["set_to_none", "zeros"] = "set_to_none"
    batch_size: int = 32
    learning_rate: float = 1e-3  # unused (per-optimiser rates above); kept equal to lr_main
    plateau_patience: int = 20  # MMSA "when"
    plateau_factor: float = 0.5
    # MMSA's "update_epochs": 2 is never read by the MMIM trainer; clipping in after_step assumes the step follows
    grad_accum: Annotated[int, choice(1, why="MMSA's MMIM steps after every batch")] = 1
    grad_clip_value: float = 0.0
    early_stop: int = 8

    def validate(self) -> None:
        apply_era(self, ERAS)
        self.validate_text_encoder("mmim")
        for name in ("cpc_activation", "mmilb_mid_activation", "mmilb_last_activation"):
            if not isinstance(getattr(nn, getattr(self, name), None), type):
                raise UserError(f"mmim: {name}={getattr(self, name)!r} is not a torch.nn activation class")


_CURRENT = dict(bidirectional=True, early_stop=8, max_epochs=0, zero_grad_mode="set_to_none")
# declare-lab src/config.py: --bidirectional is a store_true flag the README command does not pass,
# --patience 10, --num_epochs 40; environment.yml pins torch 1.7.1 (zero_grad writes zeros)
_ORIGINAL = dict(bidirectional=False, early_stop=10, max_epochs=40, zero_grad_mode="zeros")
ERAS = {
    "mosi": {"current": dict(_CURRENT, stage1_fraction=1.0), "original": dict(_ORIGINAL, stage1_fraction=1.0)},
    "mosei": {"current": dict(_CURRENT, stage1_fraction=0.5), "original": dict(_ORIGINAL, stage1_fraction=0.5)},
}


# ------------------------------------------------------------------------------------------ modules
def _activation(name: str) -> nn.Module:
    return getattr(nn, name)()


class RNNEncoder(nn.Module):
    """Packed LSTM; ``cat(h_n[0], h_n[1])`` (bidirectional) or ``h_n[0]`` -> Dropout -> Linear.

    ``h_n[0]``/``h_n[1]`` are the *first* layer's forward/backward states (MMSA's indexing; with
    ``n_layer > 1`` the upper layers are computed but not read)."""

    def __init__(self, d_in: int, hidden: int, d_out: int, num_layers: int, dropout: float, bidirectional: bool):
        super().__init__()
        self.bidirectional = bidirectional
        self.rnn = nn.LSTM(d_in, hidden, num_layers=num_layers, dropout=dropout, bidirectional=bidirectional,
                           batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.linear_1 = nn.Linear((2 if bidirectional else 1) * hidden, d_out)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.clamp(1, x.shape[1]).to("cpu", torch.int64)
        _, (h, _) = self.rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        last = torch.cat([h[0], h[1]], dim=-1) if self.bidirectional else h[0]
        return self.linear_1(self.dropout(last))


class MMILB(nn.Module):
    """Gaussian q(y | x) for the likelihood term plus the entropy projection of y (MMSA ``MMILB``)."""

    def __init__(self, x_size: int, y_size: int, mid_activation: str, last_activation: str,
                 logvar_activation: str, lld_form: str = "mmsa"):
        super().__init__()
        self.with_logvar = lld_form == "full"
        self.mlp_mu = nn.Sequential(nn.Linear(x_size, y_size), _activation(mid_activation),
                                    nn.Linear(y_size, y_size))
        layers = [nn.Linear(x_size, y_size), _activation(mid_activation), nn.Linear(y_size, y_size)]
        if logvar_activation == "last":
            layers.append(_activation(last_activation))
        self.mlp_logvar = nn.Sequential(*layers)
        self.entropy_prj = nn.Sequential(nn.Linear(y_size, y_size // 4), nn.Tanh())

    def forward(self, x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor | None = None,
                mem: dict[str, list[torch.Tensor]] | None = None):
        """(lld, pos, neg, H): ``pos``/``neg`` are the projected rows of positive/negative labels (None
        without labels); ``H`` is computed only with labels and a non-empty memory, else 0."""
        lld = gaussian_lld(self.mlp_mu(x), self.mlp_logvar(x), y, with_logvar=self.with_logvar)
        H = lld.new_zeros(())
        if labels is None:
            return lld, None, None, H
        z = self.entropy_prj(y)
        lab = labels.reshape(-1)
        pos, neg = z[lab > 0], z[lab < 0]
        if mem is not None and mem["pos"]:
            H = gaussian_entropy(torch.cat([*mem["pos"], pos]), torch.cat([*mem["neg"], neg]))
        return lld, pos, neg, H


class CPC(nn.Module):
    """Predict modality x from the fused vector: ``Linear(y, x)`` (``n_layers = 1``), else ``Linear(y, x)``,
    activation, then ``n_layers - 1`` further ``Linear(x, x)`` with no activation between them (MMSA)."""

    def __init__(self, x_size: int, y_size: int, n_layers: int, activation: str):
        super().__init__()
        if n_layers == 1:
            self.net = nn.Linear(y_size, x_size)
        else:
            layers: list[nn.Module] = [nn.Linear(y_size, x_size), _activation(activation)]
            layers += [nn.Linear(x_size, x_size) for _ in range(n_layers - 1)]
            self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
        return cpc_nce(x, self.net(fused))


class FusionHead(nn.Module):
    """``Dropout -> tanh(L1) -> tanh(L2)`` = fused vector, ``L3`` = prediction (MMSA ``Fusion``/``SubNet``)."""

    def __init__(self, d_in: int, hidden: int, d_out: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.linear_1 = nn.Linear(d_in, hidden)
        self.linear_2 = nn.Linear(hidden, hidden)
        self.linear_3 = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fused = torch.tanh(self.linear_2(torch.tanh(self.linear_1(self.drop(x)))))
        return fused, self.linear_3(fused)


# ------------------------------------------------------------------------------------------ method
@register_method("mmim")
class MMIM(Method):
    HParams = MMIMHParams
    families = ("mosi", "mosei")
    default_setting = "unaligned"  # MMSA need_data_aligned=false
    export_keys = ("fused",)
    description = ("MMIM (MMSA): BERT [CLS] + LSTM audio/vision, CPC between fused vector and modalities, "
                   "MMILB likelihood with entropy memory, two-stage optimisation")

    @classmethod
    def default_hparams(cls, family: str, setting: str, era: str = "current") -> MMIMHParams:
        return era_defaults("mmim", MMIMHParams, ERAS, family, era)

    @classmethod
    def describe_groups(cls) -> dict[str, tuple[str, ...]]:
        return {"bert": ("text",), "audio_encoder": ("acoustic_enc",), "vision_encoder": ("visual_enc",),
                "mmilb": ("mi_tv", "mi_ta", "mi_va"), "cpc": ("cpc_zt", "cpc_zv", "cpc_za"),
                "fusion": ("fusion_prj",)}

    def __init__(self, hp: MMIMHParams, info: DataInfo, bert_config=None):
        super().__init__(hp, info)
        if info.task != "regression":
            raise UserError("mmim: only the regression form (MOSI/MOSEI) is implemented")
        self.text = TextInput("mmim", info, hp.text_mode, hp.text_model, hp.text_finetune, bert_config)
        d_t, d_a, d_v = self.text.dim, int(info.dims["audio"]), int(info.dims["vision"])
        deep = hp.n_layer > 1
        self.visual_enc = RNNEncoder(d_v, hp.d_vh, hp.d_vout, hp.n_layer, hp.dropout_v if deep else 0.0,
                                     hp.bidirectional)
        self.acoustic_enc = RNNEncoder(d_a, hp.d_ah, hp.d_aout, hp.n_layer, hp.dropout_a if deep else 0.0,
                                       hp.bidirectional)
        mi = dict(mid_activation=hp.mmilb_mid_activation, last_activation=hp.mmilb_last_activation,
                  logvar_activation=hp.logvar_activation, lld_form=hp.lld_form)
        self.mi_tv = MMILB(d_t, hp.d_vout, **mi)
        self.mi_ta = MMILB(d_t, hp.d_aout, **mi)
        self.mi_va = MMILB(hp.d_vout, hp.d_aout, **mi) if hp.add_va else None
        self.cpc_zt = CPC(d_t, hp.d_prjh, hp.cpc_layers, hp.cpc_activation)
        self.cpc_zv = CPC(hp.d_vout, hp.d_prjh, hp.cpc_layers, hp.cpc_activation)
        self.cpc_za = CPC(hp.d_aout, hp.d_prjh, hp.cpc_layers, hp.cpc_activation)
        self.fusion_prj = FusionHead(d_t + hp.d_aout + hp.d_vout, hp.d_prjh, 1, hp.dropout_prj)
        if hp.init == "xavier":  # MMSA do_train: every requires-grad non-BERT tensor with dim > 1
            for name, p in self.named_parameters():
                if not name.startswith("text.") and p.dim() > 1 and p.requires_grad and not p.is_meta:
                    nn.init.xavier_normal_(p)
        self.pairs = PAIRS if hp.add_va else PAIRS[:2]
        # training state (not in state_dict): which pass runs, the stage-2 batch counter of this epoch,
        # the entropy memory, the MMILB optimiser and stage-1 statistics
        self.stage = "main"
        self.i_batch = 0
        self.memory: dict[str, dict[str, list[torch.Tensor]]] = {}
        self.optimizer_mmilb: torch.optim.Optimizer | None = None
        self.stage1_steps = 0
        self.stage1_loss: list[float] = []
        self.lengths_used = ""

    # ------------------------------------------------------------------------------------ groups
    def mmilb_parameters(self) -> list[nn.Parameter]:
        return [p for m in (self.mi_tv, self.mi_ta, self.mi_va) if m is not None for p in m.parameters()
                if p.requires_grad]

    def param_groups(self) -> list[dict[str, Any]]:
        """The main optimiser's groups: BERT (``lr_bert``) and everything else except ``mi_*``
        (``lr_main``); the ``mi_*`` parameters belong to the MMILB optimiser of stage 1."""
        hp = self.hp
        bert = [p for p in self.text.parameters() if p.requires_grad]
        taken = {id(p) for p in self.text.parameters()} | {id(p) for p in self.mmilb_parameters()}
        main = [p for p in self.parameters() if id(p) not in taken and p.requires_grad]
        groups = [{"params": bert, "lr": hp.lr_bert, "weight_decay": hp.weight_decay_bert},
                  {"params": main, "lr": hp.lr_main, "weight_decay": hp.weight_decay_main}]
        return [g for g in groups if g["params"]]

    def make_mmilb_optimizer(self) -> torch.optim.Optimizer:
        hp = self.hp
        return torch.optim.Adam(self.mmilb_parameters(), lr=hp.lr_mmilb, weight_decay=hp.weight_decay_mmilb)

    # ------------------------------------------------------------------------------------ forward
    def _lengths(self, batch: Split) -> tuple[torch.Tensor, torch.Tensor]:
        len_a, len_v, self.lengths_used = av_lengths(batch, self.hp.lengths_from, "mmim")
        return len_a, len_v

    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        """In training mode during stage 2 the MMILBs also get the labels (entropy projections, and ``H``
        once ``i_batch >= mem_size``); in stage 1 and in eval mode they do not (as MMSA)."""
        seq, _ = self.text(batch)
        feats = {"t": seq[:, 0, :]}
        len_a, len_v = self._lengths(batch)
        feats["a"] = self.acoustic_enc(batch.audio, len_a)
        feats["v"] = self.visual_enc(batch.vision, len_v)
        with_labels = self.training and self.stage == "main"
        use_mem = with_labels and self.i_batch >= self.hp.mem_size
        out: dict[str, torch.Tensor] = {}
        lld = H = None
        for key in self.pairs:
            mi = getattr(self, f"mi_{key}")
            l_k, pos, neg, h_k = mi(feats[key[0]], feats[key[1]], labels=batch.labels if with_labels else None,
                                    mem=self.memory.get(key) if use_mem else None)
            lld = l_k if lld is None else lld + l_k
            H = h_k if H is None else H + h_k
            if pos is not None:
                out[f"pos_{key}"], out[f"neg_{key}"] = pos, neg
        fused, pred = self.fusion_prj(torch.cat([feats["t"], feats["a"], feats["v"]], dim=1))
        nce = self.cpc_zt(feats["t"], fused) + self.cpc_zv(feats["v"], fused) + self.cpc_za(feats["a"], fused)
        out.update(pred=pred.squeeze(-1), fused=fused, feature_t=feats["t"], feature_a=feats["a"],
                   feature_v=feats["v"], lld=lld, nce=nce, H=H)
        return out

    # ------------------------------------------------------------------------------------ objective
    def entropy_active(self) -> bool:
        """Whether the current stage-2 batch subtracts ``beta·H`` (MMSA: ``i_batch > mem_size``)."""
        return self.i_batch > self.hp.mem_size

    def loss_terms(self, out: dict[str, torch.Tensor], batch: Split) -> dict[str, torch.Tensor]:
        """Stage 2: ``L1 + alpha·nce - beta·lld`` (contrast) or ``L1``; minus ``beta·H`` when
        :meth:`entropy_active`."""
        hp = self.hp
        task = self.task_loss(out["pred"], batch.labels)
        total = task + hp.alpha * out["nce"] - hp.beta * out["lld"] if hp.contrast else task
        if self.entropy_active():
            total = total - hp.beta * out["H"]
        return {"total": total, "task": task, "nce": out["nce"], "lld": out["lld"], "H": out["H"]}

    # ------------------------------------------------------------------------------------ two stages
    def _clear_grads(self, params) -> None:
        for p in params:
            if p.grad is None:
                continue
            if self.hp.zero_grad_mode == "zeros":
                p.grad.detach_()
                p.grad.zero_()
            else:
                p.grad = None

    def _clip(self) -> None:
        if self.hp.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters(), self.hp.grad_clip_norm)

    def on_epoch_start(self, epoch: int, train: Split) -> None:
        """Reset the entropy memory and batch counter; run stage 1 (``contrast``)."""
        self.memory = {k: {"pos": [], "neg": []} for k in self.pairs}
        self.i_batch = 0
        if self.hp.contrast:
            self.run_stage1(train)

    def run_stage1(self, train: Split) -> float:
        """One stage-1 pass: maximise the MMILB likelihood with the MMILB optimiser. The shuffle comes
        from torch's global generator (seeded by the trainer), like MMSA's DataLoader. Returns the
        summed ``-lld`` x batch size / N_train (MMSA's logged value)."""
        hp = self.hp
        if self.optimizer_mmilb is None:
            self.optimizer_mmilb = self.make_mmilb_optimizer()
        n = len(train)
        n_batches = math.ceil(n / hp.batch_size)
        perm = torch.randperm(n).to(train.labels.device)
        total = 0.0
        self.stage = "mmilb"
        try:
            for i in range(n_batches):
                if i / n_batches >= hp.stage1_fraction:
                    break
                idx = perm[i * hp.batch_size:(i + 1) * hp.batch_size]
                batch = train.take(idx)
                self._clear_grads(self.parameters())
                loss = -self(batch)["lld"]
                loss.backward()
                self._clip()
                self.optimizer_mmilb.step()
                self.stage1_steps += 1
                total += float(loss.detach()) * len(idx)
        finally:
            self.stage = "main"
        self._clear_grads(self.parameters())  # MMSA's zero_grad before the first stage-2 batch
        self.stage1_loss.append(total / n)
        return total / n

    def after_step(self, out: dict[str, torch.Tensor], batch: Split, epoch: int) -> None:
        """Stage 2, after backward and before the main step: store this batch's projections in the
        memory (append until ``mem_size`` entries, then replace entry ``i_batch % mem_size``), clip the
        gradient norm over all parameters, clear the ``mi_*`` gradients (the main optimiser does not
        own them; MMSA's next ``model.zero_grad`` would), advance the batch counter."""
        hp = self.hp
        for key in self.pairs:
            if f"pos_{key}" not in out:
                continue
            mem = self.memory.setdefault(key, {"pos": [], "neg": []})
            for side in ("pos", "neg"):
                z = out[f"{side}_{key}"].detach()
                if len(mem[side]) < hp.mem_size:
                    mem[side].append(z)
                else:
                    mem[side][self.i_batch % hp.mem_size] = z
        self._clip()
        self._clear_grads(self.mmilb_parameters())
        self.i_batch += 1

    def record(self) -> dict[str, Any]:
        return {"text_mode": self.text.mode, "text_source": self.text.source, "text_dim": self.text.dim,
                "text_vector": "[CLS] (BERT position 0)" if self.text.mode == "bert" else "text[:, 0, :]",
                "lengths_from": self.lengths_used or self.hp.lengths_from, "hparams_era": self.hp.hparams_era,
                "zero_grad_mode": self.hp.zero_grad_mode, "stage1_steps": self.stage1_steps,
                "stage1_neg_lld": [round(v, 6) for v in self.stage1_loss]}
