"""Shared test helpers: tiny hand-made datasets, a tiny random BERT config, parameter-count formulas."""

from __future__ import annotations

import torch

from bench.data.tensors import DataInfo, DatasetBundle, Split
from bench.describe import canonical_info, count_groups

VOCAB = 200


def tiny_bert_config():
    from transformers import BertConfig

    return BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                      vocab_size=VOCAB, max_position_embeddings=64)


def make_split(n: int, gen: torch.Generator, setting: str, t_text: int = 8, t_audio: int = 10,
               t_vision: int = 12, dims=(16, 3, 4)) -> Split:
    d_t, d_a, d_v = dims
    if setting == "aligned":
        t_audio = t_vision = t_text
    text_len = torch.randint(3, t_text + 1, (n,), generator=gen)
    steps = torch.arange(t_text)
    mask = (steps[None, :] < text_len[:, None]).long()
    ids = torch.randint(1, VOCAB, (n, t_text), generator=gen) * mask
    text_bert = torch.stack([ids, mask, torch.zeros_like(ids)], dim=1)
    text = torch.randn(n, t_text, d_t, generator=gen) * mask[..., None]
    audio = torch.randn(n, t_audio, d_a, generator=gen)
    vision = torch.randn(n, t_vision, d_v, generator=gen)
    y = (text.sum(1)[:, 0] / text_len + 0.3 * audio[:, 0, 0]).mul(2).clamp(-3, 3)
    y[::7] = 0.0  # some exact zeros (Self-MM's excludeZero)
    kw = {}
    if setting == "unaligned":
        kw = dict(audio_lengths=torch.randint(2, t_audio + 1, (n,), generator=gen),
                  vision_lengths=torch.randint(2, t_vision + 1, (n,), generator=gen))
        for x, lens in ((audio, kw["audio_lengths"]), (vision, kw["vision_lengths"])):
            x.mul_((torch.arange(x.shape[1])[None, :] < lens[:, None]).float()[..., None])
    return Split(labels=y.float(), audio=audio, vision=vision, text=text, text_bert=text_bert, **kw)


def make_bundle(setting: str = "unaligned", sizes=(48, 16, 16), seed: int = 0) -> DatasetBundle:
    gen = torch.Generator().manual_seed(seed)
    splits = {k: make_split(n, gen, setting) for k, n in zip(("train", "valid", "test"), sizes, strict=True)}
    return DatasetBundle(name="tiny", family="mosi", setting=setting, task="regression", splits=splits,
                         source="synthetic", fingerprint=f"tiny-{setting}-{seed}")


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


def assert_gradients_reach(model, names) -> None:
    """Every parameter of each named submodule got a gradient, and some of it is non-zero."""
    for name in names:
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads), name
