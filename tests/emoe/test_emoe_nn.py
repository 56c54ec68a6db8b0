"""bench.nn.transformer (MulT/DMD encoder semantics) and bench.nn.bert (local-only BERT wrapper)."""

from __future__ import annotations

import math

import pytest
import torch

from bench.errors import UserError
from bench.nn.bert import BertTextEncoder
from bench.nn.transformer import (
    MultiheadAttention,
    TransformerEncoder,
    future_mask,
    make_positions,
    sinusoidal_embedding,
)
from tests.emoe.emoe_helpers import tiny_bert_config


def test_positions_padding_rule():
    x0 = torch.tensor([[0.3, 0.0, -1.0, 0.0], [0.0, 0.0, 2.0, 5.0]])
    assert make_positions(x0).tolist() == [[1, 0, 3, 0], [0, 0, 3, 4]]


def test_sinusoid_values():
    dim, half = 8, 4
    emb = sinusoidal_embedding(torch.tensor([0, 1, 3]), dim)
    assert torch.equal(emb[0], torch.zeros(dim))  # padding position
    for p, row in ((1, emb[1]), (3, emb[2])):
        for k in range(half):
            w = math.exp(-k * math.log(10000) / (half - 1))
            assert row[k].item() == pytest.approx(math.sin(p * w), abs=1e-6)
            assert row[half + k].item() == pytest.approx(math.cos(p * w), abs=1e-6)
    assert sinusoidal_embedding(torch.tensor([2]), 7).shape == (1, 7)  # odd dim: zero column appended


def test_future_mask():
    m = future_mask(3, 3)
    assert torch.equal(torch.isinf(m), torch.tensor([[0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=torch.bool))
    m = future_mask(2, 4)  # cross-modal: diagonal 1 + |4 - 2| = 3
    assert torch.equal(torch.isinf(m), torch.tensor([[0, 0, 0, 1], [0, 0, 0, 0]], dtype=torch.bool))


def test_layer_parameter_count_official_geometry():
    enc = TransformerEncoder(256, 8, 4, attn_mask=True)
    assert sum(p.numel() for p in enc.layers[0].parameters()) == 789_760
    assert sum(p.numel() for p in enc.parameters()) == 4 * 789_760 + 512


def test_sdpa_equals_reference_math():
    torch.manual_seed(0)
    a = TransformerEncoder(16, 4, 2, attn_mask=True, impl="sdpa").eval()
    b = TransformerEncoder(16, 4, 2, attn_mask=True, impl="math").eval()
    b.load_state_dict(a.state_dict())
    x, k = torch.randn(3, 7, 16), torch.randn(3, 5, 16)
    assert torch.allclose(a(x), b(x), atol=1e-5)
    assert torch.allclose(a(x, k), b(x, k), atol=1e-5)
    assert a(x, k).shape == (3, 7, 16)


def test_embedding_scale_and_position_switch():
    enc = TransformerEncoder(8, 2, 1, position_embedding=False).eval()
    x = torch.randn(2, 4, 8)
    assert torch.allclose(enc.embed(x), math.sqrt(8) * x)
    enc.position_embedding = True
    pe = sinusoidal_embedding(torch.arange(1, 5).expand(2, 4), 8)
    assert torch.allclose(enc.embed(x), math.sqrt(8) * x + pe, atol=1e-6)


def test_causal_last_step_sees_all_earlier_steps_do_not_see_future():
    torch.manual_seed(1)
    enc = TransformerEncoder(16, 2, 2, attn_mask=True).eval()
    x = torch.randn(1, 6, 16)
    y = x.clone()
    y[:, 4:] += torch.randn(1, 2, 16)  # (a constant shift would be removed by the LayerNorms)
    ox, oy = enc(x), enc(y)
    assert torch.allclose(ox[:, :4], oy[:, :4], atol=1e-6)
    assert not torch.allclose(ox[:, -1], oy[:, -1])


def test_attention_init():
    a = MultiheadAttention(16, 4)
    assert torch.equal(a.in_proj_bias, torch.zeros(48)) and torch.equal(a.out_proj.bias, torch.zeros(16))
    assert a.scaling == pytest.approx(4 ** -0.5)


def test_bert_wrapper_random_and_local_reload(tmp_path):
    torch.manual_seed(0)
    enc = BertTextEncoder(config=tiny_bert_config()).eval()
    ids = torch.randint(1, 200, (2, 6))
    text = torch.stack([ids, torch.ones_like(ids), torch.zeros_like(ids)], 1).float()  # float storage
    out = enc(text)
    assert out.shape == (2, 6, 32) and enc.hidden_size == 32
    enc.model.save_pretrained(tmp_path)
    again = BertTextEncoder(str(tmp_path)).eval()
    assert torch.allclose(again(text), out, atol=1e-5)
    frozen = BertTextEncoder(config=tiny_bert_config(), finetune=False)
    assert not frozen(text).requires_grad
    assert not any(p.requires_grad for p in frozen.parameters())
    with pytest.raises(UserError, match="bench never downloads"):
        BertTextEncoder(str(tmp_path / "missing"))
    with pytest.raises(ValueError):
        BertTextEncoder()
