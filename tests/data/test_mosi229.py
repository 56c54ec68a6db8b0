"""The real mosi229 mini set (shared/data/mosi229): loads as a non-standard real MOSI root."""

from __future__ import annotations

import torch

from bench.data import checksums, load_dataset
from bench.data.verify import verify_root
from tests.data.conftest import need_shared

MOSI229_SHA256 = "0249717835f1624f3cc6f5aa2ed011000d2efbc6e31d9cff020dcbc62cac9c1d"


def test_mosi229_loads_as_real_nonstandard_mosi():
    root = need_shared("mosi229")
    need_shared("mosi229", "MOSI", "Processed", "unaligned_50.pkl")
    b = load_dataset("mosi", "unaligned", data_root=root)
    assert (b.source, b.standard, b.task) == ("real", False, "regression")
    assert b.sizes() == {"train": 139, "valid": 47, "test": 43}
    tr = b.train
    assert (
        tr.text.shape == (139, 50, 384)
        and tr.audio.shape == (139, 375, 5)
        and tr.vision.shape == (139, 500, 20)
    )
    assert tr.text_bert.shape == (139, 3, 50) and tr.text_bert.dtype == torch.int64
    assert (tr.text_bert[:, 0, 0] == 101).all()
    assert b.splits["test"].vision.shape == (43, 500, 20)
    for s in b.splits.values():
        assert s.labels.dtype == torch.float32 and s.labels.abs().max().item() <= 3.0
        assert (s.audio_lengths <= 375).all() and (s.vision_lengths <= 500).all()
        assert int(s.audio_lengths.min()) >= 4 and int(s.vision_lengths.max()) <= 187
        assert all("$_$" in i for i in s.ids) and len(s.raw_text) == len(s)
    assert tr.ids[0] == "X3j2zQgwYgE$_$11"
    assert b.info().dims == {"text": 384, "audio": 5, "vision": 20}

    (rec,) = b.files
    assert rec["sha256"] == MOSI229_SHA256 and rec["status"] == "mismatch"
    assert b.fingerprint == checksums.fingerprint_of([MOSI229_SHA256])
    notes = " | ".join(b.notes)
    assert (
        "non-standard split sizes 139/47/43" in notes
        and "not comparable with published MOSI numbers" in notes
    )
    assert "identified as the mosi229 mini set" in notes
    assert "text features are 384-d" in notes
    assert "-inf" not in notes and "beyond" not in notes  # no cleaning needed, post-padding is zero


def test_mosi229_verify_rows():
    root = need_shared("mosi229")
    rows = verify_root(root)
    (row,) = [r for r in rows if r["exists"]]
    assert (row["dataset"], row["setting"], row["sha256"], row["status"]) == (
        "mosi",
        "unaligned",
        MOSI229_SHA256,
        "mismatch",
    )
