"""DMD (mdswyz/DMD, CVPR 2023): parameter counts, every loss term by hand, gradient paths, training."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from baselines._dmd_graph import EDGES, GraphDistillUnit, distance, edge_names, edge_prior
from baselines.dmd import DMD, DMDHParams, hinge_cosine, margin_inputs, margin_loss, mse, ort_loss
from bench.config import apply_overrides
from bench.describe import canonical_info, describe
from bench.errors import UserError
from bench.train.trainer import train
from tests.baselines.helpers import meta_counts, tiny_bert_config
from tests.conftest import shared_data
from tests.toy import make_bundle

TINY = dict(d_model=8, num_heads=2, nlevels=1, memory_min_layers=1, conv_kernel_l=3, conv_kernel_a=3,
            conv_kernel_v=3, gd_size_homo=4, gd_size_hetero=4)


def _tiny_hp(**kw):
    return dataclasses.replace(DMD.default_hparams("mosi", "unaligned"), **{**TINY, **kw})


# ------------------------------------------------------------------------------ parameter counts
def _lin(i, o):
    return i * o + o


def _encoder(d, layers):
    """MulT/DMD pre-LN layer: packed in-proj + out-proj, FFN d->4d->d, two LayerNorms; final LN."""
    return layers * (_lin(d, 3 * d) + _lin(d, d) + _lin(d, 4 * d) + _lin(4 * d, d) + 4 * d) + 2 * d


def _reference_counts(family, setting):
    """Parameters of mdswyz/DMD's three trained modules (DMD model + two DistillationKernels), derived
    by hand from the module definitions (dmd.py:46-124, distillnets :19-21), config/config.json
    (d, kernels: :58-64, :80-86), the lengths hard-coded in dmd.py:18-27 and run.py:123-160 (gd sizes
    64/32, hidden d and 2d). BERT = bert-base-uncased with its pooler."""
    d = {"mosi": 50, "mosei": 30}[family]
    k = {"mosi": dict(l=5, a=5, v=5), "mosei": dict(l=5, a=1, v=3)}[family]
    dims = dict(l=768, a={"mosi": 5, "mosei": 74}[family], v={"mosi": 20, "mosei": 35}[family])
    lens = {("mosi", "aligned"): dict(l=50, v=50, a=50), ("mosi", "unaligned"): dict(l=50, v=500, a=375),
            ("mosei", "aligned"): dict(l=50, v=50, a=50),
            ("mosei", "unaligned"): dict(l=50, v=500, a=500)}[(family, setting)]
    tp = {m: lens[m] - k[m] + 1 for m in "lva"}
    return {
        "bert": 109_482_240,
        "conv_proj": sum(dims[m] * d * k[m] for m in "lva"),
        "encoder_specific": 3 * d * d,
        "encoder_invariant": d * d,
        "decoders": 3 * 2 * d * d,
        "proj_cosine_unused": sum(_lin(d * tp[m], d) for m in "lva"),
        "align_c": sum(_lin(d * tp[m], d) for m in "lva"),
        "invariant_transformers": 3 * _encoder(d, 4),
        "invariant_head": 2 * _lin(3 * d, 3 * d) + _lin(3 * d, 1),
        "crossmodal": 6 * _encoder(d, 4),
        "memory": 3 * _encoder(2 * d, max(4, 3)),
        "homo_heads": sum(_lin(d * tp[m], d) + _lin(d, d * tp[m]) + _lin(d * tp[m], 1) for m in "lva"),
        "hetero_heads": 3 * (2 * _lin(2 * d, 2 * d) + _lin(2 * d, 1)),
        "fusion_gates": 3 * _lin(2 * d, 2 * d) + _lin(3 * d, 3 * d),
        "fusion_head": 2 * _lin(9 * d, 9 * d) + _lin(9 * d, 1),
        "gd_homo": _lin(1, 64) + _lin(d, 64) + _lin(4 * 64, 1),
        "gd_hetero": _lin(1, 32) + _lin(2 * d, 32) + _lin(4 * 32, 1),
    }


@pytest.mark.parametrize("family,setting,total", [
    ("mosi", "aligned", 114_232_972), ("mosi", "unaligned", 122_060_472),
    ("mosei", "aligned", 111_279_532), ("mosei", "unaligned", 114_573_532),
])
def test_parameter_counts_match_reference(family, setting, total):
    hp = dataclasses.replace(DMD.default_hparams(family, setting), text_model="random:bert-base-uncased")
    _, counts = meta_counts(DMD, family, setting, hp=hp)
    assert "other" not in counts
    expected = _reference_counts(family, setting)
    assert {g: counts[g] for g in expected} == expected
    assert counts["total"] == sum(expected.values()) == total
    assert describe(DMD, dataclasses.replace(hp, text_model=""), canonical_info(family, setting))[
        "parameters"]["total"] == total - 109_482_240  # features mode: no BERT


def test_unused_projection_can_be_left_out():
    hp = dataclasses.replace(DMD.default_hparams("mosi", "unaligned"), build_unused=False)
    _, counts = meta_counts(DMD, "mosi", "unaligned", hp=hp)
    assert counts["proj_cosine_unused"] == 0 and counts["total"] == 12_578_232 - 2_282_650


# ------------------------------------------------------------------------------ defaults
def test_defaults_from_reference_config():
    mosi = DMD.default_hparams("mosi", "aligned")
    assert mosi == DMD.default_hparams("mosi", "unaligned") == DMDHParams()
    assert (mosi.d_model, mosi.num_heads, mosi.nlevels) == (50, 10, 4)
    assert (mosi.conv_kernel_l, mosi.conv_kernel_a, mosi.conv_kernel_v) == (5, 5, 5)
    assert (mosi.attn_dropout, mosi.attn_dropout_a, mosi.attn_dropout_v, mosi.embed_dropout) == (0.3, 0.2, 0, 0.2)
    assert (mosi.text_dropout, mosi.output_dropout, mosi.weight_decay) == (0.5, 0.5, 0.005)
    mosei = DMD.default_hparams("mosei", "unaligned")
    assert (mosei.d_model, mosei.num_heads, mosei.conv_kernel_a, mosei.conv_kernel_v) == (30, 6, 1, 3)
    assert (mosei.attn_dropout, mosei.attn_dropout_a, mosei.embed_dropout, mosei.text_dropout) == (0.4, 0, 0, 0.3)
    for hp in (mosi, mosei):  # trainer: DMD.py + commonParams
        assert (hp.batch_size, hp.learning_rate, hp.grad_accum, hp.grad_accum_drop_tail) == (16, 1e-4, 10, True)
        assert (hp.grad_clip_value, hp.grad_clip_at, hp.early_stop, hp.max_epochs) == (0.6, "backward", 10, 0)
        assert (hp.plateau_patience, hp.plateau_factor, hp.apply_weight_decay) == (5, 0.5, False)
        assert (hp.recon_weight, hp.cycle_weight, hp.margin_weight, hp.ort_weight) == (0.1, 0.1, 0.01, 0.01)
        assert (hp.gd_homo_weight, hp.gd_hetero_weight, hp.gd_homo_repr_in_total) == (0.05, 0.05, False)
        assert hp.resolved_text_mode() == "features"
    assert DMD.default_setting == "aligned" and DMD.families == ("mosi", "mosei")
    with pytest.raises(UserError, match="mintrec"):
        DMD.default_hparams("mintrec", "unaligned")
    with pytest.raises(UserError, match="divisible"):
        apply_overrides(DMDHParams(), {"d_model": "12", "num_heads": "8"})
    with pytest.raises(UserError, match="6 scores"):
        apply_overrides(DMDHParams(), {"gd_prior_homo": "0,1"})
    assert apply_overrides(DMDHParams(), {"ort_axis": "step"}).ort_axis == "step"
    assert DMD(DMDHParams(), canonical_info("mosi", "aligned")).param_groups()[0]["weight_decay"] == 0.0


def test_registered():
    from bench.registry import get_method

    assert get_method("dmd") is DMD


# ------------------------------------------------------------------------------ losses by hand
def test_mse_is_sum_over_numel():
    a, b = torch.tensor([[1.0, 2.0], [3.0, 5.0]]), torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    assert float(mse(a, b)) == pytest.approx((1 + 0 + 4 + 16) / 4)


def test_ort_loss_by_hand_and_against_torch():
    # (B=2, d=2, T=1): channel 0 s=(1,2), c=(3,1) -> cos over the batch 5/sqrt(50); channel 1 s=(1,0),
    # c=(-1,0) -> cos -1 -> 0. "batch" = mean over (channel, step) of max(0, cos).
    s = torch.tensor([[[1.0], [1.0]], [[2.0], [0.0]]])
    c = torch.tensor([[[3.0], [-1.0]], [[1.0], [0.0]]])
    assert float(ort_loss(s, c, "batch")) == pytest.approx((5 / math.sqrt(50)) / 2, abs=1e-6)
    # "step": per sample over channels: b0 s=(1,1), c=(3,-1) -> 2/(sqrt2·sqrt10); b1 s=(2,0), c=(1,0) -> 1
    assert float(ort_loss(s, c, "step")) == pytest.approx((2 / math.sqrt(20) + 1) / 2, abs=1e-6)
    # torch's own module on the equivalent 2-D layouts (target -1, margin 0)
    gen = torch.Generator().manual_seed(0)
    s, c = torch.randn(4, 3, 5, generator=gen), torch.randn(4, 3, 5, generator=gen)  # (B, d, T)
    ce = torch.nn.CosineEmbeddingLoss()
    tgt = torch.tensor([-1])
    # torch 1.9 on the reference's (T, B, d) tensors reduced along dim 1 (the batch): rows = (t, channel)
    rows_batch = lambda x: x.permute(2, 1, 0).reshape(-1, x.shape[0])  # noqa: E731
    assert torch.allclose(ort_loss(s, c, "batch"), ce(rows_batch(s), rows_batch(c), tgt))
    # mdswyz/DMD#6: reshape(-1, d) of the (T, B, d) tensors: rows = (t, b), cosine over channels
    rows_step = lambda x: x.permute(2, 0, 1).reshape(-1, x.shape[1])  # noqa: E731
    assert torch.allclose(ort_loss(s, c, "step"), ce(rows_step(s), rows_step(c), tgt))
    assert torch.allclose(ort_loss(s, c, "sample"), ce(s.flatten(1), c.flatten(1), tgt))


def _hinge_reference_loop(feats, ids, scale=0.15):
    """A literal per-anchor transcription of HingeLoss.forward's algorithm (HingeLoss.py:19-57)."""
    n = feats.shape[0]
    cos = hinge_cosine(feats)
    total, count = 0.0, 0
    for i in range(n):
        pos = [j for j in range(n) if j != i and ids[j] == ids[i]]
        neg = [k for k in range(n) if ids[k] != ids[i]]
        if not pos or not neg:
            continue
        terms = [max(0.0, scale * abs(float(ids[i] - ids[k])) - float(cos[i, j]) + float(cos[i, k]))
                 for j in pos for k in neg]
        total += sum(terms) / len(terms)
        count += 1
    return total / max(count, 1)


