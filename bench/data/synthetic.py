"""Synthetic stand-ins for MOSI, MOSEI and MIntRec with planted per-sample modality importance.

Datasets ``synthetic-mosi``, ``synthetic-mosei`` (aligned/unaligned) and ``synthetic-mintrec``
(unaligned) have the same keys, layout and splits as the real data, are generated deterministically
from the *data* seed, and are cached on disk. The generative process (docs/data.md has the long form):

1. Target: a sentiment label drawn from the real per-split label histogram (MOSI/MOSEI), or an intent
   class drawn from the real per-split class counts (MIntRec). Constants below, computed once from the
   real label files; nothing under ``shared/`` is read at run time.
2. Reliability: a dominant modality per sample (text 0.5, audio 0.25, vision 0.25) and a reliability
   vector ``r`` ~ Dirichlet(1 + 5·onehot(dominant)); ``r`` (reordered to IMPORTANCE_ORDER) is stored
   as ``Split.importance``.
3. Each modality m sees a *view* of the target: ``r_m·target + (1 − r_m)·distractor_m``, where the
   distractor is an independent draw from the same label distribution. The view is embedded by a fixed
   per-modality random projection (regression) or per-class prototype (classification) and spread over
   time with a smooth profile ``1 + 0.5·sin(2π f t / L + φ)``.
4. Nuisance ``(1 − r_m)·(style + AR(1))/√2``: a per-sample "speaker style" vector (constant in time)
   and an AR(1) process (ρ = 0.8), plus a degradation signature ``(1 − r_m)·q_m`` along a fixed
   per-modality direction, plus iid noise (σ = 0.1). The nuisance energy and the signature are the
   observable cues of a modality's reliability; frames beyond the true length are zero (post-padding).
5. ``text_bert``: [CLS]=101 … [SEP]=102 ids in the bert-base-uncased range; a share ``0.15 + 0.5·r_text``
   of the word pieces comes from a target-dependent id band (the true target's band with probability
   ``r_text``, else the text distractor's band), the rest from a neutral id range.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from bench.data import cache
from bench.data.families import FAMILIES, Family, synthetic_families
from bench.data.loaders import register_dataset
from bench.data.tensors import SPLITS, DatasetBundle, Split
from bench.errors import UserError, did_you_mean

# Bump whenever the generated arrays change for the same GeneratorParams (any change to the code below):
# it is part of the cache key and of the bundle fingerprint recorded with every result.
GENERATOR_VERSION = "2"
PROFILES = ("compact", "full")
SYNTHETIC_FAMILIES = synthetic_families()  # {"synthetic-mosi": "mosi", ...}
MODALITIES = ("text", "audio", "vision")  # internal order; Split.importance uses IMPORTANCE_ORDER
_TO_IMPORTANCE = (0, 2, 1)  # (text, audio, vision) -> (text, vision, audio)

# bert-base-uncased id layout: [PAD]=0, [CLS]=101, [SEP]=102; ids 1996..29611 are whole words.
CLS_ID, SEP_ID, VOCAB_SIZE = 101, 102, 30522
BAND_LO, BAND_WIDTH = 1996, 150  # target bands: [1996 + k*150, 1996 + (k+1)*150), k < 20
NEUTRAL_LO, NEUTRAL_HI = 5000, 29612

# ---------------------------------------------------------------------------------------------
# Real label distributions (embedded; computed once, never read at run time).
# MOSI / MOSEI: the MMSA label.csv of each dataset (shared/data/cmu_mosi/label.csv, 2199 rows,
# shared/data/cmu_mosei/label.csv, 22856 rows), counted per split ("mode" column). Label values are
# averages of annotator scores; written exactly as numerators over 60 (value = k / 60).
# The exact-0 counts (MOSI 53/13/30, MOSEI 3540/433/1025) drive Has0 vs Non0 metrics.
# fmt: off
MOSI_LABELS_60 = (
    -180, -168, -156, -150, -144, -135, -132, -120, -108, -105, -96, -90, -84, -80, -75, -72, -60, -48, -45,
    -40, -36, -30, -24, -20, -15, -12, 0, 12, 15, 20, 24, 30, 36, 40, 45, 48, 60, 72, 75, 80, 84, 90, 96,
    105, 108, 120, 132, 135, 144, 150, 156, 168, 180,
)
MOSI_LABEL_COUNTS = {
    "train": (
        3, 9, 12, 1, 12, 1, 29, 53, 39, 3, 56, 5, 38, 0, 6, 36, 62, 48, 6, 2, 29, 14, 44, 2, 5, 37, 53, 38,
        8, 1, 37, 9, 40, 1, 2, 40, 38, 41, 1, 1, 63, 2, 62, 3, 66, 77, 67, 0, 36, 0, 26, 16, 4,
    ),
    "valid": (
        4, 3, 3, 0, 6, 0, 6, 8, 3, 0, 6, 1, 8, 0, 0, 11, 5, 2, 1, 0, 5, 1, 8, 0, 3, 8, 13, 4, 1, 0, 10, 1,
        3, 0, 1, 9, 9, 5, 2, 1, 9, 0, 7, 0, 10, 12, 13, 1, 7, 0, 9, 5, 5,
    ),
    "test": (
        5, 20, 21, 1, 22, 1, 26, 42, 30, 1, 29, 4, 33, 2, 2, 24, 43, 18, 1, 1, 21, 3, 17, 0, 2, 10, 30, 19,
        3, 0, 15, 7, 20, 1, 1, 28, 15, 22, 4, 2, 20, 1, 21, 1, 18, 31, 14, 1, 11, 2, 9, 8, 3,
    ),
}
MOSEI_LABELS_60 = (
    -180, -160, -140, -120, -100, -80, -60, -40, -30, -20, -10, 0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100,
    110, 120, 140, 150, 160, 180,
)
MOSEI_LABEL_COUNTS = {
    "train": (
        98, 213, 302, 458, 545, 580, 655, 804, 2, 1078, 3, 3540, 8, 2160, 7, 1769, 3, 1341, 3, 1001, 5, 733,
        1, 512, 298, 0, 159, 48,
    ),
    "valid": (
        3, 21, 23, 30, 57, 72, 69, 103, 0, 128, 0, 433, 2, 269, 3, 210, 3, 144, 0, 113, 3, 73, 1, 61, 30, 1,
        12, 7,
    ),
    "test": (
        25, 45, 86, 159, 154, 176, 166, 212, 2, 325, 0, 1025, 1, 573, 1, 536, 1, 398, 0, 293, 0, 205, 0,
        166, 69, 0, 35, 6,
    ),
}
# MIntRec: class counts of the official train/dev/test.tsv (shared/data/mintrec/*.tsv), in the order of
# the family's label_names (Complain, Praise, ..., Ask for help).
MINTREC_CLASS_COUNTS = {
    "train": (
        172, 127, 82, 74, 70, 35, 38, 32, 31, 31, 52, 57, 170, 73, 66, 63, 51, 43, 36, 31,
    ),
    "valid": (
        57, 43, 27, 25, 24, 12, 12, 10, 10, 10, 18, 19, 57, 24, 22, 21, 17, 15, 12, 10,
    ),
    "test": (
        57, 43, 27, 25, 23, 12, 12, 10, 10, 10, 18, 19, 57, 25, 22, 21, 17, 15, 12, 10,
    ),
}
# fmt: on


def label_distribution(family: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(values, probabilities)`` of the embedded real label distribution of one split."""
    if family == "mintrec":
        counts = np.asarray(MINTREC_CLASS_COUNTS[split], dtype=np.float64)
        return np.arange(len(counts)), counts / counts.sum()
    grid, table = (
        (MOSI_LABELS_60, MOSI_LABEL_COUNTS) if family == "mosi" else (MOSEI_LABELS_60, MOSEI_LABEL_COUNTS)
    )
    counts = np.asarray(table[split], dtype=np.float64)
    return np.asarray(grid, dtype=np.float64) / 60.0, counts / counts.sum()


