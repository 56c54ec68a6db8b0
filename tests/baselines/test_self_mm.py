import dataclasses
import math

import pytest
import torch

from baselines.self_mm import SelfMM
from bench.config import apply_overrides
from bench.data.tensors import DataInfo, Split
from bench.describe import canonical_info
from bench.train.trainer import train
from tests.baselines.helpers import meta_counts, tiny_bert_config
from tests.toy import make_bundle


# ------------------------------------------------------------------------------ parameter counts
@pytest.mark.parametrize("family,total,non_bert", [("mosi", 109_641_572, 159_332),
                                                    ("mosei", 109_647_908, 165_668)])
@pytest.mark.parametrize("setting", ["aligned", "unaligned"])
def test_parameter_count_matches_mmsa(family, setting, total, non_bert):
    from transformers import BertConfig

    _, counts = meta_counts(SelfMM, family, setting, bert_config=BertConfig())
    assert counts["total"] == total
    assert counts["total"] - counts["bert"] == non_bert
    assert "other" not in counts


def test_five_optimiser_groups_follow_mmsa():
    from transformers import BertConfig

    with torch.device("meta"):
        model = SelfMM(SelfMM.default_hparams("mosei", "unaligned"), canonical_info("mosei", "unaligned"),
                       bert_config=BertConfig())
    groups = model.param_groups()
    assert [(g["lr"], g["weight_decay"]) for g in groups] == \
        [(5e-5, 1e-3), (5e-5, 0.0), (5e-3, 0.0), (1e-4, 0.0), (1e-3, 1e-2)]
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = ("bias", "LayerNorm.bias", "LayerNorm.weight")  # MMSA's name rule
    assert all(not any(k in names[id(p)] for k in no_decay) for p in groups[0]["params"])
    assert all(any(k in names[id(p)] for k in no_decay) for p in groups[1]["params"])
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert {names[id(p)].split(".")[0] for p in groups[4]["params"]} == {"heads"}


# ------------------------------------------------------------------------------ ULGM by hand
def _tiny_model(exclude_zero=True):
    """Features-mode Self-MM whose four ULGM feature spaces are 2-d, with a 4-sample train split."""
    info = DataInfo(family="mosi", setting="unaligned", task="regression", num_classes=1,
                    dims={"text": 3, "audio": 2, "vision": 2}, seq_lens={"text": 4, "audio": 5, "vision": 5},
                    has_text_features=True, has_text_bert=False)
    hp = dataclasses.replace(SelfMM.default_hparams("mosi", "unaligned"), post_fusion_dim=2, post_text_dim=2,
                             post_audio_dim=2, post_video_dim=2, exclude_zero=exclude_zero)
    model = SelfMM(hp, info)
    train_split = Split(labels=torch.tensor([1.0, -2.0, 0.0, 2.0]), audio=torch.zeros(4, 5, 2),
                        vision=torch.zeros(4, 5, 2), text=torch.zeros(4, 4, 3))
    model.on_epoch_start(1, train_split)
    return model, train_split


def _feats(f, t, a, v):
    return {f"feature_{m}": torch.tensor(x, dtype=torch.float32)
            for m, x in zip("ftav", (f, t, a, v), strict=True)}


EPOCH1 = _feats(f=[[1, 0], [0, 1], [5, 5], [3, 0]], t=[[2, 0], [0, 2], [9, 9], [2, 0]],
                a=[[1, 1], [-1, -1], [9, 9], [1, 1]], v=[[0, 3], [0, -3], [9, 9], [0, 1]])