def test_margin_loss_by_hand():
    # rows (1,0),(1,1),(0,1) with labels 1,1,2: anchor 0: max(0, .15 - cos45 + 0) = 0; anchor 1:
    # .15 - cos45 + cos45 = .15; anchor 2 has no positive -> skipped. Mean over 2 anchors = .075.
    feats = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert float(margin_loss(feats, torch.tensor([1.0, 1.0, 2.0]))) == pytest.approx(0.075, abs=1e-6)
    # all labels equal -> no negatives -> 0 (the reference returns 0)
    assert float(margin_loss(feats, torch.tensor([1.0, 1.0, 1.0]))) == 0.0
    # random data with repeated labels, through the reference's stacking order [l0, v0, a0, l1, ...]
    gen = torch.Generator().manual_seed(3)
    c_sim = {m: torch.randn(5, 4, generator=gen) for m in "lva"}
    labels = torch.tensor([0.4, -1.2, 0.4, 2.0, -1.2])
    feats, ids = margin_inputs(c_sim, labels)
    assert torch.equal(feats[0], c_sim["l"][0]) and torch.equal(feats[4], c_sim["v"][1])
    assert ids.tolist() == [v for v in labels.tolist() for _ in range(3)]
    assert float(margin_loss(feats, ids)) == pytest.approx(_hinge_reference_loop(feats, ids), abs=1e-6)


