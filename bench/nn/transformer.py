"""MulT/DMD-style transformer encoder (fairseq-derived, pre-LN) with sinusoidal positions.

Written from the published description of the MulT encoder as used by DMD and EMOE
(fuyyyyy/EMOE and DMD ``models/subNets/transformers_encoder/transformer.py``); reusable for
self-attention (EMOE, MulT's memory transformers) and for cross-modal attention (MulT's ``x_k``/``x_v`` inputs).

Layout: **batch-first** ``(B, T, D)`` everywhere (the reference code is sequence-first; the
computation is identical).

Semantics reproduced:

* embedding: ``x = sqrt(D) * x_in + PE(x_in[..., 0])`` then dropout(``embed_dropout``); key/value
  inputs get the same treatment with their own positions;
* positions (fairseq ``SinusoidalPositionalEmbedding`` with ``padding_idx=0``): a step's position is
  ``t + 1`` (t = 0..T-1) unless channel 0 of the *unscaled* input is exactly 0, in which case it is
  0 and its embedding is the zero vector; the embedding of position p is the concatenation
  ``[sin(p*w_0..w_{h-1}), cos(p*w_0..w_{h-1})]`` with ``w_k = exp(-k*ln(10000)/(h-1))``,
  h = D // 2 (a zero column is appended when D is odd);
* each layer is pre-LN: ``x + drop_res(MHA(LN0(x), LN0(k), LN0(v)))`` then
  ``x + drop_res(fc2(drop_relu(relu(fc1(LN1(x))))))``, fc1/fc2 xavier-uniform with zero bias,
  hidden width 4·D; a final LayerNorm closes the stack;
* attention: packed ``in_proj`` (3D x D, xavier-uniform, zero bias), ``out_proj`` (xavier-uniform,
  zero bias), query scaled by ``head_dim**-0.5``, additive float mask, softmax in float32, dropout on
  the attention weights;
* causal mask: ``triu(-inf, diagonal=1 + |Lk - Lq|)`` of shape (Lq, Lk) (for self-attention
  ``Lk = Lq`` and this is the usual future mask).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "MultiheadAttention",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "future_mask",
    "make_positions",
    "sinusoidal_embedding",
]


# ------------------------------------------------------------------------------------- positions
def make_positions(x0: torch.Tensor, padding_idx: int = 0) -> torch.Tensor:
    """Positions (B, T) int64 from channel 0 of the input: ``padding_idx + 1 + t`` where
    ``x0 != padding_idx`` and ``padding_idx`` where it equals it exactly."""
    t = x0.shape[-1]
    pos = torch.arange(padding_idx + 1, padding_idx + 1 + t, device=x0.device)
    pos = pos.expand(x0.shape)
    return torch.where(x0 != padding_idx, pos, torch.full_like(pos, padding_idx))


def sinusoidal_embedding(positions: torch.Tensor, dim: int, padding_idx: int | None = 0,
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """tensor2tensor sinusoids for integer ``positions`` (any shape) -> ``positions.shape + (dim,)``.

    ``[sin(p*w), cos(p*w)]`` concatenated (not interleaved); rows at ``padding_idx`` are zero.
    """
    half = dim // 2
    scale = math.log(10000) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=positions.device) * -scale)
    angles = positions.to(torch.float32).unsqueeze(-1) * freqs
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1))
    if padding_idx is not None:
        emb = emb.masked_fill((positions == padding_idx).unsqueeze(-1), 0.0)
    return emb.to(dtype)


def future_mask(q_len: int, k_len: int, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive (Lq, Lk) mask: ``-inf`` strictly above diagonal ``1 + |Lk - Lq|``, 0 elsewhere."""
    full = torch.full((q_len, k_len), float("-inf"), device=device, dtype=dtype)
    return torch.triu(full, diagonal=1 + abs(k_len - q_len))


# ------------------------------------------------------------------------------------- attention
class MultiheadAttention(nn.Module):
    """fairseq-style multi-head attention with a packed input projection.

    ``impl="sdpa"`` uses :func:`torch.nn.functional.scaled_dot_product_attention` (same maths,
    faster); ``impl="math"`` spells the reference computation out (bmm, additive mask, float
    softmax, dropout on the weights); both give the same result up to float rounding.
    """

    def __init__(self, embed_dim: int, num_heads: int, attn_dropout: float = 0.0, bias: bool = True,
                 impl: str = "sdpa"):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim ** -0.5
        self.attn_dropout = attn_dropout
        self.impl = impl
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.xavier_uniform_(self.out_proj.weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def _proj(self, x: torch.Tensor, part: int) -> torch.Tensor:
        e = self.embed_dim
        w = self.in_proj_weight[part * e:(part + 1) * e]
        b = None if self.in_proj_bias is None else self.in_proj_bias[part * e:(part + 1) * e]
        return F.linear(x, w, b)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, E) -> (B, H, T, hd)
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """query (B, Lq, E), key/value (B, Lk, E) (default: the query); mask (Lq, Lk) additive."""
        key = query if key is None else key
        value = key if value is None else value
        if key is query and value is query:
            q, k, v = F.linear(query, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        else:
            q, k, v = self._proj(query, 0), self._proj(key, 1), self._proj(value, 2)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        p = self.attn_dropout if self.training else 0.0
        if self.impl == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=p,
                                                 scale=self.scaling)
        else:
            scores = torch.matmul(q * self.scaling, k.transpose(-1, -2))
            if attn_mask is not None:
                scores = scores + attn_mask
            weights = torch.softmax(scores.float(), dim=-1).type_as(scores)
            weights = F.dropout(weights, p=p, training=self.training)
            out = torch.matmul(weights, v)
        b, _, lq, _ = out.shape
        out = out.transpose(1, 2).reshape(b, lq, self.embed_dim)
        return self.out_proj(out)


