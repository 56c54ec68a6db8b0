"""MAG-BERT: parameter counts by hand, the gate and the aligners by hand, the injection point, gradient
paths, the AdamW/warm-up emulation, learning, determinism and end-to-end CLI runs."""

import dataclasses
import json
import math

import pytest
import torch
from torch import nn

from baselines.mag_bert import (
    MAG,
    NO_DECAY,
    AlignNet,
    CTCAlign,
    MAGBert,
    avg_pool_align,
    hf_adamw_group_values,
    linear_warmup_factor,
)
from bench.config import apply_overrides
from bench.describe import canonical_info, count_groups
from bench.errors import UserError
from bench.train.trainer import train
from tests.baselines.helpers import linear_params as _linear
from tests.baselines.helpers import meta_counts
from tests.toy import make_bundle


def _lstm2(d_in, h):  # nn.LSTM(d_in, h, num_layers=2): two layers, each 4h(in + h) + 2·4h
    return 4 * h * (d_in + h) + 8 * h + 4 * h * (h + h) + 8 * h


def _tiny_config(vocab=30522, hidden=16, layers=2):
    from transformers import BertConfig

    return BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                      intermediate_size=2 * hidden, vocab_size=vocab, max_position_embeddings=64)


def _saved_bert(tmp_path_factory, name, config):
    from transformers import BertModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp(name)
    BertModel(config).save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    """A tiny random BERT saved as a local folder (bert-base vocabulary size, so any token id fits):
    what ``--set text_model=PATH`` loads through ``from_pretrained(local_files_only=True)``."""
    return _saved_bert(tmp_path_factory, "tiny-bert", _tiny_config())


@pytest.fixture(scope="module")
def toy_bert_dir(tmp_path_factory):
    """Vocabulary 200 (the toy token ids), width 32: small enough to train in a few seconds."""
    return _saved_bert(tmp_path_factory, "toy-bert", _tiny_config(vocab=200, hidden=32))


# ------------------------------------------------------------------------------ parameter counts
def _meta_model(family, setting, **over):
    hp = dataclasses.replace(MAGBert.default_hparams(family, setting), text_model="random:bert-base-uncased",
                             **over)
    with torch.device("meta"):
        return MAGBert(hp, canonical_info(family, setting))


BERT_BASE = 109_482_240  # bert-base-uncased with pooler


def test_parameter_count_mintrec_by_hand():
    c = count_groups(_meta_model("mintrec", "unaligned"), MAGBert.describe_groups())
    d_t, d_a, d_v, length = 768, 768, 256, 30  # MIntRec data/__init__.py feat_dims, max text length
    mag = (_linear(d_v + d_t, d_t) + _linear(d_a + d_t, d_t) + _linear(d_v, d_t) + _linear(d_a, d_t)
           + 2 * d_t)
    assert mag == 2_757_120
    assert c["bert"] == BERT_BASE and c["mag"] == mag
    assert c["align_audio_vision"] == _lstm2(d_a, length + 1) + _lstm2(d_v, length + 1) == 151_032
    assert c["align_text_unused"] == _lstm2(d_t, length + 1) == 107_260  # MIntRec's ctc_t, never run
    assert c["classifier"] == _linear(d_t, 20)
    assert c["total"] == BERT_BASE + mag + 151_032 + 107_260 + 15_380 == 112_513_032
    assert "other" not in c
    lean = count_groups(_meta_model("mintrec", "unaligned", build_unused=False), MAGBert.describe_groups())
    assert lean["total"] == 112_513_032 - 107_260


