import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from baselines._mmim_losses import covariance, cpc_nce, gaussian_entropy, gaussian_lld
from baselines.mmim import CPC, MMILB, MMIM
from bench.config import apply_overrides
from bench.data.tensors import DataInfo, Split
from bench.describe import canonical_info, count_groups
from bench.errors import UserError
from bench.train.trainer import train
from tests.baselines.helpers import linear_params as _linear
from tests.baselines.helpers import meta_counts, tiny_bert_config
from tests.toy import make_bundle


def _lstm(d_in, h, bidirectional=True):
    return (2 if bidirectional else 1) * (4 * h * (d_in + h) + 8 * h)


def _mmilb(x, y):
    return 2 * (_linear(x, y) + _linear(y, y)) + _linear(y, y // 4)


# ------------------------------------------------------------------------------ parameter counts
@pytest.mark.parametrize("family,dims,total", [("mosi", (768, 5, 20), 109_763_913),
                                               ("mosei", (768, 74, 35), 109_774_665)])
@pytest.mark.parametrize("setting", ["aligned", "unaligned"])
def test_parameter_count_by_hand(family, dims, total, setting):
    from transformers import BertConfig

    d_t, d_a, d_v = dims
    _, c = meta_counts(MMIM, family, setting, bert_config=BertConfig())
    want = {
        "bert": 109_482_240,
        "audio_encoder": _lstm(d_a, 16) + _linear(32, 16),
        "vision_encoder": _lstm(d_v, 16) + _linear(32, 16),
        "mmilb": _mmilb(d_t, 16) + _mmilb(d_t, 16),
        "cpc": _linear(128, d_t) + 2 * _linear(128, 16),
        "fusion": _linear(d_t + 32, 128) + _linear(128, 128) + _linear(128, 1),
    }
    assert {k: c[k] for k in want} == want and "other" not in c
    # = sum(p.numel()) of MMSA 2.2.1's own MMIM (models/singleTask/MMIM.py) built with bert-base geometry
    assert c["total"] == sum(want.values()) == total


def test_parameter_count_switches_and_features_mode():
    info = canonical_info("mosi", "unaligned")
    info = dataclasses.replace(info, dims={"text": 384, "audio": 5, "vision": 20}, has_text_bert=False)
    hp = MMIM.default_hparams("mosi", "unaligned")
    with torch.device("meta"):
        base = count_groups(MMIM(hp, info), MMIM.describe_groups())
        va = count_groups(MMIM(dataclasses.replace(hp, add_va=True), info), MMIM.describe_groups())
        uni = count_groups(MMIM(dataclasses.replace(hp, bidirectional=False), info), MMIM.describe_groups())
        cpc2 = count_groups(MMIM(dataclasses.replace(hp, cpc_layers=3), info), MMIM.describe_groups())
    assert base["bert"] == 0 and base["mmilb"] == 2 * _mmilb(384, 16)
    assert base["fusion"] == _linear(384 + 32, 128) + _linear(128, 128) + _linear(128, 1)
    assert va["mmilb"] - base["mmilb"] == _mmilb(16, 16) == 1_156
    assert uni["audio_encoder"] == _lstm(5, 16, False) + _linear(16, 16)
    assert uni["vision_encoder"] == _lstm(20, 16, False) + _linear(16, 16)
    # CPC with 3 layers: Linear(z, x), activation, Linear(x, x), Linear(x, x)
    assert cpc2["cpc"] == sum(_linear(128, d) + 2 * _linear(d, d) for d in (384, 16, 16))


# ------------------------------------------------------------------------------ defaults
def test_defaults_follow_mmsa_config():
    for family in ("mosi", "mosei"):
        hp = MMIM.default_hparams(family, "unaligned")
        assert (hp.d_ah, hp.d_vh, hp.d_aout, hp.d_vout, hp.n_layer, hp.bidirectional, hp.d_prjh) == \
            (16, 16, 16, 16, 1, True, 128)
        assert (hp.dropout_a, hp.dropout_v, hp.dropout_prj, hp.cpc_layers) == (0.1, 0.1, 0.1, 1)
        assert (hp.mmilb_mid_activation, hp.mmilb_last_activation, hp.cpc_activation) == ("ReLU", "Tanh", "Tanh")
        assert (hp.add_va, hp.mem_size, hp.contrast, hp.alpha, hp.beta) == (False, 1, True, 0.1, 0.1)
        assert (hp.batch_size, hp.grad_clip_norm, hp.lr_main, hp.weight_decay_main, hp.lr_bert,
                hp.weight_decay_bert, hp.lr_mmilb, hp.weight_decay_mmilb) == \
            (32, 1.0, 1e-3, 1e-4, 5e-5, 1e-4, 1e-3, 1e-4)
        assert (hp.plateau_patience, hp.plateau_factor, hp.early_stop, hp.max_epochs) == (20, 0.5, 8, 0)
        assert (hp.grad_accum, hp.grad_clip_value, hp.text_finetune, hp.init) == (1, 0.0, True, "xavier")
        assert (hp.logvar_activation, hp.lld_form, hp.zero_grad_mode) == ("none", "mmsa", "set_to_none")
    assert MMIM.default_hparams("mosi", "unaligned").stage1_fraction == 1.0
    assert MMIM.default_hparams("mosei", "unaligned").stage1_fraction == 0.5
    assert MMIM.default_setting == "unaligned"


def test_original_era():
    orig = MMIM.default_hparams("mosi", "unaligned", era="original")
    assert (orig.bidirectional, orig.early_stop, orig.max_epochs, orig.zero_grad_mode) == (False, 10, 40, "zeros")
    assert orig.lr_main == 1e-3 and orig.batch_size == 32
    via_set = apply_overrides(MMIM.default_hparams("mosei", "unaligned"), {"hparams_era": "original"})
    assert (via_set.bidirectional, via_set.early_stop, via_set.stage1_fraction) == (False, 10, 0.5)
    with pytest.raises(UserError, match="grad_accum"):
        apply_overrides(MMIM.default_hparams("mosi", "unaligned"), {"grad_accum": "2"})
    with pytest.raises(UserError, match="d_vout"):
        apply_overrides(MMIM.default_hparams("mosi", "unaligned"), {"d_vout": "3"})


# ------------------------------------------------------------------------------ the estimators by hand
def test_cpc_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    fused = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    cpc = CPC(2, 2, n_layers=1, activation="Tanh")
    with torch.no_grad():
        cpc.net.weight.copy_(torch.eye(2))
        cpc.net.bias.zero_()
    r = 1 / math.sqrt(2)
    # normalised prediction rows: [1, 0], [r, r]; scores s_ij = <x_i, x̂_j> = [[1, r], [0, r]]
    pos = [1.0, r]
    neg = [math.log(math.e + math.exp(r)), math.log(1.0 + math.exp(r))]
    want = -((pos[0] - neg[0]) + (pos[1] - neg[1])) / 2
    assert float(cpc(x, fused).detach()) == pytest.approx(want, abs=1e-6)
    assert want == pytest.approx(0.479110, abs=2e-6)
    # scale invariance of both arguments (both are normalised) and the positive pair on the diagonal
    assert float(cpc_nce(3 * x, 0.5 * fused)) == pytest.approx(want, abs=1e-6)
    assert float(cpc_nce(x, fused.flip(0))) > want


def test_gaussian_lld_by_hand():
    mu = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    y = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    # row 0: -1/2 - 4/(2·2) = -1.5 ; row 1: -4/2 - 0 = -2 ; mean -1.75 (no -logvar/2 normaliser)
    assert float(gaussian_lld(mu, logvar, y)) == pytest.approx(-1.75)
    # lld_form=full adds -logvar/2 per dimension: row 0 -1.5 - log(2)/2, row 1 -2
    assert float(gaussian_lld(mu, logvar, y, with_logvar=True)) == pytest.approx(-1.75 - math.log(2.0) / 4)


def test_entropy_and_covariance_by_hand():
    pos = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, 0.0], [-1.0, 0.0]])
    neg = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert covariance(pos).tolist() == [[1.0, 0.5], [0.5, 0.5]]  # population covariance (1/N)
    assert covariance(neg).tolist() == [[4.5, 0.0], [0.0, 0.5]]
    # 0.25·(log det Σ+ + log det Σ-) = 0.25·(log 0.25 + log 2.25)
    assert float(gaussian_entropy(pos, neg)) == pytest.approx(0.25 * math.log(0.25 * 2.25), abs=1e-6)
    assert float(gaussian_entropy(pos + 5.0, neg - 2.0)) == pytest.approx(-0.143841, abs=1e-6)  # shift-free
    assert float(gaussian_entropy(pos[:1], neg)) == -math.inf  # one sample: singular, as in MMSA


