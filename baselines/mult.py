"""MulT: Multimodal Transformer (Tsai et al. 2019), as thuiar/MMSA implements it (a Table 1-2 row).

Model (MMSA ``models/singleTask/MULT.py`` @ a94e65d): the frozen text features (MMSA's
``use_bert=False``; BERT is never run) get ``text_dropout``; each modality is projected to ``d`` by a
bias-free Conv1d with no padding (skipped when the feature size already is ``d``), so sequences shrink
by ``k - 1``. Six cross-modal transformers ``trans_X_with_Y`` (query X, keys/values Y; attention
dropout chosen by the *source* Y) feed three self-attention "memory" transformers of width ``2d`` and
depth ``max(nlevels, 3)``. Each branch is read at its **last time step** (a padding frame for most
unaligned utterances: MMSA uses no padding mask), the three are concatenated (6d, exported as
``fused``) and passed through a residual two-layer head and ``Linear(6d, 1)``.

Training (``trains/singleTask/MULT.py``, §2.2): L1 loss; Adam without weight decay (the config's value
is ignored); ReduceLROnPlateau x0.1 on the validation loss; gradients of 8 batches summed, the tail
dropped; ``clip_grad_value_`` after every backward; early stop 8, no epoch cap.

Defaults are MMSA's current per-dataset values (``hparams_era="current"``); ``"table2021"`` gives the
v1 values that produced MMSA's published MulT rows (MOSI only differs) and turns positional
embeddings on, as the code of that time had them. docs/baselines.md (section MulT) lists every switch.

MIntRec form (family ``mintrec``, EMOE Table 3): the same network as the
thuiar/MIntRec framework builds it (thuiar/MIntRec @ 8d30e9b; files read at 2fef2c2
``backbones/FusionNets/MULT.py``, ``backbones/SubNets/transformers_encoder/{transformer,position_embedding}.py``,
``backbones/SubNets/FeatureNets.py``, ``methods/MULT/manager.py``, ``utils/functions.py``,
``utils/metrics.py``, and ccf08df ``configs/mult_bert.py``): the text is the last hidden state of a
**fine-tuned BERT** run on ``text_bert`` (``text_mode="bert"``; BERT is in the one Adam group at the
common lr), sinusoidal positions are always on (MIntRec's transformer always adds them), the head has
``num_classes`` outputs and cross-entropy loss; no gradient accumulation, ``clip_grad_value_(0.5)``,
ReduceLROnPlateau x0.1 (patience 8) on the per-sample mean dev loss, selection on dev macro-F1 with
patience 8, at most 100 epochs. No code was copied from either repository.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from bench.config import PosInt, Prob
from bench.data.tensors import DataInfo, Split
from bench.errors import UserError
from bench.method import COMPACT_BUDGET, Method, TrainHParams
from bench.nn.text import TextInput
from bench.nn.transformer import TransformerEncoder
from bench.registry import register_method
from bench.text_hparams import TextEncoderHParams

ERAS = ("current", "table2021")


@dataclass
class MulTHParams(TextEncoderHParams, TrainHParams):
    # Which MMSA configuration the era-dependent fields below start from (see _ERA_VALUES).
    hparams_era: Literal["current", "table2021"] = "current"
    # Bookkeeping for the era switch: "<family>/<era>" block the values were taken from (set by
    # ``default_hparams``; the bare dataclass holds MOSI's current block).
    defaults_from: str = "mosi/current"
    # None = follow the era: off for "current" (MMSA >= 2022-09, 1dea18d), on for "table2021" (and the
    # original MulT, which always adds sinusoidal positions).
    position_embedding: bool | None = None
    d_model: PosInt = 50  # MMSA dst_feature_dim_nheads[0]; the same d for l, a, v
    num_heads: PosInt = 10  # dst_feature_dim_nheads[1]; also used by the 2d-wide memory encoders
    nlevels: PosInt = 4  # cross-modal depth; memory depth is max(nlevels, 3)
    conv_kernel_l: PosInt = 5  # conv1D_kernel_size_{l,a,v}
    conv_kernel_a: PosInt = 5
    conv_kernel_v: PosInt = 5
    attn_dropout: Prob = 0.3  # source text (al, vl) and all three memory encoders
    attn_dropout_a: Prob = 0.2  # source audio (la, va)
    attn_dropout_v: Prob = 0.0  # source vision (lv, av)
    relu_dropout: Prob = 0.0
    res_dropout: Prob = 0.0
    embed_dropout: Prob = 0.2
    text_dropout: Prob = 0.5
    output_dropout: Prob = 0.5
    attn_mask: bool = True  # MMSA commonParams attn_mask (shifted-causal masks)
    # Dropout on the text input: MMSA's own ``text_dropout`` or, as the original MulT, ``embed_dropout``.
    text_input_dropout: Literal["text_dropout", "embed_dropout"] = "text_dropout"
    # Text input (TextEncoderHParams, narrowed): MMSA's frozen ``text`` features (use_bert=False) or, as
    # thuiar/MIntRec's MulT, a BERT run on ``text_bert`` (fine-tuned unless text_finetune=false).
    text_mode: Literal["features", "bert"] = "features"
    # MMSA builds Adam(model.parameters(), lr) and never reads weight_decay; True passes it to Adam.
    apply_weight_decay: bool = False
    attn_impl: Literal["sdpa", "math"] = "sdpa"  # same maths; "math" spells out the softmax
    # Trainer fields with MMSA's MulT values.
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 0.005
    grad_accum: int = 8  # update_epochs
    grad_clip_value: float = 0.6  # grad_clip (by value)
    grad_clip_at: str = "backward"  # clip_grad_value_ after every backward
    early_stop: int = 8
    max_epochs: int = 0
    plateau_patience: int = 5
    plateau_factor: float = 0.1
    val_loss: str = "batch_mean_4dp"  # MMSA's round(mean of per-batch L1, 4)

    def __post_init__(self):
        """Switch era: fields still at the old era's defaults move to the new era's values.

        ``dataclasses.replace`` (how ``--set`` overrides are applied) re-runs this, so
        ``--set hparams_era=table2021`` turns a MOSI configuration into the v1 block while fields
        overridden in the same call keep their new values. ``defaults_from`` records which block the
        values came from, so nothing is guessed from the values themselves.
        """
        fam, _, era = self.defaults_from.partition("/")
        if (fam in _ERA_VALUES and era in _ERA_VALUES[fam] and self.hparams_era in _ERA_VALUES[fam]
                and era != self.hparams_era):
            old, new = _ERA_VALUES[fam][era], _ERA_VALUES[fam][self.hparams_era]
            for k, v in old.items():
                if getattr(self, k) == v:
                    setattr(self, k, new[k])
            self.defaults_from = f"{fam}/{self.hparams_era}"

    @property
    def use_position_embedding(self) -> bool:
        if self.position_embedding is not None:
            return self.position_embedding
        return self.hparams_era == "table2021"

    def validate(self, need_text_model: bool = True) -> None:
        """One-line :class:`UserError` for an invalid combination. ``need_text_model=False`` skips the
        text_model check (a model built from a ``BertConfig`` in tests)."""
        fam, _, era = self.defaults_from.partition("/")
        if fam not in _ERA_VALUES or era not in ERAS:
            raise UserError(f"defaults_from={self.defaults_from!r}: expected '<mosi|mosei|mintrec>/<era>' "
                            "(bookkeeping set by default_hparams; change hparams_era instead)")
        if self.hparams_era not in _ERA_VALUES[fam]:
            raise UserError(f"mult: the {fam} configuration has only hparams_era="
                            f"{', '.join(_ERA_VALUES[fam])} (got {self.hparams_era!r})")
        if need_text_model:
            self.validate_text_encoder("mult")
        for d in (self.d_model, 2 * self.d_model):
            if d % self.num_heads:
                raise UserError(f"MulT: d_model={self.d_model} needs d_model and 2*d_model divisible by "
                                f"num_heads={self.num_heads}")


# MMSA config_regression.json "mult": "current" = values since 36bb33d
# (2022-01-25); "table2021" = v1 config_regression.py at 9a87fa0, which produced the published rows.
_MOSI_NOW = dict(d_model=50, num_heads=10, nlevels=4, conv_kernel_l=5, conv_kernel_a=5, conv_kernel_v=5,
                 batch_size=16, learning_rate=2e-3, attn_dropout=0.3, attn_dropout_a=0.2, attn_dropout_v=0.0,
                 relu_dropout=0.0, res_dropout=0.0, embed_dropout=0.2, text_dropout=0.5, output_dropout=0.5,
                 grad_clip_value=0.6, plateau_patience=5, weight_decay=0.005)
_MOSI_V1 = dict(d_model=40, num_heads=10, nlevels=4, conv_kernel_l=1, conv_kernel_a=5, conv_kernel_v=1,
                batch_size=4, learning_rate=1e-3, attn_dropout=0.1, attn_dropout_a=0.1, attn_dropout_v=0.2,
                relu_dropout=0.2, res_dropout=0.2, embed_dropout=0.1, text_dropout=0.2, output_dropout=0.1,
                grad_clip_value=0.8, plateau_patience=20, weight_decay=0.0)
_MOSEI = dict(d_model=30, num_heads=6, nlevels=4, conv_kernel_l=5, conv_kernel_a=1, conv_kernel_v=3,
              batch_size=4, learning_rate=5e-4, attn_dropout=0.4, attn_dropout_a=0.0, attn_dropout_v=0.0,
              relu_dropout=0.0, res_dropout=0.0, embed_dropout=0.0, text_dropout=0.3, output_dropout=0.5,
              grad_clip_value=0.6, plateau_patience=20, weight_decay=0.001)
# thuiar/MIntRec configs/mult_bert.py (common + hyper-parameters) and methods/MULT/manager.py (specs §6):
# one block ("current"); dst_feature_dims 120, nheads 8, n_levels 8, kernels l/v/a 5/1/1, attn dropout
# l/v/a 0.0/0.2/0.2, relu 0, embed 0.1, res 0, output 0.2, text 0.4, grad_clip 0.5 (value, every
# step), lr 3e-5, train/eval batch 16/8, wait_patience 8 (early stop and ReduceLROnPlateau), 100
# epochs, eval_monitor f1; no accumulation (zero_grad every batch), no weight decay; the dev loss is
# AverageMeter's per-sample mean; MIntRec's transformer always adds sinusoidal positions.
_MINTREC = dict(d_model=120, num_heads=8, nlevels=8, conv_kernel_l=5, conv_kernel_a=1, conv_kernel_v=1,
                batch_size=16, eval_batch_size=8, learning_rate=3e-5, attn_dropout=0.0, attn_dropout_a=0.2,
                attn_dropout_v=0.2, relu_dropout=0.0, res_dropout=0.0, embed_dropout=0.1, text_dropout=0.4,
                output_dropout=0.2, grad_clip_value=0.5, grad_accum=1, plateau_patience=8, plateau_factor=0.1,
                weight_decay=0.0, early_stop=8, max_epochs=100, select_on="f1", val_loss="sample_mean",
                position_embedding=True, text_mode="bert")
_ERA_VALUES = {
    "mosi": {"current": _MOSI_NOW, "table2021": _MOSI_V1},
    "mosei": {"current": _MOSEI, "table2021": _MOSEI},  # unchanged; only the positions differ
    "mintrec": {"current": _MINTREC},  # thuiar/MIntRec has one configuration
}
assert set(_MOSI_NOW) | set(_MINTREC) <= {f.name for f in fields(MulTHParams)}


def _conv(d_in: int, d: int, k: int) -> nn.Module:
    """MMSA's temporal projection; an identity when the feature size already equals d (MULT.py:102-104)."""
    return nn.Identity() if d_in == d else nn.Conv1d(d_in, d, kernel_size=k, padding=0, bias=False)


