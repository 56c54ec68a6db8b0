"""Data pickles are hashed first and unpickled admitting only numpy and builtin types: payloads never run."""

from __future__ import annotations

import builtins
import collections
import hashlib
import os
import pickle

import numpy as np
import pytest

from bench.data import checksums, load_dataset, mintrec, safe_pickle
from bench.data.safe_pickle import DataUnpickler, load_data_pickle
from bench.errors import DataError
from tests.conftest import shared_data
from tests.data.cli_errors import one_line_error, run_argv
from tests.data.conftest import mmsa_data, write_mmsa


class SystemPayload:
    """Unpickling this calls os.system (what an attacker would put into a downloaded 'feature file')."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class EvalPayload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.eval, (f"open({self.marker!r}, 'w').close()",))


class ExecPayload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.exec, (f"open({self.marker!r}, 'w').close()",))


def _payload_mmsa(tmp_path, payload):
    data = mmsa_data("aligned")
    data["train"]["raw_text"] = payload  # hidden deep inside an otherwise valid file
    return write_mmsa(tmp_path / "root", data)


@pytest.mark.parametrize(("payload_cls", "refused"), [(SystemPayload, os.system.__module__ + ".system"),
                                                      (EvalPayload, "builtins.eval"),
                                                      (ExecPayload, "builtins.exec")])
def test_payload_in_mmsa_pickle_is_refused_and_never_run(tmp_path, capsys, payload_cls, refused):
    marker = tmp_path / "MARKER"
    path = _payload_mmsa(tmp_path, payload_cls(marker))
    # the same file *does* run its payload under plain pickle.load (so the test can fail)
    pickle.loads(path.read_bytes())
    assert marker.exists()
    marker.unlink()

    with pytest.raises(DataError) as e:
        load_dataset("mosi", "aligned", data_root=tmp_path / "root")
    assert not marker.exists()
    assert f"{path}: refused to load: the pickle calls {refused}," in str(e.value)

    msg = one_line_error(capsys, run_argv(tmp_path / "root", tmp_path / "out"))
    assert f"refused to load: the pickle calls {refused}" in msg and str(path) in msg
    assert not marker.exists()


def test_payload_in_mintrec_feature_pickle_is_refused(mintrec_root, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    p = mintrec_root / mintrec.VIDEO_FILE
    feats = pickle.loads(p.read_bytes())
    feats[next(iter(feats))] = SystemPayload(marker)
    p.write_bytes(pickle.dumps(feats, protocol=4))
    msg = one_line_error(capsys, run_argv(mintrec_root, tmp_path / "out", "mintrec", "unaligned"))
    assert f"{p}: refused to load: the pickle calls {os.system.__module__}.system" in msg
    assert not marker.exists()


@pytest.mark.parametrize("glob", [b"builtins\ngetattr", b"subprocess\nPopen", b"torch._utils\n_rebuild_tensor_v2",
                                  b"numpy\nload", b"collections\nnamedtuple"])
def test_any_other_global_is_refused_before_it_is_resolved(tmp_path, glob):
    path = tmp_path / "x.pkl"
    path.write_bytes(b"c" + glob + b"\n.")  # protocol-0 GLOBAL opcode, then STOP
    module, name = glob.decode().split("\n")
    with pytest.raises(DataError, match=f"the pickle calls {module}.{name}, but data pickles"):
        load_data_pickle(path)


def _numpy_objects():
    return {
        "f32": np.arange(12, dtype=np.float32).reshape(3, 4),
        "f64_strided": np.arange(16.0).reshape(4, 4)[:, ::2],
        "i64": np.array([[1, -2], [3, 4]], dtype=np.int64),
        "ids": np.array(["a$_$1", "b$_$2"], dtype=object),
        "unicode": np.array(["xy", "z"]),
        "record": np.zeros(2, dtype=[("a", "<f4"), ("b", "<i8")]),
        "scalars": [np.float32(1.5), np.int64(-3), np.bool_(True), np.dtype("<f4")],
        "builtins": (1, 2.5, 1 + 2j, "s", b"b", bytearray(b"ba"), {1, 2}, frozenset({3}), True, None),
        "ordered": collections.OrderedDict(a=1),
    }


def _assert_same(a, b):
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_and_builtin_objects_load_at_every_protocol(tmp_path, protocol):
    obj = _numpy_objects()
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    out, sha = load_data_pickle(path)
    _assert_same(out, obj)
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_numpy_1x_module_paths_load(tmp_path, protocol):
    """numpy 1.x writes numpy.core.multiarray._reconstruct/scalar (numpy 2.x: numpy._core...)."""
    obj = _numpy_objects()
    data = pickle.dumps(obj, protocol=protocol)
    assert b"numpy._core.multiarray" in data
    path = tmp_path / "x.pkl"
    path.write_bytes(data.replace(b"numpy._core.", b"numpy.core."))  # text GLOBAL opcodes: no lengths
    assert b"numpy._core" not in path.read_bytes()
    out, _ = load_data_pickle(path)
    _assert_same(out, obj)


def test_real_pickle_written_by_numpy_1x_loads():
    """A MOSI file written by numpy 1.x (numpy.core.multiarray._reconstruct and .scalar)."""
    path = shared_data("cmu_mosi", "valid_mmim_unaligned.pkl")
    assert b"numpy.core.multiarray" in path.read_bytes()[:4096] or b"numpy.core" in path.read_bytes()
    obj, sha = load_data_pickle(path)
    assert sha == checksums.sha256_file(path)
    assert len(obj) == 229
    (words, vis, aud, *_), label, seg = obj[0]
    assert vis.shape[1] == 20 and aud.shape[1] == 5 and label.shape == (1, 1)


def test_real_mosi229_loads_through_the_safe_loader():
    root = shared_data("mosi229")
    b = load_dataset("mosi", "unaligned", data_root=root)
    assert b.sizes() == {"train": 139, "valid": 47, "test": 43}
    assert b.files[0]["sha256"] == "0249717835f1624f3cc6f5aa2ed011000d2efbc6e31d9cff020dcbc62cac9c1d"


def test_file_is_hashed_before_it_is_unpickled(tmp_path, monkeypatch):
    path = write_mmsa(tmp_path, mmsa_data("aligned"))
    events = []
    real_hash, real_load = checksums.sha256_of_stream, DataUnpickler.load

    def spy_hash(f):
        events.append("hash")
        return real_hash(f)

    def spy_load(self):
        events.append("unpickle")
        return real_load(self)

    monkeypatch.setattr(checksums, "sha256_of_stream", spy_hash)
    monkeypatch.setattr(DataUnpickler, "load", spy_load)
    _, sha = load_data_pickle(path)
    assert events == ["hash", "unpickle"]
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()


def test_file_changed_between_hash_and_load_is_an_error(tmp_path, monkeypatch):
    path = write_mmsa(tmp_path, mmsa_data("aligned"))
    monkeypatch.setattr(checksums, "sha256_of_stream", lambda f: "0" * 64)
    with pytest.raises(DataError, match="changed while it was being loaded"):
        load_data_pickle(path)


def _unreadable(monkeypatch, module, path):
    real_open = builtins.open

    def deny(p, *a, **kw):
        if str(p) == str(path):
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(p, *a, **kw)

    monkeypatch.setattr(module, "open", deny, raising=False)  # module-level name shadows the builtin


def test_unreadable_pickle_is_one_line_for_run_and_verify(tmp_path, capsys, monkeypatch):
    root = tmp_path / "root"
    path = write_mmsa(root, mmsa_data("aligned"))
    _unreadable(monkeypatch, safe_pickle, path)
    msg = one_line_error(capsys, run_argv(root, tmp_path / "out"))
    assert msg == f"error: {path}: cannot read the file (Permission denied); expected a readable data file"
    _unreadable(monkeypatch, checksums, path)
    msg = one_line_error(capsys, ["data", "verify", "--data-root", str(root)])
    assert msg == f"error: {path}: cannot read the file (Permission denied); expected a readable data file"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files without permission")
def test_chmod_000_pickle_is_one_line(tmp_path, capsys):
    root = tmp_path / "root"
    path = write_mmsa(root, mmsa_data("aligned"))
    path.chmod(0)
    try:
        msg = one_line_error(capsys, run_argv(root, tmp_path / "out"))
        assert f"{path}: cannot read the file (Permission denied)" in msg
    finally:
        path.chmod(0o644)


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty"])
def test_corrupt_pickle_is_one_line_for_run(tmp_path, capsys, kind):
    root = tmp_path / "root"
    path = write_mmsa(root, mmsa_data("aligned"))
    good = path.read_bytes()
    path.write_bytes({"garbage": b"\x00\xffnot a pickle" * 10, "truncated": good[: len(good) // 2],
                      "empty": b""}[kind])
    msg = one_line_error(capsys, run_argv(root, tmp_path / "out"))
    assert msg.startswith(f"error: {path}: not a readable pickle file (")