def _set_mmilb(mi: MMILB) -> None:
    """mu = [relu(x0), relu(x1), 0, 0]; logvar = [0, log 2, 0, log 4]; entropy projection tanh(y0)."""
    with torch.no_grad():
        for p in mi.parameters():
            p.zero_()
        mi.mlp_mu[0].weight[0, 0] = 1.0
        mi.mlp_mu[0].weight[1, 1] = 1.0
        mi.mlp_mu[2].weight.copy_(torch.eye(4))
        mi.mlp_logvar[2].bias.copy_(torch.tensor([0.0, math.log(2.0), 0.0, math.log(4.0)]))
        mi.entropy_prj[0].weight[0, 0] = 1.0


@torch.no_grad()
def test_mmilb_module_by_hand():
    mi = MMILB(2, 4, "ReLU", "Tanh", logvar_activation="none")
    _set_mmilb(mi)
    x = torch.tensor([[1.0, -1.0], [2.0, 0.0], [0.0, 3.0]])  # mu rows [1,0,0,0], [2,0,0,0], [0,3,0,0]
    y = torch.tensor([[0.0, 0.0, 1.0, 2.0], [2.0, 2.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    labels = torch.tensor([1.0, -1.0, 0.0])
    lld, pos, neg, H = mi(x, y)
    # variances [1, 2, 1, 4]: row 0 -(1/2 + 0 + 1/2 + 4/8) = -1.5 ; row 1 -(4/4) = -1 ; row 2 -(4/4) = -1
    assert float(lld) == pytest.approx(-3.5 / 3)
    assert pos is None and neg is None and float(H) == 0.0  # no labels: no entropy (stage 1, eval)
    lld2, pos, neg, H = mi(x, y, labels=labels)
    assert float(lld2) == float(lld) and float(H) == 0.0  # labels but no memory: H stays 0
    assert pos.tolist() == [[0.0]] and neg.shape == (1, 1)  # label 0 in neither
    assert float(neg[0, 0]) == pytest.approx(math.tanh(2.0))
    mem = {"pos": [torch.tensor([[0.4], [0.2]])], "neg": [torch.tensor([[-0.3]])]}
    _, _, _, H = mi(x, y, labels=labels, mem=mem)
    var_pos = ((0.4 - 0.2) ** 2 + 0 + (0.0 - 0.2) ** 2) / 3  # {0.4, 0.2, 0}
    t2 = math.tanh(2.0)
    m = (-0.3 + t2) / 2
    var_neg = ((-0.3 - m) ** 2 + (t2 - m) ** 2) / 2  # {-0.3, tanh 2}
    assert float(H) == pytest.approx(0.25 * (math.log(var_pos) + math.log(var_neg)), abs=1e-6)
    assert float(H) == pytest.approx(-1.135508, abs=1e-5)
    # "last": the built-but-unused Tanh applied to the log-variance (CLUB's form)
    mi_last = MMILB(2, 4, "ReLU", "Tanh", logvar_activation="last")
    mi_last.load_state_dict(mi.state_dict())
    var = [1.0, math.exp(math.tanh(math.log(2.0))), 1.0, math.exp(math.tanh(math.log(4.0)))]
    want = -(0.5 + 1 / (2 * var[2]) + 4 / (2 * var[3]) + 4 / (2 * var[1]) + 4 / (2 * var[1])) / 3
    assert float(mi_last(x, y)[0]) == pytest.approx(want, abs=1e-6)
    mi_full = MMILB(2, 4, "ReLU", "Tanh", logvar_activation="none", lld_form="full")
    mi_full.load_state_dict(mi.state_dict())
    assert float(mi_full(x, y)[0]) == pytest.approx(-3.5 / 3 - (math.log(2.0) + math.log(4.0)) / 2, abs=1e-6)


# ------------------------------------------------------------------------------ memory and loss schedule
INFO = DataInfo(family="mosi", setting="unaligned", task="regression", num_classes=1,
                dims={"text": 3, "audio": 2, "vision": 2}, seq_lens={"text": 4, "audio": 5, "vision": 6},
                has_text_features=True, has_text_bert=False)


def _tiny_split(n: int, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor([1.5, -1.0, 2.0, -0.5, 0.0, -2.0] * math.ceil(n / 6))[:n]
    return Split(labels=labels, text=torch.randn(n, 4, 3, generator=g), audio=torch.randn(n, 5, 2, generator=g),
                 vision=torch.randn(n, 6, 2, generator=g), audio_lengths=torch.randint(1, 6, (n,), generator=g),
                 vision_lengths=torch.randint(1, 7, (n,), generator=g))


def _tiny_hp(**kw):
    base = dict(d_ah=3, d_vh=3, d_aout=4, d_vout=4, d_prjh=6, batch_size=6)
    return dataclasses.replace(MMIM.default_hparams("mosi", "unaligned"), **{**base, **kw})


@pytest.mark.parametrize("mem_size", [1, 2])
def test_memory_and_entropy_schedule(mem_size):
    torch.manual_seed(0)
    hp = _tiny_hp(mem_size=mem_size, contrast=False)  # no stage 1: only the stage-2 bookkeeping
    model = MMIM(hp, INFO).train()
    train_split = _tiny_split(24)
    model.on_epoch_start(1, train_split)
    history = []  # (pos_tv, neg_tv, pos_ta, neg_ta) of every batch
    for i in range(4):
        batch = train_split.take(torch.arange(6 * i, 6 * i + 6))
        out = model(batch)
        terms = model.loss_terms(out, batch)
        assert out["pos_tv"].shape == (2, 1) and out["neg_tv"].shape == (3, 1)  # label 0 in neither
        H = float(out["H"].detach())
        if i < mem_size:
            assert H == 0.0
        else:
            # memory = the last mem_size batches' projections (detached), then this batch
            want = sum(gaussian_entropy(torch.cat([*(h[k] for h in history[-mem_size:]), out[f"pos_{p}"]]),
                                        torch.cat([*(h[k + 1] for h in history[-mem_size:]), out[f"neg_{p}"]]))
                       for k, p in ((0, "tv"), (2, "ta")))
            assert H == pytest.approx(float(want.detach()), rel=1e-6) and H != 0.0
        # contrast off: L1 only, minus beta·H strictly after the first batch with a full memory
        want_total = terms["task"] - (0.1 * out["H"] if i > mem_size else 0.0)
        assert float(terms["total"].detach()) == pytest.approx(float(want_total.detach()), rel=1e-6)
        history.append(tuple(out[k].detach() for k in ("pos_tv", "neg_tv", "pos_ta", "neg_ta")))
        terms["total"].backward()
        model.after_step(out, batch, epoch=1)
        assert len(model.memory["tv"]["pos"]) == min(i + 1, mem_size)
    # slot i % mem_size holds batch i once the memory is full
    assert torch.equal(model.memory["tv"]["pos"][3 % mem_size], history[3][0])
    model.on_epoch_start(2, train_split)  # a new epoch starts with an empty memory and counter 0
    assert model.i_batch == 0 and model.memory["tv"]["pos"] == []


def test_contrast_total_and_eval_forward():
    torch.manual_seed(0)
    model = MMIM(_tiny_hp(), INFO).train()
    split = _tiny_split(12)
    batch = split.take(torch.arange(6))
    out = model(batch)
    t = model.loss_terms(out, batch)
    assert torch.allclose(t["total"], t["task"] + 0.1 * out["nce"] - 0.1 * out["lld"])
    assert torch.allclose(t["task"], (out["pred"] - batch.labels).abs().mean())
    model.eval()
    with torch.no_grad():
        ev = model(batch)
    assert "pos_tv" not in ev and float(ev["H"]) == 0.0  # evaluation passes no labels (MMSA do_test)
    assert ev["pred"].shape == (6,) and ev["fused"].shape == (6, 6)


# ------------------------------------------------------------------------------ the two stages
def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _moved(model, before):
    return {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}


@pytest.mark.parametrize("family,steps", [("mosi", 4), ("mosei", 2)])
def test_stage1_moves_only_the_mmilb_likelihood_networks(family, steps):
    torch.manual_seed(0)
    hp = _tiny_hp(stage1_fraction=1.0 if family == "mosi" else 0.5)
    model = MMIM(hp, INFO).train()
    split = _tiny_split(22)  # 4 batches of 6 (the last has 4); MOSEI: i/4 >= 0.5 stops at i = 2
    before = _snapshot(model)
    model.on_epoch_start(1, split)
    assert model.stage1_steps == steps and model.stage == "main"
    moved = _moved(model, before)
    assert moved == {n for n in before if n.startswith(("mi_tv.mlp", "mi_ta.mlp"))}
    assert all(p.grad is None for p in model.parameters())  # cleared for stage 2, as MMSA's zero_grad
    assert len(model.stage1_loss) == 1 and math.isfinite(model.stage1_loss[0])


def test_stage1_loss_gradient_paths_and_clip_bert_mode():
    torch.manual_seed(0)
    bundle = make_bundle("unaligned")
    model = MMIM(MMIM.default_hparams("mosi", "unaligned"), bundle.info(), bert_config=tiny_bert_config()).train()
    batch = bundle.train.take(torch.arange(16))
    model.stage = "mmilb"
    out = model(batch)
    assert "pos_tv" not in out  # stage 1: no labels, no entropy
    assert _reached(model, -out["lld"]) == {"text", "acoustic_enc", "visual_enc", "mi_tv.mlp_mu",
                                            "mi_tv.mlp_logvar", "mi_ta.mlp_mu", "mi_ta.mlp_logvar"}


def _reached(model, loss):
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(loss, list(params.values()), retain_graph=True, allow_unused=True)
    names = set()
    for n, g in zip(params, grads, strict=True):
        if g is not None and g.abs().sum() > 0:
            parts = n.split(".")
            names.add(".".join(parts[:2]) if parts[0].startswith("mi_") else parts[0])
    return names


def test_stage2_gradient_paths_bert_mode():
    torch.manual_seed(0)
    bundle = make_bundle("unaligned")
    model = MMIM(MMIM.default_hparams("mosi", "unaligned"), bundle.info(), bert_config=tiny_bert_config()).train()
    model.memory = {k: {"pos": [], "neg": []} for k in model.pairs}
    first = bundle.train.take(torch.arange(16))
    model.after_step(model(first), first, epoch=1)  # fills the memory (mem_size 1)
    batch = bundle.train.take(torch.arange(16, 32))
    out = model(batch)
    t = model.loss_terms(out, batch)
    enc = {"text", "acoustic_enc", "visual_enc"}
    assert _reached(model, t["task"]) == enc | {"fusion_prj"}
    assert _reached(model, t["nce"]) == enc | {"fusion_prj", "cpc_zt", "cpc_zv", "cpc_za"}
    assert _reached(model, t["lld"]) == enc | {"mi_tv.mlp_mu", "mi_tv.mlp_logvar", "mi_ta.mlp_mu", "mi_ta.mlp_logvar"}
    # H uses only the (current) audio/vision vectors through the entropy projections
    assert _reached(model, t["H"]) == {"acoustic_enc", "visual_enc", "mi_tv.entropy_prj", "mi_ta.entropy_prj"}


def test_main_optimiser_groups_exclude_mmilb():
    model = MMIM(MMIM.default_hparams("mosi", "unaligned"), make_bundle().info(), bert_config=tiny_bert_config())
    groups = model.param_groups()
    assert [(g["lr"], g["weight_decay"]) for g in groups] == [(5e-5, 1e-4), (1e-3, 1e-4)]
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].startswith("text.bert.") for p in groups[0]["params"])
    main = {names[id(p)].split(".")[0] for p in groups[1]["params"]}
    assert main == {"visual_enc", "acoustic_enc", "cpc_zt", "cpc_zv", "cpc_za", "fusion_prj"}
    mmilb = {names[id(p)] for p in model.mmilb_parameters()}
    assert mmilb == {n for n in names.values() if n.startswith("mi_")}
    assert len(mmilb) + sum(len(g["params"]) for g in groups) == len(names)
    opt = model.make_mmilb_optimizer()
    assert (opt.param_groups[0]["lr"], opt.param_groups[0]["weight_decay"]) == (1e-3, 1e-4)


def test_after_step_clips_norm_over_all_parameters_then_clears_mmilb_grads():
    torch.manual_seed(0)
    model = MMIM(_tiny_hp(), INFO).train()
    model.memory = {k: {"pos": [], "neg": []} for k in model.pairs}
    batch = _tiny_split(6)
    out = model(batch)
    (100.0 * model.loss_terms(out, batch)["total"]).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads.values()]))
    mi_norm = torch.linalg.vector_norm(torch.stack([g.norm() for n, g in grads.items() if n.startswith("mi_")]))
    assert float(norm) > 1.0 and float(mi_norm) > 0.0
    model.after_step(out, batch, epoch=1)
    coef = 1.0 / (float(norm) + 1e-6)  # torch clip_grad_norm_; the norm includes the mi_* gradients
    for n, p in model.named_parameters():
        if n.startswith("mi_"):
            assert p.grad is None
        elif n in grads:
            assert torch.allclose(p.grad, grads[n] * coef, rtol=1e-5, atol=1e-8), n
    assert model.i_batch == 1 and len(model.memory["ta"]["neg"]) == 1


