import dataclasses
import json
import math

import pytest
import torch

from baselines._align import avg_pool_align
from baselines.mctn import MCTN, MCTNHParams, _Attention, _Decoder, _Encoder, translate
from bench.cli import main
from bench.describe import canonical_info
from bench.errors import UserError
from bench.train.trainer import evaluate, train
from tests.baselines.helpers import assert_beats_constant, meta_counts
from tests.conftest import shared_data
from tests.helpers import make_bundle
from tests.toy import make_bundle as make_tiny

SMALL = ["--set", "hid_dim=8"]


def _lstm(d_in, h, bidirectional=False):
    one = 4 * h * (d_in + h) + 2 * 4 * h
    return 2 * one if bidirectional else one


def _linear(i, o, bias=True):
    return i * o + (o if bias else 0)


def test_parameter_count_mosi_by_hand():
    model, c = meta_counts(MCTN, "mosi", "aligned")  # T 50; text 768, audio 5, vision 20 -> pad_dim 768
    h, d = 32, 768
    attention = _linear(2 * h, h, bias=False) + _linear(h, 1, bias=False)
    decoder = _lstm(d + h, h, bidirectional=True) + _linear(2 * h, d)
    s2s1 = _lstm(d, h, bidirectional=True) + _linear(h, h, bias=False) + attention + decoder
    s2s2 = _lstm(h, h, bidirectional=True) + _linear(h, h, bias=False) + attention + decoder
    reg = _lstm(h, h) + _linear(h, 1) + _linear(h, 1)
    assert (c["seq2seq1"], c["seq2seq2"], c["regression"]) == (s2s1, s2s2, reg) == (471840, 283424, 8514)
    assert c["total"] == s2s1 + s2s2 + reg and "other" not in c
    assert model.pad_dim == 768


def test_defaults_follow_mmsa_config():
    hp = MCTN.default_hparams("mosi", "aligned")
    assert (hp.hid_dim, hp.max_seq_len) == (32, 50)
    assert (hp.batch_size, hp.learning_rate, hp.weight_decay, hp.grad_clip_norm, hp.early_stop) == (
        32, 1e-4, 0.0, 1.0, 8)
    assert (hp.weight_vision, hp.weight_text, hp.weight_audio, hp.weight_label) == (0.1, 0.1, 0.1, 1.0)
    assert (hp.grad_accum, hp.grad_clip_value, hp.plateau_patience) == (1, 0.0, 0)  # no accumulation/scheduler
    assert (hp.seq_layout, hp.unaligned_input, hp.selection_loss, hp.val_loss) == (
        "mmsa", "refuse", "total", "batch_mean_4dp")
    assert hp.regression_l2 == 0.0
    assert MCTN.default_setting == "aligned" and MCTN.settings == ("aligned",) and MCTN.families == ("mosi",)
    with pytest.raises(UserError, match="MOSI only"):
        MCTN.default_hparams("mosei", "aligned")


def test_unaligned_data_is_refused_by_default():
    with pytest.raises(UserError, match="aligned"):
        MCTN(MCTNHParams(), canonical_info("mosi", "unaligned"))
    bundle = make_bundle()
    model = MCTN(MCTNHParams(hid_dim=4), bundle.info())
    b = bundle.splits["test"]
    with pytest.raises(UserError, match="aligned"):
        model(dataclasses.replace(b, audio=b.audio[:, :4]))
    # truncation that still leaves unequal lengths is refused too (MMSA would fail inside the LSTM)
    with pytest.raises(UserError, match="avg_pool"):
        MCTN(MCTNHParams(unaligned_input="truncate", max_seq_len=400), canonical_info("mosi", "unaligned"))


def test_prepare_pads_truncates_and_pools():
    tiny = make_tiny("unaligned")  # text 8 x 16, audio 10 x 3, vision 12 x 4
    b = tiny.splits["test"]
    m = MCTN(MCTNHParams(hid_dim=4, unaligned_input="truncate", max_seq_len=5), tiny.info())
    t, a, v = m.prepare(b)
    assert t.shape == a.shape == v.shape == (16, 5, 16)
    assert torch.equal(a[..., :3], b.audio[:, :5]) and not a[..., 3:].any()  # first 5 frames, zero-padded features
    assert torch.equal(v[..., :4], b.vision[:, :5]) and torch.equal(t, b.text[:, :5])
    m = MCTN(MCTNHParams(hid_dim=4, unaligned_input="avg_pool", max_seq_len=50), tiny.info())
    _, a, v = m.prepare(b)
    assert torch.equal(a[..., :3], avg_pool_align(b.audio, 8, "windows"))
    assert torch.equal(v[..., :4], avg_pool_align(b.vision, 8, "windows")) and a.shape[1] == 8


