"""Public API: names, settings, data root resolution, registry, verify_root."""

from __future__ import annotations

import hashlib

import pytest

import bench.data as data
from bench.data import DATASET_NAMES, checksums, load_dataset, resolve_data_root, settings_for
from bench.data.verify import verify_root
from bench.errors import UserError
from bench.registry import datasets, get_dataset_loader
from tests.data.conftest import mmsa_data, write_mmsa


def test_every_name_is_registered():
    assert set(DATASET_NAMES) <= set(datasets())
    for name in DATASET_NAMES:
        assert callable(get_dataset_loader(name))


def test_settings_for():
    assert settings_for("mosi") == ("aligned", "unaligned") == settings_for("synthetic-mosei")
    assert settings_for("mintrec") == ("unaligned",) == settings_for("synthetic-mintrec")
    with pytest.raises(UserError, match=r"unknown dataset 'mosie'. Did you mean .*'mosei'"):
        settings_for("mosie")


def test_unknown_name_and_setting():
    with pytest.raises(UserError) as e:
        load_dataset("mosii", "aligned")
    assert "unknown dataset 'mosii'. Did you mean 'mosi'" in str(e.value) and "synthetic-mintrec" in str(
        e.value
    )
    with pytest.raises(UserError, match="dataset 'mosi' has no setting 'alligned'. Did you mean 'aligned'"):
        load_dataset("mosi", "alligned")
    with pytest.raises(UserError, match="dataset 'mintrec' has no setting 'aligned'"):
        load_dataset("mintrec", "aligned", data_root="/nonexistent")


def test_name_is_case_insensitive(tmp_path):
    b = load_dataset("Synthetic-MOSI", "aligned", cache_dir=tmp_path)
    assert b.name == "synthetic-mosi"


@pytest.mark.parametrize(
    "name,needle",
    [
        ("mosi", "MOSI/Processed/{aligned_50,unaligned_50}.pkl"),
        ("mosei", "thuiar/MMSA"),
        ("mintrec", "thuiar/MIntRec"),
    ],
)
def test_real_data_needs_a_root(name, needle):
    with pytest.raises(UserError) as e:
        load_dataset(name, "unaligned")
    msg = str(e.value)
    assert needle in msg and "BENCH_DATA_ROOT" in msg and f"synthetic-{name}" in msg


def test_resolve_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    assert resolve_data_root(None) is None and resolve_data_root("") is None
    assert resolve_data_root(tmp_path) == tmp_path
    monkeypatch.setenv("BENCH_DATA_ROOT", str(tmp_path / "env"))
    assert resolve_data_root(None) == tmp_path / "env"
    assert resolve_data_root(tmp_path / "arg") == tmp_path / "arg"


def test_env_data_root_is_used(tmp_path, monkeypatch):
    write_mmsa(tmp_path, mmsa_data("aligned"))
    monkeypatch.setenv("BENCH_DATA_ROOT", str(tmp_path))
    b = load_dataset("mosi", "aligned")
    assert b.source == "real" and b.files[0]["path"] == str(tmp_path / "MOSI/Processed/aligned_50.pkl")


def test_verify_root(tmp_path, monkeypatch):
    path = write_mmsa(tmp_path, mmsa_data("unaligned"), "mosei", "unaligned")
    (tmp_path / "MIntRec").mkdir()
    (tmp_path / "MIntRec" / "dev.tsv").write_text("season\tepisode\tclip\ttext\tlabel\n")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    rows = verify_root(tmp_path)
    assert len(rows) == 9
    assert all(
        set(r) == {"dataset", "setting", "path", "exists", "sha256", "expected_sha256", "status"}
        for r in rows
    )
    by_path = {r["path"]: r for r in rows}
    r = by_path[str(path)]
    assert (r["dataset"], r["setting"], r["exists"], r["sha256"], r["status"]) == (
        "mosei",
        "unaligned",
        True,
        digest,
        "mismatch",
    )
    assert r["expected_sha256"] == checksums.MMSA_SHA256["MOSEI/Processed/unaligned_50.pkl"]
    missing = by_path[str(tmp_path / "MOSI/Processed/aligned_50.pkl")]
    assert missing["status"] == "missing" and missing["exists"] is False and missing["sha256"] is None
    dev = by_path[str(tmp_path / "MIntRec/dev.tsv")]
    assert dev["status"] == "mismatch" and dev["dataset"] == "mintrec"
    assert [r["status"] for r in rows].count("missing") == 7

    monkeypatch.setitem(checksums.MMSA_SHA256, "MOSEI/Processed/unaligned_50.pkl", digest)
    monkeypatch.delitem(checksums.MINTREC_SHA256, "MIntRec/dev.tsv")
    rows = {r["path"]: r for r in verify_root(tmp_path)}
    assert (
        rows[str(path)]["status"] == "ok" and rows[str(tmp_path / "MIntRec/dev.tsv")]["status"] == "unknown"
    )

    with pytest.raises(UserError, match="not a directory"):
        verify_root(tmp_path / "nope")


def test_public_names():
    assert data.__all__ == ["DATASET_NAMES", "load_dataset", "resolve_data_root", "settings_for"]
