"""MIntRec (thuiar/MIntRec, 20 intent classes): dataset ``mintrec`` (unaligned only).

Layout under the data root::

    MIntRec/train.tsv, MIntRec/dev.tsv, MIntRec/test.tsv     header: season episode clip text label
    MIntRec/audio_data/audio_feats.pkl                        {"S05_E16_329": array (T_a, 768)}
    MIntRec/video_data/video_feats.pkl                        {"S05_E16_329": array (T_v, 1, 256)}

The sample key is ``f"{season}_{episode}_{clip}"``; the label id is the position in
:data:`LABEL_NAMES` (MIntRec's order). Audio/video are zero-padded at the end to 480/230 frames
(longer sequences are truncated by slicing) and the true lengths are kept. ``dev`` becomes ``valid``.
Text: no frozen text features (``text`` is None); ``text_bert`` (N, 3, 30) is tokenised here with a
BERT WordPiece tokenizer that must already be on disk (nothing is downloaded).
"""

from __future__ import annotations

import csv
import inspect
import io
import os
from pathlib import Path

import numpy as np
import torch

from bench.data import checksums
from bench.data.families import MINTREC
from bench.data.loaders import register_dataset
from bench.data.mintrec_standard import standard_mintrec
from bench.data.mmsa import CleaningLog, check_and_clean, read_pickle
from bench.data.paths import is_file
from bench.data.tensors import SPLITS, DatasetBundle, Split
from bench.errors import DataError, UserError, did_you_mean
from bench.offline import hub_offline

LABEL_NAMES = MINTREC.label_names  # label id = position (thuiar/MIntRec's order)
# fmt: off
# MIntRec's coarse map (binary_maps): Emotion (0) / Goal (1).
EMOTION_LABELS = ("Complain", "Praise", "Apologise", "Thank", "Criticize", "Care", "Agree", "Taunt", "Flaunt",
                  "Joke", "Oppose")
GOAL_LABELS = ("Inform", "Advise", "Arrange", "Introduce", "Leave", "Prevent", "Greet", "Ask for help",
               "Comfort")
# fmt: on
BINARY_LABELS = {**{n: 0 for n in EMOTION_LABELS}, **{n: 1 for n in GOAL_LABELS}}
TSV_COLUMNS = ("season", "episode", "clip", "text", "label")
_FILES, _SHAPES = MINTREC.files["unaligned"], MINTREC.shapes["unaligned"]
SPLIT_FILES = {s: _FILES[s] for s in SPLITS}
AUDIO_FILE = _FILES["audio"]
VIDEO_FILE = _FILES["video"]
AUDIO_MAX_LEN = _SHAPES["audio"][0]
VIDEO_MAX_LEN = _SHAPES["vision"][0]
TEXT_MAX_LEN = _SHAPES["text"][0]  # [CLS] + at most 28 word pieces + [SEP]
MINTREC_LAYOUT = (
    "<root>/MIntRec/{train,dev,test}.tsv, <root>/MIntRec/audio_data/audio_feats.pkl and "
    "<root>/MIntRec/video_data/video_feats.pkl"
)
MINTREC_SOURCE = (
    "the tsv files and feature pickles are distributed through the links in the thuiar/MIntRec "
    "README (https://github.com/thuiar/MIntRec, section 'Datasets')"
)
ENV_TOKENIZER = "BENCH_TOKENIZER"
TOKENIZER_HINT = (
    "pass tokenizer=<folder loadable by transformers.BertTokenizer.from_pretrained, or a "
    f"bert-base-uncased vocab.txt>, or set {ENV_TOKENIZER} to one"
)


def no_root_message() -> str:
    return (
        f"dataset 'mintrec' needs the real data: pass --data-root (data_root=...) or set BENCH_DATA_ROOT "
        f"to a folder laid out as {MINTREC_LAYOUT}; {MINTREC_SOURCE}. For a runnable stand-in without data "
        "use 'synthetic-mintrec'."
    )


def _missing(path: Path) -> UserError:
    return UserError(
        f"MIntRec file not found: expected {path}. Expected layout: {MINTREC_LAYOUT}; {MINTREC_SOURCE}."
    )


