"""Shared builders for the EMOE tests: tiny geometries, batches from the toy builder, a tiny random BERT."""

from __future__ import annotations

import dataclasses

import torch

from bench.data.tensors import DataInfo, Split
from tests import toy

TINY = dict(d_model=16, n_heads=2, n_layers=1)


def make_info(setting="unaligned", family="mosi", task="regression", num_classes=1, text_dim=12,
              audio_dim=5, vision_dim=7, lens=(8, 11, 13), text_features=True, text_bert=True) -> DataInfo:
    if setting == "aligned":
        lens = (lens[0],) * 3
    return DataInfo(family=family, setting=setting, task=task, num_classes=num_classes,
                    dims={"text": text_dim if text_features else None, "audio": audio_dim,
                          "vision": vision_dim},
                    seq_lens={"text": lens[0], "audio": lens[1], "vision": lens[2]},
                    has_text_features=text_features, has_text_bert=text_bert)


def make_batch(info: DataInfo, n=6, seed=0, zero_pad_tail=0) -> Split:
    """``n`` samples of ``info``'s geometry from the one toy builder (tests/toy.py); ``zero_pad_tail`` zeroes
    the last audio/vision frames of every sample (post-padding)."""
    g = torch.Generator().manual_seed(seed)
    dims = (info.dims["text"] or 1, info.dims["audio"], info.dims["vision"])
    lens = (info.seq_lens["text"], info.seq_lens["audio"], info.seq_lens["vision"])
    batch = toy.make_split(n, g, info.setting, task=info.task, num_classes=info.num_classes, dims=dims, lens=lens)
    if zero_pad_tail:
        batch.audio[:, -zero_pad_tail:] = 0.0
        batch.vision[:, -zero_pad_tail:] = 0.0
    return dataclasses.replace(batch, text=batch.text if info.has_text_features else None,
                               text_bert=batch.text_bert if info.has_text_bert else None)


def tiny_bert_config():
    from transformers import BertConfig

    return BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                      vocab_size=200, max_position_embeddings=64)


def tiny_hp(face="official", family="mosi", setting="unaligned", **over):
    from emoe.config import preset

    hp = preset(family, setting, face)
    kw = dict(TINY, kernel_l=3, kernel_a=3, kernel_v=3)
    kw.update(over)
    return dataclasses.replace(hp, **kw)


def build(face="official", setting="unaligned", bert=False, seed=0, info=None, **over):
    from emoe.method import EMOE, EMOEPaper

    info = info or make_info(setting)
    hp = tiny_hp(face, info.family, setting, **over)
    torch.manual_seed(seed)
    cls = EMOE if face == "official" else EMOEPaper
    return cls(hp, info, bert_config=tiny_bert_config() if bert else None), info
