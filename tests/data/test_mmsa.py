"""MMSA pickle loader: shapes, dtypes, cleaning, validation errors, checksums."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import torch

from bench.data import checksums, load_dataset
from bench.errors import DataError, UserError
from tests.data.conftest import DIMS, SIZES, UNALIGNED_T, mmsa_data, write_mmsa


def _load(root, setting="aligned", **kw):
    return load_dataset("mosi", setting, data_root=root, **kw)


def _one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_aligned_shapes_dtypes_and_values(mmsa_root):
    b = _load(mmsa_root, "aligned")
    raw = pickle.load(open(mmsa_root / "MOSI/Processed/aligned_50.pkl", "rb"))
    assert (b.name, b.family, b.setting, b.task, b.source) == (
        "mosi",
        "mosi",
        "aligned",
        "regression",
        "real",
    )
    assert b.sizes() == SIZES
    for split, n in SIZES.items():
        s = b.splits[split]
        assert s.text.shape == (n, 6, DIMS["text"]) and s.text.dtype == torch.float32
        assert s.audio.shape == (n, 6, DIMS["audio"]) and s.audio.dtype == torch.float32
        assert s.vision.shape == (n, 6, DIMS["vision"]) and s.vision.dtype == torch.float32
        assert s.text_bert.shape == (n, 3, 6) and s.text_bert.dtype == torch.int64
        assert s.labels.dtype == torch.float32
        assert s.audio_lengths is None and s.vision_lengths is None
        np.testing.assert_array_equal(s.labels.numpy(), raw[split]["regression_labels"])
        np.testing.assert_array_equal(s.vision.numpy(), raw[split]["vision"])
        np.testing.assert_array_equal(s.text_bert.numpy(), raw[split]["text_bert"].astype(np.int64))
        assert s.ids == [str(x) for x in raw[split]["id"]]
        assert s.raw_text[0] == f"utterance {split} 0"
        assert s.index.tolist() == list(range(n))
    info = b.info()
    assert info.dims == {"text": 8, "audio": 4, "vision": 3}
    assert info.seq_lens == {"text": 6, "audio": 6, "vision": 6}


def test_unaligned_lengths_read_from_file(mmsa_root):
    b = _load(mmsa_root, "unaligned")
    raw = pickle.load(open(mmsa_root / "MOSI/Processed/unaligned_50.pkl", "rb"))
    tr = b.train
    assert tr.audio.shape == (12, UNALIGNED_T["audio"], 4) and tr.vision.shape == (
        12,
        UNALIGNED_T["vision"],
        3,
    )
    assert tr.audio_lengths.dtype == torch.int64 and tr.vision_lengths.dtype == torch.int64
    np.testing.assert_array_equal(tr.audio_lengths.numpy(), raw["train"]["audio_lengths"])
    np.testing.assert_array_equal(tr.vision_lengths.numpy(), raw["train"]["vision_lengths"])
    assert not any("beyond" in n for n in b.notes)


def test_audio_neginf_replaced_and_counted(mmsa_root):
    b = _load(mmsa_root, "aligned")
    assert "audio: 5 -inf values replaced by 0 (train 3, valid 2)" in b.notes
    assert b.train.audio[0, 0, :3].tolist() == [0.0, 0.0, 0.0]
    assert b.splits["valid"].audio[1, 0, 0].item() == 0.0
    for s in b.splits.values():
        assert torch.isfinite(s.audio).all()


@pytest.mark.parametrize(
    "key,bad",
    [("vision", np.nan), ("text", np.nan), ("audio", np.nan), ("audio", np.inf), ("vision", -np.inf)],
)
def test_other_nonfinite_is_an_error_unless_clean_nan(tmp_path, key, bad):
    data = mmsa_data("aligned")
    data["valid"][key][0, 1, 0] = bad
    data["valid"][key][2, 0, 1] = bad
    write_mmsa(tmp_path, data)
    with pytest.raises(DataError) as e:
        _load(tmp_path)
    msg = _one_line(e)
    kind = {"nan": "NaN 2", "inf": "+inf 2", "-inf": "-inf 2"}[repr(float(bad))]
    assert f"split 'valid', key '{key}'" in msg and "expected finite values" in msg and kind in msg
    assert "clean_nan" in msg

    b = _load(tmp_path, clean_nan=True)
    v = getattr(b.splits["valid"], key)
    assert torch.isfinite(v).all() and v[0, 1, 0].item() == 0.0 and v[2, 0, 1].item() == 0.0
    note = [n for n in b.notes if n.startswith(f"{key}: 2 non-finite")]
    assert note and "(valid 2)" in note[0] and "clean_nan" in note[0]


def test_nonfinite_labels_always_rejected(tmp_path):
    data = mmsa_data("aligned")
    data["test"]["regression_labels"][3] = np.nan
    write_mmsa(tmp_path, data)
    with pytest.raises(DataError, match=r"split 'test', key 'regression_labels': expected finite values"):
        _load(tmp_path, clean_nan=True)


def test_labels_out_of_range(tmp_path):
    data = mmsa_data("aligned")
    data["train"]["regression_labels"][[1, 4]] = [3.5, -4.0]
    write_mmsa(tmp_path, data)
    with pytest.raises(DataError) as e:
        _load(tmp_path)
    msg = _one_line(e)
    assert "split 'train', key 'regression_labels'" in msg
    assert "expected values in [-3, 3]" in msg and "found 2 outside (min -4, max 3.5)" in msg


def test_wrong_top_level_keys(tmp_path):
    data = mmsa_data("aligned")
    data["dev"] = data.pop("valid")
    write_mmsa(tmp_path, data)
    with pytest.raises(DataError) as e:
        _load(tmp_path)
    msg = _one_line(e)
    assert (
        "expected top-level keys 'train', 'valid', 'test'" in msg
        and "'dev'" in msg
        and "missing valid" in msg
    )


def test_top_level_not_a_dict(tmp_path):
    write_mmsa(tmp_path, [1, 2, 3])
    with pytest.raises(
        DataError, match="expected a dict with keys 'train', 'valid', 'test' at top level, found list"
    ):
        _load(tmp_path)


def test_missing_required_key(tmp_path):
    data = mmsa_data("aligned")
    del data["test"]["vision"]
    write_mmsa(tmp_path, data)
    with pytest.raises(DataError) as e:
        _load(tmp_path)
    msg = _one_line(e)
    assert "split 'test', key 'vision'" in msg and "found only keys" in msg and "audio" in msg


def test_unaligned_needs_lengths(tmp_path):
    data = mmsa_data("unaligned")
    del data["train"]["vision_lengths"]
    write_mmsa(tmp_path, data, setting="unaligned")
    with pytest.raises(
        DataError, match=r"split 'train', key 'vision_lengths': expected this key \(unaligned"
    ):
        load_dataset("mosi", "unaligned", data_root=tmp_path)


def test_needs_some_text(tmp_path):
    data = mmsa_data("aligned")
    for s in data.values():
        del s["text"], s["text_bert"]
    write_mmsa(tmp_path, data)
    with pytest.raises(
        DataError, match=r"key 'text': expected at least one of 'text' \(features\) or 'text_bert'"
    ):
        _load(tmp_path)


def test_text_bert_only_is_fine(tmp_path):
    data = mmsa_data("aligned")
    for s in data.values():
        del s["text"]
    write_mmsa(tmp_path, data)
    b = _load(tmp_path)
    assert b.train.text is None and b.train.text_bert.shape == (12, 3, 6)
    assert b.info().dims["text"] is None and b.info().seq_lens["text"] == 6


def test_wrong_ndim(tmp_path):
    data = mmsa_data("aligned")
    data["valid"]["audio"] = data["valid"]["audio"].reshape(5, -1)
    write_mmsa(tmp_path, data)
    with pytest.raises(DataError) as e:
        _load(tmp_path)
    assert _one_line(e).endswith(
        "split 'valid', key 'audio': expected 3-d array (N, T, D), found shape (5, 24)"
    )


def test_text_bert_needs_three_rows(tmp_path):
    data = mmsa_data("aligned")
    data["train"]["text_bert"] = data["train"]["text_bert"][:, :2]
    write_mmsa(tmp_path, data)
    with pytest.raises(
        DataError, match=r"key 'text_bert': expected shape \(N, 3, T\).*found shape \(12, 2, 6\)"
    ):
        _load(tmp_path)


def test_mismatched_n(tmp_path):
    data = mmsa_data("aligned")
    data["train"]["vision"] = data["train"]["vision"][:11]
    write_mmsa(tmp_path, data)
    with pytest.raises(DataError) as e:
        _load(tmp_path)
    assert (
        "split 'train', key 'vision': expected 12 rows (as regression_labels), found shape (11, 6, 3)"
        in _one_line(e)
    )


def test_mismatched_ids(tmp_path):
    data = mmsa_data("aligned")
    data["test"]["id"] = data["test"]["id"][:4]
    write_mmsa(tmp_path, data)
    with pytest.raises(
        DataError, match=r"split 'test', key 'id': expected 6 entries \(as regression_labels\), found 4"
    ):
        _load(tmp_path)


def test_non_numeric_dtype(tmp_path):
    data = mmsa_data("aligned")
    data["train"]["audio"] = np.array([["a"] * 3] * 12, dtype=object)
    write_mmsa(tmp_path, data)
    with pytest.raises(
        DataError, match=r"split 'train', key 'audio': expected a numeric array, found dtype object"
    ):
        _load(tmp_path)


def test_inconsistent_dims_across_splits(tmp_path):
    data = mmsa_data("aligned")
    data["test"]["vision"] = np.zeros((6, 6, 7), np.float32)
    write_mmsa(tmp_path, data)
    with pytest.raises(
        DataError,
        match=r"split 'test', key 'vision': expected per-sample shape \(6, 3\) as in 'train', found \(6, 7\)",
    ):
        _load(tmp_path)


def test_float64_and_dims_read_from_file(tmp_path):
    data = mmsa_data("aligned")
    for s in data.values():
        n = len(s["regression_labels"])
        s["text"] = np.ones((n, 6, 13), np.float64)
        s["audio"] = s["audio"].astype(np.float64)
    write_mmsa(tmp_path, data)
    b = _load(tmp_path)
    assert b.train.text.dtype == torch.float32 and b.train.audio.dtype == torch.float32
    assert b.info().dims["text"] == 13


def test_nonzero_padding_is_a_note(tmp_path):
    data = mmsa_data("unaligned")
    tr = data["train"]
    tr["audio_lengths"][:2] = 4
    tr["audio"][:2, 5:] = 1.0  # frames beyond the length
    write_mmsa(tmp_path, data, setting="unaligned")
    b = load_dataset("mosi", "unaligned", data_root=tmp_path)
    assert any(
        n.startswith("train audio: 2 of 12 samples have non-zero frames beyond audio_lengths")
        for n in b.notes
    )


def test_lengths_beyond_sequence_is_an_error(tmp_path):
    data = mmsa_data("unaligned")
    data["valid"]["vision_lengths"][0] = 99
    write_mmsa(tmp_path, data, setting="unaligned")
    with pytest.raises(
        DataError, match=r"split 'valid', key 'vision_lengths': expected values <= 12, found maximum 99"
    ):
        load_dataset("mosi", "unaligned", data_root=tmp_path)


def test_missing_file_names_expected_path(tmp_path):
    with pytest.raises(UserError) as e:
        load_dataset("mosei", "unaligned", data_root=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "MOSEI" / "Processed" / "unaligned_50.pkl") in msg
    assert "MOSEI/Processed/{aligned_50,unaligned_50}.pkl" in msg and "thuiar/MMSA" in msg
    assert not isinstance(e.value, DataError)


def test_root_pointing_at_the_dataset_folder_gets_a_hint(mmsa_root):
    with pytest.raises(UserError, match="looks like the MOSI folder itself: pass its parent"):
        _load(mmsa_root / "MOSI")


@pytest.mark.parametrize("content", [b"this is not a pickle at all", b"\x80\x04\x95"])
def test_corrupt_file_is_a_one_line_data_error(tmp_path, content):
    path = tmp_path / "MOSI" / "Processed" / "aligned_50.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(DataError) as e:
        _load(tmp_path)
    msg = _one_line(e)
    assert str(path) in msg and "not a readable pickle file" in msg


def test_truncated_real_pickle(mmsa_root, tmp_path):
    src = (mmsa_root / "MOSI/Processed/aligned_50.pkl").read_bytes()
    dst = tmp_path / "t" / "MOSI" / "Processed" / "aligned_50.pkl"
    dst.parent.mkdir(parents=True)
    dst.write_bytes(src[: len(src) // 2])
    with pytest.raises(DataError, match="not a readable pickle file"):
        _load(tmp_path / "t")


def test_sha256_and_checksum_status(mmsa_root, monkeypatch):
    path = mmsa_root / "MOSI/Processed/aligned_50.pkl"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert checksums.sha256_file(path) == digest

    b = _load(mmsa_root)
    (rec,) = b.files
    assert rec == {
        "path": str(path),
        "sha256": digest,
        "expected_sha256": checksums.MMSA_SHA256["MOSI/Processed/aligned_50.pkl"],
        "status": "mismatch",
    }
    assert b.standard is False
    assert any(n.startswith("WARNING checksum mismatch for MOSI/Processed/aligned_50.pkl") for n in b.notes)
    assert b.fingerprint == checksums.fingerprint_of([digest])
    assert any(n.startswith("non-standard split sizes 12/5/6 (MMSA MOSI: 1284/229/686)") for n in b.notes)

    monkeypatch.setitem(checksums.MMSA_SHA256, "MOSI/Processed/aligned_50.pkl", digest)
    b = _load(mmsa_root)
    assert b.files[0]["status"] == "ok" and b.standard is True
    assert not any("checksum" in n for n in b.notes)


def test_hashing_reader_matches_hashlib(tmp_path):
    blob = {"x": np.arange(200_000, dtype=np.float32), "s": np.array(["a", "bb"], dtype=object)}
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps(blob, protocol=5) + b"trailing bytes")
    with open(p, "rb") as f:
        r = checksums.HashingReader(f)
        out = pickle.load(r)
        assert r.hexdigest() == hashlib.sha256(p.read_bytes()).hexdigest()
    np.testing.assert_array_equal(out["x"], blob["x"])