@register_method("mult")
class MulT(Method):
    # budgets beside the model (see bench.method.Method.presets)
    presets: ClassVar[dict[str, dict[str, str]]] = {
        "compact": {**COMPACT_BUDGET, "d_model": "32", "num_heads": "4", "nlevels": "2",
                    "grad_accum": "1", "learning_rate": "1e-3"},
        "tiny": {"d_model": "8", "num_heads": "2", "nlevels": "1", "grad_accum": "1"},
    }
    HParams = MulTHParams
    families = ("mosi", "mosei", "mintrec")
    default_setting = "unaligned"  # MMSA's need_data_aligned=false; MIntRec is unaligned only
    export_keys = ("fused",)
    description = ("Multimodal Transformer (MMSA; MIntRec form on mintrec): six cross-modal + three memory "
                   "transformers, last-step readout, L1 / cross-entropy")

    @classmethod
    def default_hparams(cls, family: str, setting: str, era: str = "current") -> MulTHParams:
        """MMSA's values for ``family`` (identical for aligned and unaligned data); for ``mintrec`` the
        thuiar/MIntRec configuration (``mult_bert``), whose only era is ``current``."""
        if family not in _ERA_VALUES:
            raise UserError(f"mult has no configuration for {family!r} (supported: {', '.join(_ERA_VALUES)})")
        if era not in _ERA_VALUES[family]:
            raise UserError(f"era {era!r}: expected one of {', '.join(_ERA_VALUES[family])} for {family}")
        return MulTHParams(hparams_era=era, defaults_from=f"{family}/{era}", **_ERA_VALUES[family][era])

    @classmethod
    def describe_groups(cls):
        return {
            "conv_proj": ("proj_l", "proj_a", "proj_v"),
            "crossmodal": ("trans_l_with_a", "trans_l_with_v", "trans_a_with_l", "trans_a_with_v",
                           "trans_v_with_l", "trans_v_with_a"),
            "memory": ("trans_l_mem", "trans_a_mem", "trans_v_mem"),
            "head": ("proj1", "proj2", "out_layer"),
        }

    def __init__(self, hp: MulTHParams, info: DataInfo, bert_config=None):
        """``bert_config`` (a ``transformers.BertConfig``) builds a randomly initialised BERT instead of
        loading ``hp.text_model`` (tests; implies ``text_mode=bert``)."""
        super().__init__(hp, info)
        hp.validate(need_text_model=bert_config is None)
        self.text = None  # features mode: the batch's frozen ``text`` array, no module
        if hp.text_mode == "bert" or bert_config is not None:
            # MIntRec builds BERTEncoder first (MULT.py); its parameters are in the one Adam group.
            self.text = TextInput("mult", info, "bert", hp.text_model, hp.text_finetune, bert_config)
            d_text = self.text.dim
        elif not info.has_text_features:
            raise UserError("mult (MMSA, use_bert=False) needs precomputed text features (the pickle's "
                            "'text' array); this dataset has only BERT token ids: use --set text_mode=bert "
                            "--set text_model=PATH")
        else:
            d_text = info.dims["text"]
        d = hp.d_model
        dims = info.dims
        self.kernels = {"text": hp.conv_kernel_l, "audio": hp.conv_kernel_a, "vision": hp.conv_kernel_v}
        # Construction order follows MULT.py so the parameter layout reads the same.
        self.proj_l = _conv(d_text, d, hp.conv_kernel_l)
        self.proj_a = _conv(dims["audio"], d, hp.conv_kernel_a)
        self.proj_v = _conv(dims["vision"], d, hp.conv_kernel_v)
        # Attention dropout follows the source (key/value) modality (MULT.py:47-54, get_network).
        src_drop = {"l": hp.attn_dropout, "a": hp.attn_dropout_a, "v": hp.attn_dropout_v}
        for q, s in (("l", "a"), ("l", "v"), ("a", "l"), ("a", "v"), ("v", "l"), ("v", "a")):
            setattr(self, f"trans_{q}_with_{s}", self._encoder(d, hp.nlevels, src_drop[s]))
        mem_layers = max(hp.nlevels, 3)  # MMSA passes layers=3 and takes the max: 4 with nlevels=4
        self.trans_l_mem = self._encoder(2 * d, mem_layers, hp.attn_dropout)
        self.trans_a_mem = self._encoder(2 * d, mem_layers, hp.attn_dropout)
        self.trans_v_mem = self._encoder(2 * d, mem_layers, hp.attn_dropout)
        combined = 6 * d
        self.proj1 = nn.Linear(combined, combined)
        self.proj2 = nn.Linear(combined, combined)
        out_dim = info.num_classes if info.task == "classification" else 1
        self.out_layer = nn.Linear(combined, out_dim)

    def _encoder(self, dim: int, layers: int, attn_dropout: float) -> TransformerEncoder:
        hp = self.hp
        return TransformerEncoder(
            dim, hp.num_heads, layers, attn_dropout=attn_dropout, relu_dropout=hp.relu_dropout,
            res_dropout=hp.res_dropout, embed_dropout=hp.embed_dropout, attn_mask=hp.attn_mask,
            position_embedding=hp.use_position_embedding, final_norm=True, impl=hp.attn_impl)

    @staticmethod
    def _project(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T - k + 1, d): Conv1d works channels-first."""
        return conv(x.transpose(1, 2)).transpose(1, 2)

    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        hp = self.hp
        p_text = hp.text_dropout if hp.text_input_dropout == "text_dropout" else hp.embed_dropout
        text = batch.text if self.text is None else self.text(batch)[0]  # BERT: last hidden state (B, T, 768)
        x_l = F.dropout(text, p=p_text, training=self.training)  # audio/vision: no input dropout
        h_l = self._project(self.proj_l, x_l)
        h_a = self._project(self.proj_a, batch.audio)
        h_v = self._project(self.proj_v, batch.vision)
        # Each target attends to the two other modalities; keys and values are the same source tensor
        # (the encoder scales, drops out and layer-norms them separately, as MMSA does).
        h_ls = torch.cat([self.trans_l_with_a(h_l, h_a), self.trans_l_with_v(h_l, h_v)], dim=-1)
        h_as = torch.cat([self.trans_a_with_l(h_a, h_l), self.trans_a_with_v(h_a, h_v)], dim=-1)
        h_vs = torch.cat([self.trans_v_with_l(h_v, h_l), self.trans_v_with_a(h_v, h_a)], dim=-1)
        l_mem, a_mem, v_mem = self.trans_l_mem(h_ls), self.trans_a_mem(h_as), self.trans_v_mem(h_vs)
        # Last time step, no padding mask (MMSA MULT.py reads ``[-1]`` of the memory outputs).
        last_l, last_a, last_v = l_mem[:, -1], a_mem[:, -1], v_mem[:, -1]
        fused = torch.cat([last_l, last_a, last_v], dim=-1)
        hidden = self.proj2(F.dropout(F.relu(self.proj1(fused)), p=hp.output_dropout, training=self.training))
        out = self.out_layer(hidden + fused)
        pred = out if self.info.task == "classification" else out.squeeze(-1)
        return {"pred": pred, "fused": fused, "feature_t": last_l, "feature_a": last_a, "feature_v": last_v}

    def param_groups(self):
        """One Adam group; MMSA's MulT trainer ignores ``weight_decay`` unless ``apply_weight_decay``."""
        wd = self.hp.weight_decay if self.hp.apply_weight_decay else 0.0
        return [{"params": [p for p in self.parameters() if p.requires_grad],
                 "lr": self.hp.learning_rate, "weight_decay": wd}]

    def conv_lengths(self) -> dict[str, int]:
        """Sequence lengths after the temporal projection (``T - k + 1``; unchanged when skipped)."""
        convs = {"text": self.proj_l, "audio": self.proj_a, "vision": self.proj_v}
        return {m: self.info.seq_lens[m] - (0 if isinstance(c, nn.Identity) else self.kernels[m] - 1)
                for m, c in convs.items()}

    def record(self) -> dict:
        hp = self.hp
        if self.text is None:
            text_input = f"frozen features ({self.info.dims['text']}-d), MMSA use_bert=False"
        else:
            text_input = (f"BERT last hidden state ({self.text.dim}-d, {self.text.source}, "
                          f"{'fine-tuned' if hp.text_finetune else 'frozen'})")
        return {
            "text_input": text_input,
            "hparams_era": hp.hparams_era,
            "position_embedding": hp.use_position_embedding,
            "memory_layers": max(hp.nlevels, 3),
            "conv_lengths": self.conv_lengths(),
            "weight_decay_applied": hp.weight_decay if hp.apply_weight_decay else 0.0,
            "readout": "last time step, no padding mask",
        }
