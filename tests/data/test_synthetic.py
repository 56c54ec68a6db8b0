"""Synthetic datasets: layout, determinism, cache, label distribution, planted importance, signal."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from bench.data import cache, load_dataset, synthetic
from bench.data.tensors import IMPORTANCE_ORDER
from bench.errors import UserError
from tests.data.conftest import need_shared

COMBOS = [
    ("synthetic-mosi", "aligned"),
    ("synthetic-mosi", "unaligned"),
    ("synthetic-mosei", "aligned"),
    ("synthetic-mosei", "unaligned"),
    ("synthetic-mintrec", "unaligned"),
]


def _tensors_equal(a, b) -> bool:
    return all(
        torch.equal(getattr(a.splits[s], k), getattr(b.splits[s], k))
        for s in a.splits
        for k in a.splits[s].tensors()
    )


@pytest.mark.parametrize("name,setting", COMBOS)
def test_compact_layout(name, setting, tmp_path):
    b = load_dataset(name, setting, cache_dir=tmp_path)
    planned = synthetic.planned_shapes(name, setting, "compact")
    family = name.removeprefix("synthetic-")
    assert (b.name, b.family, b.setting, b.source, b.standard, b.files) == (
        name,
        family,
        setting,
        "synthetic",
        False,
        [],
    )
    for split, s in b.splits.items():
        got = {k: tuple(v.shape) for k, v in s.tensors().items() if k != "index"}
        assert got == planned[split]
        assert s.audio.dtype == s.vision.dtype == s.text.dtype == s.importance.dtype == torch.float32
        assert s.text_bert.dtype == torch.int64
        assert len(s.ids) == len(s.raw_text) == len(s)
        # text_bert: [CLS] ... [SEP], mask, segments 0, ids in the bert-base-uncased range
        ids, mask, seg = s.text_bert[:, 0], s.text_bert[:, 1], s.text_bert[:, 2]
        length = mask.sum(1)
        assert (ids[:, 0] == 101).all() and (ids[torch.arange(len(s)), length - 1] == 102).all()
        assert ((ids != 0) == (mask == 1)).all() and (seg == 0).all() and int(ids.max()) < 30522
        assert torch.equal(mask, (torch.arange(ids.shape[1])[None] < length[:, None]).long())
        # zero post-padding beyond the true lengths
        pad_len = {"text": length}
        if setting == "unaligned":
            pad_len |= {"audio": s.audio_lengths, "vision": s.vision_lengths}
            assert (s.audio_lengths >= 1).all() and (s.audio_lengths <= s.audio.shape[1]).all()
        else:
            pad_len |= {"audio": length, "vision": length}
        for m, ln in pad_len.items():
            x = getattr(s, m)
            beyond = torch.arange(x.shape[1])[None] >= ln[:, None]
            assert x[beyond].abs().sum().item() == 0
            assert x[~beyond].abs().mean().item() > 0.1
        imp = s.importance
        assert torch.allclose(imp.sum(1), torch.ones(len(s)), atol=1e-5) and (imp >= 0).all()
    if family == "mintrec":
        assert b.task == "classification" and b.num_classes == 20 and len(b.label_names) == 20
        assert b.train.labels.dtype == torch.int64 and int(b.train.labels.max()) < 20
    else:
        assert b.task == "regression" and b.train.labels.dtype == torch.float32
        assert b.train.labels.abs().max().item() <= 3.0


def test_compact_sizes_documented():
    sizes = {(n, s): synthetic.planned_shapes(n, s)["train"]["audio"] for n, s in COMBOS}
    assert sizes[("synthetic-mosi", "aligned")] == (400, 16, 5)
    assert sizes[("synthetic-mosi", "unaligned")] == (400, 24, 5)
    assert sizes[("synthetic-mosei", "unaligned")] == (600, 24, 74)
    assert sizes[("synthetic-mintrec", "unaligned")] == (600, 24, 32)
    p = synthetic.planned_shapes("synthetic-mintrec", "unaligned")
    assert p["test"]["text_bert"] == (200, 3, 12) and p["valid"]["vision"] == (200, 16, 32)


def test_full_profile_planned_shapes_without_generating():
    mosei = synthetic.planned_shapes("synthetic-mosei", "unaligned", "full")
    assert mosei["train"]["audio"] == (16326, 500, 74) and mosei["train"]["vision"] == (16326, 500, 35)
    assert mosei["valid"]["text"] == (1871, 50, 768) and mosei["test"]["text_bert"] == (4659, 3, 50)
    mosei_al = synthetic.planned_shapes("synthetic-mosei", "aligned", "full")
    assert mosei_al["train"]["audio"] == (16326, 50, 74) and "audio_lengths" not in mosei_al["train"]
    mintrec = synthetic.planned_shapes("synthetic-mintrec", "unaligned", "full")
    assert mintrec["train"]["audio"] == (1334, 480, 768) and mintrec["test"]["vision"] == (445, 230, 256)
    assert mintrec["valid"]["text_bert"] == (445, 3, 30) and mintrec["train"]["text"] == (1334, 30, 768)


def test_full_profile_mosi_generated(tmp_path):
    b = load_dataset("synthetic-mosi", "unaligned", profile="full", cache_dir=tmp_path)
    assert b.sizes() == {"train": 1284, "valid": 229, "test": 686}
    tr = b.train
    assert tr.text.shape == (1284, 50, 768) and tr.text_bert.shape == (1284, 3, 50)
    assert tr.audio.shape == (1284, 375, 5) and tr.vision.shape == (1284, 500, 20)
    assert b.splits["test"].vision.shape == (686, 500, 20)
    assert int(tr.audio_lengths.max()) <= 375 and int(tr.vision_lengths.min()) >= 2
    assert b.info().seq_lens == {"text": 50, "audio": 375, "vision": 500}


def test_deterministic_in_the_data_seed(tmp_path):
    a = load_dataset("synthetic-mosi", "unaligned", seed=3, cache_dir=tmp_path / "a")
    b = load_dataset("synthetic-mosi", "unaligned", seed=3, cache_dir=tmp_path / "b")  # generated again
    c = load_dataset("synthetic-mosi", "unaligned", seed=4, cache_dir=tmp_path / "a")
    assert _tensors_equal(a, b) and a.fingerprint == b.fingerprint
    assert not torch.equal(a.train.audio, c.train.audio) and not torch.equal(a.train.labels, c.train.labels)
    assert a.fingerprint != c.fingerprint
    assert (
        a.fingerprint
        != load_dataset("synthetic-mosi", "aligned", seed=3, cache_dir=tmp_path / "a").fingerprint
    )


def test_cache_hit_and_corrupt_cache_regenerated(tmp_path, monkeypatch):
    first = load_dataset("synthetic-mintrec", "unaligned", seed=1, cache_dir=tmp_path)
    p = synthetic.make_params("synthetic-mintrec", "unaligned", "compact", 1)
    entry = synthetic.cache_path(p, tmp_path)
    assert (entry / cache.META_FILE).is_file() and (entry / "train__audio.npy").is_file()

    calls = []
    real = synthetic.generate_arrays
    monkeypatch.setattr(
        synthetic, "generate_arrays", lambda params, **kw: calls.append(1) or real(params, **kw)
    )
    hit = load_dataset("synthetic-mintrec", "unaligned", seed=1, cache_dir=tmp_path)
    assert calls == [] and _tensors_equal(first, hit) and hit.notes == first.notes

    (entry / "valid__vision.npy").write_bytes(b"garbage, not an npy file")
    again = load_dataset("synthetic-mintrec", "unaligned", seed=1, cache_dir=tmp_path)
    assert calls == [1] and _tensors_equal(first, again)
    assert np.load(entry / "valid__vision.npy").shape == (200, 16, 32)  # rewritten


def test_in_memory_generation_equals_the_cached_entry(tmp_path):
    b = load_dataset("synthetic-mosei", "unaligned", seed=2, cache_dir=tmp_path)
    arrays = synthetic.generate_arrays(synthetic.make_params("synthetic-mosei", "unaligned", "compact", 2))
    for split, s in b.splits.items():
        for key, t in s.tensors().items():
            if key != "index":
                np.testing.assert_array_equal(t.numpy(), arrays[f"{split}__{key}"])


def test_unwritable_cache_still_loads(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    b = load_dataset("synthetic-mosi", "aligned", cache_dir=blocker)
    ref = load_dataset("synthetic-mosi", "aligned", cache_dir=tmp_path / "ok")
    assert _tensors_equal(b, ref)
    assert any(n.startswith("generated (cache not writable") for n in b.notes)


def test_cache_location_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "envcache"))
    assert cache.cache_root() == tmp_path / "envcache"
    assert cache.cache_root(tmp_path / "arg") == tmp_path / "arg"
    load_dataset("synthetic-mosei", "aligned")
    assert list((tmp_path / "envcache" / "synthetic").glob("synthetic-mosei-aligned-compact-seed0-*"))
    monkeypatch.delenv("BENCH_CACHE")
    assert str(cache.cache_root()).endswith(".cache/emoe-bench")


def test_embedded_label_tables_match_the_spec():
    for family, sizes, zeros in (
        ("mosi", (1284, 229, 686), (53, 13, 30)),
        ("mosei", (16326, 1871, 4659), (3540, 433, 1025)),
    ):
        grid = synthetic.MOSI_LABELS_60 if family == "mosi" else synthetic.MOSEI_LABELS_60
        table = synthetic.MOSI_LABEL_COUNTS if family == "mosi" else synthetic.MOSEI_LABEL_COUNTS
        for split, n, z in zip(("train", "valid", "test"), sizes, zeros, strict=True):
            assert len(table[split]) == len(grid) and sum(table[split]) == n
            assert table[split][grid.index(0)] == z
    assert tuple(sum(synthetic.MINTREC_CLASS_COUNTS[s]) for s in ("train", "valid", "test")) == (
        1334,
        445,
        445,
    )


@pytest.mark.parametrize("family", ["mosi", "mosei"])
def test_embedded_label_tables_match_the_label_files(family):
    """The generator embeds the histograms; recompute them from the real label.csv where it exists."""
    import csv

    path = need_shared(f"cmu_{family}", "label.csv")
    grid = synthetic.MOSI_LABELS_60 if family == "mosi" else synthetic.MOSEI_LABELS_60
    table = synthetic.MOSI_LABEL_COUNTS if family == "mosi" else synthetic.MOSEI_LABEL_COUNTS
    counts = {s: Counter() for s in ("train", "valid", "test")}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            k = round(float(row["label"]) * 60)
            assert abs(k / 60 - float(row["label"])) < 1e-5
            counts[row["mode"]][k] += 1
    for split, c in counts.items():
        assert set(c) <= set(grid)
        assert tuple(c.get(k, 0) for k in grid) == table[split]


@pytest.mark.parametrize(
    "family,split", [("mosi", "train"), ("mosi", "test"), ("mosei", "train"), ("mintrec", "train")]
)
def test_label_distribution_follows_the_embedded_histogram(family, split):
    name = f"synthetic-{family}"
    p = synthetic.make_params(name, "unaligned")
    lat = synthetic._split_latents(p, split, 40_000)
    values, probs = synthetic.label_distribution(family, split)
    labels = lat["labels"]
    freq = np.array([(labels == np.float32(v)).mean() for v in values])
    assert abs(freq.sum() - 1) < 1e-9
    assert np.abs(freq - probs).max() < 0.01
    if family != "mintrec":
        p0 = probs[list(values).index(0.0)]
        assert abs((labels == 0).mean() - p0) < 0.006
        # the dominant modality is text about half the time
        assert abs((lat["dominant"] == 0).mean() - 0.5) < 0.02


def test_compact_zero_share_close_to_real():
    b = load_dataset("synthetic-mosei", "unaligned")
    zero = (b.train.labels == 0).float().mean().item()
    assert abs(zero - 3540 / 16326) < 0.06  # 600 samples: about 3.5 standard errors


def _time_mean(s, m):
    x = getattr(s, m).numpy()
    if m == "text" or s.audio_lengths is None:
        length = s.text_bert[:, 1].sum(1).numpy()
    else:
        length = getattr(s, f"{m}_lengths").numpy()
    return x.sum(1) / length[:, None]


def _ridge(xtr, ytr, xte, alpha=10.0):
    """Ridge regression (standardised features, intercept) fitted on train, predicted on test."""
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    a, b = (xtr - mu) / sd, (xte - mu) / sd
    w = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ (ytr - ytr.mean(0)))
    return b @ w + ytr.mean(0)


def test_linear_signal_and_planted_importance():
    b = load_dataset("synthetic-mosi", "unaligned")
    tr, te = b.splits["train"], b.splits["test"]
    ytr, yte = tr.labels.numpy().astype(np.float64), te.labels.numpy()
    mods = ("text", "audio", "vision")
    ftr = {m: _time_mean(tr, m) for m in mods}
    fte = {m: _time_mean(te, m) for m in mods}
    pred_all = _ridge(np.hstack([ftr[m] for m in mods]), ytr, np.hstack([fte[m] for m in mods]))
    corr_all = np.corrcoef(pred_all, yte)[0, 1]
    const_mae = np.abs(np.median(ytr) - yte).mean()
    assert corr_all > 0.5 and np.abs(pred_all - yte).mean() < 0.8 * const_mae

    imp = te.importance.numpy()
    dominant = imp.argmax(1)
    pred = {m: _ridge(ftr[m], ytr, fte[m]) for m in mods}
    for m in mods:
        col = IMPORTANCE_ORDER.index(m)
        err = np.abs(pred[m] - yte)
        # a modality predicts much better on the samples where it was planted as the reliable one
        assert err[dominant == col].mean() < 0.85 * err[dominant != col].mean(), m
    # choosing per sample the planted most-important modality beats linear fusion of all three
    chosen = np.array([pred[IMPORTANCE_ORDER[c]][i] for i, c in enumerate(dominant)])
    assert np.corrcoef(chosen, yte)[0, 1] > corr_all + 0.1


def test_tokens_carry_the_target():
    b = load_dataset("synthetic-mosei", "unaligned")
    s = b.train
    ids = s.text_bert[:, 0].numpy()
    in_band = (ids >= synthetic.BAND_LO) & (ids < synthetic.BAND_LO + 7 * synthetic.BAND_WIDTH)
    band = np.where(in_band, (ids - synthetic.BAND_LO) // synthetic.BAND_WIDTH - 3, 0).astype(float)
    score = band.sum(1) / np.maximum(in_band.sum(1), 1)
    assert np.corrcoef(score, s.labels.numpy())[0, 1] > 0.3


def test_mintrec_classes_are_separable():
    b = load_dataset("synthetic-mintrec", "unaligned")
    tr, te = b.splits["train"], b.splits["test"]
    xtr = np.hstack([_time_mean(tr, m) for m in ("text", "audio", "vision")])
    xte = np.hstack([_time_mean(te, m) for m in ("text", "audio", "vision")])
    onehot = np.eye(20)[tr.labels.numpy()]
    acc = (_ridge(xtr, onehot, xte).argmax(1) == te.labels.numpy()).mean()  # one-vs-all ridge classifier
    majority = (te.labels == torch.bincount(tr.labels).argmax()).float().mean().item()
    assert acc > 2 * majority


def test_bad_profile_and_setting():
    with pytest.raises(UserError, match="unknown data profile 'ful'. Did you mean 'full'"):
        load_dataset("synthetic-mosi", "aligned", profile="ful")
    with pytest.raises(UserError, match="has no setting 'aligned'"):
        load_dataset("synthetic-mintrec", "aligned")
    with pytest.raises(UserError, match="data seed must be a non-negative integer, got -1"):
        load_dataset("synthetic-mosi", "aligned", seed=-1)
    with pytest.raises(UserError, match="Did you mean 'synthetic-mosi'"):
        synthetic.planned_shapes("synthetic-mosy", "aligned")
