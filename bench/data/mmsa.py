"""CMU-MOSI / CMU-MOSEI from the MMSA feature pickles (datasets ``mosi`` and ``mosei``).

Layout: ``<root>/MOSI/Processed/{aligned_50,unaligned_50}.pkl`` (same under ``MOSEI/``); each file is a
pickled dict ``{'train','valid','test'} -> {key: array}`` (see docs/data.md). The loader hashes the
file, then unpickles it admitting only numpy and builtin types (bench/data/safe_pickle.py),
validates keys/shapes/dtypes/ranges (``DataError`` on the first problem, naming split, key, expected
and found; empty splits, zero-length sequences, zero-width features and repeated ids included),
replaces audio ``-inf`` by 0 (as MMSA does), rejects other non-finite values unless ``clean_nan``
is set, and reports everything it changed in ``notes``.
Dimensions and sequence lengths are read from the file, never assumed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.data import checksums, paths
from bench.data.families import get_family
from bench.data.loaders import register_dataset
from bench.data.safe_pickle import load_data_pickle
from bench.data.tensors import SPLITS, DatasetBundle, Split
from bench.errors import DataError, UserError

LABEL_RANGE = (-3.0, 3.0)
MMSA_LAYOUT = (
    "<root>/MOSI/Processed/{aligned_50,unaligned_50}.pkl and "
    "<root>/MOSEI/Processed/{aligned_50,unaligned_50}.pkl"
)
MMSA_SOURCE = (
    "the MMSA feature pickles are distributed through the cloud-drive links in the thuiar/MMSA "
    "README (https://github.com/thuiar/MMSA, section 'Datasets')"
)

# Arrays are scanned in row chunks of about this many elements to bound temporary memory.
_CHUNK_ELEMS = 1 << 24


def mmsa_relpath(family: str, setting: str) -> str:
    return get_family(family).files[setting]["features"]


def no_root_message(family: str) -> str:
    return (
        f"dataset {family!r} needs the real feature files: pass --data-root (data_root=...) or set "
        f"BENCH_DATA_ROOT to a folder laid out as {MMSA_LAYOUT}; {MMSA_SOURCE}. "
        f"For a runnable stand-in without data use 'synthetic-{family}'."
    )


def missing_file_message(path: Path, family: str, setting: str, root: Path) -> str:
    hint = ""
    if paths.is_dir(root / "Processed"):
        hint = (
            f" ({root} looks like the {get_family(family).folder} folder itself: pass its parent as the data root)"
        )
    return (
        f"{family} {setting} features not found: expected {path}{hint}. Expected layout: {MMSA_LAYOUT}; "
        f"{MMSA_SOURCE}."
    )


# ------------------------------------------------------------------------------ array helpers
def _err(where: str, split: str, key: str, expected: str, found: str) -> DataError:
    return DataError(f"{where}: split {split!r}, key {key!r}: expected {expected}, found {found}")


def row_chunks(n: int, row_elems: int):
    step = max(1, _CHUNK_ELEMS // max(1, row_elems))
    for i in range(0, n, step):
        yield slice(i, min(n, i + step))


def _row_elems(a: np.ndarray) -> int:
    return int(np.prod(a.shape[1:])) if a.ndim > 1 else 1


def nonfinite_counts(a: np.ndarray) -> dict[str, int]:
    """Counts of NaN, +inf and -inf in a float array (chunked: no full-size temporaries)."""
    out = {"NaN": 0, "+inf": 0, "-inf": 0}
    if a.dtype.kind != "f" or a.size == 0:
        return out
    for sl in row_chunks(a.shape[0], _row_elems(a)):
        c = a[sl]
        if np.isfinite(c).all():
            continue
        out["NaN"] += int(np.isnan(c).sum())
        out["+inf"] += int(np.isposinf(c).sum())
        out["-inf"] += int(np.isneginf(c).sum())
    return out


def replace_values(a: np.ndarray, only_neginf: bool) -> np.ndarray:
    """Replace -inf (``only_neginf``) or every non-finite value by 0, in place where possible."""
    if not a.flags.writeable:
        a = a.copy()
    for sl in row_chunks(a.shape[0], _row_elems(a)):
        c = a[sl]
        bad = np.isneginf(c) if only_neginf else ~np.isfinite(c)
        if bad.any():
            c[bad] = 0
    return a


def nonzero_padding_count(a: np.ndarray, lengths: np.ndarray) -> int:
    """Number of samples whose frames at positions >= length are not all zero."""
    n, t = a.shape[0], a.shape[1]
    bad = 0
    pos = np.arange(t)
    for sl in row_chunks(n, _row_elems(a)):
        c = a[sl]
        beyond = pos[None, :] >= lengths[sl, None]  # (n, T)
        nz = (c != 0).reshape(c.shape[0], t, int(np.prod(c.shape[2:]))).any(axis=2)
        bad += int((nz & beyond).any(axis=1).sum())
    return bad


def _fmt_counts(c: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.items() if v)


def _fmt_per_split(per_split: dict[str, int]) -> str:
    return ", ".join(f"{s} {n}" for s, n in per_split.items() if n)


class CleaningLog:
    """Per key and kind, the number of values replaced in each split; rendered as notes."""

    def __init__(self):
        self.counts: dict[tuple[str, str], dict[str, int]] = {}

    def add(self, key: str, what: str, split: str, n: int) -> None:
        if n:
            d = self.counts.setdefault((key, what), {})
            d[split] = d.get(split, 0) + n

    def notes(self) -> list[str]:
        out = []
        for (key, what), per in self.counts.items():
            out.append(f"{key}: {sum(per.values())} {what} (" + _fmt_per_split(per) + ")")
        return out


def check_and_clean(
    a: np.ndarray,
    *,
    where: str,
    split: str,
    key: str,
    clean_nan: bool,
    log: CleaningLog,
    audio_neginf: bool = False,
) -> np.ndarray:
    """Audio -inf -> 0 (always, when ``audio_neginf``); other non-finite -> DataError unless clean_nan."""
    c = nonfinite_counts(a)
    if not any(c.values()):
        return a
    if audio_neginf and c["-inf"]:
        a = replace_values(a, only_neginf=True)
        log.add(key, "-inf values replaced by 0", split, c["-inf"])
        c["-inf"] = 0
    if any(c.values()):
        if not clean_nan:
            raise _err(
                where,
                split,
                key,
                "finite values",
                f"{sum(c.values())} non-finite ({_fmt_counts(c)}); pass clean_nan=True "
                f"(--clean-nan) to replace them by 0",
            )
        a = replace_values(a, only_neginf=False)
        log.add(
            key, f"non-finite values ({_fmt_counts(c)}) replaced by 0 (clean_nan)", split, sum(c.values())
        )
    return a


def as_numeric(x, *, where: str, split: str, key: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise _err(where, split, key, "a numeric array", f"{type(x).__name__} ({e})") from None
    if a.dtype.kind not in "biuf":
        raise _err(where, split, key, "a numeric array", f"dtype {a.dtype}")
    return a


def as_strings(x, n: int, *, where: str, split: str, key: str) -> list[str]:
    a = np.asarray(x, dtype=object).reshape(-1) if not isinstance(x, list) else x
    if len(a) != n:
        raise _err(where, split, key, f"{n} entries (as regression_labels)", f"{len(a)}")
    return [str(v) for v in a]


# ---------------------------------------------------------------------------------- parsing
def _shape_str(a) -> str:
    return "(" + ", ".join(str(s) for s in a.shape) + ")"


def _check_ndim(a, ndim: int, expected: str, *, where, split, key):
    if a.ndim != ndim:
        raise _err(where, split, key, f"{ndim}-d array {expected}", f"shape {_shape_str(a)}")


def _check_nonempty_dims(a, names: tuple[str, str], *, where, split, key):
    """Dimensions 1 and 2 (time and feature width) must not be 0: a 0-wide text array trains nothing."""
    for axis, what in zip((1, 2), names, strict=True):
        if a.shape[axis] == 0:
            raise _err(where, split, key, f"at least one entry along axis {axis} ({what})", f"shape {_shape_str(a)}")


def repeated_key(keys) -> str | None:
    """The first key that occurs a second time, or None."""
    seen = set()
    for k in keys:
        if k in seen:
            return k
        seen.add(k)
    return None


def _labels_1d(a, *, where, split, key):
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    _check_ndim(a, 1, "(N,)", where=where, split=split, key=key)
    return a


def _integral(a: np.ndarray, *, where, split, key, lo: int | None = 0, hi: int | None = None) -> np.ndarray:
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise _err(
                where, split, key, "finite integer values", f"{int((~np.isfinite(a)).sum())} non-finite"
            )
        if not (a == np.round(a)).all():
            raise _err(
                where, split, key, "integer values", f"{int((a != np.round(a)).sum())} non-integral values"
            )
    b = a.astype(np.int64)
    if lo is not None and b.size and b.min() < lo:
        raise _err(where, split, key, f"values >= {lo}", f"minimum {int(b.min())}")
    if hi is not None and b.size and b.max() > hi:
        raise _err(where, split, key, f"values <= {hi}", f"maximum {int(b.max())}")
    return b


def parse_split(
    d, *, split: str, setting: str, where: str, clean_nan: bool, log: CleaningLog, notes: list[str]
) -> Split:
    """Validate and convert one MMSA split dict into a :class:`Split`."""
    if not isinstance(d, dict):
        raise DataError(f"{where}: split {split!r}: expected a dict of arrays, found {type(d).__name__}")
    required = ["regression_labels", "audio", "vision"]
    if setting == "unaligned":
        required += ["audio_lengths", "vision_lengths"]
    missing = [k for k in required if k not in d]
    if missing:
        raise _err(
            where,
            split,
            missing[0],
            f"this key ({setting} files need {', '.join(required)})",
            f"only keys {', '.join(sorted(map(str, d)))}",
        )
    if "text" not in d and "text_bert" not in d:
        raise _err(
            where,
            split,
            "text",
            "at least one of 'text' (features) or 'text_bert' (token ids)",
            f"keys {', '.join(sorted(map(str, d)))}",
        )

    kw = {"where": where, "split": split}
    labels = _labels_1d(
        as_numeric(d["regression_labels"], key="regression_labels", **kw), key="regression_labels", **kw
    )
    n = labels.shape[0]
    if n == 0:
        raise _err(where, split, "regression_labels", "at least one sample", "0 (the split is empty)")
    n_ids = as_strings(d["id"], n, key="id", **kw) if "id" in d else [f"{split}-{i}" for i in range(n)]
    first_repeat = repeated_key(n_ids)
    if first_repeat is not None:
        raise _err(where, split, "id", "unique sample ids", f"{first_repeat!r} more than once")
    arrays = {}
    for key in ("text", "audio", "vision"):
        if key in d and d[key] is not None:
            a = as_numeric(d[key], key=key, **kw)
            _check_ndim(a, 3, "(N, T, D)", key=key, **kw)
            _check_nonempty_dims(a, ("time steps", "features"), key=key, **kw)
            arrays[key] = a
    text_bert = None
    if "text_bert" in d and d["text_bert"] is not None:
        text_bert = as_numeric(d["text_bert"], key="text_bert", **kw)
        _check_ndim(text_bert, 3, "(N, 3, T)", key="text_bert", **kw)
        if text_bert.shape[1] != 3:
            raise _err(
                where,
                split,
                "text_bert",
                "shape (N, 3, T) (ids, mask, segments)",
                f"shape {_shape_str(text_bert)}",
            )
        _check_nonempty_dims(text_bert, ("rows", "tokens"), key="text_bert", **kw)
    lengths = {}
    if setting == "unaligned":
        for key in ("audio_lengths", "vision_lengths"):
            lengths[key] = _labels_1d(as_numeric(d[key], key=key, **kw), key=key, **kw)
    for key, a in [*arrays.items(), ("text_bert", text_bert), *lengths.items()]:
        if a is not None and a.shape[0] != n:
            raise _err(where, split, key, f"{n} rows (as regression_labels)", f"shape {_shape_str(a)}")
    if "text" not in arrays and text_bert is None:
        raise _err(where, split, "text", "'text' or 'text_bert' to be an array", "None")

    # labels
    labels = np.asarray(labels, dtype=np.float32)
    if not np.isfinite(labels).all():
        raise _err(
            where,
            split,
            "regression_labels",
            "finite values",
            f"{int((~np.isfinite(labels)).sum())} non-finite",
        )
    lo, hi = LABEL_RANGE
    out = (labels < lo - 1e-4) | (labels > hi + 1e-4)
    if out.any():
        raise _err(
            where,
            split,
            "regression_labels",
            f"values in [{lo:g}, {hi:g}]",
            f"{int(out.sum())} outside (min {labels.min():.4g}, max {labels.max():.4g})",
        )

    # features: float32, non-finite policy
    feats = {}
    for key, a in arrays.items():
        a = np.asarray(a, dtype=np.float32)
        feats[key] = check_and_clean(
            a, key=key, clean_nan=clean_nan, log=log, audio_neginf=(key == "audio"), **kw
        )
    if text_bert is not None:
        text_bert = _integral(text_bert, key="text_bert", **kw)

    lens = {}
    for key, a in lengths.items():
        mod = key.split("_")[0]
        lens[mod] = _integral(a, key=key, lo=0, hi=feats[mod].shape[1], **kw)
        empty = np.flatnonzero(lens[mod] == 0)
        if empty.size:
            raise _err(
                where,
                split,
                key,
                "lengths >= 1 (every sample needs at least one frame)",
                f"{empty.size} samples of length 0 (first: id {n_ids[empty[0]]!r})",
            )
        bad = nonzero_padding_count(feats[mod], lens[mod])
        if bad:
            notes.append(
                f"{split} {mod}: {bad} of {n} samples have non-zero frames beyond {key} "
                f"(padding is not zero post-padding, or the lengths are wrong)"
            )

    raw = as_strings(d["raw_text"], n, key="raw_text", **kw) if "raw_text" in d else []
    return Split(
        labels=torch.from_numpy(np.ascontiguousarray(labels)),
        audio=torch.from_numpy(np.ascontiguousarray(feats["audio"])),
        vision=torch.from_numpy(np.ascontiguousarray(feats["vision"])),
        text=torch.from_numpy(np.ascontiguousarray(feats["text"])) if "text" in feats else None,
        text_bert=torch.from_numpy(np.ascontiguousarray(text_bert)) if text_bert is not None else None,
        audio_lengths=torch.from_numpy(lens["audio"]) if "audio" in lens else None,
        vision_lengths=torch.from_numpy(lens["vision"]) if "vision" in lens else None,
        ids=n_ids,
        raw_text=raw,
    )


def _check_consistent(splits: dict[str, Split], where: str) -> None:
    """Every split must have the same keys, feature dims and sequence lengths as train."""
    ref = splits["train"]
    for name, s in splits.items():
        for key in ("text", "text_bert", "audio", "vision"):
            a, r = getattr(s, key), getattr(ref, key)
            if (a is None) != (r is None):
                raise _err(
                    where, name, key, f"present as in 'train' ({r is not None})", f"present={a is not None}"
                )
            if a is not None and tuple(a.shape[1:]) != tuple(r.shape[1:]):
                raise _err(
                    where,
                    name,
                    key,
                    f"per-sample shape {tuple(r.shape[1:])} as in 'train'",
                    f"{tuple(a.shape[1:])}",
                )


def _check_disjoint(ids: dict[str, list[str]], where: str, key: str) -> None:
    """No sample may sit in two splits (it would leak between training and testing)."""
    owner: dict[str, str] = {}
    for split, keys in ids.items():
        for k in keys:
            if k in owner:
                raise _err(where, split, key, f"ids not already in split {owner[k]!r}", f"{k!r} in both")
            owner[k] = split


def parse_mmsa(
    obj, setting: str, *, where: str, clean_nan: bool = False
) -> tuple[dict[str, Split], list[str]]:
    """Validate a loaded MMSA pickle; return the splits and human-readable notes."""
    if not isinstance(obj, dict):
        raise DataError(
            f"{where}: expected a dict with keys 'train', 'valid', 'test' at top level, "
            f"found {type(obj).__name__}"
        )
    missing = [s for s in SPLITS if s not in obj]
    if missing:
        raise DataError(
            f"{where}: expected top-level keys 'train', 'valid', 'test', found "
            f"{', '.join(repr(k) for k in obj)} (missing {', '.join(missing)})"
        )
    log = CleaningLog()
    notes: list[str] = []
    splits = {
        s: parse_split(
            obj[s], split=s, setting=setting, where=where, clean_nan=clean_nan, log=log, notes=notes
        )
        for s in SPLITS
    }
    _check_consistent(splits, where)
    _check_disjoint({s: sp.ids for s, sp in splits.items()}, where, "id")
    if setting == "aligned":
        tr = splits["train"]
        t_text = tr.text.shape[1] if tr.text is not None else tr.text_bert.shape[2]
        if tr.audio.shape[1] != t_text or tr.vision.shape[1] != t_text:
            notes.append(
                f"aligned file but sequence lengths differ: text {t_text}, audio {tr.audio.shape[1]}, "
                f"vision {tr.vision.shape[1]}"
            )
    return splits, log.notes() + notes


def read_pickle(path: Path) -> tuple[object, str]:
    """``(object, sha256)``: hashed first, then unpickled admitting only numpy and builtin types."""
    return load_data_pickle(path)


# ---------------------------------------------------------------------------------- loader
def load_mmsa(family: str, data_root, setting: str, *, clean_nan: bool = False, **_) -> DatasetBundle:
    if data_root is None:
        raise UserError(no_root_message(family))
    root = Path(data_root).expanduser()
    rel = mmsa_relpath(family, setting)
    path = root / rel
    if not paths.is_file(path):
        raise UserError(missing_file_message(path, family, setting, root))
    obj, sha = read_pickle(path)
    splits, notes = parse_mmsa(obj, setting, where=str(path), clean_nan=clean_nan)
    del obj
    rec = checksums.file_record(path, rel, sha=sha)
    notes = checksums.checksum_notes(rec, rel) + notes
    sizes = tuple(len(splits[s]) for s in SPLITS)
    fam = get_family(family)
    if sizes != fam.split_sizes:
        notes.append(
            f"non-standard split sizes {'/'.join(map(str, sizes))} (MMSA {fam.folder}: "
            f"{'/'.join(map(str, fam.split_sizes))}): not comparable with published {fam.folder} numbers"
        )
    tr = splits["train"]
    text_dim = fam.shapes[setting]["text"][1]
    if tr.text is not None and tr.text.shape[-1] != text_dim:
        notes.append(
            f"text features are {tr.text.shape[-1]}-d (MMSA's are {text_dim}-d BERT-base features)"
        )
    return DatasetBundle(
        name=family,
        family=family,
        setting=setting,
        task=fam.task,
        splits=splits,
        source="real",
        num_classes=fam.num_classes,
        label_names=None,
        files=[rec],
        notes=notes,
        fingerprint=checksums.fingerprint_of([sha]),
        standard=rec["status"] == "ok",
    )


@register_dataset("mosi")
def load_mosi(data_root, setting: str, **opts) -> DatasetBundle:
    return load_mmsa("mosi", data_root, setting, **opts)


@register_dataset("mosei")
def load_mosei(data_root, setting: str, **opts) -> DatasetBundle:
    return load_mmsa("mosei", data_root, setting, **opts)
