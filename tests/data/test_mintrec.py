"""MIntRec loader: tsv parsing, labels, feature padding, tokenisation, errors; the real tsv files."""

from __future__ import annotations

import pickle
import re
from collections import Counter

import numpy as np
import pytest
import torch

from bench.data import checksums, load_dataset, mintrec, synthetic
from bench.errors import DataError, UserError
from tests.data.conftest import (
    VOCAB,
    mintrec_rows,
    need_shared,
    write_mintrec_features,
    write_vocab,
)


def _load(root, **kw):
    return load_dataset("mintrec", "unaligned", data_root=root, **kw)


def test_label_order_is_mintrec():
    assert len(mintrec.LABEL_NAMES) == 20
    assert mintrec.LABEL_NAMES[:5] == ("Complain", "Praise", "Apologise", "Thank", "Criticize")
    assert mintrec.LABEL_NAMES.index("Care") == 11 and mintrec.LABEL_NAMES[19] == "Ask for help"
    assert sorted(mintrec.BINARY_LABELS.values()).count(0) == 11


def test_small_root_shapes_padding_lengths(mintrec_root, tmp_path):
    vocab = write_vocab(tmp_path / "vocab.txt")
    b = _load(mintrec_root, tokenizer=vocab)
    assert (b.task, b.num_classes, b.setting, b.source) == ("classification", 20, "unaligned", "real")
    assert b.label_names == list(mintrec.LABEL_NAMES)
    assert b.sizes() == {"train": 20, "valid": 7, "test": 8}
    audio = pickle.load(open(mintrec_root / mintrec.AUDIO_FILE, "rb"))
    video = pickle.load(open(mintrec_root / mintrec.VIDEO_FILE, "rb"))
    keys = mintrec_rows(mintrec_root / "MIntRec" / "train.tsv")
    tr = b.train
    assert tr.ids == keys
    assert (
        tr.audio.shape == (20, 480, 6) and tr.vision.shape == (20, 230, 5) and tr.audio.dtype == torch.float32
    )
    assert tr.text is None and tr.text_bert.shape == (20, 3, 30) and tr.text_bert.dtype == torch.int64
    assert tr.labels.dtype == torch.int64 and tr.labels.tolist() == [i % 20 for i in range(20)]
    for i in (0, 5):
        k = keys[i]
        ta, tv = audio[k].shape[0], video[k].shape[0]
        assert tr.audio_lengths[i].item() == ta and tr.vision_lengths[i].item() == tv
        np.testing.assert_array_equal(tr.audio[i, :ta].numpy(), audio[k])
        np.testing.assert_array_equal(tr.vision[i, :tv].numpy(), video[k][:, 0, :])
        assert tr.audio[i, ta:].abs().sum().item() == 0 and tr.vision[i, tv:].abs().sum().item() == 0
    # the 500-frame sequence is truncated by slicing, not indexed (MIntRec's padding bug)
    assert tr.audio_lengths[1].item() == 480
    np.testing.assert_array_equal(tr.audio[1].numpy(), audio[keys[1]][:480])
    assert "train audio: 1 sequences longer than 480 frames truncated" in b.notes
    assert b.info().seq_lens == {"text": 30, "audio": 480, "vision": 230}


def test_tokenisation_with_vocab_txt(mintrec_root, tmp_path):
    vocab = write_vocab(tmp_path / "vocab.txt")
    b = _load(mintrec_root, tokenizer=vocab)
    tb = b.train.text_bert
    raw0 = b.train.raw_text[0]
    assert raw0 == "Thank you so much!"
    cls, sep, unk = VOCAB.index("[CLS]"), VOCAB.index("[SEP]"), VOCAB.index("[UNK]")
    expected = [cls, VOCAB.index("thank"), VOCAB.index("you"), VOCAB.index("so"), unk, VOCAB.index("!"), sep]
    assert tb[0, 0, :7].tolist() == expected and tb[0, 0, 7:].abs().sum().item() == 0
    assert tb[0, 1].tolist() == [1] * 7 + [0] * 23
    assert tb[:, 2].abs().sum().item() == 0
    assert any(n.startswith("text_bert: tokenised with") for n in b.notes)