def test_ulgm_init_and_centres_by_hand():
    model, split = _tiny_model()
    labels = model.generated_labels()
    for k in "MTAV":
        assert labels[k].tolist() == [1.0, -2.0, 0.0, 2.0]  # all start at y_m
    model.after_step(EPOCH1, split.take(torch.arange(4)), epoch=1)
    assert model.generated_labels()["T"].tolist() == [1.0, -2.0, 0.0, 2.0]  # no update in epoch 1
    # labels > 0: samples 0, 3; labels < 0: sample 1; sample 2 (label 0) in neither (excludeZero)
    c = {m: getattr(model, f"ulgm_centres_{m}").tolist() for m in "ftav"}
    assert c["f"] == [[2.0, 0.0], [0.0, 1.0]]
    assert c["t"] == [[2.0, 0.0], [0.0, 2.0]]
    assert c["a"] == [[1.0, 1.0], [-1.0, -1.0]]
    assert c["v"] == [[0.0, 2.0], [0.0, -3.0]]
    model0, split0 = _tiny_model(exclude_zero=False)
    model0.after_step(EPOCH1, split0.take(torch.arange(4)), epoch=1)
    assert model0.ulgm_centres_f[0].tolist() == pytest.approx([3.0, 5.0 / 3.0])  # label 0 counted positive


def test_ulgm_label_update_by_hand():
    model, split = _tiny_model()
    model.after_step(EPOCH1, split.take(torch.arange(4)), epoch=1)
    # epoch 2, batch = samples 0 (y_m = 1) and 1 (y_m = -2); centres are those of the epoch-1 batch
    feats = _feats(f=[[2, 1], [0, 0]], t=[[3, 0], [0, 3]], a=[[1.1, 1.1], [-1, -1]], v=[[0, 0], [0, -1]])
    model.after_step(feats, split.take(torch.tensor([0, 1])), epoch=2)
    eps = 1e-8
    # fusion: sample 0 d+ = |(0,1)| = 1, d- = |(2,0)| = 2 ; sample 1 d+ = |(-2,0)| = 2, d- = |(0,-1)| = 1
    df = [(2 - 1) / (1 + eps), (1 - 2) / (2 + eps)]
    y = [1.0, -2.0]

    def expect(delta_s, prev, n=2, H=3.0):
        out = []
        for i in range(2):
            alpha = delta_s[i] / (df[i] + eps)
            new = 0.5 * alpha * y[i] + 0.5 * (y[i] + delta_s[i] - df[i])
            new = max(-H, min(H, new))
            out.append((n - 1) / (n + 1) * prev[i] + 2 / (n + 1) * new)
        return out

    r13 = math.sqrt(13)
    d_t = [(r13 - 1) / (1 + eps), (1 - r13) / (r13 + eps)]  # t: d+ = 1, d- = √13 ; d+ = √13, d- = 1
    d_a = [(math.sqrt(2 * 2.1 ** 2) - math.sqrt(2 * 0.1 ** 2)) / (math.sqrt(2 * 0.1 ** 2) + eps),
           (0 - math.sqrt(8)) / (math.sqrt(8) + eps)]  # ŷ_a = 20 -> clamp 3 ; ŷ_a = -3.25 -> clamp -3
    d_v = [(3 - 2) / (2 + eps), (2 - 3) / (3 + eps)]
    got = model.generated_labels()
    exp_t, exp_a, exp_v = expect(d_t, y), expect(d_a, y), expect(d_v, y)
    assert got["T"][:2].tolist() == pytest.approx(exp_t, rel=1e-5)
    assert got["A"][:2].tolist() == pytest.approx(exp_a, rel=1e-5)
    assert got["V"][:2].tolist() == pytest.approx(exp_v, rel=1e-5)
    # the same numbers written out: T (2.0704, -2.3711), A (7/3, -8/3 : clamped), V (2/3, -31/18)
    assert got["T"][:2].tolist() == pytest.approx([2.070368, -2.371083], abs=1e-5)
    assert got["A"][:2].tolist() == pytest.approx([7 / 3, -8 / 3], abs=1e-6)
    assert got["V"][:2].tolist() == pytest.approx([2 / 3, -31 / 18], abs=1e-6)
    assert got["M"].tolist() == [1.0, -2.0, 0.0, 2.0]  # fusion labels never change
    assert got["T"][2:].tolist() == [0.0, 2.0]  # samples not in the batch keep their labels
    # then features are written and centres recomputed on the *generated* unimodal labels
    assert model.ulgm_features_t[0].tolist() == [3.0, 0.0]
    assert model.ulgm_centres_t.tolist() == [[2.5, 0.0], [0.0, 3.0]]  # pos: samples 0, 3 ; neg: 1