@pytest.mark.parametrize("mode", ["set_to_none", "zeros"])
def test_entropy_projection_is_never_trained_unless_zero_grads(mode):
    """entropy_prj belongs to the MMILB optimiser but is absent from the stage-1 loss. With
    set_to_none (torch >= 2) it never moves; with zeros (torch 1.x) MMILB Adam moves it from epoch 2
    on by weight decay alone, about lr_mmilb per step."""
    hp = _tiny_hp(zero_grad_mode=mode, max_epochs=2, early_stop=5)
    split = _tiny_split(24)
    bundle = make_bundle("unaligned")
    bundle = dataclasses.replace(bundle, splits={"train": split, "valid": _tiny_split(6, 1), "test": _tiny_split(6, 2)})
    seen = {}

    class Spy(MMIM):
        def on_epoch_start(self, epoch, train_split):
            if epoch == 1:
                seen["w0"] = self.mi_tv.entropy_prj[0].weight.detach().clone()
                seen["main0"] = self.fusion_prj.linear_1.weight.detach().clone()
            super().on_epoch_start(epoch, train_split)
            seen[f"w{epoch}"] = self.mi_tv.entropy_prj[0].weight.detach().clone()

    train(Spy, hp, bundle, seed=1)
    assert torch.equal(seen["w1"], seen["w0"])  # epoch 1: no gradient yet
    drift = float((seen["w2"] - seen["w0"]).abs().max())
    if mode == "set_to_none":
        assert drift == 0.0
    else:
        assert 4 * 1e-3 * 0.5 < drift <= 4 * 1e-3 * 1.01  # 4 stage-1 Adam steps of at most ~lr each