def test_tokenizer_directory_and_truncation(tmp_path):
    from transformers import BertTokenizer

    tok_dir = tmp_path / "tok"
    tok_dir.mkdir()
    write_vocab(tok_dir / "vocab.txt")
    tok, note = mintrec.resolve_tokenizer(tok_dir)
    assert note is None and isinstance(tok, BertTokenizer)
    long_text = " ".join(["hello"] * 40)
    out = mintrec.encode_texts(tok, [long_text, "we go"])
    assert out.shape == (2, 3, 30)
    assert out[0, 0, 0] == VOCAB.index("[CLS]") and out[0, 0, 29] == VOCAB.index("[SEP]")
    assert (out[0, 0, 1:29] == VOCAB.index("hello")).all() and out[0, 1].sum() == 30
    assert out[1, 0, :4].tolist() == [2, VOCAB.index("we"), VOCAB.index("go"), 3] and out[1, 1].sum() == 4


def test_no_tokenizer_is_a_note_not_a_download(mintrec_root, monkeypatch):
    calls = []

    class FakeBert:
        @classmethod
        def from_pretrained(cls, name, local_files_only=False):
            calls.append((name, local_files_only))
            raise OSError("not cached")

    monkeypatch.setattr(mintrec, "_bert_tokenizer_class", lambda: FakeBert)
    monkeypatch.delenv("BENCH_TOKENIZER", raising=False)
    b = _load(mintrec_root)
    assert calls == [("bert-base-uncased", True)]
    assert b.train.text_bert is None and b.train.text is None
    assert b.train.raw_text[1] == "I'm sorry, I know."
    assert any(
        n.startswith("no tokenizer") and "text unavailable" in n and "tokenizer=" in n for n in b.notes
    )


def test_tokenizer_from_env(mintrec_root, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_TOKENIZER", str(write_vocab(tmp_path / "vocab.txt")))
    b = _load(mintrec_root)
    assert b.train.text_bert.shape == (20, 3, 30) and b.train.text_bert[0, 0, 0].item() == VOCAB.index(
        "[CLS]"
    )


def test_bad_tokenizer_path_is_a_user_error(mintrec_root, tmp_path):
    with pytest.raises(UserError, match="tokenizer .*nope not found"):
        _load(mintrec_root, tokenizer=tmp_path / "nope")


def test_unknown_label_names_row_and_file(mintrec_root):
    tsv = mintrec_root / "MIntRec" / "dev.tsv"
    lines = tsv.read_text().splitlines()
    lines[3] = lines[3].rsplit("\t", 1)[0] + "\tComplian"
    tsv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        _load(mintrec_root)
    msg = str(e.value)
    assert f"{tsv}: row at line 4: unknown label 'Complian'" in msg and "Did you mean 'Complain'" in msg


def test_wrong_header_and_field_count(mintrec_root):
    tsv = mintrec_root / "MIntRec" / "test.tsv"
    good = tsv.read_text()
    tsv.write_text(good.replace("season\tepisode", "season\tepisod", 1))
    with pytest.raises(DataError, match="line 1: expected header season/episode/clip/text/label"):
        _load(mintrec_root)
    lines = good.splitlines()
    lines[2] = lines[2] + "\textra"
    tsv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="row at line 3: expected 5 tab-separated fields, found 6"):
        _load(mintrec_root)


def test_missing_feature_key(mintrec_root):
    p = mintrec_root / mintrec.VIDEO_FILE
    feats = pickle.load(open(p, "rb"))
    key = mintrec_rows(mintrec_root / "MIntRec" / "test.tsv")[2]
    del feats[key]
    pickle.dump(feats, open(p, "wb"))
    with pytest.raises(DataError, match=f"no video features for key '{key}' \\(test.tsv line 4\\)"):
        _load(mintrec_root)


