"""Seeding and determinism: same seed + same device type => bitwise-identical result on CPU."""

from __future__ import annotations

import os
import random
import re
import sys

import numpy as np
import torch

from bench.errors import UserError

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


MAX_SEED = 2**32 - 1  # numpy's legacy seeding accepts 0 .. 2**32-1; torch and python accept more
MAX_SEEDS = 1000  # more seeds than this in one command is a typo, not an experiment
SEEDS_GRAMMAR = "a list 1111,1112, a range 1111-1115 (inclusive), a mix 7,1111-1113, or a count 5x (= 1111-1115)"
_COUNT = re.compile(r"([0-9]+)[xX]", re.ASCII)
_ITEM = re.compile(r"([0-9]+)(?:-([0-9]+))?", re.ASCII)


def first_seeds(n: int) -> list[int]:
    """The first ``n`` seeds of the default sequence 1111, 1112, ... (MMSA's seeds continued)."""
    return [DEFAULT_SEEDS[0] + i for i in range(n)]


def parse_seeds(text: str | None, default_count: int = len(DEFAULT_SEEDS)) -> list[int]:
    """``--seeds``: ``"1111,1112"`` -> [1111, 1112]; ``"1111-1113"`` -> [1111, 1112, 1113]; ``"3x"`` -> the
    first 3 default seeds; None (not given) -> the first ``default_count``. A lone number is always one
    seed. Negative, empty, repeated, non-integer or absurd values raise a one-line :class:`UserError`.
    """

    if text is None:
        return first_seeds(default_count)

    def bad(problem: str) -> UserError:
        shown = text if len(text) <= 40 else f"{text[:24]}...{text[-8:]}"  # echo, not flood, a pasted blob
        return UserError(f"--seeds {shown!r}: {problem}; expected {SEEDS_GRAMMAR}")

    body = str(text).strip()
    if not body:
        raise bad("no seeds given")
    count = _COUNT.fullmatch(body)
    if count:
        n = _bounded_int(count.group(1))
        if not 1 <= n <= MAX_SEEDS:
            raise bad(f"the count must be 1 to {MAX_SEEDS}")
        return first_seeds(n)
    seeds: list[int] = []
    for raw in body.split(","):
        item = _ITEM.fullmatch(raw.strip())
        if not item:
            raise bad("an empty item" if not raw.strip() else f"{raw.strip()!r} is not a seed (0 to {MAX_SEED}) "
                      "or a range")
        lo = _bounded_int(item.group(1))
        hi = lo if item.group(2) is None else _bounded_int(item.group(2))
        if max(lo, hi) > MAX_SEED:
            raise bad(f"seeds must be at most {MAX_SEED} (2**32-1)")
        if hi < lo:
            raise bad(f"the range {raw.strip()} runs backwards")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise bad(f"more than {MAX_SEEDS} seeds")
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise bad("seeds repeat")
    return seeds


def _bounded_int(digits: str) -> int:
    """``int(digits)``, or MAX_SEED + 1 for a number too long to be a seed (``int()`` refuses over 4300 digits)."""
    return int(digits) if len(digits.lstrip("0")) <= len(str(MAX_SEED)) else MAX_SEED + 1


def seeds_from_arg(text: str | None, default_count: int = len(DEFAULT_SEEDS), log=None) -> list[int]:
    """:func:`parse_seeds` for a command line, with a note on stderr (or to ``log``) for a lone number up
    to 100, which versions before this grammar read as a count of seeds."""
    seeds = parse_seeds(text, default_count)
    lone = text.strip() if text is not None else ""
    if lone.isascii() and lone.isdigit() and 0 < int(lone) <= 100:
        n = int(lone)
        first = first_seeds(n)
        span = f"{first[0]}-{first[-1]}" if n > 1 else str(first[0])
        (log or _stderr)(f"note: --seeds {n} trains seed {n} alone; write --seeds {n}x for the first {n} "
                         f"default seed(s) ({span})")
    return seeds


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)