def test_momentum_at_epoch_three():
    model, split = _tiny_model()
    with torch.no_grad():
        model.ulgm_centres_f.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        model.ulgm_centres_t.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        model.ulgm_labels[1, 0] = 0.8
    feats = {"f": torch.tensor([[0.5, 0.0]]), "t": torch.tensor([[0.0, 0.0]]),
             "a": torch.zeros(1, 2), "v": torch.zeros(1, 2)}
    model.update_labels(feats, torch.tensor([0]), epoch=3)
    # δ_f = (1.5 - 0.5)/0.5 = 2, δ_t = 0, α = 0 -> ŷ_t = 0.5·(1 + 0 - 2) = -0.5 ; (2/4)·0.8 + (2/4)·(-0.5)
    assert float(model.ulgm_labels[1, 0]) == pytest.approx(0.15, abs=1e-6)


def test_loss_weights_and_epoch1_unimodal_losses_are_zero():
    bundle = make_bundle("unaligned")
    model = SelfMM(SelfMM.default_hparams("mosi", "unaligned"), bundle.info())
    model.on_epoch_start(1, bundle.train)
    batch = bundle.train.take(torch.arange(10))
    out = model(batch)
    t = model.loss_terms(out, batch)
    assert all(t[k].item() == 0.0 for k in "TAV")
    assert torch.allclose(t["M"], (out["pred"] - batch.labels).abs().mean())
    with torch.no_grad():
        model.ulgm_labels[1, :10] = batch.labels + 0.5
    t = model.loss_terms(out, batch)
    w = math.tanh(0.5)
    assert torch.allclose(t["T"], (w * (out["T"] - (batch.labels + 0.5)).abs()).mean())
    assert torch.allclose(t["total"], t["M"] + t["T"] + t["A"] + t["V"])


# ------------------------------------------------------------------------------ gradient paths
def test_gradient_paths_bert_mode():
    bundle = make_bundle("unaligned")
    model = SelfMM(SelfMM.default_hparams("mosi", "unaligned"), bundle.info(), bert_config=tiny_bert_config())
    model.on_epoch_start(1, bundle.train)
    with torch.no_grad():  # generated labels away from y_m so that the unimodal weights are non-zero
        model.ulgm_labels[1:] += 0.7
    batch = bundle.train.take(torch.arange(12))
    t = model.loss_terms(model(batch), batch)
    params = dict(model.named_parameters())

    def reached(loss):
        grads = torch.autograd.grad(loss, list(params.values()), retain_graph=True, allow_unused=True)
        names = set()
        for n, g in zip(params, grads, strict=True):
            if g is not None and g.abs().sum() > 0:
                parts = n.split(".")
                names.add(".".join(parts[:2]) if parts[0] == "heads" else parts[0])
        return names

    assert reached(t["T"]) == {"text", "heads.t"}
    assert reached(t["A"]) == {"audio_model", "heads.a"}
    assert reached(t["V"]) == {"video_model", "heads.v"}
    assert reached(t["M"]) == {"text", "audio_model", "video_model", "heads.f"}


@pytest.mark.parametrize("setting", ["aligned", "unaligned"])
@pytest.mark.parametrize("mode", ["features"])  # BERT mode: tests/test_method_contract.py
def test_forward_backward(setting, mode):
    bundle = make_bundle(setting)
    model = SelfMM(SelfMM.default_hparams("mosi", setting), bundle.info(),
                   bert_config=tiny_bert_config() if mode == "bert" else None)
    model.on_epoch_start(1, bundle.train)
    batch = bundle.train.take(torch.arange(8))
    out = model(batch)
    assert model.lengths_used == ("own" if setting == "unaligned" else "text")
    assert {k: tuple(out[k].shape) for k in ("pred", "T", "A", "V", "fused")} == \
        {"pred": (8,), "T": (8,), "A": (8,), "V": (8,), "fused": (8, 128)}
    model.loss_terms(out, batch)["total"].backward()
    model.after_step(out, batch, epoch=2)
    assert torch.isfinite(model.generated_labels()["T"]).all()
    assert model.record()["text_mode"] == mode


