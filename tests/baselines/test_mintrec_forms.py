"""MulT and MISA in their thuiar/MIntRec form (family ``mintrec``, EMOE Table 3; docs/baselines.md).

Defaults against configs/mult_bert.py / configs/misa_bert.py and the two managers, parameter counts by
hand on the published MIntRec shapes, MISA's gradient-reversal discriminator loss by hand, the
ExponentialLR-on-no-improvement schedule, gradient paths, training through the shared trainer and
end-to-end CLI runs on ``synthetic-mintrec`` with a tiny random BERT saved to disk.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from baselines.misa import MISA, domain_loss, grad_reverse
from baselines.mult import MulT
from bench.config import apply_overrides
from bench.describe import canonical_info, describe
from bench.errors import UserError
from bench.nn.bert import RANDOM_BERT_BASE
from bench.runner import resolve_hparams
from bench.train.trainer import train
from tests.baselines.helpers import meta_counts

BERT_BASE = 109_482_240  # bert-base-uncased with its (unused) pooler: MIntRec's BertModel(config) keeps it
MULT_TINY = dict(d_model=8, num_heads=2, nlevels=1, conv_kernel_l=3)
MISA_TINY = dict(hidden_size=16)


def _lin(i, o):
    return i * o + o


def _tiny_bert_config(vocab=200):
    from transformers import BertConfig

    return BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                      vocab_size=vocab, max_position_embeddings=64)


def _subset(n=(96, 48, 48), name="synthetic-mintrec"):
    from bench.data import load_dataset

    bundle = load_dataset(name, "unaligned")
    splits = {k: s.take(torch.arange(m)) for (k, s), m in zip(bundle.splits.items(), n, strict=True)}
    return dataclasses.replace(bundle, splits=splits)


def _small_vocab(bundle, vocab=200):
    """Token ids folded into a tiny vocabulary (for the in-memory tiny BERT)."""
    def fold(s):
        tb = s.text_bert.clone()
        tb[:, 0] = tb[:, 0] % vocab
        return dataclasses.replace(s, text_bert=tb)
    return dataclasses.replace(bundle, splits={k: fold(s) for k, s in bundle.splits.items()})


# ------------------------------------------------------------------------------ defaults vs the MIntRec configs
def test_mult_defaults_are_mintrec_mult_bert():
    hp = MulT.default_hparams("mintrec", "unaligned")
    # configs/mult_bert.py hyper_parameters
    assert (hp.d_model, hp.num_heads, hp.nlevels) == (120, 8, 8)
    assert (hp.attn_dropout, hp.attn_dropout_v, hp.attn_dropout_a) == (0.0, 0.2, 0.2)
    assert (hp.relu_dropout, hp.embed_dropout, hp.res_dropout) == (0.0, 0.1, 0.0)
    assert (hp.output_dropout, hp.text_dropout, hp.attn_mask) == (0.2, 0.4, True)
    assert (hp.conv_kernel_l, hp.conv_kernel_v, hp.conv_kernel_a) == (5, 1, 1)
    assert (hp.learning_rate, hp.grad_clip_value, hp.max_epochs) == (3e-5, 0.5, 100)
    # common_parameters: eval_monitor f1, batches 16/8/8, wait_patience 8
    assert (hp.select_on, hp.batch_size, hp.eval_batch_size, hp.early_stop) == ("f1", 16, 8, 8)
    # methods/MULT/manager.py: Adam(lr) without decay, zero_grad every batch, ReduceLROnPlateau(min, 0.1,
    # patience=wait_patience) on the AverageMeter (per-sample mean) dev loss
    assert (hp.grad_accum, hp.plateau_patience, hp.plateau_factor, hp.val_loss) == (1, 8, 0.1, "sample_mean")
    assert hp.apply_weight_decay is False and hp.weight_decay == 0.0
    # BERTEncoder (fine-tuned) text; MIntRec's transformer always adds sinusoidal positions
    assert (hp.text_mode, hp.text_finetune, hp.use_position_embedding) == ("bert", True, True)
    assert (hp.hparams_era, hp.defaults_from) == ("current", "mintrec/current")
    # MOSI/MOSEI untouched: frozen features, no positions, loss selection
    mosi = MulT.default_hparams("mosi", "unaligned")
    assert (mosi.text_mode, mosi.use_position_embedding, mosi.select_on, mosi.max_epochs) == (
        "features", False, "loss", 0)


def test_misa_defaults_are_mintrec_misa_bert():
    hp = MISA.default_hparams("mintrec", "unaligned")
    # configs/misa_bert.py hyper_parameters
    assert (hp.similarity, hp.reverse_grad_weight, hp.hidden_size, hp.dropout) == ("adversarial", 0.8, 256, 0.1)
    assert (hp.diff_weight, hp.sim_weight, hp.recon_weight) == (0.7, 0.7, 0.6)
    assert (hp.learning_rate, hp.grad_clip_value, hp.lr_decay_gamma, hp.max_epochs) == (3e-5, 0.0, 0.5, 100)
    assert (hp.select_on, hp.batch_size, hp.eval_batch_size, hp.early_stop) == ("f1", 16, 8, 8)
    # methods/MISA/manager.py: zero_grad every batch, Adam without decay, no plateau scheduler
    assert (hp.grad_accum, hp.plateau_patience, hp.val_loss, hp.apply_weight_decay) == (1, 0, "sample_mean", False)
    assert (hp.text_mode, hp.lengths_from, hp.lstm_hh_init, hp.hparams_family) == ("bert", "text", "torch",
                                                                                   "mintrec")
    mosi = MISA.default_hparams("mosi", "unaligned")
    assert (mosi.similarity, mosi.lr_decay_gamma, mosi.select_on) == ("cmd", 0.0, "loss")


def test_mintrec_has_one_era_and_needs_a_text_model():
    for cls in (MulT, MISA):
        with pytest.raises(UserError, match="text_model=PATH"):
            resolve_hparams(cls, "mintrec", "unaligned", {})
        hp = resolve_hparams(cls, "mintrec", "unaligned", {"text_model": "/some/bert"})
        assert hp.text_model == "/some/bert"
        with pytest.raises(UserError, match="current"):
            apply_overrides(hp, {"hparams_era": "table2021"})
        with pytest.raises(UserError):
            cls.default_hparams("mintrec", "unaligned", era="table2021")
    # features mode stays available (the synthetic stand-in has frozen text features)
    hp = resolve_hparams(MulT, "mintrec", "unaligned", {"text_mode": "features"})
    assert hp.text_mode == "features"


def test_missing_text_model_is_one_line_error_on_the_cli(tmp_path, capsys):
    from bench.cli import main

    for method in ("mult", "misa"):
        code = main(["run", "--method", method, "--dataset", "synthetic-mintrec", "--epochs", "1",
                     "--out", str(tmp_path), "--quiet"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and "text_model=PATH" in err, err


# ------------------------------------------------------------------------------ parameter counts
def _mult_by_hand(d, kernels, dims, layers, classes):
    def encoder(w):
        return layers * (_lin(w, 3 * w) + _lin(w, w) + _lin(w, 4 * w) + _lin(4 * w, w) + 4 * w) + 2 * w

    conv = sum(dims[m] * d * kernels[m] for m in ("text", "audio", "vision"))
    head = 2 * _lin(6 * d, 6 * d) + _lin(6 * d, classes)
    return {"conv_proj": conv, "crossmodal": 6 * encoder(d), "memory": 3 * encoder(2 * d), "head": head}


def test_mult_parameter_counts_on_mintrec_shapes():
    from transformers import BertConfig

    info = canonical_info("mintrec", "unaligned")  # text 30 x 768 (BERT), audio 480 x 768, video 230 x 256
    hp = MulT.default_hparams("mintrec", "unaligned")
    model, counts = meta_counts(MulT, "mintrec", "unaligned", hp=hp, info=info, bert_config=BertConfig())
    hand = _mult_by_hand(120, {"text": 5, "audio": 1, "vision": 1}, {"text": 768, "audio": 768, "vision": 256},
                         layers=8, classes=20)
    assert hand == {"conv_proj": 583_680, "crossmodal": 8_370_720, "memory": 16_665_120, "head": 1_052_660}
    assert {k: counts[k] for k in hand} == hand
    assert counts["other"] == BERT_BASE  # the BERT text encoder (``text``), outside MMSA's four groups
    assert counts["total"] == sum(hand.values()) + BERT_BASE == 136_154_420
    assert model.conv_lengths() == {"text": 26, "audio": 480, "vision": 230}
    assert len(model.trans_l_mem.layers) == 8 and model.trans_l_with_a.position_embedding is True
    # the CLI's describe path: random:bert-base-uncased, no files
    hp_random = dataclasses.replace(hp, text_model=RANDOM_BERT_BASE)
    assert describe(MulT, hp_random, info)["parameters"]["total"] == 136_154_420


def _lstm(i, h):
    return 2 * (4 * h * (i + h) + 8 * h)  # bidirectional, two bias vectors


def test_misa_parameter_counts_on_mintrec_shapes():
    from transformers import BertConfig

    _, counts = meta_counts(MISA, "mintrec", "unaligned", bert_config=BertConfig())
    h, d_t, d_a, d_v = 256, 768, 768, 256

    def seq(d):  # rnn1, LayerNorm(2d), rnn2, projection Linear(4d, H) + LayerNorm(H)
        return _lstm(d, d) + 4 * d + _lstm(2 * d, d) + _lin(4 * d, h) + 2 * h

    hand = {
        "bert": BERT_BASE,
        "text_proj": _lin(d_t, h) + 2 * h + 4 * d_t,  # + MIntRec's unused tlayer_norm LayerNorm(2·768)
        "audio_encoder": seq(d_a),
        "vision_encoder": seq(d_v),
        "private_shared": 4 * _lin(h, h),
        "reconstruction": 3 * _lin(h, h),
        # nn.TransformerEncoderLayer(256, nhead 2): in/out projections, FFN 2048, two LayerNorms; MLP
        "fusion": (_lin(h, 3 * h) + _lin(h, h) + _lin(h, 2048) + _lin(2048, h) + 4 * h
                   + _lin(6 * h, 3 * h) + _lin(3 * h, 20)),
        "discriminator": _lin(h, h) + _lin(h, 3),
        "discriminator_unused": _lin(h, 4),
    }
    assert hand["audio_encoder"] == 24_407_808 and hand["vision_encoder"] == 2_893_568
    assert hand["discriminator"] == 66_563 and hand["fusion"] == 2_510_868
    assert {k: counts[k] for k in hand} == hand and "other" not in counts
    assert counts["total"] == sum(hand.values()) == 140_023_067
    # MOSI/MOSEI (CMD) build no adversarial discriminator
    mosi, mosi_counts = meta_counts(MISA, "mosi", "unaligned", bert_config=BertConfig())
    assert mosi_counts["discriminator"] == 0 and mosi.discriminator is None


# ------------------------------------------------------------------------------ gradient reversal by hand
def test_grad_reverse_is_identity_forward_and_scaled_negation_backward():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = grad_reverse(x, 0.8)
    assert torch.equal(y, x)
    (y * torch.tensor([2.0, 5.0, -1.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([-1.6, -4.0, 0.8]))


def test_domain_loss_value_and_reversed_gradient_by_hand():
    """Discriminator Linear(2, 3) on gradient-reversed shared codes (B = 2 per modality, H = 2)."""
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 1.0]])
    b = torch.tensor([0.0, 0.5, 0.0])
    disc = nn.Linear(2, 3)
    with torch.no_grad():
        disc.weight.copy_(w)
        disc.bias.copy_(b)
    codes = {"t": [[1.0, 0.0], [2.0, 1.0]], "v": [[0.0, 1.0], [0.5, 0.5]], "a": [[-1.0, 1.0], [0.0, 0.0]]}
    s = {m: torch.tensor(v, requires_grad=True) for m, v in codes.items()}
    rev = 0.8
    loss = domain_loss(*(disc(grad_reverse(s[m], rev)) for m in ("t", "v", "a")))
    loss.backward()

    # by hand: rows in the order t, t, v, v, a, a with labels 0, 0, 1, 1, 2, 2; z = W s + b
    rows = [(x, k) for k, m in enumerate(("t", "v", "a")) for x in codes[m]]
    value = 0.0
    g_w = np.zeros((3, 2))
    g_b = np.zeros(3)
    g_s = []
    for x, k in rows:
        z = [w[c, 0].item() * x[0] + w[c, 1].item() * x[1] + b[c].item() for c in range(3)]
        e = [math.exp(v) for v in z]
        p = [v / sum(e) for v in e]
        value += -math.log(p[k]) / 6
        dz = np.array([(p[c] - (c == k)) / 6 for c in range(3)])  # dCE/dz, mean over the 6 rows
        g_w += np.outer(dz, x)
        g_b += dz
        g_s.append(-rev * dz @ w.numpy())  # reversed and scaled on the way back to the codes
    assert loss.item() == pytest.approx(value, rel=1e-6)
    assert np.allclose(disc.weight.grad.numpy(), g_w, atol=1e-6)  # the discriminator learns normally
    assert np.allclose(disc.bias.grad.numpy(), g_b, atol=1e-6)
    got = np.concatenate([s[m].grad.numpy() for m in ("t", "v", "a")])
    assert np.allclose(got, np.stack(g_s), atol=1e-6)


def _mintrec_misa(bert=True, **over):
    hp = dataclasses.replace(MISA.default_hparams("mintrec", "unaligned"), **MISA_TINY, **over)
    bundle = _small_vocab(_subset())
    torch.manual_seed(0)
    model = MISA(hp, bundle.info(), bert_config=_tiny_bert_config() if bert else None)
    return model, bundle


def test_misa_shared_encoder_gets_the_reversed_domain_gradient():
    """Inside the model: the domain term's gradient on the shared encoder (and everything below it) is
    -reverse_grad_weight times the plain gradient; the discriminator's gradient is the plain one."""
    model, bundle = _mintrec_misa()
    model.eval()  # no dropout: both passes see the same network
    batch = bundle.train.take(torch.arange(8))
    grads = {}
    for weight in (0.8, -1.0):  # -1 turns the reversal into the identity: the plain gradient
        model.hp = dataclasses.replace(model.hp, reverse_grad_weight=weight)
        model.zero_grad()
        model.loss_terms(model(batch), batch)["domain"].backward()
        grads[weight] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    names = set(grads[0.8])
    assert names == set(grads[-1.0])
    tops = {n.split(".")[0] for n in names}
    assert tops == {"text", "encoder_a", "encoder_v", "project_t", "project_a", "project_v", "shared",
                    "discriminator"}
    for n in names:
        if n.startswith("discriminator."):
            assert torch.allclose(grads[0.8][n], grads[-1.0][n], atol=1e-7), n
        else:
            assert torch.allclose(grads[0.8][n], -0.8 * grads[-1.0][n], atol=1e-6, rtol=1e-4), n
    assert grads[0.8]["shared.0.weight"].abs().sum() > 0