def _label_moments(family: str) -> tuple[float, float]:
    v, p = label_distribution(family, "train")
    mu = float((v * p).sum())
    return mu, float(math.sqrt(((v - mu) ** 2 * p).sum()))


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Shape:
    sizes: tuple[int, int, int]  # train, valid, test
    dims: tuple[int, int, int]  # text, audio, vision feature dims
    aligned_len: int  # aligned: one length for all modalities (None-like 0 for mintrec)
    unaligned_lens: tuple[int, int, int]  # text, audio, vision
    text_len_frac: float  # median true text length (with [CLS]/[SEP]) as a fraction of the text length


def _release_shape(f: Family, text_len_frac: float) -> _Shape:
    """The "full" profile: the standard release's split sizes, feature widths and sequence lengths."""
    unaligned = f.shapes["unaligned"]
    aligned_len = f.shapes["aligned"]["text"][0] if "aligned" in f.settings else 0
    return _Shape(f.split_sizes, tuple(unaligned[m][1] for m in MODALITIES), aligned_len,
                  tuple(unaligned[m][0] for m in MODALITIES), text_len_frac)


_SHAPES = {
    ("mosi", "compact"): _Shape((400, 100, 200), (32, 5, 20), 16, (16, 24, 32), 0.55),
    ("mosei", "compact"): _Shape((600, 150, 300), (32, 74, 35), 16, (16, 24, 32), 0.55),
    ("mintrec", "compact"): _Shape((600, 200, 200), (32, 32, 32), 0, (12, 24, 16), 0.55),
    ("mosi", "full"): _release_shape(FAMILIES["mosi"], 0.26),
    ("mosei", "full"): _release_shape(FAMILIES["mosei"], 0.45),
    ("mintrec", "full"): _release_shape(FAMILIES["mintrec"], 0.40),
}


