"""MAG-BERT: the Multimodal Adaptation Gate inside BERT (Rahman et al., ACL 2020), the MAG-BERT row of
EMOE Table 3 (MIntRec) as thuiar/MIntRec runs it, plus MMSA's ``bert_mag`` for MOSI/MOSEI.

Sources (facts only, code written here):

* thuiar/MIntRec@2fef2c2dc7a997170362d25922ee027ec284d484 ``backbones/FusionNets/MAG_BERT.py`` (MAG,
  MAG_BertModel, MAG_BertForSequenceClassification), ``backbones/SubNets/AlignNets.py`` (CTCModule,
  AlignSubNet), ``methods/MAG_BERT/manager.py`` (AdamW(correct_bias=False) with BERT no-decay groups,
  linear warm-up schedule stepped per batch, cross-entropy, selection on dev ``eval_monitor``),
  ``configs/mag_bert_tune.py`` (the config ``examples/run_mag_bert.sh``@b213ed9 names), ``utils/functions.py``
  (EarlyStopping: patience 8, delta 1e-6), ``utils/metrics.py`` (macro F1/P/R), ``data/__init__.py``
  (max lengths text 30 / video 230 / audio 480, dims 768 / 256 / 768), ``data/base.py`` (shuffled train
  loader without drop_last), ``backbones/base.py`` (audio/video cast to float).
* thuiar/MMSA@63aa7df61410bac2faee8afae77cc75fc19e1f51 ``src/MMSA/models/singleTask/BERT_MAG.py`` (same
  MAG, ``num_labels=1``), thuiar/MMSA@d11d56ecbb765902c8c987131e512f4665cb998d
  ``src/MMSA/models/subNets/AlignNets.py`` (contiguous-window avg_pool),
  thuiar/MMSA@177bc0462a61b355c554812dedd432a21f374130 ``src/MMSA/trains/singleTask/BERT_MAG.py`` (torch
  Adam over all parameters, L1 loss, selection on the validation loss = mean of per-batch losses rounded
  to 4 dp, early stop) and
  thuiar/MMSA@085d2ccd2a58dc515c8680d83e89ddc96903cf24 ``src/MMSA/config/config_regression.json``
  (``bert_mag``: need_data_aligned=true, early_stop=8, weight_decay=0.0; MOSI batch 32, lr 2e-5,
  beta_shift 1, dropout_prob 0.3; MOSEI batch 32, lr 1e-5, beta_shift 1, dropout_prob 0.2).

Model. ``Z`` = BERT's hidden states after the embedding layer (``injection_index=0``, the reference code)
or after encoder layer k (``injection_index=k``, the paper's other positions). Audio A and vision V are
first brought to the text length (MIntRec's AlignSubNet, ``align_method``; skipped for a modality whose
length already equals the text length). Per token::

    g_v = ReLU(W_hv [V; Z]),  g_a = ReLU(W_ha [A; Z])                  (gates; concatenation order V|A first)
    H   = g_v * W_v V + g_a * W_a A                                   (non-verbal shift)
    alpha = min(||Z|| / (||H||' + 1e-6) * beta_shift, 1),  ||H||' = 1 where ||H|| = 0
    Z'  = Dropout(LayerNorm(Z + alpha * H))                            (LayerNorm eps 1e-5, torch default)

``Z'`` replaces ``Z`` and the rest of BERT runs unchanged (attention mask included); the pooler output
goes through Dropout(BERT hidden_dropout_prob) and a Linear head (20 logits on MIntRec, 1 value on
MOSI/MOSEI). The gate is applied to every position, padding included, as in the reference.

CTC alignment (MIntRec ``CTCModule``): a 2-layer LSTM(D, L+1) over the padded sequence, softmax over its
L+1 outputs, the blank column 0 dropped, aligned = P^T X (B, L, D) with P (B, T, L). ``avg_pool`` pads
with the last frame and averages *strided* positions (output j = mean of x[j], x[j+L], x[j+2L], ...),
as MIntRec's ``view(B, pool, L, D).mean(1)`` does (``avg_pool_order=windows``: MMSA's later contiguous
windows); ``conv1d`` mixes time steps with a bias-free 1x1 Conv1d over the time axis. Lengths are not
used: zero padding frames enter every aligner, as in the reference.

Optimisation (MIntRec): transformers' AdamW(lr, correct_bias=False, eps 1e-6, betas 0.9/0.999) with
decoupled weight decay on every parameter whose name contains none of ``bias``, ``LayerNorm.bias``,
``LayerNorm.weight``; ``get_linear_schedule_with_warmup`` with ``int(N/B)·E`` training steps and
``int(N·E·0.1/B)`` warm-up steps (E = num_train_epochs = 100), stepped after every batch. The shared
trainer builds ``torch.optim.Adam(param_groups())`` and has no per-step scheduler hook, so this method
rewrites its own optimiser groups (the dicts it returned, which ``torch.optim`` keeps by identity) in
``after_step`` -- called after each backward and before the optimiser step -- setting lr, eps and
weight decay so that torch's decoupled Adam performs exactly transformers' AdamW step (see
:func:`hf_adamw_group_values`; the only difference is the order of decay and update, O(lr²·wd)).
If the optimiser does not hold those dicts the method raises instead of silently training with a
constant rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from bench.config import Fraction, NonNegFloat, NonNegInt, PosFloat, Prob
from bench.data.tensors import DataInfo, Split
from bench.errors import UserError
from bench.method import Method, TrainHParams
from bench.nn.bert import load_bert
from bench.registry import register_method

# thuiar/MIntRec methods/MAG_BERT/manager.py: no weight decay for these name fragments.
NO_DECAY = ("bias", "LayerNorm.bias", "LayerNorm.weight")
MAG_EPS = 1e-6  # MAG.forward's eps
ADAM_BETAS = (0.9, 0.999)  # transformers AdamW and torch Adam defaults


@dataclass
class MAGBertHParams(TrainHParams):
    # --- text: MAG lives inside BERT, so a BERT is required (never downloaded; a local folder, a name
    # already in the Hugging Face cache, or random:bert-base-uncased for counting / smoke runs)
    text_model: str = "bert-base-uncased"  # MIntRec --text_backbone, MMSA "pretrained"
    # 0 = after the embedding layer (MIntRec, MMSA, Rahman et al.'s code); k >= 1 = after encoder layer k
    injection_index: NonNegInt = 0
    # --- MAG (MIntRec configs/mag_bert_tune.py; MMSA bert_mag)
    beta_shift: NonNegFloat = 0.005
    dropout_prob: Prob = 0.5  # MAG's dropout after its LayerNorm
    # --- alignment of audio/vision to the text length (MIntRec need_aligned=True, aligned_method='ctc');
    # "none": the data must already be aligned (MMSA need_data_aligned=true)
    align_method: Literal["none", "ctc", "avg_pool", "conv1d"] = "ctc"
    # avg_pool only: "strided" = MIntRec's view(B, pool, L, D).mean(1); "windows" = MMSA's later
    # view(B, L, pool, D).mean(2) (contiguous windows)
    avg_pool_order: Literal["strided", "windows"] = "strided"
    # MIntRec builds a text aligner (ctc_t / conv1d_T) that never runs because the text already has the
    # target length; its parameters count in the model. False leaves it out.
    build_unused: bool = True
    # "bert": new Linear layers N(0, initializer_range) with zero bias (from_pretrained's _init_weights on
    # the MAG and classifier modules); "torch": torch's default Linear init
    init: Literal["bert", "torch"] = "bert"
    # --- optimisation
    # "adamw_hf": transformers AdamW, decoupled decay, two groups by NO_DECAY (MIntRec);
    # "adam": torch Adam over all parameters, coupled L2 (MMSA trains/singleTask/BERT_MAG.py)
    optimizer: Literal["adamw_hf", "adam"] = "adamw_hf"
    adam_bias_correction: bool = False  # MIntRec AdamW(correct_bias=False); adamw_hf only
    adam_eps: PosFloat = 1e-6  # transformers AdamW default (torch Adam: 1e-8)
    lr_schedule: Literal["warmup_linear", "constant"] = "warmup_linear"
    warmup_proportion: Fraction = 0.1
    schedule_epochs: NonNegInt = 0  # E of the schedule; 0 = max_epochs (MIntRec: num_train_epochs drives both)
    batch_size: int = 16
    eval_batch_size: int = 8
    learning_rate: float = 2e-5
    weight_decay: float = 0.03
    early_stop: int = 8  # wait_patience
    max_epochs: int = 100  # num_train_epochs
    select_on: str = "f1"  # eval_monitor

    def validate(self) -> None:
        if not self.text_model:
            raise UserError("mag_bert needs a BERT: --set text_model=PATH (a local BERT directory, a name "
                            "already in the Hugging Face cache, or random:bert-base-uncased)")
        if self.lr_schedule == "warmup_linear" and self.schedule_epochs <= 0 and self.max_epochs <= 0:
            raise UserError("mag_bert: lr_schedule=warmup_linear needs max_epochs or schedule_epochs > 0 "
                            "(the schedule length is int(N/batch_size) * epochs)")
        if self.optimizer == "adam" and not self.adam_bias_correction:
            raise UserError("mag_bert: adam_bias_correction=false is only available with optimizer=adamw_hf")


# thuiar/MMSA config_regression.json "bert_mag" + trains/singleTask/BERT_MAG.py (torch Adam, L1 loss,
# KeyEval Loss, no epoch cap, no scheduler); the data must be aligned (need_data_aligned=true).
_MMSA = dict(batch_size=32, eval_batch_size=0, weight_decay=0.0, beta_shift=1.0, early_stop=8, max_epochs=0,
             select_on="loss", val_loss="batch_mean_4dp", optimizer="adam", adam_bias_correction=True,
             adam_eps=1e-8, lr_schedule="constant")
DEFAULTS: dict[str, dict[str, Any]] = {
    # thuiar/MIntRec configs/mag_bert_tune.py (common + hyper parameters) and manager.py
    "mintrec": dict(batch_size=16, eval_batch_size=8, learning_rate=2e-5, weight_decay=0.03, beta_shift=0.005,
                    dropout_prob=0.5, warmup_proportion=0.1, max_epochs=100, early_stop=8, select_on="f1",
                    align_method="ctc", optimizer="adamw_hf", adam_bias_correction=False, adam_eps=1e-6,
                    lr_schedule="warmup_linear"),
    "mosi": dict(_MMSA, learning_rate=2e-5, dropout_prob=0.3),
    "mosei": dict(_MMSA, learning_rate=1e-5, dropout_prob=0.2),
}


# ------------------------------------------------------------------------------ optimiser emulation
def linear_warmup_factor(step: int, warmup: int, total: int) -> float:
    """transformers ``get_linear_schedule_with_warmup`` multiplier for optimiser step ``step`` (0-based)."""
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def hf_adamw_group_values(lr: float, eps: float, weight_decay: float, t: int, correct_bias: bool,
                          betas: tuple[float, float] = ADAM_BETAS) -> tuple[float, float, float]:
    """(lr, eps, weight_decay) for torch's ``Adam(decoupled_weight_decay=True)`` at its step ``t`` (1-based)
    such that the update equals transformers' AdamW with (lr, eps, weight_decay, correct_bias).

    transformers: ``p -= lr·s·m/(sqrt(v) + eps)`` with ``s = sqrt(bc2)/bc1`` (correct_bias) or 1, then
    ``p -= lr·wd·p``. torch: ``p *= 1 - lr'·wd'`` then ``p -= lr'/bc1 · m/(sqrt(v)/sqrt(bc2) + eps')``.
    Matching: ``eps' = eps/sqrt(bc2)``, ``lr' = lr·s·bc1/sqrt(bc2)``, ``wd' = wd·lr/lr'``.
    """
    bc1 = 1.0 - betas[0] ** t
    bc2_sqrt = math.sqrt(1.0 - betas[1] ** t)
    scale = 1.0 if correct_bias else bc1 / bc2_sqrt  # lr' / lr
    wd = weight_decay / scale if weight_decay else 0.0
    return lr * scale, eps / bc2_sqrt, wd


# ------------------------------------------------------------------------------ modules
class MAG(nn.Module):
    """The Multimodal Adaptation Gate (MIntRec/MMSA ``MAG``); ``forward(z, visual, acoustic)``."""

    def __init__(self, d_text: int, d_audio: int, d_vision: int, beta_shift: float, dropout: float):
        super().__init__()
        self.W_hv = nn.Linear(d_vision + d_text, d_text)
        self.W_ha = nn.Linear(d_audio + d_text, d_text)
        self.W_v = nn.Linear(d_vision, d_text)
        self.W_a = nn.Linear(d_audio, d_text)
        self.beta_shift = beta_shift
        self.LayerNorm = nn.LayerNorm(d_text)  # the name keys the no-decay rule
        self.dropout = nn.Dropout(dropout)

    def shift(self, z: torch.Tensor, visual: torch.Tensor, acoustic: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha (..., 1), H (..., D)): the scaling and the gated non-verbal shift."""
        g_v = F.relu(self.W_hv(torch.cat((visual, z), dim=-1)))
        g_a = F.relu(self.W_ha(torch.cat((acoustic, z), dim=-1)))
        h = g_v * self.W_v(visual) + g_a * self.W_a(acoustic)
        z_norm = z.norm(2, dim=-1)
        h_norm = h.norm(2, dim=-1)
        h_norm = torch.where(h_norm == 0, torch.ones_like(h_norm), h_norm)
        thresh = z_norm / (h_norm + MAG_EPS) * self.beta_shift
        alpha = torch.minimum(thresh, torch.ones_like(thresh))
        return alpha.unsqueeze(-1), h

    def forward(self, z: torch.Tensor, visual: torch.Tensor, acoustic: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(Z' (..., D), alpha (...))."""
        alpha, h = self.shift(z, visual, acoustic)
        return self.dropout(self.LayerNorm(alpha * h + z)), alpha.squeeze(-1)


class CTCAlign(nn.Module):
    """MIntRec ``CTCModule``: (B, T, D) -> (B, L, D) through soft position assignments (blank = column 0)."""

    def __init__(self, d_in: int, out_len: int):
        super().__init__()
        self.position_lstm = nn.LSTM(d_in, out_len + 1, num_layers=2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits, _ = self.position_lstm(x)  # (B, T, L+1)
        prob = torch.softmax(logits, dim=2)[:, :, 1:]  # drop the blank
        return torch.bmm(prob.transpose(1, 2), x)


def avg_pool_align(x: torch.Tensor, out_len: int, order: str = "strided") -> torch.Tensor:
    """``AlignSubNet.__avg_pool``: pad with the last frame to ``pool·L`` frames (pool = ceil(T/L)) and average.

    ``order="strided"`` (thuiar/MIntRec): ``view(B, pool, L, D).mean(1)`` -- output j averages the strided
    frames j, j+L, j+2L, ...; ``order="windows"`` (thuiar/MMSA@d11d56e): ``view(B, L, pool, D).mean(2)`` --
    output j averages the contiguous window j·pool .. (j+1)·pool-1.
    """
    b, t, d = x.shape
    if t == out_len:
        return x
    if t % out_len == 0:
        pad_len, pool = 0, t // out_len
    else:
        pad_len, pool = out_len - t % out_len, t // out_len + 1
    padded = torch.cat([x, x[:, -1:, :].expand(b, pad_len, d)], dim=1)
    if order == "windows":
        return padded.reshape(b, out_len, pool, d).mean(dim=2)
    return padded.reshape(b, pool, out_len, d).mean(dim=1)


class AlignNet(nn.Module):
    """MIntRec ``AlignSubNet``: brings audio and vision (and, never in practice, text) to the text length."""

    def __init__(self, method: str, out_len: int, dims: dict[str, int], lens: dict[str, int], build_text: bool,
                 avg_pool_order: str = "strided"):
        super().__init__()
        self.method = method
        self.avg_pool_order = avg_pool_order
        self.out_len = out_len
        mods = ("text", "audio", "vision") if build_text else ("audio", "vision")
        if method == "ctc":
            for m in mods:
                self.add_module(f"ctc_{m}", CTCAlign(dims[m], out_len))
        elif method == "conv1d":
            for m in mods:
                self.add_module(f"conv1d_{m}", nn.Conv1d(lens[m], out_len, kernel_size=1, bias=False))

    def align(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == self.out_len:  # already at the target length: untouched (as the reference)
            return x
        if self.method == "avg_pool":
            return avg_pool_align(x, self.out_len, self.avg_pool_order)
        if self.method == "ctc":
            return getattr(self, f"ctc_{modality}")(x)
        conv = getattr(self, f"conv1d_{modality}")
        if x.shape[1] != conv.in_channels:
            raise UserError(f"mag_bert: align_method=conv1d was built for {modality} length {conv.in_channels}, "
                            f"got {x.shape[1]}")
        return conv(x)


@register_method("mag_bert")
class MAGBert(Method):
    HParams = MAGBertHParams
    families = ("mosi", "mosei", "mintrec")
    settings = ("aligned", "unaligned")
    default_setting = "aligned"  # MMSA bert_mag: need_data_aligned=true (MIntRec has only unaligned)
    export_keys = ("alpha",)
    description = ("MAG-BERT (MIntRec/MMSA): gated non-verbal shift of BERT's embeddings (alpha = "
                   "min(|Z|/|H| beta, 1)), CTC-aligned audio/vision, pooled [CLS] head")

    @classmethod
    def default_hparams(cls, family: str, setting: str) -> MAGBertHParams:
        if family not in DEFAULTS:
            raise UserError(f"mag_bert has no configuration for {family!r} (supported: {', '.join(DEFAULTS)})")
        kw = dict(DEFAULTS[family])
        if family != "mintrec":
            # MMSA runs bert_mag on aligned data only; unaligned MOSI/MOSEI use MIntRec's CTC aligner (ours)
            kw["align_method"] = "none" if setting == "aligned" else "ctc"
        return MAGBertHParams(**kw)

    @classmethod
    def describe_groups(cls) -> dict[str, tuple[str, ...]]:
        return {"bert": ("bert",), "mag": ("mag",), "align_audio_vision": ("align.ctc_audio", "align.ctc_vision",
                                                                          "align.conv1d_audio",
                                                                          "align.conv1d_vision"),
                "align_text_unused": ("align.ctc_text", "align.conv1d_text"), "classifier": ("classifier",)}

    def __init__(self, hp: MAGBertHParams, info: DataInfo, bert_config=None):
        super().__init__(hp, info)
        if not info.has_text_bert:
            raise UserError("mag_bert needs the dataset's text_bert token ids (MAG is applied inside BERT); "
                            "this dataset has none (real MIntRec: pass a tokenizer, see bench/data/mintrec.py)")
        if bert_config is not None:
            from transformers import BertModel

            self.bert = BertModel(bert_config, add_pooling_layer=True)
            self.text_source = "random-config"
        else:
            if not hp.text_model:
                hp.validate()  # raises the "needs a BERT" message
            self.bert = load_bert(hp.text_model, add_pooling_layer=True)
            self.text_source = hp.text_model
        cfg = self.bert.config
        n_layers = int(cfg.num_hidden_layers)
        if hp.injection_index > n_layers:
            raise UserError(f"mag_bert: injection_index={hp.injection_index} but BERT has {n_layers} layers "
                            f"(0 = after the embeddings, k = after encoder layer k)")
        d_t = int(cfg.hidden_size)
        d_a, d_v = int(info.dims["audio"]), int(info.dims["vision"])
        lens = {"text": info.seq_lens["text"], "audio": info.seq_lens["audio"], "vision": info.seq_lens["vision"]}
        if lens["text"] is None:
            raise UserError("mag_bert: the dataset has no text length")
        self.mag = MAG(d_t, d_a, d_v, hp.beta_shift, hp.dropout_prob)
        needs_align = lens["audio"] != lens["text"] or lens["vision"] != lens["text"]
        if hp.align_method == "none":
            if needs_align:
                raise UserError(f"mag_bert: audio/vision lengths {lens['audio']}/{lens['vision']} differ from the "
                                f"text length {lens['text']}; use aligned data or --set align_method=ctc "
                                "(or avg_pool, conv1d)")
            self.align = None
        else:
            dims = {"text": d_t, "audio": d_a, "vision": d_v}
            self.align = AlignNet(hp.align_method, int(lens["text"]), dims, lens, build_text=hp.build_unused,
                                  avg_pool_order=hp.avg_pool_order)
        self.dropout = nn.Dropout(float(cfg.hidden_dropout_prob))
        out_dim = info.num_classes if info.task == "classification" else 1
        self.classifier = nn.Linear(d_t, out_dim)
        if hp.init == "bert":
            std = float(cfg.initializer_range)
            for lin in (self.mag.W_hv, self.mag.W_ha, self.mag.W_v, self.mag.W_a, self.classifier):
                nn.init.normal_(lin.weight, mean=0.0, std=std)
                nn.init.zeros_(lin.bias)
        # optimiser state for the per-step schedule (see the module docstring)
        self._opt_groups: list[dict] = []
        self._group_base: list[tuple[float, float, float]] = []
        self._n_train = 0
        self._steps_done = 0  # optimiser steps of the finished epochs
        self._epoch_batches = 0  # backward passes in the current epoch
        self._last_step_values: dict[str, float] = {}

    # ------------------------------------------------------------------------------ forward
    def _injection_target(self) -> nn.Module:
        k = self.hp.injection_index
        return self.bert.embeddings if k == 0 else self.bert.encoder.layer[k - 1]

    def aligned_nonverbal(self, batch: Split) -> tuple[torch.Tensor, torch.Tensor]:
        """(vision, audio) at the text length (float32)."""
        vision, audio = batch.vision.float(), batch.audio.float()
        if self.align is not None:
            vision = self.align.align("vision", vision)
            audio = self.align.align("audio", audio)
        t = batch.text_bert.shape[-1]
        if vision.shape[1] != t or audio.shape[1] != t:
            raise UserError(f"mag_bert: aligned audio/vision lengths {audio.shape[1]}/{vision.shape[1]} do not "
                            f"match the text length {t}")
        return vision, audio

    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        if batch.text_bert is None:
            raise UserError("mag_bert: the batch has no text_bert token ids")
        ids = batch.text_bert[:, 0, :].long()
        mask = batch.text_bert[:, 1, :].float()
        token_types = batch.text_bert[:, 2, :].long()
        vision, audio = self.aligned_nonverbal(batch)
        captured: dict[str, torch.Tensor] = {}

        def inject(_module, _inputs, output):
            hidden = output[0] if isinstance(output, tuple) else output  # BertLayer returns a tuple in 4.x
            fused, alpha = self.mag(hidden, vision, audio)
            captured["alpha"] = alpha
            return (fused, *output[1:]) if isinstance(output, tuple) else fused

        handle = self._injection_target().register_forward_hook(inject)
        try:
            out = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=token_types)
        finally:
            handle.remove()
        pooled = out.pooler_output
        logits = self.classifier(self.dropout(pooled))
        alpha = captured["alpha"]
        alpha_mean = (alpha * mask).sum(1) / mask.sum(1).clamp(min=1)
        pred = logits if self.info.task == "classification" else logits.squeeze(-1)
        return {"pred": pred, "pooled": pooled, "alpha": alpha_mean}

    # ------------------------------------------------------------------------------ optimisation
    def param_groups(self) -> list[dict[str, Any]]:
        hp = self.hp
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        if hp.optimizer == "adam":  # MMSA: Adam(model.parameters(), lr, weight_decay) -- coupled L2
            groups = [{"params": [p for _, p in named], "lr": hp.learning_rate, "weight_decay": hp.weight_decay,
                       "eps": hp.adam_eps}]
        else:
            decay = [p for n, p in named if not any(nd in n for nd in NO_DECAY)]
            no_decay = [p for n, p in named if any(nd in n for nd in NO_DECAY)]
            groups = [
                {"params": decay, "lr": hp.learning_rate, "weight_decay": hp.weight_decay, "eps": hp.adam_eps,
                 "decoupled_weight_decay": True},
                {"params": no_decay, "lr": hp.learning_rate, "weight_decay": 0.0, "eps": hp.adam_eps,
                 "decoupled_weight_decay": True},
            ]
        self._opt_groups = groups
        self._group_base = [(g["lr"], g["eps"], g["weight_decay"]) for g in groups]
        if self._per_step():
            self._apply_step_values(0)  # the values of the first step (lr 0 under warm-up, as LambdaLR's init)
        return groups

    def _per_step(self) -> bool:
        hp = self.hp
        # transformers' AdamW places eps differently from torch's Adam, so adamw_hf is emulated every step
        return hp.lr_schedule != "constant" or hp.optimizer == "adamw_hf"

    def schedule_steps(self, n_train: int | None = None) -> tuple[int, int]:
        """(total, warm-up) optimiser steps of the linear schedule (MIntRec manager._set_optimizer)."""
        hp = self.hp
        n = self._n_train if n_train is None else n_train
        epochs = hp.schedule_epochs or hp.max_epochs
        per_step = hp.batch_size * max(1, hp.grad_accum)
        total = int(n / per_step) * epochs
        warmup = int(n * epochs * hp.warmup_proportion / per_step)
        return total, warmup

    def lr_factor(self, step: int) -> float:
        if self.hp.lr_schedule == "constant":
            return 1.0
        if self._n_train <= 0:
            return 0.0  # before the training split is known (param_groups at construction time)
        total, warmup = self.schedule_steps()
        return linear_warmup_factor(step, warmup, total)

    def _apply_step_values(self, step: int) -> None:
        """Set every optimiser group's lr / eps / weight decay for optimiser step ``step`` (0-based)."""
        hp = self.hp
        factor = self.lr_factor(step)
        values = {}
        for g, (lr, eps, wd) in zip(self._opt_groups, self._group_base, strict=True):
            lr_eff = lr * factor
            if hp.optimizer == "adamw_hf":
                g["lr"], g["eps"], g["weight_decay"] = hf_adamw_group_values(
                    lr_eff, eps, wd, step + 1, hp.adam_bias_correction)
            else:
                g["lr"] = lr_eff
        values["step"] = step
        values["lr_effective"] = self.hp.learning_rate * factor
        values["lr_torch_group0"] = float(self._opt_groups[0]["lr"]) if self._opt_groups else 0.0
        self._last_step_values = values

    def on_epoch_start(self, epoch: int, train: Split) -> None:
        if epoch == 1:
            self._n_train = len(train)
            self._steps_done = 0
        else:  # the optimiser steps the trainer took last epoch (a dropped accumulation tail takes none)
            accum = max(1, self.hp.grad_accum)
            tail = self._epoch_batches % accum and not self.hp.grad_accum_drop_tail
            self._steps_done += self._epoch_batches // accum + (1 if tail else 0)
        self._epoch_batches = 0

    def after_step(self, out: dict[str, torch.Tensor], batch: Split, epoch: int) -> None:
        """Called after each backward, before the optimiser step: set the coming step's group values."""
        if not self._per_step() or not self._opt_groups:
            return
        if "betas" not in self._opt_groups[0]:  # torch.optim fills the defaults into the dicts it keeps
            raise UserError("mag_bert: the optimiser does not hold the parameter-group dicts returned by "
                            "param_groups(), so the per-step schedule cannot be applied (needs a scheduler "
                            "hook in the trainer)")
        self._epoch_batches += 1
        self._apply_step_values(self._steps_done + (self._epoch_batches - 1) // max(1, self.hp.grad_accum))

    def record(self) -> dict[str, Any]:
        hp = self.hp
        rec: dict[str, Any] = {
            "text_model": self.text_source,
            # True for random:bert-base-uncased / a BertConfig (tests); a local folder counts as loaded
            "text_random_init": self.text_source.startswith("random"),
            "bert_layers": int(self.bert.config.num_hidden_layers),
            "injection_index": hp.injection_index,
            "align_method": hp.align_method if self.align is not None else "none",
            "classifier_dropout": float(self.dropout.p),
            "optimizer": hp.optimizer,
            "lr_schedule": hp.lr_schedule,
        }
        if hp.lr_schedule == "warmup_linear" and self._n_train:
            total, warmup = self.schedule_steps()
            rec.update(schedule_total_steps=total, schedule_warmup_steps=warmup, last_step=self._last_step_values)
        return rec
