"""Fixtures that write small data files in exactly the MMSA and MIntRec layouts."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

# The reference data folder ``shared/`` beside the repository root (absent on users' machines).
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

SIZES = {"train": 12, "valid": 5, "test": 6}
DIMS = {"text": 8, "audio": 4, "vision": 3}
ALIGNED_T = 6
UNALIGNED_T = {"text": 6, "audio": 10, "vision": 12}


def need_shared(*parts) -> Path:
    p = SHARED_DATA.joinpath(*parts).resolve()
    if not p.exists():
        pytest.skip(
            f"reference data {p} not present (it exists only in the project workspace, beside the repo)"
        )
    return p


def mmsa_split(rng: np.random.Generator, n: int, setting: str, split: str) -> dict:
    """One split dict in the MMSA layout (numpy arrays, str object arrays for ids/texts)."""
    t = {k: ALIGNED_T for k in DIMS} if setting == "aligned" else dict(UNALIGNED_T)
    labels = np.round(rng.uniform(-3, 3, n), 1).astype(np.float32)
    text_len = rng.integers(3, t["text"] + 1, n)
    text_bert = np.zeros((n, 3, t["text"]), np.float32)
    for i, length in enumerate(text_len):
        text_bert[i, 0, :length] = [101, *rng.integers(1000, 3000, length - 2), 102]
        text_bert[i, 1, :length] = 1
    d = {
        "raw_text": np.array([f"utterance {split} {i}" for i in range(n)], dtype=object),
        "id": np.array([f"{split}vid{i // 3}$_${i}" for i in range(n)], dtype=object),
        "text": rng.standard_normal((n, t["text"], DIMS["text"])).astype(np.float32),
        "text_bert": text_bert,
        "audio": rng.standard_normal((n, t["audio"], DIMS["audio"])).astype(np.float32),
        "vision": rng.standard_normal((n, t["vision"], DIMS["vision"])).astype(np.float32),
        "annotations": np.array(
            ["Positive" if y > 0 else "Negative" if y < 0 else "Neutral" for y in labels]
        ),
        "classification_labels": (np.sign(labels) + 1).astype(np.float32),
        "regression_labels": labels,
    }
    if setting == "unaligned":
        for m in ("audio", "vision"):
            lengths = rng.integers(1, t[m] + 1, n).astype(np.int64)
            for i, length in enumerate(lengths):
                d[m][i, length:] = 0
            d[f"{m}_lengths"] = lengths
    return d


def mmsa_data(setting: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {s: mmsa_split(rng, n, setting, s) for s, n in SIZES.items()}


def write_mmsa(root: Path, obj, family: str = "mosi", setting: str = "aligned") -> Path:
    path = Path(root) / {"mosi": "MOSI", "mosei": "MOSEI"}[family] / "Processed" / f"{setting}_50.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
    return path


@pytest.fixture
def mmsa_root(tmp_path):
    """A data root with MOSI aligned and unaligned pickles; audio has -inf (train 3, valid 2)."""
    for setting in ("aligned", "unaligned"):
        data = mmsa_data(setting)
        data["train"]["audio"][0, 0, :3] = -np.inf
        data["valid"]["audio"][1, 0, 0] = -np.inf
        data["valid"]["audio"][2, 0, 1] = -np.inf
        write_mmsa(tmp_path, data, "mosi", setting)
    return tmp_path


# ---------------------------------------------------------------------------------- MIntRec
MINTREC_HEADER = "season\tepisode\tclip\ttext\tlabel\n"
VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "i",
    "you",
    "we",
    "the",
    "a",
    "is",
    "are",
    "it",
    "to",
    "thank",
    "sorry",
    "hello",
    "good",
    "bad",
    "##s",
    "##ing",
    ",",
    ".",
    "!",
    "?",
    "'",
    "know",
    "go",
    "so",
]


def write_vocab(path: Path) -> Path:
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return path


def mintrec_rows(tsv: Path) -> list[str]:
    """Sample keys of a tsv file, in order."""
    keys = []
    for line in tsv.read_text(encoding="utf-8").splitlines()[1:]:
        if line.strip():
            season, episode, clip = line.split("\t")[:3]
            keys.append(f"{season}_{episode}_{clip}")
    return keys


def write_mintrec_features(
    root: Path,
    keys,
    *,
    seed: int = 0,
    audio_dim: int = 6,
    video_dim: int = 5,
    long_audio_key: str | None = None,
) -> None:
    """audio_feats.pkl {key: (T_a, D_a)} and video_feats.pkl {key: (T_v, 1, D_v)} for ``keys``."""
    rng = np.random.default_rng(seed)
    audio, video = {}, {}
    for k in keys:
        ta = 500 if k == long_audio_key else int(rng.integers(5, 40))
        audio[k] = rng.standard_normal((ta, audio_dim)).astype(np.float32)
        video[k] = rng.standard_normal((int(rng.integers(3, 20)), 1, video_dim)).astype(np.float32)
    (root / "MIntRec" / "audio_data").mkdir(parents=True, exist_ok=True)
    (root / "MIntRec" / "video_data").mkdir(parents=True, exist_ok=True)
    with open(root / "MIntRec" / "audio_data" / "audio_feats.pkl", "wb") as f:
        pickle.dump(audio, f, protocol=4)
    with open(root / "MIntRec" / "video_data" / "video_feats.pkl", "wb") as f:
        pickle.dump(video, f, protocol=4)


def small_tsv_rows(split: str, n: int, labels) -> list[str]:
    texts = ["Thank you so much!", "I'm sorry, I know.", "hello, we go", "you are good", "it is bad"]
    return [
        f"S0{1 + i % 3}\tE{i % 7:02d}\t{split}{i}\t{texts[i % len(texts)]}\t{labels[i % len(labels)]}"
        for i in range(n)
    ]


@pytest.fixture
def mintrec_root(tmp_path):
    """A small MIntRec root (tsv + feature pickles); one audio sequence is 500 frames (truncated)."""
    from bench.data.mintrec import LABEL_NAMES

    d = tmp_path / "MIntRec"
    d.mkdir()
    keys = []
    for split, fname, n in (("train", "train.tsv", 20), ("dev", "dev.tsv", 7), ("test", "test.tsv", 8)):
        rows = small_tsv_rows(split, n, LABEL_NAMES)
        (d / fname).write_text(MINTREC_HEADER + "\n".join(rows) + "\n", encoding="utf-8")
        keys += mintrec_rows(d / fname)
    write_mintrec_features(tmp_path, keys, long_audio_key=keys[1])
    return tmp_path