@dataclass(frozen=True)
class GeneratorParams:
    """Everything that determines the generated data; its hash (with the version) is the cache key."""

    family: str
    setting: str
    profile: str
    seed: int
    task: str
    num_classes: int
    sizes: tuple[int, int, int]
    dims: tuple[int, int, int]  # text, audio, vision
    seq_lens: tuple[int, int, int]  # text, audio, vision
    text_len_frac: float
    dominant_probs: tuple[float, float, float] = (0.5, 0.25, 0.25)  # text, audio, vision
    dirichlet_base: float = 1.0
    dirichlet_boost: float = 5.0
    nuisance_scale: float = 1.0
    # strength of the per-modality degradation signature (1 - r_m)·q_m, a first-order cue of reliability
    quality_cue: float = 1.0
    ar_rho: float = 0.8
    noise_std: float = 0.1
    profile_amp: float = 0.5
    token_share: tuple[float, float] = (0.15, 0.5)  # share of target-band tokens = a + b * r_text
    chunk_elems: int = 1 << 22
    version: str = GENERATOR_VERSION

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def _check_name(name: str) -> str:
    if name not in SYNTHETIC_FAMILIES:
        raise UserError(f"unknown synthetic dataset {name!r}.{did_you_mean(name, SYNTHETIC_FAMILIES)}")
    return SYNTHETIC_FAMILIES[name]