# ------------------------------------------------------------------------------------- tsv
def _utf8_text(path: Path) -> str:
    """The file's text; unreadable or non-UTF-8 bytes are a one-line DataError naming file and line."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or type(e).__name__}); "
                        "expected a readable tsv file") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{path}: line {line}: byte 0x{raw[e.start]:02x} is not UTF-8 text; expected a UTF-8 encoded tsv file"
        ) from None


def read_tsv(path: Path) -> list[tuple[str, str, int, int]]:
    """Rows ``(key, text, label_id, line_number)`` of one MIntRec split file."""
    rows = []
    seen: dict[str, int] = {}
    with io.StringIO(_utf8_text(path), newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: empty file; expected a header {' '.join(TSV_COLUMNS)}") from None
        if tuple(h.strip().lower() for h in header) != TSV_COLUMNS:
            raise DataError(
                f"{path}: line 1: expected header {'/'.join(TSV_COLUMNS)}, found {'/'.join(header)}"
            )
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(TSV_COLUMNS):
                raise DataError(
                    f"{path}: row at line {line}: expected {len(TSV_COLUMNS)} tab-separated fields, "
                    f"found {len(row)}"
                )
            season, episode, clip, text, label = (c.strip() for c in row)
            if label not in LABEL_NAMES:
                raise DataError(
                    f"{path}: row at line {line}: unknown label {label!r}.{did_you_mean(label, LABEL_NAMES)}"
                )
            key = f"{season}_{episode}_{clip}"
            if key in seen:
                raise DataError(
                    f"{path}: row at line {line}: sample key {key!r} repeats line {seen[key]}; "
                    "expected each season/episode/clip once"
                )
            seen[key] = line
            rows.append((key, text, LABEL_NAMES.index(label), line))
    return rows


# ------------------------------------------------------------------------------- tokenizer
def _bert_tokenizer_class():

    hub_offline()  # before transformers: a name lookup must not reach the network (or DNS)
    try:
        from transformers import BertTokenizer
    except ImportError:
        return None
    return BertTokenizer


def _from_vocab_file(cls, path: Path):
    params = inspect.signature(cls.__init__).parameters
    if "vocab_file" in params:  # transformers 4.x
        return cls(vocab_file=str(path), do_lower_case=True)
    vocab = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            tok = line.rstrip("\n").rstrip("\r")
            if tok:
                vocab.setdefault(tok, i)
    return cls(vocab=vocab, do_lower_case=True)


def _usable(tok, min_size: int) -> bool:
    try:
        return tok.cls_token_id is not None and tok.sep_token_id is not None and len(tok) >= min_size
    except Exception:
        return False


def _first_line(e: Exception) -> str:
    text = str(e)
    return text.splitlines()[0] if text else ""


def resolve_tokenizer(tokenizer):
    """``(tokenizer or None, note or None)``; never downloads. An explicit but unusable one is a UserError.

    ``tokenizer``: a tokenizer object, a folder for ``BertTokenizer.from_pretrained`` or a ``vocab.txt``;
    if None, ``$BENCH_TOKENIZER``; if unset, bert-base-uncased from the local Hugging Face cache.
    """
    if tokenizer is None and os.environ.get(ENV_TOKENIZER, "").strip():
        tokenizer = os.environ[ENV_TOKENIZER].strip()
    if (
        tokenizer is not None
        and hasattr(tokenizer, "tokenize")
        and hasattr(tokenizer, "convert_tokens_to_ids")
    ):
        return tokenizer, None
    cls = _bert_tokenizer_class()
    if tokenizer is None:
        if cls is None:
            return None, f"no tokenizer (transformers is not installed): text unavailable; {TOKENIZER_HINT}"
        try:
            tok = cls.from_pretrained("bert-base-uncased", local_files_only=True)
        except Exception:
            tok = None
        # transformers 5 returns a specials-only tokenizer instead of failing when nothing is cached
        if tok is None or not _usable(tok, 1000):
            return (
                None,
                "no tokenizer (bert-base-uncased is not in the local cache): text unavailable; "
                + TOKENIZER_HINT,
            )
        return tok, None
    p = Path(tokenizer).expanduser()
    if not p.exists():
        raise UserError(f"tokenizer {p} not found; {TOKENIZER_HINT}")
    if cls is None:
        raise UserError(
            f"tokenizer {p} given but the transformers package is not installed (pip install transformers)"
        )
    try:
        tok = _from_vocab_file(cls, p) if p.is_file() else cls.from_pretrained(str(p), local_files_only=True)
    except Exception as e:
        raise UserError(
            f"tokenizer {p} could not be loaded ({type(e).__name__}: {_first_line(e)}); {TOKENIZER_HINT}"
        ) from None
    if not _usable(tok, 6):
        raise UserError(
            f"tokenizer {p} has no usable vocabulary (no [CLS]/[SEP] or only special tokens); "
            f"{TOKENIZER_HINT}"
        )
    return tok, None


def encode_texts(tok, texts, max_len: int = TEXT_MAX_LEN) -> np.ndarray:
    """(N, 3, max_len) int64 rows input_ids, attention_mask, segment_ids: [CLS] pieces [SEP], zero-padded."""
    out = np.zeros((len(texts), 3, max_len), dtype=np.int64)
    cls_id, sep_id = int(tok.cls_token_id), int(tok.sep_token_id)
    for i, text in enumerate(texts):
        pieces = tok.tokenize(text)[: max_len - 2]
        ids = [cls_id, *(int(t) for t in tok.convert_tokens_to_ids(pieces)), sep_id]
        out[i, 0, : len(ids)] = ids
        out[i, 1, : len(ids)] = 1
    return out


# -------------------------------------------------------------------------------- features
def _feature_dict(path: Path):
    obj, sha = read_pickle(path)
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a dict {{sample key: feature array}}, found {type(obj).__name__}")
    return obj, sha


def pad_features(feats: dict, keys, *, path: Path, modality: str, max_len: int, rows, tsv: str,
                 split: str = "?"):
    """(N, max_len, D) float32 zero-post-padded (truncated by slice) and (N,) int64 true lengths (capped).

    A sequence with no frames or a feature width of 0 is a DataError (it would give NaN means)."""
    arrays = []
    dim = None
    for key, (_, _, _, line) in zip(keys, rows, strict=True):
        if key not in feats:
            raise DataError(f"{path}: no {modality} features for key {key!r} ({tsv} line {line})")
        a = feats[key]
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        a = np.asarray(a)
        if a.dtype.kind not in "biuf":
            raise DataError(f"{path}: key {key!r}: expected a numeric array, found dtype {a.dtype}")
        if a.ndim == 3 and a.shape[1] == 1:
            a = a[:, 0, :]
        if a.ndim != 2:
            exp = "(T, 1, D) or (T, D)" if modality == "video" else "(T, D)"
            raise DataError(f"{path}: key {key!r}: expected shape {exp}, found {tuple(a.shape)}")
        if a.shape[0] == 0 or a.shape[1] == 0:
            what = "frame" if a.shape[0] == 0 else "feature"
            raise DataError(
                f"{path}: split {split!r}, key {key!r} ({tsv} line {line}): expected at least one {modality} "
                f"{what}, found shape {tuple(a.shape)}"
            )
        if dim is None:
            dim = a.shape[1]
        elif a.shape[1] != dim:
            raise DataError(
                f"{path}: key {key!r}: expected feature dim {dim} (as the other samples), found {a.shape[1]}"
            )
        arrays.append(a)
    n = len(arrays)
    out = np.zeros((n, max_len, dim or 0), dtype=np.float32)
    lengths = np.zeros(n, dtype=np.int64)
    truncated = 0
    for i, a in enumerate(arrays):
        t = min(a.shape[0], max_len)
        truncated += a.shape[0] > max_len
        out[i, :t] = a[:t]
        lengths[i] = t
    return out, lengths, truncated


def _check_splits_nonempty_disjoint(rows: dict, paths: dict) -> None:
    """Every split has a sample (a header-only tsv trains or tests nothing); no key is in two splits."""
    owner: dict[str, str] = {}
    for s in SPLITS:
        if not rows[s]:
            raise DataError(f"{paths[s]}: split {s!r} has no samples (only a header); expected at least one row")
        for key, _, _, line in rows[s]:
            if key in owner:
                raise DataError(
                    f"{paths[s]}: split {s!r}, key {key!r} (line {line}) is also in split {owner[key]!r}; "
                    "expected each sample in one split only"
                )
            owner[key] = s


# ---------------------------------------------------------------------------------- loader
@register_dataset("mintrec")
def load_mintrec(
    data_root,
    setting: str = "unaligned",
    *,
    clean_nan: bool = False,
    tokenizer=None,
    audio_max_len: int = AUDIO_MAX_LEN,
    video_max_len: int = VIDEO_MAX_LEN,
    **_,
) -> DatasetBundle:
    if data_root is None:
        raise UserError(no_root_message())
    if setting not in MINTREC.settings:
        raise UserError(
            f"dataset 'mintrec' has no setting {setting!r}.{did_you_mean(setting, MINTREC.settings)}"
        )
    root = Path(data_root).expanduser()
    paths = {s: root / rel for s, rel in SPLIT_FILES.items()}
    for p in [*paths.values(), root / AUDIO_FILE, root / VIDEO_FILE]:
        if not is_file(p):
            raise _missing(p)
    rows = {s: read_tsv(paths[s]) for s in SPLITS}
    _check_splits_nonempty_disjoint(rows, paths)
    tsv_shas = {s: checksums.sha256_file(paths[s]) for s in SPLITS}
    audio_feats, audio_sha = _feature_dict(root / AUDIO_FILE)
    video_feats, video_sha = _feature_dict(root / VIDEO_FILE)
    tok, tok_note = resolve_tokenizer(tokenizer)

    log = CleaningLog()
    notes: list[str] = []
    splits = {}
    for s in SPLITS:
        r = rows[s]
        keys = [k for k, _, _, _ in r]
        texts = [t for _, t, _, _ in r]
        tsv = Path(SPLIT_FILES[s]).name
        audio, a_len, a_tr = pad_features(
            audio_feats,
            keys,
            path=root / AUDIO_FILE,
            modality="audio",
            max_len=audio_max_len,
            rows=r,
            tsv=tsv,
            split=s,
        )
        video, v_len, v_tr = pad_features(
            video_feats,
            keys,
            path=root / VIDEO_FILE,
            modality="video",
            max_len=video_max_len,
            rows=r,
            tsv=tsv,
            split=s,
        )
        if a_tr:
            notes.append(f"{s} audio: {a_tr} sequences longer than {audio_max_len} frames truncated")
        if v_tr:
            notes.append(f"{s} video: {v_tr} sequences longer than {video_max_len} frames truncated")
        kw = {"split": s, "clean_nan": clean_nan, "log": log}
        audio = check_and_clean(audio, where=str(root / AUDIO_FILE), key="audio", **kw)
        video = check_and_clean(video, where=str(root / VIDEO_FILE), key="vision", **kw)
        splits[s] = Split(
            labels=torch.tensor([y for _, _, y, _ in r], dtype=torch.int64),
            audio=torch.from_numpy(audio),
            vision=torch.from_numpy(video),
            text=None,
            text_bert=torch.from_numpy(encode_texts(tok, texts)) if tok is not None else None,
            audio_lengths=torch.from_numpy(a_len),
            vision_lengths=torch.from_numpy(v_len),
            ids=keys,
            raw_text=texts,
        )
    files = [checksums.file_record(paths[s], SPLIT_FILES[s], sha=tsv_shas[s]) for s in SPLITS]
    files.append(checksums.file_record(root / AUDIO_FILE, AUDIO_FILE, sha=audio_sha))
    files.append(checksums.file_record(root / VIDEO_FILE, VIDEO_FILE, sha=video_sha))
    for rec, rel in zip(files, [*SPLIT_FILES.values(), AUDIO_FILE, VIDEO_FILE], strict=True):
        if rec["status"] == "mismatch":
            notes.extend(checksums.checksum_notes(rec, rel))
    sizes = tuple(len(splits[s]) for s in SPLITS)
    all_keys = [k for s in SPLITS for k, _, _, _ in rows[s]]
    standard, why = standard_mintrec(files, sizes, audio_feats, video_feats, all_keys)
    del audio_feats, video_feats
    notes.append(why)
    notes.extend(log.notes())
    if sizes != MINTREC.split_sizes:
        notes.append(
            f"non-standard split sizes {'/'.join(map(str, sizes))} (MIntRec: "
            f"{'/'.join(map(str, MINTREC.split_sizes))}): not comparable with published MIntRec numbers"
        )
    if tok_note:
        notes.append(tok_note)
    else:
        name = getattr(tok, "name_or_path", "") or type(tok).__name__
        notes.append(
            f"text_bert: tokenised with {name} (vocabulary {len(tok)}), [CLS] + at most "
            f"{TEXT_MAX_LEN - 2} word pieces + [SEP], padded to {TEXT_MAX_LEN}"
        )
    return DatasetBundle(
        name="mintrec",
        family="mintrec",
        setting="unaligned",
        task=MINTREC.task,
        splits=splits,
        source="real",
        num_classes=MINTREC.num_classes,
        label_names=list(LABEL_NAMES),
        files=files,
        notes=notes,
        fingerprint=checksums.fingerprint_of([f["sha256"] for f in files]),
        standard=standard,
    )
