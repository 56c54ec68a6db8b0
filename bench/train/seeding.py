"""Seeding and determinism: same seed + same device type => bitwise-identical result on CPU."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

DEFAULT_SEEDS = (1111, 1112, 1113, 1114, 1115)  # MMSA's seeds, for comparability


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and torch (all devices) and request deterministic kernels.

    ``CUBLAS_WORKSPACE_CONFIG`` must be set before CUDA initialises; it is set here (no-op on CPU).
    ``warn_only`` keeps ops without a deterministic kernel usable (a warning names them).
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


def parse_seeds(text: str | None) -> list[int]:
    """``"1111,1112"`` -> [1111, 1112]; ``"3"`` -> the first 3 default seeds; None -> all 5."""
    from bench.errors import UserError

    if text is None or text == "":
        return list(DEFAULT_SEEDS)
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise UserError(f"--seeds {text!r}: expected integers, e.g. 1111,1112 or a count like 3") from None
    if len(vals) == 1 and 0 < vals[0] <= 100 and vals[0] < 1000:
        n = vals[0]
        return [DEFAULT_SEEDS[0] + i for i in range(n)]
    if len(set(vals)) != len(vals):
        raise UserError(f"--seeds {text!r}: seeds repeat")
    return vals