def make_params(name: str, setting: str, profile: str = "compact", seed: int = 0) -> GeneratorParams:
    family = _check_name(name)
    if profile not in PROFILES:
        raise UserError(f"unknown data profile {profile!r}.{did_you_mean(profile, PROFILES)}")
    settings = FAMILIES[family].settings
    if setting not in settings:
        raise UserError(f"dataset {name!r} has no setting {setting!r}.{did_you_mean(setting, settings)}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise UserError(f"data seed must be a non-negative integer, got {seed!r}")
    sh = _SHAPES[(family, profile)]
    seq = (sh.aligned_len,) * 3 if setting == "aligned" else sh.unaligned_lens
    return GeneratorParams(
        family=family,
        setting=setting,
        profile=profile,
        seed=int(seed),
        task=FAMILIES[family].task,
        num_classes=FAMILIES[family].num_classes,
        sizes=sh.sizes,
        dims=sh.dims,
        seq_lens=seq,
        text_len_frac=sh.text_len_frac,
    )


def _shapes_of(p: GeneratorParams) -> dict[str, dict[str, tuple]]:
    (dl, da, dv), (tl, ta, tv) = p.dims, p.seq_lens
    out = {}
    for split, n in zip(SPLITS, p.sizes, strict=True):
        s = {
            "labels": (n,),
            "text": (n, tl, dl),
            "text_bert": (n, 3, tl),
            "audio": (n, ta, da),
            "vision": (n, tv, dv),
            "importance": (n, 3),
        }
        if p.setting == "unaligned":
            s["audio_lengths"] = (n,)
            s["vision_lengths"] = (n,)
        out[split] = s
    return out


def planned_shapes(name: str, setting: str, profile: str = "compact") -> dict[str, dict[str, tuple]]:
    """Per split, the shape of every array the generator would produce (nothing is generated)."""
    return _shapes_of(make_params(name, setting, profile))


# ---------------------------------------------------------------------------------------------
_FAMILY_CODE = {"mosi": 1, "mosei": 2, "mintrec": 3}


def _rng(p: GeneratorParams, *path: int) -> np.random.Generator:
    base = [p.seed, _FAMILY_CODE[p.family], int(p.setting == "unaligned"), PROFILES.index(p.profile)]
    return np.random.default_rng(np.random.SeedSequence([*base, *path]))


def _world(p: GeneratorParams) -> list[np.ndarray]:
    """Fixed per-modality embeddings: (1, D) projection (regression) or (C, D) class prototypes."""
    rng = _rng(p, 0)
    k = p.num_classes if p.task == "classification" else 1
    out = []
    for d in p.dims:
        w = rng.standard_normal((k, d))
        if p.task == "regression":  # unit variance per feature dim on average: |w|^2 = D exactly
            w *= math.sqrt(d) / np.linalg.norm(w)
        out.append(w.astype(np.float32))
    return out


def _quality_direction(p: GeneratorParams, m: int) -> np.ndarray:
    """Fixed (D,) direction of modality m's degradation signature, unit variance per dim on average.

    Real degraded inputs often shift first-order statistics too (a noise floor in audio, low face
    detection confidence in FACET); this makes a modality's reliability readable from time-averaged
    features, not only from the nuisance energy (generator v2).
    """
    rng = _rng(p, 4, m)
    q = rng.standard_normal(p.dims[m])
    return (q * math.sqrt(p.dims[m]) / np.linalg.norm(q)).astype(np.float32)


def _split_latents(p: GeneratorParams, split: str, n: int) -> dict[str, np.ndarray]:
    """Everything per sample that does not depend on the chunking: targets, reliabilities, lengths."""
    rng = _rng(p, 1, SPLITS.index(split))
    values, probs = label_distribution(p.family, split)
    idx = rng.choice(len(values), size=n, p=probs)
    dist_idx = rng.choice(len(values), size=(n, 3), p=probs)  # one distractor per modality
    dominant = rng.choice(3, size=n, p=np.asarray(p.dominant_probs) / sum(p.dominant_probs))
    alpha = np.full((n, 3), p.dirichlet_base)
    alpha[np.arange(n), dominant] += p.dirichlet_boost
    g = rng.gamma(alpha)
    r = g / g.sum(axis=1, keepdims=True)
    tl = p.seq_lens[0]
    text_len = np.rint(np.exp(rng.normal(math.log(p.text_len_frac * tl), 0.4, size=n)))
    text_len = np.clip(text_len, min(4, tl), tl).astype(np.int64)
    lens = [text_len]
    for m in (1, 2):
        if p.setting == "aligned":
            lens.append(text_len.copy())
        else:
            tm = p.seq_lens[m]
            lm = np.rint(tm * (text_len / tl) * rng.uniform(0.7, 1.3, size=n))
            lens.append(np.clip(lm, min(2, tm), tm).astype(np.int64))
    freq = rng.uniform(0.5, 1.5, size=(n, 3))
    phase = rng.uniform(0.0, 2 * math.pi, size=(n, 3))
    out = {
        "idx": idx,
        "dist_idx": dist_idx,
        "dominant": dominant,
        "r": r,
        "lens": np.stack(lens, 1),
        "freq": freq,
        "phase": phase,
    }
    if p.task == "regression":
        mu, sd = _label_moments(p.family)
        out["labels"] = values[idx].astype(np.float32)
        out["target"] = (values[idx] - mu) / sd
        out["distractor"] = (values[dist_idx] - mu) / sd
        # token bands by rounded sentiment -3..3 -> 0..6
        out["band"] = (np.rint(values[idx]) + 3).astype(np.int64)
        out["dist_band"] = (np.rint(values[dist_idx[:, 0]]) + 3).astype(np.int64)
    else:
        out["labels"] = idx.astype(np.int64)
        out["band"] = idx.astype(np.int64)
        out["dist_band"] = dist_idx[:, 0].astype(np.int64)
    return out


def _uniform_unit(rng: np.random.Generator, shape) -> np.ndarray:
    """Zero-mean, unit-variance uniform float32 noise (several times faster than Gaussian draws; after
    the AR(1) filter the process is close to Gaussian anyway)."""
    u = rng.random(shape, dtype=np.float32)
    u -= np.float32(0.5)
    u *= np.float32(math.sqrt(12.0))
    return u


def _modality(p: GeneratorParams, world, lat, split: str, m: int, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` (N, T, D) float32 with modality ``m``, one chunk of samples at a time."""
    n = len(lat["labels"])
    t, d = p.seq_lens[m], p.dims[m]
    rows = max(1, p.chunk_elems // max(1, t * d))
    emb = world[m]
    rho = np.float32(p.ar_rho)
    innov = np.float32(math.sqrt(1 - p.ar_rho**2))
    pos = np.arange(t, dtype=np.float32)
    for ci, start in enumerate(range(0, n, rows)):
        sl = slice(start, min(n, start + rows))
        k = sl.stop - sl.start
        rng = _rng(p, 2, SPLITS.index(split), m, ci)
        r = lat["r"][sl, m].astype(np.float32)
        if p.task == "regression":
            target = lat["target"][sl].astype(np.float32)
            view = r * target + (1 - r) * lat["distractor"][sl, m].astype(np.float32)
            content = view[:, None] * emb[0][None, :]
        else:
            content = r[:, None] * emb[lat["idx"][sl]] + (1 - r)[:, None] * emb[lat["dist_idx"][sl, m]]
        length = lat["lens"][sl, m].astype(np.float32)
        prof = 1 + p.profile_amp * np.sin(
            2 * math.pi * lat["freq"][sl, m, None].astype(np.float32) * pos[None, :] / length[:, None]
            + lat["phase"][sl, m, None]
        )
        valid = pos[None, :] < length[:, None]  # (k, t); random numbers are drawn for valid frames only
        nv = int(valid.sum())
        x = out[sl]  # a view: filled in place
        x[~valid] = 0
        x[valid] = _uniform_unit(rng, (nv, d))  # AR(1) innovations, filtered in place
        for j in range(1, t):
            x[:, j] *= innov
            x[:, j] += rho * x[:, j - 1]
        x += rng.standard_normal((k, 1, d), dtype=np.float32)  # speaker style, constant in time
        x *= ((1 - r) * np.float32(p.nuisance_scale / math.sqrt(2)))[:, None, None]
        # degradation signature: a fixed per-modality direction, constant in time, scaled by (1 - r)
        x += ((1 - r) * np.float32(p.quality_cue))[:, None, None] * _quality_direction(p, m)[None, None, :]
        x += prof.astype(np.float32)[:, :, None] * content[:, None, :]
        x[valid] += np.float32(p.noise_std) * _uniform_unit(rng, (nv, d))
        x[~valid] = 0
    return out


def _text_bert(p: GeneratorParams, lat, split: str) -> np.ndarray:
    n, t = len(lat["labels"]), p.seq_lens[0]
    rng = _rng(p, 3, SPLITS.index(split))
    length = lat["lens"][:, 0]
    r_text = lat["r"][:, 0]
    a, b = p.token_share
    pos = np.arange(t)
    informative = rng.random((n, t)) < (a + b * r_text)[:, None]
    true_tok = rng.random((n, t)) < r_text[:, None]
    band = np.where(true_tok, lat["band"][:, None], lat["dist_band"][:, None])
    band_ids = BAND_LO + band * BAND_WIDTH + rng.integers(0, BAND_WIDTH, size=(n, t))
    neutral = rng.integers(NEUTRAL_LO, NEUTRAL_HI, size=(n, t))
    tok = np.where(informative, band_ids, neutral)
    inner = (pos[None, :] >= 1) & (pos[None, :] < (length - 1)[:, None])
    ids = np.where(inner, tok, 0)
    ids[:, 0] = CLS_ID
    ids[np.arange(n), length - 1] = SEP_ID
    mask = (pos[None, :] < length[:, None]).astype(np.int64)
    return np.stack([ids, mask, np.zeros_like(ids)], axis=1).astype(np.int64)


def _zeros(name: str, shape, dtype) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def generate_arrays(p: GeneratorParams, alloc=_zeros) -> dict[str, np.ndarray]:
    """All arrays, keyed ``"{split}__{key}"`` (the cache layout).

    ``alloc(name, shape, dtype)`` provides each output array (in memory by default; the cache passes
    on-disk memory maps). The feature arrays are filled chunk by chunk in place.
    """
    world = _world(p)
    out = {}

    def put(name, values):
        a = alloc(name, values.shape, values.dtype)
        a[...] = values
        out[name] = a

    for split, n in zip(SPLITS, p.sizes, strict=True):
        lat = _split_latents(p, split, n)
        put(f"{split}__labels", lat["labels"])
        for m, key in enumerate(MODALITIES):
            name = f"{split}__{key}"
            out[name] = alloc(name, (n, p.seq_lens[m], p.dims[m]), np.float32)
            _modality(p, world, lat, split, m, out[name])
        put(f"{split}__text_bert", _text_bert(p, lat, split))
        put(f"{split}__importance", lat["r"][:, list(_TO_IMPORTANCE)].astype(np.float32))
        if p.setting == "unaligned":
            put(f"{split}__audio_lengths", lat["lens"][:, 1].astype(np.int64))
            put(f"{split}__vision_lengths", lat["lens"][:, 2].astype(np.int64))
    return out


def _required(p: GeneratorParams) -> dict[str, tuple]:
    return {f"{s}__{k}": shape for s, d in _shapes_of(p).items() for k, shape in d.items()}


def cache_path(p: GeneratorParams, cache_dir=None):
    name = f"synthetic-{p.family}-{p.setting}-{p.profile}-seed{p.seed}-{p.key()[:16]}"
    return cache.cache_root(cache_dir) / "synthetic" / name


def load_or_generate(p: GeneratorParams, cache_dir=None) -> tuple[dict[str, np.ndarray], str]:
    """``(arrays, how)`` with how in {"cache", "generated", "generated (cache not writable: ...)"}."""
    path = cache_path(p, cache_dir)
    meta = {"key": p.key(), "params": asdict(p)}
    required = _required(p)
    arrays = cache.load_arrays(path, meta, required)
    if arrays is not None:
        return arrays, "cache"
    try:  # generate straight into the cache entry (memory maps), then map the finished entry
        writer = cache.EntryWriter(path)
        try:
            generate_arrays(p, alloc=writer.array)
            writer.commit(meta)
        except BaseException:
            writer.abort()
            raise
    except OSError as e:
        return generate_arrays(p), f"generated (cache not writable: {e})"
    arrays = cache.load_arrays(path, meta, required)
    if arrays is None:  # the entry vanished or is unreadable right after writing: do without the cache
        return generate_arrays(p), f"generated (cache entry {path} unreadable after writing)"
    return arrays, "generated"


def build_bundle(
    name: str, setting: str, *, profile: str = "compact", seed: int = 0, cache_dir=None
) -> DatasetBundle:
    p = make_params(name, setting, profile, seed)
    arrays, how = load_or_generate(p, cache_dir)
    splits = {}
    for split, n in zip(SPLITS, p.sizes, strict=True):

        def t(key, split=split):
            k = f"{split}__{key}"
            return torch.from_numpy(np.ascontiguousarray(arrays[k])) if k in arrays else None

        splits[split] = Split(
            labels=t("labels"),
            audio=t("audio"),
            vision=t("vision"),
            text=t("text"),
            text_bert=t("text_bert"),
            audio_lengths=t("audio_lengths"),
            vision_lengths=t("vision_lengths"),
            importance=t("importance"),
            ids=[f"{name}-{split}-{i:05d}" for i in range(n)],
            raw_text=[""] * n,
        )
    real = FAMILIES[p.family].title
    notes = [
        f"synthetic data (generator v{GENERATOR_VERSION}, profile {profile}, data seed {seed}): "
        f"planted per-sample modality importance; not {real}: numbers are not comparable with published "
        "results"
    ]
    if how.startswith("generated (cache"):
        notes.append(how)
    return DatasetBundle(
        name=name,
        family=p.family,
        setting=setting,
        task=p.task,
        splits=splits,
        source="synthetic",
        num_classes=p.num_classes,
        label_names=list(FAMILIES[p.family].label_names) or None,
        files=[],
        notes=notes,
        fingerprint=p.key(),
        standard=False,
    )


def _loader(name: str):
    def load(data_root, setting: str, *, profile: str = "compact", seed: int = 0, cache_dir=None, **_):
        return build_bundle(name, setting, profile=profile, seed=seed, cache_dir=cache_dir)

    load.__name__ = f"load_{name.replace('-', '_')}"
    load.__doc__ = f"``{name}``: synthetic stand-in (data_root is ignored)."
    return load


for _name in SYNTHETIC_FAMILIES:
    register_dataset(_name)(_loader(_name))
