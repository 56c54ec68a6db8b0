"""BERT text encoder wrapper (MMSA / DMD / EMOE convention), local files only.

Input: ``text_bert`` (B, 3, T) with rows input_ids, attention_mask, token_type_ids (stored as int64
or float; ids and token types are cast to long, the mask to float). Output: the last hidden state
(B, T, H) for every position (CLS, SEP and padding included); the pooler output is not used.

Never downloads: ``from_pretrained(..., local_files_only=True)`` in the hub's offline mode
(:mod:`bench.offline`: no connection, no DNS lookup). For tests, pass a
``transformers.BertConfig`` to build a randomly initialised model instead, or use the name
``random:bert-base-uncased`` (:data:`RANDOM_BERT_BASE`): bert-base-uncased geometry with random
weights, for parameter counting on the meta device and pipeline smoke tests only.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from bench.errors import UserError
from bench.offline import hub_offline, not_local_message

__all__ = ["RANDOM_BERTS", "RANDOM_BERT_BASE", "BertTextEncoder", "load_bert"]

RANDOM_BERT_BASE = "random:bert-base-uncased"
# Randomly initialised geometries (no weights exist offline): bert-base for counting, bert-mini (4 layers,
# 256-d, Turc et al. 2019's geometry) for pipeline smoke runs of BERT-only methods on a CPU.
RANDOM_BERTS = {RANDOM_BERT_BASE: {}, "random:bert-mini": dict(hidden_size=256, num_hidden_layers=4,
                                                                  num_attention_heads=4, intermediate_size=1024)}


def load_bert(path_or_name: str, add_pooling_layer: bool = True) -> nn.Module:
    """``BertModel.from_pretrained(path_or_name, local_files_only=True)`` in offline mode, with a one-line error."""
    hub_offline()
    try:
        from transformers import BertModel  # lazy: transformers loads only when a BERT is built
    except ImportError as e:  # pragma: no cover - optional dependency
        raise UserError("text_mode=bert needs the 'transformers' package "
                        "(pip install emoe-bench[bert])") from e
    if path_or_name.startswith("random:"):
        if path_or_name not in RANDOM_BERTS:
            raise UserError(f"unknown random BERT {path_or_name!r}; expected one of {', '.join(RANDOM_BERTS)}")
        from transformers import BertConfig  # lazy: transformers loads only when a BERT is built

        # BertConfig() = bert-base geometry (vocabulary 30522)
        return BertModel(BertConfig(**RANDOM_BERTS[path_or_name]), add_pooling_layer=add_pooling_layer)
    if torch.empty(()).device.type == "meta":  # counting (bench describe): from_pretrained refuses meta
        return _from_local_config(path_or_name, add_pooling_layer)
    try:
        return BertModel.from_pretrained(os.path.expanduser(path_or_name), local_files_only=True,
                                         add_pooling_layer=add_pooling_layer)
    except (OSError, ValueError) as e:
        if not os.path.isdir(os.path.expanduser(path_or_name)):
            raise UserError(not_local_message("BERT model", path_or_name)) from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"cannot load BERT from {path_or_name!r} without downloading (local_files_only): {first}"
        ) from None


def _from_local_config(path_or_name: str, add_pooling_layer: bool) -> nn.Module:
    """The checkpoint's geometry with unloaded weights: only its ``config.json`` is read (under a meta
    device context, where no weights could be held anyway)."""
    hub_offline()
    from transformers import BertConfig, BertModel  # lazy: transformers loads only when a BERT is built

    try:
        config = BertConfig.from_pretrained(os.path.expanduser(path_or_name), local_files_only=True)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot read the BERT config of {path_or_name!r} without downloading ({first}); for "
                        "counting parameters use --set text_model=random:bert-base-uncased") from None
    return BertModel(config, add_pooling_layer=add_pooling_layer)


class BertTextEncoder(nn.Module):
    """A (fine-tunable) Hugging Face ``BertModel``; ``forward(text_bert) -> last_hidden_state``.

    Exactly one of ``path_or_name`` (a local directory, a name already in the Hugging Face cache, or
    :data:`RANDOM_BERT_BASE`) and ``config`` (a ``BertConfig``: random weights, for tests) must be
    given. The pooler is kept (its parameters count in bert-base's 109,482,240) but unused.
    ``finetune=False`` runs BERT under ``torch.no_grad()`` with ``requires_grad=False`` parameters.
    """

    def __init__(self, path_or_name: str | None = None, config=None, finetune: bool = True,
                 add_pooling_layer: bool = True):
        super().__init__()
        if (path_or_name is None) == (config is None):
            raise ValueError("give exactly one of path_or_name and config")
        if config is not None:
            from transformers import BertModel  # lazy: transformers loads only when a BERT is built

            self.model = BertModel(config, add_pooling_layer=add_pooling_layer)
        else:
            self.model = load_bert(path_or_name, add_pooling_layer=add_pooling_layer)
        self.source = path_or_name if path_or_name is not None else "random-config"
        self.finetune = finetune
        if not finetune:  # frozen: keep the weights out of the optimiser (dropout stays as in MMSA)
            self.model.requires_grad_(False)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def forward(self, text_bert: torch.Tensor) -> torch.Tensor:
        """(B, 3, T) -> (B, T, hidden_size)."""
        input_ids = text_bert[:, 0, :].long()
        attention_mask = text_bert[:, 1, :].float()
        token_type_ids = text_bert[:, 2, :].long()
        if self.finetune:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids)
        else:
            with torch.no_grad():
                out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                 token_type_ids=token_type_ids)
        return out.last_hidden_state
