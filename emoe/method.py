"""Registered EMOE methods: ``emoe`` (the official computation) and ``emoe-paper`` (the equations as
printed, with our interpretations where the paper is vague). Both share one network and objective;
they differ only in their default hyper-parameters (emoe.config.PAPER_OVERRIDES, docs/switches.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from bench.config import check_hparams
from bench.data.tensors import DataInfo, Split
from bench.errors import UserError
from bench.method import COMPACT_BUDGET, Method
from bench.registry import register_method
from emoe.config import MINTREC_NOTE, EMOEHParams, preset
from emoe.model import GROUPS, EMOENet, count_parameters
from emoe.objective import emoe_terms


@register_method("emoe")
class EMOE(Method):
    """EMOE (CVPR 2025) as fuyyyyy/EMOE computes it (``models/singleTask/EMOE.py``, ``trains/singleTask/EMOE.py``)."""
    # budgets beside the model (see bench.method.Method.presets)
    presets: ClassVar[dict[str, dict[str, str]]] = {
        "compact": {**COMPACT_BUDGET, "d_model": "64", "n_heads": "4", "n_layers": "2",
                    "grad_accum": "1", "learning_rate": "1e-3"},
        "tiny": {"d_model": "16", "n_heads": "2", "n_layers": "1", "grad_accum": "1"},
    }

    HParams: ClassVar[type] = EMOEHParams
    families: ClassVar[tuple[str, ...]] = ("mosi", "mosei", "mintrec")
    settings: ClassVar[tuple[str, ...]] = ("aligned", "unaligned")
    export_keys: ClassVar[tuple[str, ...]] = ("weights", "fused", "pred_l", "pred_v", "pred_a")
    description: ClassVar[str] = ("EMOE, official code: raw-input L2-norm router, shared encoder, "
                                  "feature-space L_ud")
    face: ClassVar[str] = "official"

    def __init__(self, hp: EMOEHParams, info: DataInfo, bert_config=None):
        super().__init__(hp, info)
        check_hparams(hp)
        scalar_logits = info.task == "regression" and hp.ud and hp.ud_space == "logits"
        if scalar_logits and hp.ud_loss in ("softmax_mse", "kl"):
            raise UserError(f"emoe: ud_loss={hp.ud_loss} on scalar regression logits is a constant (no-op); "
                            "use ud_loss=l1 or mse with ud_space=logits")
        self.net = EMOENet(hp, info, bert_config=bert_config)

    # ---------------------------------------------------------------- hyper-parameters
    @classmethod
    def default_hparams(cls, family: str, setting: str) -> EMOEHParams:
        return preset(family, setting, cls.face)

    @classmethod
    def describe_groups(cls) -> dict[str, tuple[str, ...]]:
        return {g: tuple(f"net.{p}" for p in prefixes) for g, prefixes in GROUPS.items()}

    # ---------------------------------------------------------------- training interface
    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        if self.net.text_mode == "bert":
            text = batch.text_bert
            if text is None:
                raise UserError("emoe: text_mode=bert but the batch has no text_bert")
        else:
            text = batch.text
            if text is None:
                raise UserError("emoe: text_mode=features but the batch has no text features")
        return self.net(text, batch.audio, batch.vision)

    def loss_terms(self, out: dict[str, torch.Tensor], batch: Split) -> dict[str, torch.Tensor]:
        return emoe_terms(out, batch.labels, self.hp, self.info.task)

    def record(self) -> dict[str, Any]:
        net = self.net
        rec: dict[str, Any] = {
            "face": self.face,
            "text_mode": net.text_mode,
            "text_model": net.bert.source if net.bert is not None else None,
            "text_finetune": bool(self.hp.text_finetune) if net.bert is not None else None,
            # False for random BERT weights (tests, random:bert-base-uncased): never comparable
            "text_pretrained": (not net.bert.source.startswith("random")) if net.bert is not None else None,
            "router_input_transfer": dict(net.transfer_applied),
            "conv_applied": dict(net.conv_applied),
            "parameters": count_parameters(self),
        }
        if self.info.family == "mintrec":
            rec["design_note"] = MINTREC_NOTE
        return rec


@register_method("emoe-paper")
class EMOEPaper(EMOE):
    """EMOE as the paper's equations read (docs/switches.md lists each reading and marks interpretations)."""

    description: ClassVar[str] = ("EMOE, paper text: encoded-feature BN router, per-modality encoders, "
                                  "softmax importance, logit-space L_ud, batch 16 x 50 epochs")
    face: ClassVar[str] = "paper"
