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


def test_named_checkpoint_on_the_meta_device_reads_only_its_config(tmp_path):
    """``bench describe`` counts parameters on the meta device, where ``from_pretrained`` cannot run: the local
    checkpoint's config.json alone gives the geometry (no weight file is needed or read)."""
    transformers = pytest.importorskip("transformers")
    transformers.BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                            vocab_size=50, max_position_embeddings=20).save_pretrained(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
    with torch.device("meta"):
        m = load_bert(str(tmp_path), add_pooling_layer=False)
    h, v, p, f = 16, 50, 20, 32
    embeddings = v * h + p * h + 2 * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h + (h * f + f) + (f * h + h) + 2 * h
    assert sum(t.numel() for t in m.parameters()) == embeddings + layer
    assert all(t.device.type == "meta" for t in m.parameters())
    with pytest.raises(UserError, match="cannot load BERT from .* without downloading"):
        load_bert(str(tmp_path))  # off the meta device the weights are needed, and there are none
    with torch.device("meta"), pytest.raises(UserError, match="cannot read the BERT config of .*random:bert-base"):
        load_bert(str(tmp_path / "nope"))
