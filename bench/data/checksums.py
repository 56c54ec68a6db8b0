"""Published and reference SHA-256 checksums of the data files, and streamed file hashing.

The tables are looked up at call time (tests monkeypatch them).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from bench.data.paths import is_file
from bench.errors import DataError

# SHA-256 of the MMSA feature pickles as published in thuiar/MMSA README.md:99-105, keyed by the path
# relative to the data root. Only files whose hash is here (and matches) count as "standard" data.
MMSA_SHA256: dict[str, str] = {
    "MOSI/Processed/unaligned_50.pkl": "78e0f8b5ef8ff71558e7307848fc1fa929ecb078203f565ab22b9daab2e02524",
    "MOSI/Processed/aligned_50.pkl": "d3994fd25681f9c7ad6e9c6596a6fe9b4beb85ff7d478ba978b124139002e5f9",
    "MOSEI/Processed/unaligned_50.pkl": "ad8b23d50557045e7d47959ce6c5b955d8d983f2979c7d9b7b9226f6dd6fec1f",
    "MOSEI/Processed/aligned_50.pkl": "45eccfb748a87c80ecab9bfac29582e7b1466bf6605ff29d3b338a75120bf791",
}

# thuiar/MIntRec publishes no checksums. The split files below are the reference copies of the
# official tsv files (github JoeYing1019/SDIF-DA data/MIntRec/*.tsv, byte-identical in
# saransh03sharma/MultiModal_Intent_EMNLP2025); a mismatch means the text/labels differ from them.
# The feature pickles (audio_feats.pkl, video_feats.pkl) have no reference hash ("unknown").
MINTREC_SHA256: dict[str, str] = {
    "MIntRec/train.tsv": "348289d7d140b2c0716b35a03e7045b684c4b90f5c30d1281f9a6b7cb3b9903b",
    "MIntRec/dev.tsv": "a697b382fdf05450d9d6c23995b92087863938d6b73b6e6d2d14babccc7c48e5",
    "MIntRec/test.tsv": "e4394869fc02898e00fad0a1b03e0333760a9b0499da2fa3f8af030a384c8f3a",
}

# Files we recognise although they are not the published ones: sha256 -> one-line description.
KNOWN_NONSTANDARD_SHA256: dict[str, str] = {
    "0249717835f1624f3cc6f5aa2ed011000d2efbc6e31d9cff020dcbc62cac9c1d": (
        "the mosi229 mini set (229 real segments of the MOSI validation fold re-split 139/47/43, "
        "384-d MiniLM text): smoke tests only"
    ),
}

STATUSES = ("ok", "mismatch", "missing", "unknown")
_CHUNK = 1 << 22


def expected_sha256(relpath: str) -> str | None:
    """The published/reference hash of a file given its path relative to the data root."""
    rel = relpath.replace(os.sep, "/")
    return MMSA_SHA256.get(rel) or MINTREC_SHA256.get(rel)


def sha256_of_stream(f) -> str:
    """SHA-256 hex digest of what is left in a binary file object, read in 4 MiB chunks."""
    h = hashlib.sha256()
    while True:
        b = f.read(_CHUNK)
        if not b:
            break
        h.update(b)
    return h.hexdigest()


def sha256_file(path) -> str:
    """SHA-256 hex digest of a file; an unreadable file is a one-line DataError naming it."""
    try:
        with open(path, "rb") as f:
            return sha256_of_stream(f)
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise DataError(f"{path}: cannot read the file ({why}); expected a readable data file") from None


def status_of(sha: str | None, expected: str | None) -> str:
    if sha is None:
        return "missing"
    if expected is None:
        return "unknown"
    return "ok" if sha == expected else "mismatch"


def file_record(path, relpath: str, sha: str | None = None) -> dict:
    """``{path, sha256, expected_sha256, status}`` for one expected file (hashing it unless given)."""
    p = Path(path)
    exists = is_file(p)
    if exists and sha is None:
        sha = sha256_file(p)
    if not exists:
        sha = None
    exp = expected_sha256(relpath)
    return {"path": str(p), "sha256": sha, "expected_sha256": exp, "status": status_of(sha, exp)}


def checksum_notes(rec: dict, relpath: str) -> list[str]:
    """Warnings for one file record: mismatching or unverifiable checksums."""
    notes = []
    if rec["status"] == "mismatch":
        known = KNOWN_NONSTANDARD_SHA256.get(rec["sha256"])
        what = f"; identified as {known}" if known else ""
        ref = "published (thuiar/MMSA)" if relpath.replace(os.sep, "/") in MMSA_SHA256 else "reference copy"
        notes.append(
            f"WARNING checksum mismatch for {relpath}: sha256 {rec['sha256'][:16]}... != {ref} "
            f"{rec['expected_sha256'][:16]}...{what}; results are not comparable with published numbers"
        )
    elif rec["status"] == "unknown":
        notes.append(f"{relpath}: no published checksum; sha256 {rec['sha256']} recorded for provenance")
    return notes


def fingerprint_of(shas) -> str:
    """sha256 over the data files' sha256 digests, in the given order."""
    h = hashlib.sha256()
    for s in shas:
        h.update((s or "missing").encode())
        h.update(b"\n")
    return h.hexdigest()


class HashingReader:
    """A read-only file wrapper that hashes every byte read, so a pickle is hashed while it loads.

    It offers ``read``, ``readinto`` and ``readline`` (what :func:`pickle.load` uses) and no ``peek``,
    so every byte the unpickler sees passes through the hash exactly once. Call :meth:`hexdigest`
    after loading: it hashes whatever the unpickler did not consume.
    """

    def __init__(self, f):
        self._f = f
        self._h = hashlib.sha256()

    def read(self, n=-1):
        b = self._f.read(n)
        self._h.update(b)
        return b

    def readinto(self, buf):
        n = self._f.readinto(buf)
        if n:
            self._h.update(memoryview(buf).cast("B")[:n])
        return n

    def readline(self, size=-1):
        b = self._f.readline(size)
        self._h.update(b)
        return b

    def hexdigest(self) -> str:
        while True:
            b = self._f.read(_CHUNK)
            if not b:
                break
            self._h.update(b)
        return self._h.hexdigest()