def test_misa_mintrec_loss_composition_and_classification_head():
    model, bundle = _mintrec_misa()
    batch = bundle.train.take(torch.arange(8))
    out = model(batch)
    assert out["pred"].shape == (8, 20) and out["domain_t"].shape == (8, 3)
    t = model.loss_terms(out, batch)
    assert set(t) == {"total", "task", "diff", "domain", "recon"}  # no CMD (use_cmd_sim=False)
    assert torch.allclose(t["task"], F.cross_entropy(out["pred"], batch.labels))
    assert torch.allclose(t["domain"], domain_loss(out["domain_t"], out["domain_v"], out["domain_a"]))
    assert torch.allclose(t["total"], t["task"] + 0.7 * t["diff"] + 0.7 * t["domain"] + 0.6 * t["recon"])
    per = model.task_loss(out["pred"], batch.labels, reduction="none")
    assert per.shape == (8,) and torch.allclose(per.mean(), t["task"])
    # the discriminator is Linear(H,H) -> ReLU -> Dropout(dropout) -> Linear(H,3)
    d = model.discriminator
    assert [type(m) for m in d] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear] and d[2].p == 0.1


def test_misa_mintrec_gradient_paths():
    model, bundle = _mintrec_misa()
    model.train()
    batch = bundle.train.take(torch.arange(12))
    t = model.loss_terms(model(batch), batch)
    params = dict(model.named_parameters())

    def reached(loss):
        g = torch.autograd.grad(loss, list(params.values()), retain_graph=True, allow_unused=True)
        return {n.split(".")[0] for n, x in zip(params, g, strict=True) if x is not None and x.abs().sum() > 0}

    enc = {"text", "encoder_a", "encoder_v", "project_t", "project_a", "project_v"}
    assert reached(t["domain"]) == enc | {"shared", "discriminator"}
    assert reached(t["diff"]) == enc | {"private", "shared"}
    assert reached(t["recon"]) == enc | {"private", "shared", "recon"}
    assert reached(t["task"]) == enc | {"private", "shared", "fusion_transformer", "fusion"}
    assert "sp_discriminator" not in reached(t["total"]) and "text_layer_norm" not in reached(t["total"])