@pytest.mark.parametrize("family,d_a,d_v,total", [("mosi", 5, 20, 110_705_665), ("mosei", 74, 35, 110_834_689)])
def test_parameter_count_mmsa_aligned_by_hand(family, d_a, d_v, total):
    """MMSA's BERT_MAG (aligned data, no aligner): BertModel + MAG + Linear(768, 1)."""
    c = count_groups(_meta_model(family, "aligned"), MAGBert.describe_groups())
    d_t = 768
    mag = (_linear(d_v + d_t, d_t) + _linear(d_a + d_t, d_t) + _linear(d_v, d_t) + _linear(d_a, d_t)
           + 2 * d_t)
    assert (c["bert"], c["mag"], c["classifier"]) == (BERT_BASE, mag, 769)
    assert c["total"] == BERT_BASE + mag + 769 == total
    assert c["align_audio_vision"] == 0 and c["align_text_unused"] == 0


def test_parameter_count_mosi_unaligned_adds_ctc():
    c = count_groups(_meta_model("mosi", "unaligned"), MAGBert.describe_groups())
    assert c["align_audio_vision"] == _lstm2(5, 51) + _lstm2(20, 51)  # audio 375 / vision 500 -> text 50
    assert c["align_text_unused"] == _lstm2(768, 51)
    assert c["total"] == 110_705_665 + _lstm2(5, 51) + _lstm2(20, 51) + _lstm2(768, 51) == 110_963_521


def test_describe_reads_only_the_local_config_on_the_meta_device(tiny_bert_dir):
    hp = dataclasses.replace(MAGBert.default_hparams("mosi", "aligned"), text_model=str(tiny_bert_dir))
    _, c = meta_counts(MAGBert, "mosi", "aligned", hp=hp)
    d_t = 16  # the tiny config's width
    assert c["mag"] == _linear(20 + d_t, d_t) + _linear(5 + d_t, d_t) + _linear(20, d_t) + _linear(5, d_t) + 2 * d_t
    assert c["classifier"] == _linear(d_t, 1)
    missing = dataclasses.replace(hp, text_model=str(tiny_bert_dir / "nope"))
    with torch.device("meta"), pytest.raises(UserError, match="random:bert-base-uncased"):
        MAGBert(missing, canonical_info("mosi", "aligned"))


# ------------------------------------------------------------------------------ defaults
def test_defaults_follow_references():
    hp = MAGBert.default_hparams("mintrec", "unaligned")  # thuiar/MIntRec configs/mag_bert_tune.py
    assert (hp.batch_size, hp.eval_batch_size, hp.learning_rate, hp.weight_decay) == (16, 8, 2e-5, 0.03)
    assert (hp.beta_shift, hp.dropout_prob, hp.warmup_proportion, hp.max_epochs) == (0.005, 0.5, 0.1, 100)
    assert (hp.early_stop, hp.select_on, hp.align_method, hp.injection_index) == (8, "f1", "ctc", 0)
    assert (hp.optimizer, hp.adam_bias_correction, hp.adam_eps, hp.lr_schedule) == \
        ("adamw_hf", False, 1e-6, "warmup_linear")
    mosi = MAGBert.default_hparams("mosi", "aligned")  # MMSA config_regression.json bert_mag
    assert (mosi.batch_size, mosi.learning_rate, mosi.beta_shift, mosi.dropout_prob, mosi.weight_decay) == \
        (32, 2e-5, 1.0, 0.3, 0.0)
    assert (mosi.early_stop, mosi.max_epochs, mosi.select_on, mosi.val_loss) == (8, 0, "loss", "batch_mean_4dp")
    assert (mosi.optimizer, mosi.lr_schedule, mosi.adam_eps, mosi.align_method) == ("adam", "constant", 1e-8, "none")
    mosei = MAGBert.default_hparams("mosei", "unaligned")
    assert (mosei.batch_size, mosei.learning_rate, mosei.dropout_prob, mosei.align_method) == (32, 1e-5, 0.2, "ctc")
    assert MAGBert.default_setting == "aligned"
    with pytest.raises(UserError, match="needs a BERT"):
        apply_overrides(hp, {"text_model": ""})
    with pytest.raises(UserError, match="injection_index"):
        apply_overrides(hp, {"injection_index": "-1"})


