"""MMSA's model-side word alignment (``need_model_aligned``), the ``avg_pool`` mode.

Source (facts only, code written here): thuiar/MMSA@d11d56ecbb765902c8c987131e512f4665cb998d
``src/MMSA/models/subNets/AlignNets.py`` (``AlignSubNet.__avg_pool``) and
thuiar/MMSA@177bc0462a61b355c554812dedd432a21f374130 ``src/MMSA/models/AMIO.py`` (AMIO builds
``AlignSubNet(args, 'avg_pool')`` when the method's config sets ``need_model_aligned`` and applies it to
``(text, audio, video)`` before the model).

The target length is the text length (text itself has that length, so it is unchanged). A sequence that
already has the target length is returned unchanged; otherwise ``dst_len * pool - T`` copies of its **last
frame** are appended (a zero padding frame for most unaligned utterances: no lengths are used), with
``pool = ceil(T / dst_len)``, and groups of ``pool`` frames are averaged. Two MMSA versions group
differently (``pooling``):

- ``"windows"`` (AlignNets.py @d11d56e): ``view(B, dst_len, pool, D).mean(2)``, output j = mean of the
  contiguous frames ``j*pool .. j*pool + pool - 1``;
- ``"strided"`` (the MMSA 2.2.1 PyPI wheel, ``MMSA/models/subNets/AlignNets.py``, checked by unpacking it):
  ``view(B, pool, dst_len, D).mean(1)``, output j = mean of frames ``j, j + dst_len, j + 2*dst_len, ...``.

With one input frame (MFN's time-averaged audio/vision) both give that frame repeated.
"""

from __future__ import annotations

import torch

from bench.errors import UserError


def pool_geometry(raw_len: int, dst_len: int) -> tuple[int, int]:
    """(pad_len, pool_size) as MMSA computes them: no padding when ``dst_len`` divides ``raw_len``."""
    if raw_len % dst_len == 0:
        return 0, raw_len // dst_len
    return dst_len - raw_len % dst_len, raw_len // dst_len + 1


POOLINGS = ("windows", "strided")


def avg_pool_align(x: torch.Tensor, dst_len: int, pooling: str = "windows") -> torch.Tensor:
    """(B, T, D) -> (B, dst_len, D) by MMSA's last-frame padding + group mean (identity if T == dst_len)."""
    if pooling not in POOLINGS:
        raise UserError(f"align pooling {pooling!r}: expected one of {', '.join(POOLINGS)}")
    raw_len = x.shape[1]
    if raw_len == dst_len:
        return x
    pad_len, pool = pool_geometry(raw_len, dst_len)
    if pad_len:
        x = torch.cat([x, x[:, -1:, :].expand(x.shape[0], pad_len, x.shape[2])], dim=1)
    if pooling == "windows":
        return x.reshape(x.shape[0], dst_len, pool, x.shape[2]).mean(dim=2)
    return x.reshape(x.shape[0], pool, dst_len, x.shape[2]).mean(dim=1)