def test_attention_by_hand():
    att = _Attention(1)
    with torch.no_grad():
        att.attn.weight.copy_(torch.tensor([[0.5, 1.0]]))  # energy = tanh(0.5 s + joint_j)
        att.v.weight.fill_(2.0)
    s = torch.tensor([[1.0]])
    joint = torch.tensor([[[0.0]], [[1.0]], [[-1.0]]])  # (L=3, N=1, h=1)
    scores = [2 * math.tanh(0.5 + j) for j in (0.0, 1.0, -1.0)]
    z = sum(math.exp(x) for x in scores)
    assert torch.allclose(att(s, joint)[0], torch.tensor([math.exp(x) / z for x in scores]), atol=1e-6)


def test_seq2seq_shapes_and_teacher_forcing():
    torch.manual_seed(0)
    enc, dec, att = _Encoder(6, 4), _Decoder(5, 4), _Attention(4)
    src, trg = torch.randn(7, 3, 6), torch.randn(9, 3, 5)  # seq-first: (L, N, D)
    joint, out = translate(enc, dec, att, src, trg)
    assert joint.shape == (7, 3, 4) and out.shape == (9, 3, 5)
    assert not out[0].any()  # step 0 is never predicted (zeros, as MMSA's outputs buffer)
    trg2 = trg.clone()
    trg2[5:] += 1.0
    _, out2 = translate(enc, dec, att, src, trg2)
    # step t is decoded from the ground truth trg[t-1]: changing trg[5:] changes steps 6.. only
    assert torch.equal(out[:6], out2[:6]) and not torch.allclose(out[6:], out2[6:])
    trg3 = trg.clone()
    trg3[-1] += 1.0  # the last target step is never an input
    assert torch.equal(translate(enc, dec, att, src, trg3)[1], out)


def test_cyclic_translation_wiring():
    bundle = make_bundle()
    model = MCTN(MCTNHParams(hid_dim=4), bundle.info()).eval()
    seen = {"enc1": [], "enc2": [], "dec1": 0}
    model.encoder1.register_forward_hook(lambda mod, inp, out: seen["enc1"].append((inp[0], out[0])))
    model.encoder2.register_forward_hook(lambda mod, inp, out: seen["enc2"].append(inp[0]))
    b = bundle.splits["test"]
    with torch.no_grad():
        out = model(b)
    (src1, joint1), (src2, _) = seen["enc1"]
    assert torch.equal(src1, out["text"])  # forward translation text -> vision
    assert torch.equal(src2, out["vision_hat"])  # back-translation starts from the *predicted* vision
    assert torch.equal(seen["enc2"][0], joint1)  # the second level translates the first joint sequence
    assert out["vision_hat"].shape == out["vision"].shape == (30, 6, 8)  # pad_dim = text dim 8
    assert out["text_hat"].shape == out["audio_hat"].shape == (30, 6, 8)


def test_loss_weighting_by_hand():
    bundle = make_bundle()
    model = MCTN(MCTNHParams(hid_dim=4, regression_l2=0.01), bundle.info())
    z = torch.zeros(2, 1, 2)
    out = {"pred": torch.tensor([0.0, 0.0]), "vision_hat": z, "vision": z + 1, "text_hat": z, "text": z + 2,
           "audio_hat": z, "audio": z + 3}
    batch = dataclasses.replace(bundle.splits["test"].take(torch.arange(2)), labels=torch.tensor([1.0, -3.0]))
    terms = model.loss_terms(out, batch)
    l2 = 0.01 * float(model.regression.linear2.weight.detach().pow(2).sum())
    terms = {k: v.detach() for k, v in terms.items()}
    # 0.1 * MSE_v (1) + 0.1 * MSE_t (4) + 0.1 * MSE_a (9) + 1.0 * L1 (2) + l2
    assert math.isclose(float(terms["total"]), 0.1 + 0.4 + 0.9 + 2.0 + l2, rel_tol=1e-6)
    assert (float(terms["recon_vision"]), float(terms["recon_text"]), float(terms["recon_audio"])) == (1.0, 4.0, 9.0)
    assert float(model.recon_per_sample(out).mean()) == pytest.approx(1.4)