# ------------------------------------------------------------------------------ MIntRec's lr schedule
def test_on_epoch_end_halves_the_lr_after_epochs_without_improvement():
    model, _ = _mintrec_misa(bert=False, text_mode="features")
    opt = torch.optim.Adam(model.param_groups())
    lr0 = opt.param_groups[0]["lr"]
    assert lr0 == 3e-5
    lrs = []
    for epoch, improved in enumerate((True, False, False, True, False), start=1):
        model.on_epoch_end(epoch, {}, improved, opt)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([lr0, lr0 / 2, lr0 / 4, lr0 / 4, lr0 / 8], rel=1e-12)
    rec = model.record()
    assert (rec["lr_decays"], rec["epoch_end_calls"], rec["similarity"]) == (3, 5, "adversarial")
    # gamma 0 (MMSA) changes nothing
    off, _ = _mintrec_misa(bert=False, text_mode="features", lr_decay_gamma=0.0)
    opt = torch.optim.Adam(off.param_groups())
    off.on_epoch_end(1, {}, False, opt)
    assert opt.param_groups[0]["lr"] == 3e-5


def test_trainer_applies_the_lr_schedule():
    hp = dataclasses.replace(MISA.default_hparams("mintrec", "unaligned"), **MISA_TINY, text_mode="features",
                             learning_rate=1e-3, max_epochs=4, early_stop=4)
    out = train(MISA, hp, _subset(), seed=1111)
    assert out.model_record["epoch_end_calls"] == out.epochs_run == 4
    lr = 1e-3
    for row in out.history:
        lr = lr if row["improved"] else lr * 0.5
        assert row["lr"] == pytest.approx(lr, rel=1e-12)


