"""bench.nn.bert.load_bert: random geometries (no download) and one-line errors."""

import pytest
import torch

from bench.errors import UserError
from bench.nn.bert import load_bert


def test_random_bert_mini_geometry_and_count():
    pytest.importorskip("transformers")
    with torch.device("meta"):
        m = load_bert("random:bert-mini")
    c = m.config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (256, 4, 4, 1024)
    h, v, p, f = 256, 30522, 512, 1024
    embeddings = v * h + p * h + 2 * h + 2 * h  # word, position, token type, LayerNorm
    layer = 4 * (h * h + h) + 2 * h + (h * f + f) + (f * h + h) + 2 * h
    pooler = h * h + h
    assert sum(t.numel() for t in m.parameters()) == embeddings + 4 * layer + pooler == 11_170_560


def test_unknown_random_bert_names_the_choices():
    pytest.importorskip("transformers")
    with pytest.raises(UserError, match="unknown random BERT 'random:bert-huge'; expected one of "
                                        "random:bert-base-uncased, random:bert-mini"):
        load_bert("random:bert-huge")