def test_nan_in_features(mintrec_root):
    p = mintrec_root / mintrec.AUDIO_FILE
    feats = pickle.load(open(p, "rb"))
    key = mintrec_rows(mintrec_root / "MIntRec" / "train.tsv")[0]
    feats[key][0, 0] = np.nan
    pickle.dump(feats, open(p, "wb"))
    with pytest.raises(
        DataError, match="split 'train', key 'audio': expected finite values, found 1 non-finite"
    ):
        _load(mintrec_root)
    b = _load(mintrec_root, clean_nan=True)
    assert torch.isfinite(b.train.audio).all()


def test_missing_files(tmp_path, mintrec_root):
    with pytest.raises(UserError) as e:
        _load(tmp_path / "empty")
    assert str(tmp_path / "empty" / "MIntRec" / "train.tsv") in str(e.value) and "thuiar/MIntRec" in str(
        e.value
    )
    (mintrec_root / mintrec.AUDIO_FILE).unlink()
    with pytest.raises(UserError, match="audio_feats.pkl"):
        _load(mintrec_root)
    with pytest.raises(UserError, match="needs the real data.*MIntRec/\\{train,dev,test\\}.tsv"):
        load_dataset("mintrec", "unaligned")


def test_file_records_and_standard(mintrec_root, tmp_path):
    b = _load(mintrec_root, tokenizer=write_vocab(tmp_path / "vocab.txt"))
    assert [f["path"] for f in b.files] == [
        str(mintrec_root / r) for r in (*mintrec.SPLIT_FILES.values(), mintrec.AUDIO_FILE, mintrec.VIDEO_FILE)
    ]
    assert [f["status"] for f in b.files] == ["mismatch"] * 3 + ["unknown"] * 2
    assert b.standard is False
    assert b.fingerprint == checksums.fingerprint_of([f["sha256"] for f in b.files])


# ------------------------------------------------------------------------- real tsv files
@pytest.fixture
def real_mintrec_root(tmp_path):
    src = need_shared("mintrec")
    d = tmp_path / "MIntRec"
    d.mkdir()
    keys = []
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        (d / name).write_bytes((src / name).read_bytes())  # into the temp root only, never the repo
        keys += mintrec_rows(d / name)
    write_mintrec_features(tmp_path, keys, audio_dim=3, video_dim=2)
    return tmp_path


def test_real_tsv_files(real_mintrec_root, tmp_path):
    b = _load(real_mintrec_root, tokenizer=write_vocab(tmp_path / "vocab.txt"))
    assert b.sizes() == {"train": 1334, "valid": 445, "test": 445}
    assert not any(n.startswith("non-standard split sizes") for n in b.notes)
    assert b.train.ids[0] == "S05_E16_329" and b.train.raw_text[0].startswith(
        "apparently, teens are drinking"
    )
    assert mintrec.LABEL_NAMES[b.train.labels[0].item()] == "Inform"
    # class counts agree with the constants the synthetic generator embeds
    for split in ("train", "valid", "test"):
        counts = Counter(b.splits[split].labels.tolist())
        assert tuple(counts.get(i, 0) for i in range(20)) == synthetic.MINTREC_CLASS_COUNTS[split]
    assert [f["status"] for f in b.files] == ["ok"] * 3 + ["unknown"] * 2
    assert b.standard is False  # the right split files, but 3-d audio is not the published wav2vec 2.0 768-d
    assert any(n.startswith("not standard MIntRec: audio of S05_E16_329 has shape (") and
               n.endswith(", 3), published (T<=480, 768)") for n in b.notes), b.notes
    # real MIntRec utterances fit in 28 word pieces with the real vocabulary; with the tiny one all are short
    assert (b.train.text_bert[:, 1].sum(1) <= 30).all()