def test_aligned_mmsa_config_refuses_unaligned_data():
    hp = dataclasses.replace(MAGBert.default_hparams("mosi", "aligned"), text_model="random:bert-base-uncased")
    with torch.device("meta"), pytest.raises(UserError, match="align_method"):
        MAGBert(hp, canonical_info("mosi", "unaligned"))


# ------------------------------------------------------------------------------ the gate by hand
def _hand_mag(beta):
    """d_text 3, d_audio 1, d_vision 1 with hand-set weights (see the numbers in the test)."""
    mag = MAG(3, 1, 1, beta_shift=beta, dropout=0.0)
    with torch.no_grad():
        for lin in (mag.W_hv, mag.W_ha, mag.W_v, mag.W_a):
            lin.weight.zero_()
            lin.bias.zero_()
        mag.W_hv.weight[0, 0] = 1.0  # g_v[0] = relu(v)      (input order [v; z])
        mag.W_hv.bias[1] = 0.5  # g_v[1] = 0.5
        mag.W_ha.weight[1, 0] = 1.0  # g_a[1] = relu(a)      (input order [a; z])
        mag.W_ha.bias[0] = 0.5  # g_a[0] = 0.5
        mag.W_ha.weight[2, 3] = 1.0  # g_a[2] = relu(z[2])
        mag.W_v.weight[0, 0] = 1.0  # W_v v = [v, 0, 0]
        mag.W_a.weight[1, 0] = 1.0  # W_a a = [0, a, 0]
        mag.W_a.bias[2] = 1.0  # W_a a = [0, a, 1]
    return mag.eval()


def _layer_norm(x, eps=1e-5):
    mu = sum(x) / len(x)
    var = sum((e - mu) ** 2 for e in x) / len(x)
    return [(e - mu) / math.sqrt(var + eps) for e in x]


def test_mag_gate_by_hand():
    z = torch.tensor([[2.0, 3.0, 6.0]])  # |Z| = 7
    v, a = torch.tensor([[1.0]]), torch.tensor([[2.0]])
    # g_v = [1, 0.5, 0], g_a = [0.5, 2, 6]; W_v v = [1, 0, 0], W_a a = [0, 2, 1]
    # H = g_v*W_v v + g_a*W_a a = [1, 4, 6], |H| = sqrt(53)
    h = [1.0, 4.0, 6.0]
    mag = _hand_mag(beta=0.5)
    with torch.no_grad():
        alpha, shift = mag.shift(z, v, a)
    assert shift[0].tolist() == h
    want_alpha = 7 / (math.sqrt(53) + 1e-6) * 0.5  # 0.4807... < 1
    assert float(alpha) == pytest.approx(want_alpha, rel=1e-6)
    with torch.no_grad():
        out, alpha_out = mag(z, v, a)
    pre = [zi + want_alpha * hi for zi, hi in zip([2.0, 3.0, 6.0], h)]
    assert out[0].tolist() == pytest.approx(_layer_norm(pre), abs=1e-5)
    assert float(alpha_out) == pytest.approx(want_alpha, rel=1e-6)
    # beta large: the threshold 7/sqrt(53)*2 = 1.92 is clipped to 1 -> Z + H
    with torch.no_grad():
        out, alpha_out = _hand_mag(beta=2.0)(z, v, a)
    assert float(alpha_out) == 1.0
    assert out[0].tolist() == pytest.approx(_layer_norm([3.0, 7.0, 12.0]), abs=1e-5)


def test_mag_zero_shift_uses_unit_norm_and_keeps_gradients_finite():
    mag = _hand_mag(beta=0.5)
    z = torch.tensor([[-2.0, 3.0, -6.0]], requires_grad=True)  # g_a[2] = relu(-6) = 0
    v, a = torch.tensor([[0.0]]), torch.tensor([[0.0]])  # g_v W_v v = 0, g_a W_a a = [0, 0, 0]
    with torch.no_grad():
        alpha, shift = mag.shift(z, v, a)
    assert shift.abs().sum() == 0
    # ||H|| = 0 is replaced by 1: alpha = min(7 / (1 + 1e-6) * 0.5, 1) = 1, and Z' = LayerNorm(Z)
    assert float(alpha) == 1.0
    out, _ = mag(z, v, a)
    assert out[0].tolist() == pytest.approx(_layer_norm([-2.0, 3.0, -6.0]), abs=1e-5)
    out.sum().backward()
    assert torch.isfinite(z.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in mag.parameters() if p.grad is not None)