# ------------------------------------------------------------------------------ MulT with BERT
def test_mult_mintrec_bert_forward_backward():
    bundle = _small_vocab(_subset())
    hp = dataclasses.replace(MulT.default_hparams("mintrec", "unaligned"), **MULT_TINY)
    torch.manual_seed(0)
    model = MulT(hp, bundle.info(), bert_config=_tiny_bert_config())
    batch = bundle.train.take(torch.arange(6))
    out = model(batch)
    assert out["pred"].shape == (6, 20) and out["fused"].shape == (6, 48)
    assert model.proj_l.in_channels == 16  # the BERT width, not the dataset's 32-d text features
    assert model.conv_lengths()["text"] == bundle.info().seq_lens["text"] - 2
    assert torch.allclose(model.loss_terms(out, batch)["task"], F.cross_entropy(out["pred"], batch.labels))
    model.loss_terms(out, batch)["total"].backward()
    assert model.text.bert.model.embeddings.word_embeddings.weight.grad.abs().sum() > 0  # fine-tuned
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert model.record()["text_input"].startswith("BERT last hidden state (16-d")
    # the text really comes from BERT: changing the frozen features changes nothing, token ids do
    model.eval()
    with torch.no_grad():
        ref = model(batch)["pred"]
        feats = dataclasses.replace(batch, text=torch.randn_like(batch.text))
        ids = batch.text_bert.clone()
        ids[:, 0, 1] = (ids[:, 0, 1] + 7) % 200
        assert torch.equal(model(feats)["pred"], ref)
        assert not torch.allclose(model(dataclasses.replace(batch, text_bert=ids))["pred"], ref)


