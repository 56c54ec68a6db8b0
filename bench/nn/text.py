"""The text input shared by methods: a fine-tuned BERT on ``text_bert`` or the frozen ``text`` features.

MMSA's MISA and Self-MM fine-tune ``bert-base-uncased`` on the ``text_bert`` token ids. The suite
also runs them on the dataset's frozen ``text`` features (``text_mode=features``, the default when no
``text_model`` is given) so that they work without a BERT checkpoint. Both modes yield a (B, T, D)
sequence plus a (B, T) mask:

* bert mode: the BERT last hidden state; the mask is the attention-mask row of ``text_bert``.
* features mode: the ``text`` array; the mask is the ``text_bert`` attention mask when the dataset has
  token ids (positions line up one-to-one in the MMSA pickles), else the time steps whose feature
  vector is not all zeros (the MMSA/mosi229 text features are zero-padded).

The text length (mask sum) is what MMSA uses to pack audio/vision in MISA (always) and in Self-MM
(aligned data).
"""

from __future__ import annotations

import torch
from torch import nn

from bench import text_hparams
from bench.data.tensors import DataInfo, Split
from bench.errors import UserError
from bench.nn.bert import BertTextEncoder


def resolve_text_mode(text_mode: str, text_model: str, bert_config=None) -> str:
    """The mode a model is built in: BERT from a ``bert_config`` (tests), else the settings' own resolution."""
    return "bert" if bert_config is not None else text_hparams.resolve_text_mode(text_mode, text_model)


def text_mask(batch: Split) -> torch.Tensor:
    """(B, T) float mask of the text positions: BERT attention mask if present, else non-zero steps."""
    if batch.text_bert is not None:
        return batch.text_bert[:, 1, :].float()
    if batch.text is None:
        raise UserError("this batch has neither text_bert nor text features")
    return (batch.text.abs().sum(dim=-1) > 0).float()


class TextInput(nn.Module):
    """The text sequence for a batch: BERT last hidden state (bert) or the frozen ``text`` features.

    ``mode``, ``dim`` (feature width) and ``source`` (checkpoint path, "random-config" or "features")
    describe what was built; ``bert`` is the :class:`bench.nn.bert.BertTextEncoder` or None.
    """

    def __init__(self, method: str, info: DataInfo, text_mode: str, text_model: str, finetune: bool = True,
                 bert_config=None):
        super().__init__()
        self.mode = resolve_text_mode(text_mode, text_model, bert_config)
        self.bert = None
        if self.mode == "bert":
            if not info.has_text_bert:
                raise UserError(f"{method}: text_mode=bert needs the dataset's text_bert token ids, which "
                                "this dataset lacks; use text_mode=features")
            if bert_config is None and not text_model:
                raise text_hparams.missing_text_model(method)

            if bert_config is not None:
                self.bert = BertTextEncoder(config=bert_config, finetune=finetune)
            else:
                self.bert = BertTextEncoder(text_model, finetune=finetune)
            self.dim = self.bert.hidden_size
            self.source = self.bert.source
        elif self.mode == "features":
            if not info.has_text_features:
                raise UserError(f"{method}: this dataset has no frozen text features; use BERT with "
                                "--set text_model=PATH (text_mode=bert)")
            self.dim = int(info.dims["text"])
            self.source = "features"
        else:
            raise UserError(f"{method}: unknown text_mode {self.mode!r} (expected auto, bert or features)")

    def forward(self, batch: Split) -> tuple[torch.Tensor, torch.Tensor]:
        """(sequence (B, T, D), mask (B, T) float)."""
        if self.bert is not None:
            return self.bert(batch.text_bert), batch.text_bert[:, 1, :].float()
        return batch.text, text_mask(batch)


def freeze_bert_layers(text: TextInput, n_layers: int) -> None:
    """Freeze BERT encoder layers ``0 .. n_layers-1`` (the original MISA does this for MOSEI with 9)."""
    if n_layers <= 0 or text.bert is None:
        return
    for i, layer in enumerate(text.bert.model.encoder.layer):
        if i < n_layers:
            for p in layer.parameters():
                p.requires_grad_(False)


def av_lengths(batch: Split, mode: str, method: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(audio lengths, vision lengths, "own" | "text") for packing audio/vision LSTMs.

    ``mode``: "own" (the dataset's audio/vision lengths; unaligned data only), "text" (the text length for
    both, MMSA's choice on aligned data) or "auto" (own when the batch has them, else text).
    """
    own = batch.audio_lengths is not None and batch.vision_lengths is not None
    if mode == "own" and not own:
        raise UserError(f"{method}: lengths_from=own needs audio/vision lengths (unaligned data)")
    if mode == "own" or (mode == "auto" and own):
        return batch.audio_lengths, batch.vision_lengths, "own"
    n = text_mask(batch).sum(dim=1).round().long()
    return n, n, "text"