# ------------------------------------------------------------------------------------- layers
def _xavier_linear(d_in: int, d_out: int) -> nn.Linear:
    lin = nn.Linear(d_in, d_out)
    nn.init.xavier_uniform_(lin.weight)
    nn.init.zeros_(lin.bias)
    return lin


class TransformerEncoderLayer(nn.Module):
    """One pre-LN layer; ``x_k``/``x_v`` switch it to cross-modal attention."""

    def __init__(self, embed_dim: int, num_heads: int, attn_dropout: float = 0.0, relu_dropout: float = 0.0,
                 res_dropout: float = 0.0, attn_mask: bool = False, ffn_mult: int = 4, impl: str = "sdpa"):
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dim, num_heads, attn_dropout, impl=impl)
        self.attn_mask = attn_mask
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout
        self.fc1 = _xavier_linear(embed_dim, ffn_mult * embed_dim)
        self.fc2 = _xavier_linear(ffn_mult * embed_dim, embed_dim)
        self.layer_norms = nn.ModuleList([nn.LayerNorm(embed_dim) for _ in range(2)])

    def forward(self, x: torch.Tensor, x_k: torch.Tensor | None = None,
                x_v: torch.Tensor | None = None) -> torch.Tensor:
        residual = x
        x = self.layer_norms[0](x)
        k_len = x.shape[1] if x_k is None else x_k.shape[1]
        mask = future_mask(x.shape[1], k_len, x.device, x.dtype) if self.attn_mask else None
        if x_k is None:
            x = self.self_attn(x, attn_mask=mask)
        else:
            x_k = self.layer_norms[0](x_k)
            x_v = self.layer_norms[0](x_v if x_v is not None else x_k)
            x = self.self_attn(x, x_k, x_v, attn_mask=mask)
        x = residual + F.dropout(x, p=self.res_dropout, training=self.training)
        residual = x
        x = self.layer_norms[1](x)
        x = F.dropout(F.relu(self.fc1(x)), p=self.relu_dropout, training=self.training)
        x = F.dropout(self.fc2(x), p=self.res_dropout, training=self.training)
        return residual + x


class TransformerEncoder(nn.Module):
    """Stack of :class:`TransformerEncoderLayer` with scaled embedding, positions and final LN.

    ``forward(x)`` is self-attention; ``forward(x, x_k, x_v)`` attends from ``x`` to ``x_k``/``x_v``
    (MulT cross-modal blocks). ``position_embedding=False`` drops the sinusoids (the sqrt(D) scale
    stays).
    """

    def __init__(self, embed_dim: int, num_heads: int, layers: int, attn_dropout: float = 0.0,
                 relu_dropout: float = 0.0, res_dropout: float = 0.0, embed_dropout: float = 0.0,
                 attn_mask: bool = False, position_embedding: bool = True, final_norm: bool = True,
                 impl: str = "sdpa"):
        super().__init__()
        self.embed_dim = embed_dim
        self.embed_scale = math.sqrt(embed_dim)
        self.embed_dropout = embed_dropout
        self.position_embedding = position_embedding
        self.layers = nn.ModuleList([
            TransformerEncoderLayer(embed_dim, num_heads, attn_dropout, relu_dropout, res_dropout,
                                    attn_mask=attn_mask, impl=impl)
            for _ in range(layers)
        ])
        self.layer_norm = nn.LayerNorm(embed_dim) if final_norm else None

    def embed(self, x_in: torch.Tensor) -> torch.Tensor:
        x = self.embed_scale * x_in
        if self.position_embedding:
            pos = make_positions(x_in[..., 0].detach(), padding_idx=0)
            x = x + sinusoidal_embedding(pos, self.embed_dim, padding_idx=0, dtype=x.dtype)
        return F.dropout(x, p=self.embed_dropout, training=self.training)

    def forward(self, x_in: torch.Tensor, x_in_k: torch.Tensor | None = None,
                x_in_v: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)."""
        x = self.embed(x_in)
        x_k = x_v = None
        if x_in_k is not None:
            x_k = self.embed(x_in_k)
            x_v = self.embed(x_in_v if x_in_v is not None else x_in_k)
        for layer in self.layers:
            x = layer(x, x_k, x_v)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return x
