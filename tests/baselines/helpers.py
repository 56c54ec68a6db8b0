"""Shared baseline-test helpers: a tiny random BERT config, parameter-count formulas (toy data: tests/toy.py)."""

from __future__ import annotations

import torch

from bench.data.tensors import DataInfo
from bench.describe import canonical_info, count_groups

VOCAB = 200


def tiny_bert_config():
    from transformers import BertConfig

    return BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                      vocab_size=VOCAB, max_position_embeddings=64)


def lstm_params(d_in: int, h: int) -> int:
    """Parameters of a one-layer, one-direction ``nn.LSTM(d_in, h)``: 4 gates x (input + hidden weights) + 2 biases."""
    return 4 * h * (d_in + h) + 2 * 4 * h


def linear_params(i: int, o: int) -> int:
    """Parameters of ``nn.Linear(i, o)``."""
    return i * o + o


def meta_counts(method_cls, family: str, setting: str, hp=None, info: DataInfo | None = None,
                **model_kwargs) -> tuple[torch.nn.Module, dict]:
    """Build the model on the meta device (no memory, no init cost) and count its parameters by group.

    ``hp`` defaults to ``method_cls.default_hparams(family, setting)`` and ``info`` to
    ``canonical_info(family, setting)``; ``model_kwargs`` (e.g. ``bert_config=``) go to the constructor.
    Returns ``(model, counts)`` with ``counts`` as from ``count_groups(model, method_cls.describe_groups())``.
    """
    if hp is None:
        hp = method_cls.default_hparams(family, setting)
    if info is None:
        info = canonical_info(family, setting)
    with torch.device("meta"):
        model = method_cls(hp, info, **model_kwargs)
    return model, count_groups(model, method_cls.describe_groups())


def assert_beats_constant(outcome, bundle, factor: float = 0.8, min_corr: float = 0.5) -> None:
    """A trained regression model's test MAE is below ``factor`` x that of predicting the training mean."""
    import numpy as np

    y = bundle.splits["test"].labels.numpy()
    const_mae = np.mean(np.abs(y - bundle.splits["train"].labels.numpy().mean()))
    assert outcome.test["mae"] < factor * const_mae
    assert outcome.test["corr"] > min_corr
