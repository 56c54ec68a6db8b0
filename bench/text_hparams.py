"""The text-encoder settings block: ``text_mode``, ``text_model`` and ``text_finetune``, declared once.

Methods whose text goes through :class:`bench.nn.text.TextInput` (a fine-tuned BERT on ``text_bert``, or the
dataset's frozen ``text`` features) name :class:`TextEncoderHParams` before ``TrainHParams`` among the bases of
their hyper-parameters, so the three fields follow the trainer's. A method narrows a field by declaring it again
(MulT: ``text_mode`` "features" or "bert", default "features"). The block's one cross-field rule, a BERT needs a
checkpoint, is :meth:`TextEncoderHParams.validate_text_encoder`; each method's ``validate()`` calls it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bench.errors import UserError

# Read only when a BERT runs: on frozen features they are reset to their defaults (bench.text_encoder.drop_unread).
BERT_ONLY_FIELDS = ("text_model", "text_finetune")


def resolve_text_mode(text_mode: str, text_model: str) -> str:
    """"bert" or "features" ("auto" is BERT exactly when a checkpoint is named)."""
    if text_mode == "auto":
        return "bert" if text_model else "features"
    return text_mode


def missing_text_model(owner: str) -> UserError:
    """The error for a BERT without a checkpoint; ``owner`` starts the message (e.g. "misa")."""
    return UserError(f"{owner}: text_mode=bert needs --set text_model=PATH (a local BERT directory)")


@dataclass
class TextEncoderHParams:
    """How a method reads text: a BERT checkpoint fine-tuned (or frozen) on the token ids, or frozen features."""

    # auto: BERT when text_model is set, else the dataset's frozen text features
    text_mode: Literal["auto", "bert", "features"] = "auto"
    # a local BERT directory, a name already in the Hugging Face cache (never downloaded), or
    # random:bert-base-uncased / random:bert-mini (a random BERT of that shape: parameter counts, smoke runs)
    text_model: str = ""
    text_finetune: bool = True  # False: BERT's weights stay frozen (MMSA use_finetune)

    def resolved_text_mode(self) -> str:
        return resolve_text_mode(self.text_mode, self.text_model)

    def validate_text_encoder(self, owner: str) -> None:
        """One-line :class:`UserError` (starting with ``owner``) when ``text_mode=bert`` names no checkpoint."""
        if self.text_mode == "bert" and not self.text_model:
            raise missing_text_model(owner)