@torch.no_grad()
def test_xavier_reinitialisation():
    torch.manual_seed(0)
    info = dataclasses.replace(INFO, dims={"text": 600, "audio": 2, "vision": 2})
    x = MMIM(MMIM.default_hparams("mosi", "unaligned"), info)
    t = MMIM(dataclasses.replace(MMIM.default_hparams("mosi", "unaligned"), init="torch"), info)
    w_x, w_t = x.fusion_prj.linear_1.weight, t.fusion_prj.linear_1.weight  # Linear(632, 128)
    assert float(w_x.std()) == pytest.approx(math.sqrt(2 / (632 + 128)), rel=0.03)  # xavier_normal_
    assert float(w_t.abs().max()) <= 1 / math.sqrt(632)  # torch's kaiming-uniform bound
    assert float(w_t.std()) == pytest.approx(1 / math.sqrt(3 * 632), rel=0.03)
    assert float(x.fusion_prj.linear_1.bias.abs().max()) <= 1 / math.sqrt(632)  # biases keep torch's init


def test_aligned_uses_text_length():
    bundle = make_bundle("aligned")
    batch = bundle.train.take(torch.arange(8))
    late = torch.arange(batch.audio.shape[1])[None, :] >= batch.text_bert[:, 1].sum(1)[:, None]
    perturbed = dataclasses.replace(batch, audio=batch.audio.clone(), vision=batch.vision.clone())
    perturbed.audio[late] += 3.0
    perturbed.vision[late] -= 2.0
    model = MMIM(MMIM.default_hparams("mosi", "aligned"), bundle.info()).eval()
    with torch.no_grad():
        assert torch.allclose(model(batch)["pred"], model(perturbed)["pred"])
    assert model.record()["lengths_from"] == "text"