def test_mag_dropout_after_layer_norm():
    mag = MAG(4, 2, 3, beta_shift=1.0, dropout=0.5).train()
    torch.manual_seed(0)
    z, v, a = torch.randn(64, 4), torch.randn(64, 3), torch.randn(64, 2)
    out, _ = mag(z, v, a)
    mag.eval()
    ref, _ = mag(z, v, a)
    kept = out != 0
    assert 0.3 < kept.float().mean() < 0.7
    assert torch.allclose(out[kept], 2 * ref[kept])  # inverted dropout on LayerNorm(Z + alpha H)


# ------------------------------------------------------------------------------ aligners by hand
def test_ctc_align_uniform_positions_by_hand():
    ctc = CTCAlign(2, out_len=2)
    for p in ctc.parameters():
        nn.init.zeros_(p)  # all LSTM outputs 0 -> softmax uniform 1/3 over (blank, pos 1, pos 2)
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    out = ctc(x)
    assert out.shape == (1, 2, 2)
    # each output position = sum_t (1/3) x_t (the blank's third of the mass is dropped, not renormalised)
    assert out.flatten().tolist() == pytest.approx([3.0, 4.0, 3.0, 4.0], abs=1e-6)


def test_ctc_align_is_softmax_without_blank_times_input():
    torch.manual_seed(0)
    ctc = CTCAlign(3, out_len=4)
    x = torch.randn(2, 7, 3)
    logits, _ = ctc.position_lstm(x)
    p = torch.softmax(logits, dim=2)[:, :, 1:]  # (B, T, L)
    want = torch.einsum("btl,btd->bld", p, x)
    assert torch.allclose(ctc(x), want, atol=1e-6)


def test_avg_pool_align_by_hand():
    x = torch.arange(5.0).reshape(1, 5, 1)  # frames 0..4, target length 2 -> pad one copy of frame 4
    # MIntRec view(B, pool=3, L=2): rows (0,1), (2,3), (4,4); mean over rows -> [(0+2+4)/3, (1+3+4)/3]
    assert avg_pool_align(x, 2, "strided").flatten().tolist() == pytest.approx([2.0, 8 / 3])
    # MMSA view(B, L=2, pool=3): windows (0,1,2), (3,4,4)
    assert avg_pool_align(x, 2, "windows").flatten().tolist() == pytest.approx([1.0, 11 / 3])
    y = torch.arange(6.0).reshape(1, 6, 1)  # divisible: no padding
    assert avg_pool_align(y, 3, "strided").flatten().tolist() == pytest.approx([1.5, 2.5, 3.5])
    assert avg_pool_align(y, 3, "windows").flatten().tolist() == pytest.approx([0.5, 2.5, 4.5])
    assert avg_pool_align(y, 6) is y


def test_aligner_skips_modalities_already_at_the_text_length():
    net = AlignNet("conv1d", 4, {"text": 3, "audio": 2, "vision": 5}, {"text": 4, "audio": 4, "vision": 9},
                   build_text=True)
    a = torch.randn(2, 4, 2)
    assert net.align("audio", a) is a
    v = torch.randn(2, 9, 5)
    assert net.align("vision", v).shape == (2, 4, 5)
    assert sum(p.numel() for p in net.parameters()) == 4 * 4 + 4 * 4 + 9 * 4  # 1x1 convs over time, no bias