@pytest.mark.parametrize("selection", ["total", "task"])
def test_validation_loss_is_mmsa_total_objective(selection):
    bundle = make_bundle()
    hp = MCTNHParams(hid_dim=4, selection_loss=selection, val_loss="sample_mean")
    model = MCTN(hp, bundle.info()).eval()
    split = bundle.splits["valid"]
    metrics, _ = evaluate(model, split, batch_size=len(split), val_loss_mode="sample_mean")
    with torch.no_grad():
        terms = model.loss_terms(model(split), split)
    want = terms["total"] if selection == "total" else terms["task"]
    assert metrics["loss"] == pytest.approx(float(want), rel=1e-5)
    assert float(terms["total"]) > float(terms["task"]) + 1e-3  # the two really differ
    with torch.no_grad():
        assert float(model.task_loss(model(split)["pred"], split.labels)) == pytest.approx(float(terms["task"]))


def test_mmsa_layout_mixes_samples_time_layout_does_not():
    bundle = make_bundle()
    b = bundle.splits["test"].take(torch.arange(6))
    b2 = dataclasses.replace(b, text=b.text.clone())
    b2.text[3] += 1.0  # change sample 3 only
    for layout, mixes in (("mmsa", True), ("time", False)):
        torch.manual_seed(0)
        model = MCTN(MCTNHParams(hid_dim=4, seq_layout=layout), bundle.info()).eval()
        with torch.no_grad():
            p1, p2 = model(b)["pred"], model(b2)["pred"]
        assert not torch.allclose(p1[3], p2[3])
        others = torch.tensor([0, 1, 2, 4, 5])
        assert torch.allclose(p1[others], p2[others]) is not mixes, layout


def test_gradient_paths():
    bundle = make_bundle()
    model = MCTN(MCTNHParams(hid_dim=4), bundle.info())
    b = bundle.splits["train"].take(torch.arange(8))

    def grads(loss_key):
        model.zero_grad(set_to_none=True)
        model.loss_terms(model(b), b)[loss_key].backward()
        return {name: any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in mod.parameters())
                for name, mod in model.named_children()}

    assert all(grads("total").values())
    task = grads("task")  # the prediction reads text only: text -> encoder1 -> encoder2 -> regression
    assert task["encoder1"] and task["encoder2"] and task["regression"]
    assert not (task["decoder1"] or task["decoder2"] or task["attn1"] or task["attn2"])
    audio = grads("recon_audio")
    assert audio["decoder2"] and audio["encoder2"] and audio["encoder1"] and not audio["regression"]
    text = grads("recon_text")  # the back-translation trains seq2seq1 only
    assert text["decoder1"] and text["encoder1"] and not (text["encoder2"] or text["regression"])


def test_after_step_clips_gradient_norm():
    bundle = make_bundle()
    model = MCTN(MCTNHParams(hid_dim=4, grad_clip_norm=0.01), bundle.info())
    b = bundle.splits["train"].take(torch.arange(8))
    out = model(b)
    (100 * model.loss_terms(out, b)["total"]).backward()
    norm = lambda: float(torch.norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None])))  # noqa: E731
    assert norm() > 0.01
    model.after_step(out, b, 1)
    assert norm() == pytest.approx(0.01, rel=1e-4)


@pytest.mark.parametrize("layout", ["time"])  # the default "mmsa" layout: tests/test_method_contract.py
def test_trains_and_beats_constant_on_learnable_toy_data(layout):
    bundle = make_bundle(sizes=(128, 32, 32))
    hp = MCTNHParams(hid_dim=8, seq_layout=layout, learning_rate=1e-2, batch_size=16, max_epochs=10, early_stop=10)
    out = train(MCTN, hp, bundle, seed=1111)
    assert_beats_constant(out, bundle)


def test_unaligned_synthetic_data_is_refused_through_cli(tmp_path, capsys):
    code = main(["run", "--method", "mctn", "--dataset", "synthetic-mosi", "--setting", "unaligned", "--seeds", "1111",
                 "--epochs", "1", "--out", str(tmp_path), "--quiet", *SMALL])
    assert code == 2 and "need_data_aligned" in capsys.readouterr().err


@pytest.mark.slow
def test_trains_on_mosi229_through_cli(tmp_path, capsys):
    root = shared_data("mosi229")
    code = main(["run", "--method", "mctn", "--dataset", "mosi", "--setting", "unaligned", "--data-root", str(root),
                 "--seeds", "1111", "--epochs", "1", "--out", str(tmp_path), "--quiet", *SMALL,
                 "--set", "unaligned_input=truncate"])
    assert code == 0, capsys.readouterr().err
    r = json.loads(next(tmp_path.glob("runs/mctn/mosi-unaligned/*/seed-1111/result.json")).read_text())
    assert r["data"]["sizes"] == {"train": 139, "valid": 47, "test": 43} and r["data"]["standard"] is False
    assert 0 < r["test"]["mae"] < 3