# ------------------------------------------------------------------------------ training
def _toy_bundle():
    return make_bundle("aligned", sizes=(192, 48, 64), dims=(8, 3, 4), lens=(6, 6, 6))


def _toy_hp(**kw):
    base = dict(d_prjh=32, lr_main=5e-3, max_epochs=5, early_stop=5, batch_size=32, dropout_prj=0.0)
    return dataclasses.replace(MMIM.default_hparams("mosi", "aligned"), **{**base, **kw})


def test_trains_and_beats_constant_on_learnable_toy_data():
    bundle = _toy_bundle()
    out = train(MMIM, _toy_hp(), bundle, seed=1111)
    y = bundle.splits["test"].labels.numpy()
    const_mae = float(np.mean(np.abs(y - bundle.splits["train"].labels.numpy().mean())))
    assert out.test["mae"] < 0.5 * const_mae and out.test["corr"] > 0.8
    assert out.model_record["stage1_steps"] == 5 * 6 and len(out.model_record["stage1_neg_lld"]) == 5
    assert out.n_optimizer_steps == 5 * 6  # main steps only
    assert set(out.history[0]["train"]) == {"total", "task", "nce", "lld", "H"}
    assert out.test_outputs["fused"].shape == (64, 32)


def test_trains_end_to_end_bert_mode():
    class TinyBertMMIM(MMIM):
        def __init__(self, hp, info):
            super().__init__(hp, info, bert_config=tiny_bert_config())

    bundle = make_bundle("unaligned")
    hp = dataclasses.replace(MMIM.default_hparams("mosi", "unaligned"), max_epochs=1, batch_size=16)
    out = train(TinyBertMMIM, hp, bundle, seed=1)
    assert out.model_record["text_mode"] == "bert" and math.isfinite(out.test["mae"])
    assert out.model_record["lengths_from"] == "own" and out.model_record["stage1_steps"] == 3


@pytest.mark.slow
def test_cli_end_to_end_mosi229(tmp_path, capsys):
    from bench.cli import main
    from tests.conftest import shared_data

    root = shared_data("mosi229")
    code = main(["run", "--method", "mmim", "--dataset", "mosi", "--setting", "unaligned", "--data-root", str(root),
                 "--seeds", "1111", "--epochs", "2", "--out", str(tmp_path), "--quiet", "--set", "d_prjh=32",
                 "--text", "frozen"])
    assert code == 0, capsys.readouterr().err
    r = json.loads(next(tmp_path.glob("runs/mmim/mosi-unaligned/*/seed-1111/result.json")).read_text())
    assert r["data"]["sizes"] == {"train": 139, "valid": 47, "test": 43}
    assert r["selection"]["epochs_run"] == 2 and math.isfinite(r["test"]["mae"])