# ------------------------------------------------------------------------------ toy data
def _toy_bundle(sizes=(128, 48, 48), seed=0):
    """Four intents whose label lives only in the audio (tests/toy.py, signal="audio"); text ids are noise."""
    bundle = make_bundle("unaligned", sizes=sizes, seed=seed, family="mintrec", num_classes=4, dims=(8, 3, 4),
                         lens=(6, 10, 8), signal=("audio",), strength=4.0)
    splits = {k: dataclasses.replace(s, text=None) for k, s in bundle.splits.items()}
    return dataclasses.replace(bundle, splits=splits)


def _tiny_model(bundle, **over):
    hp = dataclasses.replace(MAGBert.default_hparams("mintrec", "unaligned"), **over)
    torch.manual_seed(0)
    return MAGBert(hp, bundle.info(), bert_config=_tiny_config(vocab=200, hidden=16, layers=2))


# ------------------------------------------------------------------------------ injection and gradients
@pytest.mark.parametrize("k", [0, 1, 2])
def test_injection_replaces_the_hidden_state_after_layer_k(k):
    bundle = _toy_bundle()
    model = _tiny_model(bundle, injection_index=k, beta_shift=1.0).eval()
    batch = bundle.train.take(torch.arange(5))
    ids, mask, tt = batch.text_bert[:, 0], batch.text_bert[:, 1].float(), batch.text_bert[:, 2]
    with torch.no_grad():
        plain = model.bert(input_ids=ids, attention_mask=mask, token_type_ids=tt, output_hidden_states=True)
        vision, audio = model.aligned_nonverbal(batch)
        want, _ = model.mag(plain.hidden_states[k], vision, audio)  # hidden_states[0] = embedding output
        seen = {}
        if k < 2:  # the input of the next encoder layer is MAG's output
            hook = model.bert.encoder.layer[k].register_forward_pre_hook(
                lambda _m, args: seen.__setitem__("x", args[0]))
        else:  # after the last layer: the pooler reads MAG's output
            hook = model.bert.pooler.register_forward_pre_hook(lambda _m, args: seen.__setitem__("x", args[0]))
        out = model(batch)
        hook.remove()
    assert torch.allclose(seen["x"], want, atol=1e-5)
    assert not torch.allclose(want, plain.hidden_states[k], atol=1e-3)  # the gate did shift Z
    # the hook is removed after every forward: plain BERT afterwards is plain again
    with torch.no_grad():
        again = model.bert(input_ids=ids, attention_mask=mask, token_type_ids=tt).last_hidden_state
    assert torch.allclose(again, plain.last_hidden_state)
    assert out["pred"].shape == (5, 4) and out["alpha"].shape == (5,)


def test_gradient_reaches_bert_below_the_injection_layer():
    bundle = _toy_bundle()
    model = _tiny_model(bundle, injection_index=1).train()
    batch = bundle.train.take(torch.arange(8))
    loss = model.loss_terms(model(batch), batch)["total"]
    params = dict(model.named_parameters())
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()), allow_unused=True)))
    nonzero = {n for n, g in grads.items() if g is not None and g.abs().sum() > 0}
    assert "bert.embeddings.word_embeddings.weight" in nonzero  # below the injection point
    assert any(n.startswith("bert.encoder.layer.0.") for n in nonzero)
    assert any(n.startswith("bert.encoder.layer.1.") for n in nonzero)
    assert {"mag.W_hv.weight", "mag.W_ha.weight", "mag.W_v.weight", "mag.W_a.weight", "mag.LayerNorm.weight",
            "classifier.weight", "bert.pooler.dense.weight"} <= nonzero
    assert any(n.startswith("align.ctc_audio.") for n in nonzero)
    assert any(n.startswith("align.ctc_vision.") for n in nonzero)
    assert not any(n.startswith("align.ctc_text.") for n in nonzero)  # built as in MIntRec, never run


def test_task_loss_is_cross_entropy_and_l1():
    bundle = _toy_bundle()
    model = _tiny_model(bundle).eval()
    batch = bundle.train.take(torch.arange(6))
    out = model(batch)
    assert torch.allclose(model.loss_terms(out, batch)["total"],
                          torch.nn.functional.cross_entropy(out["pred"], batch.labels))