def test_aligned_uses_text_length():
    """Aligned data: audio frames after the text length do not matter."""
    bundle = make_bundle("aligned")
    batch = bundle.train.take(torch.arange(8))
    late = torch.arange(batch.audio.shape[1])[None, :] >= batch.text_bert[:, 1].sum(1)[:, None]
    perturbed = dataclasses.replace(batch, audio=batch.audio.clone())
    perturbed.audio[late] += 3.0
    model = SelfMM(SelfMM.default_hparams("mosi", "aligned"), bundle.info()).eval()
    with torch.no_grad():
        assert torch.allclose(model(batch)["pred"], model(perturbed)["pred"])


def test_defaults_and_eras():
    hp = SelfMM.default_hparams("mosi", "unaligned")
    assert (hp.batch_size, hp.grad_accum, hp.grad_clip_value, hp.early_stop, hp.H) == (16, 4, 0.0, 8, 3.0)
    assert SelfMM.default_hparams("mosi", "unaligned", era="table2021") == \
        dataclasses.replace(hp, hparams_era="table2021")
    orig = apply_overrides(hp, {"hparams_era": "original"})
    assert (orig.batch_size, orig.a_lstm_hidden, orig.v_lstm_hidden, orig.post_text_dim,
            orig.learning_rate_audio, orig.weight_decay_audio) == (32, 32, 64, 64, 1e-3, 1e-2)
    orig = SelfMM.default_hparams("mosei", "unaligned", era="original")
    assert (orig.a_lstm_hidden, orig.v_lstm_hidden, orig.post_video_dim, orig.post_text_dropout,
            orig.post_video_dropout) == (32, 32, 16, 0.1, 0.1)


# ------------------------------------------------------------------------------ end to end
def test_trains_end_to_end_on_synthetic():
    from bench.data import load_dataset

    bundle = load_dataset("synthetic-mosi", "unaligned")
    sizes = (96, 32, 48)
    splits = {k: s.take(torch.arange(m)) for (k, s), m in zip(bundle.splits.items(), sizes, strict=True)}
    bundle = dataclasses.replace(bundle, splits=splits)
    hp = dataclasses.replace(SelfMM.default_hparams("mosi", "unaligned"), max_epochs=3)
    out = train(SelfMM, hp, bundle, seed=1111)
    # Epoch 1: labels = y_m. Epoch 2: a sample's label first moves *after* its own batch's loss, so
    # every epoch-2 unimodal term is still exactly 0 as well; the unimodal heads learn from epoch 3.
    for h in out.history[:2]:
        assert h["train"]["T"] == 0.0 and h["train"]["A"] == 0.0 and h["train"]["V"] == 0.0
    assert min(out.history[2]["train"][k] for k in "TAV") > 0.0
    assert out.n_optimizer_steps == 3 * (96 // 16 // 4)
    assert set(out.test_outputs) >= {"pred", "fused", "T", "A", "V"}
    assert out.model_record["train_samples"] == 96 and math.isfinite(out.test["mae"])


def test_trains_end_to_end_bert_mode():
    class TinyBertSelfMM(SelfMM):
        def __init__(self, hp, info):
            super().__init__(hp, info, bert_config=tiny_bert_config())

    bundle = make_bundle("aligned")
    hp = dataclasses.replace(SelfMM.default_hparams("mosi", "aligned"), max_epochs=2, batch_size=8)
    out = train(TinyBertSelfMM, hp, bundle, seed=1)
    assert out.model_record["text_mode"] == "bert" and math.isfinite(out.test["mae"])


@pytest.mark.slow
def test_mosi229_features_mode():
    from bench.data import load_dataset
    from tests.conftest import shared_data

    root = shared_data("mosi229")
    bundle = load_dataset("mosi", "unaligned", data_root=str(root))
    hp = dataclasses.replace(SelfMM.default_hparams("mosi", "unaligned"), max_epochs=15)
    out = train(SelfMM, hp, bundle, seed=1111)
    constant = float((bundle.splits["test"].labels - bundle.train.labels.mean()).abs().mean())
    print(f"\nSelf-MM mosi229 test MAE {out.test['mae']:.4f} corr {out.test['corr']:.3f} "
          f"(train-mean predictor {constant:.4f}); best epoch {out.best_epoch} of {out.epochs_run}")
    assert out.test["mae"] < constant