def test_edge_order_and_priors():
    assert EDGES == ((0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1))
    assert edge_names() == ("v->l", "a->l", "l->v", "a->v", "l->a", "v->a")
    e4 = math.exp(-4)
    homo = [e4, e4, 1, e4, 1, e4]
    assert torch.allclose(edge_prior((0, 0, 1, 0, 1, 0), 0.25), torch.tensor([v / sum(homo) for v in homo]))
    hetero = [e4, e4, 1, e4, 1, 1]  # the prior favours l->v, l->a (homo) and also v->a (hetero)
    assert torch.allclose(edge_prior((0, 0, 1, 0, 1, 1), 0.25), torch.tensor([v / sum(hetero) for v in hetero]))


def _unit_with_uniform_edges(hidden, repr_metric, prior):
    unit = GraphDistillUnit(hidden_size=hidden, gd_size=3, prior=prior, repr_metric=repr_metric)
    with torch.no_grad():
        unit.W_edge.weight.zero_()
        unit.W_edge.bias.zero_()
    return unit


def test_graph_distillation_losses_by_hand():
    prior = edge_prior((0, 0, 1, 0, 1, 0), 0.25)
    p = prior.tolist()
    logits = torch.tensor([[[1.0], [2.0]], [[0.0], [0.0]], [[3.0], [-1.0]]])  # (3 modalities, B=2, 1)
    reprs = torch.tensor([[[1.0, 0.0], [0.0, 2.0]], [[1.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [-1.0, 0.0]]])
    unit = _unit_with_uniform_edges(2, "l1", prior)
    edges = unit(logits, reprs)
    assert edges.shape == (6, 2) and torch.allclose(edges, torch.full((6, 2), 1 / 6))
    out = unit.losses(logits, reprs, edges)
    assert out["reg"].item() == pytest.approx(10 * sum((1 / 6 - q) ** 2 for q in p), rel=1e-6)
    lg = [[1, 2], [0, 0], [3, -1]]
    rp = [[[1, 0], [0, 2]], [[1, 1], [1, 0]], [[0, 1], [-1, 0]]]
    exp_logit = exp_repr = 0.0
    for x, (j, i) in enumerate(EDGES):  # student j, teacher i; w = edge + prior
        w = 1 / 6 + p[x]
        exp_logit += sum(w * abs(lg[j][b] - lg[i][b]) for b in range(2)) / 2
        exp_repr += 10 * sum(w * sum(abs(rp[j][b][f] - rp[i][b][f]) for f in range(2)) for b in range(2)) / 2
    assert out["logit"].item() == pytest.approx(exp_logit, rel=1e-6)
    assert out["repr"].item() == pytest.approx(exp_repr, rel=1e-6)
    # heterogeneous unit: repr distance = min_cosine = mean_b max(0, cos) times mean_b w
    hetero = _unit_with_uniform_edges(2, "min_cosine", prior)
    out = hetero.losses(logits, reprs, hetero(logits, reprs))

    def cos(u, v):
        return sum(a * b for a, b in zip(u, v, strict=True)) / math.sqrt(sum(a * a for a in u) * sum(b * b for b in v))

    exp_repr = sum(10 * (1 / 6 + p[x]) * sum(max(0.0, cos(rp[j][b], rp[i][b])) for b in range(2)) / 2
                   for x, (j, i) in enumerate(EDGES))
    assert out["repr"].item() == pytest.approx(exp_repr, rel=1e-5)


def test_edges_softmax_over_the_six_edges_per_sample():
    torch.manual_seed(0)
    unit = GraphDistillUnit(hidden_size=4, gd_size=3, prior=edge_prior((0,) * 6, 1.0), alpha=0.5)
    logits, reprs = torch.randn(3, 5, 1), torch.randn(3, 5, 4)
    edges = unit(logits, reprs)
    z = torch.cat([unit.W_logit(logits), unit.W_repr(reprs)], dim=-1)
    raw = torch.stack([unit.W_edge(torch.cat([z[j], z[i]], -1))[:, 0] for j, i in EDGES])  # (6, B)
    assert torch.allclose(edges, torch.softmax(0.5 * raw, dim=0), atol=1e-6)
    assert torch.allclose(edges.sum(0), torch.ones(5))


# ------------------------------------------------------------------------------ gradient paths
def test_distance_detaches_the_teacher_not_the_weights():
    s, t = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    w = torch.rand(4, requires_grad=True)
    for metric in ("l1", "l2", "cosine", "min_cosine"):
        gs, gt, gw = torch.autograd.grad(distance(s, t, metric, w), (s, t, w), allow_unused=True)
        assert gt is None and gs.abs().sum() > 0 and gw.abs().sum() > 0, metric


def test_graph_unit_gradients_reach_teachers_only_through_the_edges():
    torch.manual_seed(1)
    prior = edge_prior((0, 0, 1, 0, 1, 0), 0.25)
    logits = torch.randn(3, 4, 1, requires_grad=True)
    reprs = torch.randn(3, 4, 2, requires_grad=True)
    # W_edge = 0: edges are constant, so d loss_logit / d logits[m] is the student-side term only
    unit = _unit_with_uniform_edges(2, "l1", prior)
    (g,) = torch.autograd.grad(unit.losses(logits, reprs, unit(logits, reprs))["logit"], logits)
    expected = torch.zeros(3, 4, 1)
    for x, (j, i) in enumerate(EDGES):
        expected[j] += (1 / 6 + prior[x]) * torch.sign(logits[j] - logits[i]).detach() / 4
    assert torch.allclose(g, expected, atol=1e-6)
    # with a live edge network the same loss also moves the teachers (edges are not detached) and
    # trains W_logit / W_repr / W_edge
    unit = GraphDistillUnit(hidden_size=2, gd_size=3, prior=prior)
    loss = unit.losses(logits, reprs, unit(logits, reprs))["logit"]
    g_live, *g_params = torch.autograd.grad(loss, [logits] + list(unit.parameters()))
    assert not torch.allclose(g_live, expected, atol=1e-6)
    assert all(p.abs().sum() > 0 for p in g_params)


@pytest.fixture(scope="module")
def grads_by_term():
    """Gradient norms per parameter group for each named loss term on one tiny batch (bert mode)."""
    torch.manual_seed(0)
    bundle = make_bundle("unaligned")
    hp = _tiny_hp(output_dropout=0.0, text_dropout=0.0, embed_dropout=0.0, attn_dropout=0.0,
                  attn_dropout_a=0.0)
    model = DMD(hp, bundle.info(), bert_config=tiny_bert_config())
    batch = bundle.train.take(torch.arange(12))
    out = model(batch)
    terms = model.loss_terms(out, batch)
    groups = DMD.describe_groups()
    result = {}
    for name, value in terms.items():
        model.zero_grad(set_to_none=True)
        value.backward(retain_graph=True)
        norms = {}
        for g, prefixes in groups.items():
            ps = [p for pre in prefixes for n, p in model.named_parameters() if n.startswith(pre + ".")]
            norms[g] = sum(float(p.grad.abs().sum()) for p in ps if p.grad is not None)
        result[name] = norms
    return result


def _reached(norms):
    return {g for g, v in norms.items() if v > 0}


def test_decoupling_terms_reach_only_their_modules(grads_by_term):
    front = {"bert", "conv_proj"}
    assert _reached(grads_by_term["recon"]) == front | {"encoder_specific", "encoder_invariant", "decoders"}
    assert _reached(grads_by_term["cycle"]) == front | {"encoder_specific", "encoder_invariant", "decoders"}
    assert _reached(grads_by_term["ort"]) == front | {"encoder_specific", "encoder_invariant"}
    assert _reached(grads_by_term["margin"]) == front | {"encoder_invariant", "align_c"}


def test_distillation_terms_reach_their_branch_and_unit(grads_by_term):
    front = {"bert", "conv_proj"}
    homo = front | {"encoder_invariant", "homo_heads", "gd_homo"}
    hetero = front | {"encoder_specific", "crossmodal", "memory", "hetero_heads", "gd_hetero"}
    assert _reached(grads_by_term["gd_homo_logit"]) == homo
    assert _reached(grads_by_term["gd_homo_repr"]) == homo
    assert _reached(grads_by_term["gd_homo_reg"]) == homo  # through the edges only
    assert _reached(grads_by_term["gd_hetero_logit"]) == hetero
    assert _reached(grads_by_term["gd_hetero_repr"]) == hetero
    assert _reached(grads_by_term["gd_hetero_reg"]) == hetero


def test_total_reaches_everything_but_the_unused_projection(grads_by_term):
    everything = set(DMD.describe_groups())
    assert _reached(grads_by_term["total"]) == everything - {"proj_cosine_unused"}
    assert _reached(grads_by_term["task"]) == everything - {
        "proj_cosine_unused", "align_c", "decoders", "homo_heads", "hetero_heads", "invariant_head",
        "gd_homo", "gd_hetero"}
    assert _reached(grads_by_term["invariant"]) == {"bert", "conv_proj", "encoder_invariant",
                                                    "invariant_transformers", "invariant_head"}


# ------------------------------------------------------------------------------ composition, model
def test_total_composition_and_homo_repr_switch():
    torch.manual_seed(0)
    bundle = make_bundle("aligned")
    model = DMD(_tiny_hp(), bundle.info()).eval()
    batch = bundle.train.take(torch.arange(10))
    with torch.no_grad():
        out = model(batch)
        t = model.loss_terms(out, batch)
    expected = (t["task"] + t["uni_homo"] + t["uni_hetero"] + t["invariant"]
                + 0.05 * (t["gd_homo_logit"] + t["gd_homo_reg"])
                + 0.05 * (t["gd_hetero_logit"] + t["gd_hetero_repr"] + t["gd_hetero_reg"])
                + 0.1 * (t["cycle"] + t["recon"] + 0.1 * (t["margin"] + t["ort"])))
    assert torch.allclose(t["total"], expected)
    y = batch.labels
    assert torch.allclose(t["task"], (out["pred"] - y).abs().mean())
    assert torch.allclose(t["uni_homo"], sum((out[f"pred_homo_{m}"] - y).abs().mean() for m in "lva"))
    assert torch.allclose(t["recon"], sum(((out[f"recon_{m}"] - out[f"origin_{m}"]) ** 2).mean() for m in "lva"))
    model.hp = dataclasses.replace(model.hp, gd_homo_repr_in_total=True)
    with torch.no_grad():
        t2 = model.loss_terms(out, batch)
    assert torch.allclose(t2["total"] - t["total"], 0.05 * t["gd_homo_repr"])


@pytest.mark.parametrize("setting,mode", [("aligned", "features"), ("unaligned", "bert")])
def test_forward_shapes_and_wiring(setting, mode):
    bundle = make_bundle(setting)
    info = bundle.info()
    model = DMD(_tiny_hp(), info, bert_config=tiny_bert_config() if mode == "bert" else None)
    batch = bundle.train.take(torch.arange(5))
    out = model(batch)
    lens = {"l": info.seq_lens["text"] - 2, "v": info.seq_lens["vision"] - 2, "a": info.seq_lens["audio"] - 2}
    assert model.lens == lens and model.record()["text_mode"] == mode
    for m in "lva":
        for key in ("origin", "s", "c", "recon", "s_r"):
            assert out[f"{key}_{m}"].shape == (5, 8, lens[m]), (key, m)
        assert out[f"c_sim_{m}"].shape == (5, 8) and out[f"pred_homo_{m}"].shape == (5,)
    assert out["pred"].shape == (5,) and out["fused"].shape == (5, 72)
    assert out["reprs_homo"].shape == (3, 5, 8) and out["reprs_hetero"].shape == (3, 5, 16)
    assert out["edges_homo"].shape == (5, 6) and torch.allclose(out["edges_homo"].sum(1), torch.ones(5))
    # the homo representation is the bottleneck's post-ReLU hidden (the reference's in-place ReLU)
    c_flat = out["c_l"].transpose(1, 2).flatten(1)
    assert torch.allclose(out["reprs_homo"][0], torch.relu(model.homo_heads["l"].proj1(c_flat)))
    # attention dropout follows the source modality; memory depth max(nlevels, memory_min_layers)
    drop = {k: enc.layers[0].self_attn.attn_dropout for k, enc in model.crossmodal.items()}
    assert drop == {"l_with_a": 0.2, "l_with_v": 0.0, "a_with_l": 0.3, "a_with_v": 0.0, "v_with_l": 0.3,
                    "v_with_a": 0.2}
    assert {m: e.layers[0].self_attn.attn_dropout for m, e in model.self_attn_c.items()} == {
        "l": 0.3, "v": 0.0, "a": 0.2}
    assert all(e.position_embedding and e.layers[0].attn_mask for e in model.memory.values())
    model.loss_terms(out, batch)["total"].backward()


def test_classification_rejected():
    info = dataclasses.replace(canonical_info("mosi", "aligned"), task="classification", num_classes=3)
    with pytest.raises(UserError, match="regression"):
        DMD(DMDHParams(), info)


# ------------------------------------------------------------------------------ training
def _synthetic_bundle():
    from bench.data import load_dataset

    bundle = load_dataset("synthetic-mosi", "unaligned", profile="compact")
    sizes = {"train": 96, "valid": 48, "test": 48}
    bundle.splits = {k: s.take(torch.arange(sizes[k])) for k, s in bundle.splits.items()}
    return bundle


def test_trains_end_to_end_on_synthetic(monkeypatch):
    bundle = _synthetic_bundle()
    hp = _tiny_hp(batch_size=8, grad_accum=4, max_epochs=2, early_stop=2, learning_rate=1e-3)
    calls = []
    real_clip = torch.nn.utils.clip_grad_value_

    def counting_clip(params, value):
        calls.append(value)
        return real_clip(params, value)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_value_", counting_clip)
    out = train(DMD, hp, bundle, seed=1111)
    n_batches = 96 // 8
    assert calls == [0.6] * (2 * n_batches)  # after every backward, as DMD.py:180-184
    assert out.n_optimizer_steps == 2 * (n_batches // 4) and out.epochs_run == 2
    assert out.test_outputs["fused"].shape == (48, 72)
    assert out.test_outputs["edges_homo"].shape == (48, 6) and out.test_outputs["edges_hetero"].shape == (48, 6)
    assert np.isfinite(out.test["mae"]) and out.model_record["edges"][0] == "v->l"
    train_terms = out.history[0]["train"]
    assert {"recon", "cycle", "margin", "ort", "gd_homo_reg", "gd_hetero_repr"} <= set(train_terms)
    assert all(np.isfinite(v) for v in train_terms.values())


@pytest.mark.slow
def test_mosi229_smoke_beats_training_mean():
    """Real MOSI features (mosi229: 139/47/43 segments, MiniLM-384 text features, COVAREP-5, FACET-20).

    DMD's optimisation semantics (Adam, value clip 0.6 after every backward, plateau 5, the full
    objective) on a small DMD (d 8, one head, one level, memory depth 1, gd sizes 8) for 5 epochs of
    batch 16 without accumulation (the official 10 summed batches would leave 139 samples without a
    single step), lr 1e-3 (the official 1e-4 barely moves a model this small in 45 steps), attention
    dropout off and ``attn_impl=math`` (speed only). Zero-padded tails beyond the longest real sequence
    are cropped (audio 375 -> 156, vision 500 -> 187 frames; no real frame is removed). About 9 s of CPU
    on one thread. Smoke-test figures only, not comparable with published MOSI numbers.
    Seed 1111, one thread: test MAE 1.4172, corr 0.633 vs train-mean MAE 1.5512.
    """
    root = shared_data("mosi229")
    from bench.data import load_dataset

    bundle = load_dataset("mosi", "unaligned", data_root=str(root))
    t_a = max(int(s.audio_lengths.max()) for s in bundle.splits.values())
    t_v = max(int(s.vision_lengths.max()) for s in bundle.splits.values())
    bundle.splits = {k: dataclasses.replace(s, audio=s.audio[:, :t_a], vision=s.vision[:, :t_v])
                     for k, s in bundle.splits.items()}
    hp = dataclasses.replace(DMD.default_hparams("mosi", "unaligned"), d_model=8, num_heads=1, nlevels=1,
                             memory_min_layers=1, gd_size_homo=8, gd_size_hetero=8, grad_accum=1,
                             learning_rate=1e-3, max_epochs=5, early_stop=5, attn_dropout=0.0,
                             attn_dropout_a=0.0, attn_impl="math", eval_batch_size=64)
    out = train(DMD, hp, bundle, seed=1111)
    y = bundle.splits["test"].labels.numpy()
    const_mae = float(np.mean(np.abs(y - bundle.train.labels.numpy().mean())))
    print(f"mosi229 DMD test MAE {out.test['mae']:.4f} corr {out.test['corr']:.4f} "
          f"Has0-Acc2 {out.test['has0_acc2']:.4f} vs train-mean MAE {const_mae:.4f}")
    assert out.epochs_run == 5 and out.n_optimizer_steps == 5 * 9
    assert out.test["mae"] < const_mae