# ------------------------------------------------------------------------------ optimiser
def test_no_decay_groups_follow_the_mintrec_name_rule():
    with torch.device("meta"):
        model = _meta_model("mintrec", "unaligned")
    groups = model.param_groups()
    names = {id(p): n for n, p in model.named_parameters()}
    assert [g["weight_decay"] > 0 for g in groups] == [True, False]
    assert all(not any(k in names[id(p)] for k in NO_DECAY) for p in groups[0]["params"])
    assert all(any(k in names[id(p)] for k in NO_DECAY) for p in groups[1]["params"])
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    no_decay = {names[id(p)] for p in groups[1]["params"]}
    assert {"mag.LayerNorm.weight", "mag.W_hv.bias", "bert.embeddings.LayerNorm.weight",
            "align.ctc_audio.position_lstm.bias_ih_l0"} <= no_decay
    assert all(g["decoupled_weight_decay"] for g in groups)


def test_linear_warmup_factor_matches_transformers_formula():
    assert [linear_warmup_factor(s, 4, 12) for s in (0, 1, 4, 8, 12, 20)] == [0.0, 0.25, 1.0, 0.5, 0.0, 0.0]
    # MIntRec: 1334 training samples, batch 16, 100 epochs -> int(1334/16)*100 = 8300 steps, int(833.75) warm-up
    hp = MAGBert.default_hparams("mintrec", "unaligned")
    with torch.device("meta"):
        model = _meta_model("mintrec", "unaligned")
    assert hp.max_epochs == 100 and model.schedule_steps(1334) == (8300, 833)


def _hf_adamw_run(correct_bias, wd, decay_first, steps=25, base_lr=0.05, eps=1e-6, betas=(0.9, 0.999)):
    """transformers' AdamW written out on a toy quadratic under a linear warm-up: p -= lr·s·m/(sqrt(v)+eps),
    then p -= lr·wd·p (``decay_first`` swaps the two, as torch's decoupled Adam orders them)."""
    target, scale = torch.tensor([1.0, -2.0, 3.0, 0.5]), torch.tensor([1.0, 10.0, 0.1, 3.0])
    p, m, v = torch.zeros(4), torch.zeros(4), torch.zeros(4)
    for step in range(steps):
        lr = base_lr * linear_warmup_factor(step, 5, steps)
        g = 2 * (p - target) * scale
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        t = step + 1
        s = math.sqrt(1 - betas[1] ** t) / (1 - betas[0] ** t) if correct_bias else 1.0
        if decay_first:
            p = p - lr * wd * p
        p = p - lr * s * m / (v.sqrt() + eps)
        if not decay_first:
            p = p - lr * wd * p
    return p


def _torch_emulated_run(correct_bias, wd, steps=25, base_lr=0.05, eps=1e-6):
    target, scale = torch.tensor([1.0, -2.0, 3.0, 0.5]), torch.tensor([1.0, 10.0, 0.1, 3.0])
    p = torch.zeros(4, requires_grad=True)
    opt = torch.optim.Adam([{"params": [p], "lr": 0.0, "eps": eps, "weight_decay": wd,
                             "decoupled_weight_decay": True}])
    group = opt.param_groups[0]
    for step in range(steps):
        lr = base_lr * linear_warmup_factor(step, 5, steps)
        group["lr"], group["eps"], group["weight_decay"] = hf_adamw_group_values(lr, eps, wd, step + 1,
                                                                                 correct_bias)
        opt.zero_grad()
        ((p - target) ** 2 * scale).sum().backward()
        opt.step()
    return p.detach()