def test_mult_mintrec_schedule_through_the_trainer(monkeypatch):
    """No accumulation (one step per batch), value clip 0.5 after every backward, selection on macro-F1,
    plateau x0.1 on the dev loss."""
    hp = dataclasses.replace(MulT.default_hparams("mintrec", "unaligned"), **MULT_TINY, text_mode="features",
                             batch_size=32, max_epochs=3, plateau_patience=1, learning_rate=1e-3)
    calls = []
    real = torch.nn.utils.clip_grad_value_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_value_", lambda p, v: (calls.append(v), real(p, v))[1])
    out = train(MulT, hp, _subset(), seed=1111)
    assert calls == [0.5] * 9 and out.n_optimizer_steps == 9  # 96 / 32 = 3 batches x 3 epochs
    f1 = [h["valid"]["f1"] for h in out.history]
    assert out.best_epoch == 1 + int(np.argmax(f1)) and out.valid["f1"] == pytest.approx(max(f1))
    assert set(out.test) >= {"acc", "f1", "precision", "recall", "loss"}
    # ReduceLROnPlateau(min, x0.1, patience) is driven by the dev loss (not by the F1): replay it
    dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(dummy, mode="min", factor=0.1, patience=1)
    expected = []
    for h in out.history:
        sched.step(h["valid"]["loss"])
        expected.append(dummy.param_groups[0]["lr"])
    assert [h["lr"] for h in out.history] == expected
    # a (near-)frozen model: the dev loss stops improving, so the third epoch ends with lr x0.1
    frozen = train(MulT, dataclasses.replace(hp, learning_rate=1e-6), _subset(), seed=1111)
    assert [h["lr"] for h in frozen.history] == pytest.approx([1e-6, 1e-6, 1e-7], rel=1e-9)


# ------------------------------------------------------------------------------ learning and determinism
# ------------------------------------------------------------------------------ end to end through the CLI
@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    """A tiny random BERT on disk with the bert-base-uncased vocabulary size (the synthetic token ids)."""
    from transformers import BertModel

    path = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    BertModel(_tiny_bert_config(vocab=30522)).save_pretrained(path)
    return path


CLI_SMALL = {
    "mult": ["--set", "d_model=8", "--set", "num_heads=2", "--set", "nlevels=1", "--set", "batch_size=64"],
    "misa": ["--set", "hidden_size=16", "--set", "batch_size=64"],
}
