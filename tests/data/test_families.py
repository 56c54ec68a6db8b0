"""The dataset-family registry (bench/data/families.py): one declaration per family that every reader agrees with."""

import ast
import dataclasses
from pathlib import Path

import pytest

from bench.data import families, settings_for, synthetic
from bench.data.families import FAMILIES, Family, get_family, missing_data_files, register_family
from bench.describe import canonical_info
from bench.errors import UserError

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_three_families_and_their_facts():
    assert list(FAMILIES) == ["mosi", "mosei", "mintrec"]
    assert [f.task for f in FAMILIES.values()] == ["regression", "regression", "classification"]
    assert FAMILIES["mintrec"].num_classes == len(FAMILIES["mintrec"].label_names) == 20
    assert FAMILIES["mosi"].split_sizes == (1284, 229, 686) and FAMILIES["mintrec"].split_sizes == (1334, 445, 445)
    assert settings_for("synthetic-mosei") == FAMILIES["mosei"].settings == ("aligned", "unaligned")


def test_expected_files_follow_the_families_in_reading_order():
    assert families.expected_files() == [
        ("mosi", "aligned", "MOSI/Processed/aligned_50.pkl"), ("mosi", "unaligned", "MOSI/Processed/unaligned_50.pkl"),
        ("mosei", "aligned", "MOSEI/Processed/aligned_50.pkl"),
        ("mosei", "unaligned", "MOSEI/Processed/unaligned_50.pkl"),
        ("mintrec", "unaligned", "MIntRec/train.tsv"), ("mintrec", "unaligned", "MIntRec/dev.tsv"),
        ("mintrec", "unaligned", "MIntRec/test.tsv"), ("mintrec", "unaligned", "MIntRec/audio_data/audio_feats.pkl"),
        ("mintrec", "unaligned", "MIntRec/video_data/video_feats.pkl"),
    ]


def test_missing_data_files_lists_only_the_absent_ones(tmp_path):
    (tmp_path / "MIntRec").mkdir()
    (tmp_path / "MIntRec" / "dev.tsv").write_text("x")
    assert missing_data_files("mintrec", "unaligned", tmp_path) == [
        "MIntRec/train.tsv", "MIntRec/test.tsv", "MIntRec/audio_data/audio_feats.pkl",
        "MIntRec/video_data/video_feats.pkl"]


@pytest.mark.parametrize("name, setting", [(n, s) for n, f in FAMILIES.items() for s in f.settings])
def test_the_full_synthetic_profile_and_describe_use_the_release_shapes(name, setting):
    f = FAMILIES[name]
    p = synthetic.make_params(f.synthetic_name, setting, "full")
    shapes = f.shapes[setting]
    assert p.sizes == f.split_sizes and (p.task, p.num_classes) == (f.task, f.num_classes)
    assert p.dims == tuple(shapes[m][1] for m in ("text", "audio", "vision"))
    assert p.seq_lens == tuple(shapes[m][0] for m in ("text", "audio", "vision"))
    info = canonical_info(name, setting)
    assert info.seq_lens == {m: t for m, (t, _) in shapes.items()} and info.has_text_features == f.has_text_features


def test_a_synthetic_name_maps_to_its_family_and_an_unknown_name_is_one_line():
    assert get_family("synthetic-mintrec") is FAMILIES["mintrec"] and families.family_of("mosi") == "mosi"
    assert families.family_of("iemocap") is None
    with pytest.raises(UserError, match=r"^unknown dataset family 'mosii'\. Did you mean 'mosi'") as e:
        get_family("mosii")
    assert len(str(e.value).splitlines()) == 1


def test_a_family_must_declare_files_and_shapes_for_each_setting():
    bad = dataclasses.replace(FAMILIES["mosi"], name="mosi-x", files={"aligned": {"features": "a.pkl"}})
    with pytest.raises(ValueError, match="files and shapes must cover exactly its settings"):
        register_family(bad)
    assert "mosi-x" not in FAMILIES and isinstance(FAMILIES["mosi"], Family)


def _imported_modules(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.update([node.module, *(f"{node.module}.{a.name}" for a in node.names)])
    return out


def test_bench_data_never_imports_the_method_registry():
    """The dependency goes one way: bench.registry re-exports the loader registry of bench.data."""
    offenders = [p.name for p in (BENCH / "data").glob("*.py") if "bench.registry" in _imported_modules(p)]
    assert offenders == []
    assert "bench.data.loaders" in _imported_modules(BENCH / "registry.py")