@pytest.mark.parametrize("correct_bias", [False, True])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_torch_adam_emulates_transformers_adamw(correct_bias, wd):
    got = _torch_emulated_run(correct_bias, wd)
    # exact up to float rounding when the decay is ordered as torch orders it
    assert torch.allclose(got, _hf_adamw_run(correct_bias, wd, decay_first=True), atol=1e-6)
    # transformers decays after the update: the gap is at most steps · lr · wd · |update|, and an
    # uncorrected update is at most ~6.6 lr here (bc1/sqrt(bc2) peaks near t = 10)
    gap = 25 * 0.05 * wd * 0.05 * 6.6
    assert torch.allclose(got, _hf_adamw_run(correct_bias, wd, decay_first=False), atol=gap + 1e-6)
    if wd:  # and the decay really acts
        assert not torch.allclose(got, _torch_emulated_run(correct_bias, 0.0), atol=1e-3)


def test_uncorrected_adamw_takes_larger_early_steps():
    """correct_bias=False (MIntRec) = torch's Adam step scaled by bc1/sqrt(bc2): x3.16 at t=1, x6.5 at t=10."""
    lr1 = hf_adamw_group_values(1.0, 1e-6, 0.0, 1, False)[0]
    lr10 = hf_adamw_group_values(1.0, 1e-6, 0.0, 10, False)[0]
    assert lr1 == pytest.approx(0.1 / math.sqrt(0.001))
    assert lr10 == pytest.approx((1 - 0.9 ** 10) / math.sqrt(1 - 0.999 ** 10))
    assert hf_adamw_group_values(1.0, 1e-6, 0.0, 10, True)[0] == 1.0


def test_schedule_is_applied_through_the_shared_trainer(tiny_bert_dir):
    bundle = _toy_bundle(sizes=(40, 16, 16))
    hp = dataclasses.replace(MAGBert.default_hparams("mintrec", "unaligned"), text_model=str(tiny_bert_dir),
                             max_epochs=2, batch_size=8, eval_batch_size=8, learning_rate=1e-3)
    out = train(MAGBert, hp, bundle, seed=1)
    steps_per_epoch = 5  # ceil(40 / 8): the trainer, like MIntRec's DataLoader, keeps the last batch
    total, warmup = int(40 / 8) * 2, int(40 * 2 * 0.1 / 8)  # 10, 1
    assert out.n_optimizer_steps == 2 * steps_per_epoch
    rec = out.model_record
    assert (rec["schedule_total_steps"], rec["schedule_warmup_steps"]) == (total, warmup)
    for epoch, row in enumerate(out.history, start=1):
        k = epoch * steps_per_epoch - 1  # the last optimiser step of the epoch (0-based)
        lr_eff = 1e-3 * linear_warmup_factor(k, warmup, total)
        assert row["lr"] == pytest.approx(hf_adamw_group_values(lr_eff, 1e-6, 0.03, k + 1, False)[0])
    assert rec["last_step"]["step"] == 9  # 10 steps run = the schedule's length (lr 1/9 of the peak)


@pytest.mark.parametrize("drop_tail,steps", [(False, 6), (True, 4)])
def test_schedule_counts_optimiser_steps_under_accumulation(tiny_bert_dir, drop_tail, steps):
    """5 batches per epoch, 2 per step: 3 steps (tail stepped) or 2 (tail dropped, as MMSA) per epoch."""
    bundle = _toy_bundle(sizes=(40, 16, 16))
    hp = dataclasses.replace(MAGBert.default_hparams("mintrec", "unaligned"), text_model=str(tiny_bert_dir),
                             max_epochs=2, batch_size=8, grad_accum=2, grad_accum_drop_tail=drop_tail)
    out = train(MAGBert, hp, bundle, seed=1)
    assert out.n_optimizer_steps == steps
    # the values set by the last backward are those of step index ``steps - 1`` when that batch is stepped;
    # a dropped tail computes the values of the next (never taken) step, index ``steps``
    assert out.model_record["last_step"]["step"] == (steps if drop_tail else steps - 1)


