"""Loaders refuse data that would train nothing or give NaN metrics: one line naming file, split and key."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from bench.data import load_dataset, mintrec
from tests.data.cli_errors import one_line_error, run_argv
from tests.data.conftest import MINTREC_HEADER, mintrec_rows, mmsa_data, write_mmsa


def _mmsa_error(tmp_path, capsys, data, setting, *extra):
    path = write_mmsa(tmp_path / "root", data, "mosi", setting)
    return path, one_line_error(capsys, run_argv(tmp_path / "root", tmp_path / "out", "mosi", setting, *extra))


def _empty(split: dict) -> dict:
    return {k: v[:0] for k, v in split.items()}


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_mmsa_empty_split(tmp_path, capsys, split):
    data = mmsa_data("unaligned")
    data[split] = _empty(data[split])
    path, msg = _mmsa_error(tmp_path, capsys, data, "unaligned")
    assert msg == (f"error: {path}: split {split!r}, key 'regression_labels': expected at least one sample, "
                   "found 0 (the split is empty)")


@pytest.mark.parametrize(("modality", "which"), [("audio", [0, 3]), ("vision", "all")])
def test_mmsa_zero_length_sequences(tmp_path, capsys, modality, which):
    data = mmsa_data("unaligned")
    lengths = data["valid"][f"{modality}_lengths"]
    idx = np.arange(len(lengths)) if which == "all" else np.array(which)
    lengths[idx] = 0
    data["valid"][modality][idx] = 0
    path, msg = _mmsa_error(tmp_path, capsys, data, "unaligned")
    assert msg == (f"error: {path}: split 'valid', key '{modality}_lengths': expected lengths >= 1 (every sample "
                   f"needs at least one frame), found {len(idx)} samples of length 0 (first: id 'validvid0$_$0')")


@pytest.mark.parametrize(("key", "shape_of"), [("text", lambda a: (a.shape[0], a.shape[1], 0)),
                                               ("audio", lambda a: (a.shape[0], a.shape[1], 0)),
                                               ("vision", lambda a: (a.shape[0], 0, a.shape[2]))])
def test_mmsa_zero_width_or_zero_time_features(tmp_path, capsys, key, shape_of):
    data = mmsa_data("aligned")
    for s in data.values():
        s[key] = np.zeros(shape_of(s[key]), np.float32)
    path, msg = _mmsa_error(tmp_path, capsys, data, "aligned")
    shape = "(" + ", ".join(map(str, shape_of(data["train"][key]))) + ")"
    axis = 2 if shape_of(data["train"][key])[2] == 0 else 1
    what = "features" if axis == 2 else "time steps"
    assert msg == (f"error: {path}: split 'train', key {key!r}: expected at least one entry along axis {axis} "
                   f"({what}), found shape {shape}")


@pytest.mark.parametrize(("key", "value", "counts"), [("vision", np.nan, "NaN 1"), ("text", np.inf, "+inf 1")])
def test_mmsa_nonfinite_features_and_clean_nan(tmp_path, capsys, key, value, counts):
    data = mmsa_data("aligned")
    data["test"][key][2, 1, 0] = value
    path, msg = _mmsa_error(tmp_path, capsys, data, "aligned")
    assert msg == (f"error: {path}: split 'test', key {key!r}: expected finite values, found 1 non-finite "
                   f"({counts}); pass clean_nan=True (--clean-nan) to replace them by 0")
    b = load_dataset("mosi", "aligned", data_root=tmp_path / "root", clean_nan=True)  # --clean-nan still works
    assert float(getattr(b.splits["test"], key)[2, 1, 0]) == 0.0


def test_mmsa_nan_label(tmp_path, capsys):
    data = mmsa_data("aligned")
    data["valid"]["regression_labels"][4] = np.nan
    path, msg = _mmsa_error(tmp_path, capsys, data, "aligned", "--clean-nan")
    assert msg == f"error: {path}: split 'valid', key 'regression_labels': expected finite values, found 1 non-finite"


def test_mmsa_repeated_id_in_a_split(tmp_path, capsys):
    data = mmsa_data("aligned")
    data["train"]["id"][7] = data["train"]["id"][2]
    path, msg = _mmsa_error(tmp_path, capsys, data, "aligned")
    assert msg == (f"error: {path}: split 'train', key 'id': expected unique sample ids, "
                   "found 'trainvid0$_$2' more than once")


def test_mmsa_same_id_in_two_splits(tmp_path, capsys):
    data = mmsa_data("aligned")
    data["test"]["id"][3] = data["train"]["id"][5]
    path, msg = _mmsa_error(tmp_path, capsys, data, "aligned")
    assert msg == (f"error: {path}: split 'test', key 'id': expected ids not already in split 'train', "
                   "found 'trainvid1$_$5' in both")


# ---------------------------------------------------------------------------------------- MIntRec
def _mintrec_error(root, tmp_path, capsys):
    return one_line_error(capsys, run_argv(root, tmp_path / "out", "mintrec", "unaligned"))


@pytest.mark.parametrize(("fname", "split"), [("train.tsv", "train"), ("dev.tsv", "valid"), ("test.tsv", "test")])
def test_mintrec_header_only_tsv(mintrec_root, tmp_path, capsys, fname, split):
    tsv = mintrec_root / "MIntRec" / fname
    tsv.write_text(MINTREC_HEADER, encoding="utf-8")
    msg = _mintrec_error(mintrec_root, tmp_path, capsys)
    assert msg == f"error: {tsv}: split {split!r} has no samples (only a header); expected at least one row"


def test_mintrec_tsv_not_utf8(mintrec_root, tmp_path, capsys):
    tsv = mintrec_root / "MIntRec" / "dev.tsv"
    lines = tsv.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"hello", "h\u00e9llo".encode("latin-1"))  # latin-1: byte 0xe9
    tsv.write_bytes(b"\n".join(lines))
    assert b"\xe9" in tsv.read_bytes()
    msg = _mintrec_error(mintrec_root, tmp_path, capsys)
    assert msg == f"error: {tsv}: line 4: byte 0xe9 is not UTF-8 text; expected a UTF-8 encoded tsv file"


def test_mintrec_repeated_key_in_a_tsv(mintrec_root, tmp_path, capsys):
    tsv = mintrec_root / "MIntRec" / "train.tsv"
    lines = tsv.read_text(encoding="utf-8").splitlines()
    lines[6] = lines[2]
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    key = mintrec_rows(tsv)[1]
    msg = _mintrec_error(mintrec_root, tmp_path, capsys)
    assert msg == (f"error: {tsv}: row at line 7: sample key {key!r} repeats line 3; "
                   "expected each season/episode/clip once")


def test_mintrec_key_in_two_splits(mintrec_root, tmp_path, capsys):
    train = mintrec_root / "MIntRec" / "train.tsv"
    test = mintrec_root / "MIntRec" / "test.tsv"
    lines = test.read_text(encoding="utf-8").splitlines()
    lines[2] = train.read_text(encoding="utf-8").splitlines()[4]
    test.write_text("\n".join(lines) + "\n", encoding="utf-8")
    key = mintrec_rows(train)[3]
    msg = _mintrec_error(mintrec_root, tmp_path, capsys)
    assert msg == (f"error: {test}: split 'test', key {key!r} (line 3) is also in split 'train'; "
                   "expected each sample in one split only")


@pytest.mark.parametrize(("rel", "modality", "shape", "what"), [
    (mintrec.AUDIO_FILE, "audio", (0, 6), "frame"),
    (mintrec.VIDEO_FILE, "video", (0, 1, 5), "frame"),
    (mintrec.AUDIO_FILE, "audio", (7, 0), "feature"),
])
def test_mintrec_empty_feature_sequence(mintrec_root, tmp_path, capsys, rel, modality, shape, what):
    p = mintrec_root / rel
    feats = pickle.loads(p.read_bytes())
    key = mintrec_rows(mintrec_root / "MIntRec" / "dev.tsv")[2]
    feats[key] = np.zeros(shape, np.float32)
    p.write_bytes(pickle.dumps(feats, protocol=4))
    msg = _mintrec_error(mintrec_root, tmp_path, capsys)
    found = tuple(s for i, s in enumerate(shape) if not (modality == "video" and i == 1))
    assert msg == (f"error: {p}: split 'valid', key {key!r} (dev.tsv line 4): expected at least one {modality} "
                   f"{what}, found shape {found}")


def test_mintrec_nan_features_name_the_file(mintrec_root, tmp_path, capsys):
    p = mintrec_root / mintrec.VIDEO_FILE
    feats = pickle.loads(p.read_bytes())
    key = mintrec_rows(mintrec_root / "MIntRec" / "test.tsv")[0]
    feats[key][1, 0, 2] = np.nan
    p.write_bytes(pickle.dumps(feats, protocol=4))
    msg = _mintrec_error(mintrec_root, tmp_path, capsys)
    assert msg == (f"error: {p}: split 'test', key 'vision': expected finite values, found 1 non-finite (NaN 1); "
                   "pass clean_nan=True (--clean-nan) to replace them by 0")


def test_untouched_fixtures_load(mintrec_root, tmp_path):
    """The fixtures above differ from these valid ones only by the fault each test puts in."""
    assert load_dataset("mintrec", "unaligned", data_root=mintrec_root).sizes() == {"train": 20, "valid": 7, "test": 8}
    for setting in ("aligned", "unaligned"):
        write_mmsa(tmp_path / "ok", mmsa_data(setting), "mosi", setting)
        assert load_dataset("mosi", setting, data_root=tmp_path / "ok").sizes() == {"train": 12, "valid": 5, "test": 6}


@pytest.mark.parametrize("dataset", ["mosi", "mintrec"])
def test_data_root_longer_than_the_os_allows(tmp_path, capsys, dataset):
    root = tmp_path / ("x" * 300)  # one path component over NAME_MAX (255 on Linux and macOS)
    setting = "unaligned"
    msg = one_line_error(capsys, run_argv(root, tmp_path / "out", dataset, setting))
    assert msg.startswith(f"error: {root}/") and msg.endswith(
        ": the operating system refuses this path (File name too long); check --data-root (BENCH_DATA_ROOT)")
    msg = one_line_error(capsys, ["data", "verify", "--data-root", str(root)])
    assert msg == (f"error: {root}: the operating system refuses this path (File name too long); "
                   "check --data-root (BENCH_DATA_ROOT)")