# ------------------------------------------------------------------------- standard MIntRec (Table 3)
def _published_shape_root(root, tsv_dir=None, audio_dim=768, video_dim=256):
    """A root with the published split sizes (1334/445/445) and per-sample feature shapes (audio (T, 768),
    video (T, 1, 256)). T is 1-2 frames instead of the real ~100-477 (any 1 <= T <= 480 / 230 is a published
    shape): the pickles stay ~15 MB instead of GBs. ``tsv_dir``: copy those tsv files (the real ones), else
    write tsv files of the published sizes."""
    from bench.data.mintrec import LABEL_NAMES
    from tests.data.conftest import MINTREC_HEADER, small_tsv_rows

    d = root / "MIntRec"
    d.mkdir(parents=True)
    keys = []
    for split, fname, n in (("train", "train.tsv", 1334), ("dev", "dev.tsv", 445), ("test", "test.tsv", 445)):
        if tsv_dir is not None:
            (d / fname).write_bytes((tsv_dir / fname).read_bytes())
        else:
            (d / fname).write_text(MINTREC_HEADER + "\n".join(small_tsv_rows(split, n, LABEL_NAMES)) + "\n")
        keys += mintrec_rows(d / fname)
    rng = np.random.default_rng(0)
    audio = {k: rng.standard_normal((1 + i % 2, audio_dim)).astype(np.float32) for i, k in enumerate(keys)}
    video = {k: rng.standard_normal((2 - i % 2, 1, video_dim)).astype(np.float32) for i, k in enumerate(keys)}
    for rel, obj in ((mintrec.AUDIO_FILE, audio), (mintrec.VIDEO_FILE, video)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        with open(root / rel, "wb") as f:
            pickle.dump(obj, f, protocol=4)
    return root


def _official(monkeypatch, root):
    """Make the test's tsv files the reference copies (as the real official tsv files are)."""
    ref = {rel: checksums.sha256_file(root / rel) for rel in mintrec.SPLIT_FILES.values()}
    monkeypatch.setattr(checksums, "MINTREC_SHA256", ref)


def _load_short(root, vocab):
    # padding to the loader's 480/230 frames would need 3.8 GB for 2224 samples; 2 frames hold these features
    return mintrec.load_mintrec(root, tokenizer=vocab, audio_max_len=2, video_max_len=2)


def test_published_sizes_and_shapes_are_standard_mintrec(tmp_path, monkeypatch):
    root = _published_shape_root(tmp_path / "root")
    _official(monkeypatch, root)
    b = _load_short(root, write_vocab(tmp_path / "vocab.txt"))
    assert b.sizes() == {"train": 1334, "valid": 445, "test": 445}
    assert b.standard is True
    assert [f["status"] for f in b.files] == ["ok"] * 3 + ["unknown"] * 2  # the pickles: no published checksum
    assert [f["sha256"] for f in b.files[3:]] == [checksums.sha256_file(root / mintrec.AUDIO_FILE),
                                                 checksums.sha256_file(root / mintrec.VIDEO_FILE)]
    assert ("standard MIntRec established by split sizes 1334/445/445 and feature shapes (audio (T<=480, 768), "
            "video (T<=230, 256)), not by checksum") in " ".join(b.notes)


@pytest.mark.parametrize("change, reason", [
    ({"audio_dim": 1024}, r"audio of S01_E00_train0 has shape \(1, 1024\), published \(T<=480, 768\)"),
    ({"video_dim": 512}, r"video of S01_E00_train0 has shape \(2, 1, 512\), published \(T<=230, 1, 256\)"),
])
def test_other_feature_shapes_are_not_standard(tmp_path, monkeypatch, change, reason):
    root = _published_shape_root(tmp_path / "root", **change)
    _official(monkeypatch, root)
    b = _load_short(root, write_vocab(tmp_path / "vocab.txt"))
    assert b.standard is False
    assert any(re.fullmatch("not standard MIntRec: " + reason, n) for n in b.notes), b.notes


def test_standard_needs_the_official_split_files_and_sizes(tmp_path):
    from bench.data.mintrec_standard import standard_mintrec

    ok = [{"path": p, "status": "ok"} for p in ("train.tsv", "dev.tsv", "test.tsv")]
    feats = {"k": np.zeros((3, 768), np.float32)}, {"k": np.zeros((3, 1, 256), np.float32)}
    assert standard_mintrec(ok, (1334, 445, 445), *feats, ["k"])[0] is True
    assert standard_mintrec(ok, (1334, 445, 444), *feats, ["k"]) == (
        False, "not standard MIntRec: split sizes 1334/445/444, published 1334/445/445")
    changed = [*ok[:2], {"path": "test.tsv", "status": "mismatch"}]
    assert standard_mintrec(changed, (1334, 445, 445), *feats, ["k"]) == (
        False, "not standard MIntRec: split file(s) test.tsv differ from the official tsv files (sha256)")
    too_long = {"k": np.zeros((481, 768), np.float32)}, feats[1]
    assert standard_mintrec(ok, (1334, 445, 445), *too_long, ["k"])[0] is False


def test_real_split_files_with_published_shapes_are_standard(tmp_path):
    root = _published_shape_root(tmp_path / "root", tsv_dir=need_shared("mintrec"))
    b = _load_short(root, write_vocab(tmp_path / "vocab.txt"))
    assert b.standard is True and b.sizes() == {"train": 1334, "valid": 445, "test": 445}


def test_table3_compares_standard_mintrec_results_and_says_how(tmp_path, monkeypatch):
    """Results on files of the published sizes/shapes carry standard data: check compares them with the paper
    and the Table 3 caption says standardness came from sizes and shapes, not a checksum."""
    import dataclasses
    import json

    from bench import store
    from bench.check import CheckOptions, check_published
    from bench.config import RunSpec
    from bench.registry import get_method
    from bench.report.frames import table_frame
    from bench.report.planning import plan
    from bench.report.render import frame_to_markdown
    from bench.report.specs import TABLES, metric_key
    from bench.runner import data_record, resolve_hparams
    from bench.text_encoder import TextChoice

    root = _published_shape_root(tmp_path / "root")
    _official(monkeypatch, root)
    record = data_record(_load_short(root, write_vocab(tmp_path / "vocab.txt")), "full", 0)
    spec, bert, out = TABLES[3], TextChoice("/models/bert-base-uncased"), tmp_path / "results"
    for p in plan(spec, "real", "full", rows=("EMOE",), text=bert):
        hp = resolve_hparams(get_method(p.row.method), spec.family, p.setting, p.overrides)
        cfg = json.loads(json.dumps(dataclasses.asdict(hp), default=str))
        rs = RunSpec(p.row.method, p.dataset, p.setting, cfg, record["fingerprint"])
        for i, seed in enumerate((1111, 1112)):
            store.write_run(store.run_dir(out, rs, seed), {
                "method": p.row.method, "dataset": p.dataset, "setting": p.setting, "seed": seed, "config": cfg,
                "config_hash": rs.config_hash, "data": record, "valid": {},
                "test": {metric_key(spec, m): 0.70 + 0.01 * i for m in spec.metrics},
                "provenance": {"git": {"commit": "abc"}}, "selection": {"rule": "best valid"}})
    df = check_published(spec, out, CheckOptions(text=bert))  # no "non-standard data" refusal
    assert set(df[(df["row"] == "EMOE") & (df["level"] == "cell")]["n"]) == {2}
    collected = {("EMOE", "unaligned"): [store.read_result(d) for d in sorted(out.glob("runs/emoe/*/*/seed-*"))]}
    md = frame_to_markdown(spec, table_frame(spec, collected, "real"), collected, "real")
    assert "[paper 72.6, Δ -2.1]" in md and "Fine-tuned text encoder: /models/bert-base-uncased (EMOE)." in md
    assert "standard MIntRec established by the published split sizes and feature shapes, not by checksum" in md
