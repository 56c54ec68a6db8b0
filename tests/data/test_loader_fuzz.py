"""Corrupted data files either load or give a one-line UserError naming the file: never a traceback.

Mutations are drawn from a seeded generator (reproducible; the failing case is printed), so the test
needs no extra package.
"""

from __future__ import annotations

import pickle

import numpy as np

from bench.data import load_dataset, mintrec
from bench.errors import UserError
from tests.data.conftest import mmsa_data, write_mmsa, write_vocab


def _mutate(rng: np.random.Generator, good: bytes) -> tuple[str, bytes]:
    """One truncation, overwrite or insertion of 1-8 random bytes at a random position."""
    data = bytearray(good)
    pos = int(rng.integers(0, len(data)))
    kind = str(rng.choice(["truncate", "overwrite", "insert"]))
    blob = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    if kind == "truncate":
        data = data[:pos]
    elif kind == "overwrite":
        data[pos:pos + len(blob)] = blob
    else:
        data[pos:pos] = blob
    return f"{kind} at {pos} ({blob.hex()})", bytes(data)


def _loads_or_one_line(load, path, case: str) -> bool:
    """True when it loaded; a UserError must be one line naming a file under ``path``; anything else fails."""
    try:
        load()
        return True
    except UserError as e:
        msg = str(e)
        assert "\n" not in msg and str(path) in msg, (case, msg)
        return False
    except Exception as e:  # noqa: BLE001 - the point of the test
        raise AssertionError(f"{case}: {type(e).__name__}: {e}") from e


def test_corrupted_mmsa_pickles(tmp_path):
    rng = np.random.default_rng(2026)
    path = write_mmsa(tmp_path, {}, "mosi", "unaligned")
    refused = 0
    for protocol in (2, 4, 5):
        good = pickle.dumps(mmsa_data("unaligned", seed=3), protocol=protocol)
        for _ in range(60):
            case, blob = _mutate(rng, good)
            path.write_bytes(blob)
            load = lambda: load_dataset("mosi", "unaligned", data_root=tmp_path)  # noqa: E731
            refused += not _loads_or_one_line(load, path, f"protocol {protocol}, {case}")
    assert refused > 100  # most corruptions are caught (the rest hit array payload bytes)


def test_corrupted_mintrec_files(mintrec_root, tmp_path):
    rng = np.random.default_rng(7)
    vocab = write_vocab(tmp_path / "vocab.txt")  # no search of the Hugging Face cache on each load
    for rel in ("MIntRec/dev.tsv", mintrec.AUDIO_FILE):
        path = mintrec_root / rel
        good = path.read_bytes()
        for _ in range(40):
            case, blob = _mutate(rng, good)
            path.write_bytes(blob)
            load = lambda: load_dataset("mintrec", "unaligned", data_root=mintrec_root, tokenizer=vocab)  # noqa: E731
            _loads_or_one_line(load, mintrec_root, f"{rel}: {case}")  # may name another file it affects
        path.write_bytes(good)