def test_after_step_refuses_an_optimiser_that_copied_the_groups():
    bundle = _toy_bundle()
    model = _tiny_model(bundle)
    model.param_groups()  # never handed to an optimiser
    model.on_epoch_start(1, bundle.train)
    with pytest.raises(UserError, match="scheduler hook"):
        model.after_step({}, bundle.train, 1)


# ------------------------------------------------------------------------------ learning, determinism
def test_learns_the_audio_label_through_the_gate(toy_bert_dir):
    """The toy label is only in the audio, so the classifier can only read it through MAG's shift."""
    bundle = _toy_bundle(sizes=(96, 48, 48))
    base = dict(learning_rate=2e-3, lr_schedule="constant", dropout_prob=0.1, max_epochs=4, batch_size=16,
                early_stop=4)
    hp = dataclasses.replace(MAGBert.default_hparams("mintrec", "unaligned"), text_model=str(toy_bert_dir),
                             beta_shift=1.0, **base)
    out = train(MAGBert, hp, bundle, seed=1)
    majority = float(torch.bincount(bundle.splits["test"].labels).max()) / len(bundle.splits["test"])
    assert out.test["acc"] > majority + 0.3, (out.test, majority)
    # beta_shift = 0 closes the gate (alpha = 0): the same budget stays near chance
    closed = train(MAGBert, dataclasses.replace(hp, beta_shift=0.0), bundle, seed=1)
    assert closed.test["acc"] < majority + 0.15
    assert float(closed.test_outputs["alpha"].max()) == 0.0


# ------------------------------------------------------------------------------ end to end
def _cli(tmp_path, capsys, *args):
    from bench.cli import main

    code = main(["run", "--method", "mag_bert", "--seeds", "1111", "--epochs", "2", "--out", str(tmp_path),
                 "--quiet", "--threads", "1", *args])
    assert code == 0, capsys.readouterr().err
    return json.loads(next(tmp_path.glob("runs/mag_bert/*/*/seed-1111/result.json")).read_text())


def test_cli_real_mintrec_layout(tmp_path, capsys, tiny_bert_dir, monkeypatch):
    """The real MIntRec loader on a small root in the official layout (tests/data/conftest.py writers)."""
    from bench.data.mintrec import LABEL_NAMES
    from tests.data.conftest import MINTREC_HEADER, mintrec_rows, small_tsv_rows, write_mintrec_features, write_vocab

    root = tmp_path / "root"
    (root / "MIntRec").mkdir(parents=True)
    keys = []
    for split, fname, n in (("train", "train.tsv", 24), ("dev", "dev.tsv", 8), ("test", "test.tsv", 8)):
        path = root / "MIntRec" / fname
        path.write_text(MINTREC_HEADER + "\n".join(small_tsv_rows(split, n, LABEL_NAMES)) + "\n", encoding="utf-8")
        keys += mintrec_rows(path)
    write_mintrec_features(root, keys)
    monkeypatch.setenv("BENCH_TOKENIZER", str(write_vocab(tmp_path / "vocab.txt")))
    out = tmp_path / "out"
    r = _cli(out, capsys, "--dataset", "mintrec", "--data-root", str(root), "--set", f"text_model={tiny_bert_dir}")
    assert r["data"]["source"] == "real" and r["data"]["sizes"] == {"train": 24, "valid": 8, "test": 8}
    assert r["selection"]["epochs_run"] == 2 and r["model"]["align_method"] == "ctc"
    assert r["model"]["schedule_total_steps"] == int(24 / 16) * 2


@pytest.mark.slow
def test_cli_mosi229_unaligned(tmp_path, capsys, tiny_bert_dir):
    from tests.conftest import shared_data

    root = shared_data("mosi229")
    r = _cli(tmp_path, capsys, "--dataset", "mosi", "--setting", "unaligned", "--data-root", str(root),
             "--set", f"text_model={tiny_bert_dir}")
    assert r["data"]["sizes"] == {"train": 139, "valid": 47, "test": 43} and r["data"]["standard"] is False
    assert r["model"]["align_method"] == "ctc" and math.isfinite(r["test"]["mae"])
