"""Every switch changes what it claims (docs/switches.md)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bench.config import apply_overrides
from bench.errors import UserError
from emoe.config import PAPER_OVERRIDES, EMOEHParams, preset
from emoe.method import EMOE, EMOEPaper
from emoe.objective import importance_target, unimodal_errors
from emoe.router import BNMLPRouter, L2NormMLPRouter
from tests.emoe.emoe_helpers import build, make_batch, make_info


def _run(face="official", setting="unaligned", seed=0, train=False, **over):
    model, info = build(face, setting, seed=seed, **over)
    model.train(train)
    batch = make_batch(info, n=6, seed=seed + 100)
    out = model(batch)
    return model, batch, out, model.loss_terms(out, batch)


def test_mome_off_uniform_weights_no_router_terms():
    model, _, out, terms = _run(mome=False)
    assert model.net.router is None
    assert torch.equal(out["weights"], torch.full((6, 3), 1 / 3))
    assert not {"entropy", "sim", "balance"} & set(terms)
    h = torch.stack([out["feat_l"], out["feat_v"], out["feat_a"]], 1)
    assert torch.allclose(out["fused"], h.sum(1) / 3, atol=1e-6)


def test_default_sum_fusion_matches_per_sample_loop():
    _, _, out, _ = _run()
    w = out["weights"]
    for i in range(w.shape[0]):  # the official per-sample loop (emoe.py:159-163)
        ref = w[i, 0] * out["feat_l"][i] + w[i, 1] * out["feat_v"][i] + w[i, 2] * out["feat_a"][i]
        assert torch.allclose(out["fused"][i], ref, atol=1e-6)


@pytest.mark.parametrize("scale", [3.0, 1.0])
def test_concat_fusion_and_scale(scale):
    model, _, out, terms = _run(fusion="concat", concat_scale=scale)
    d = model.hp.d_model
    assert out["fused"].shape == (6, 3 * d) and out["proj_c"].shape == (6, 3 * d)
    w = out["weights"]
    parts = [w[:, 0:1] * out["feat_l"], w[:, 1:2] * out["feat_v"], w[:, 2:3] * out["feat_a"]]
    ref = scale * torch.cat(parts, 1)
    assert torch.allclose(out["fused"], ref, atol=1e-6)
    assert model.net.fused_head.proj1.in_features == 3 * d
    assert torch.isfinite(terms["ud"])


def test_importance_norm_and_eps_used_by_sim():
    for norm, eps in (("sum", 0.1), ("softmax", 0.1), ("sum", 0.5), ("softmax", 1e-8)):
        _, batch, out, terms = _run(importance_norm=norm, importance_eps=eps)
        preds = torch.stack([out["pred_l"], out["pred_v"], out["pred_a"]], 1)
        target = importance_target(unimodal_errors(preds, batch.labels, "regression"), eps, norm)
        assert terms["sim"].item() == pytest.approx(((out["weights"] - target) ** 2).mean().item(), rel=1e-5)


def test_loss_term_switches():
    _, _, _, full = _run()
    assert {"multi", "uni", "entropy", "sim", "balance", "ud", "total"} <= set(full)
    _, _, _, t = _run(ud=False)
    assert "ud" not in t
    assert t["total"].item() == pytest.approx((full["total"] - 0.1 * full["ud"]).item(), rel=1e-6)
    _, _, _, t = _run(router_entropy=False)
    assert "entropy" not in t and "sim" in t
    assert t["balance"].item() == pytest.approx(0.1 * full["sim"].item(), rel=1e-6)
    _, _, _, t = _run(weight_importance_sim=False)
    assert "sim" not in t and t["balance"].item() == pytest.approx(full["entropy"].item(), rel=1e-6)
    _, _, _, t = _run(keep_unimodal_loss=False)
    assert t["total"].item() == pytest.approx((full["total"] - full["uni"]).item(), rel=1e-6)
    _, _, _, t = _run(sim_loss="mse_sum")
    assert t["sim"].item() == pytest.approx(3 * full["sim"].item(), rel=1e-5)
    _, _, _, t = _run(entropy_log="add_eps", entropy_eps=1e-2)
    assert t["entropy"].item() != pytest.approx(full["entropy"].item(), rel=1e-6)


def test_ud_space_logits():
    _, _, out, t = _run(ud_space="logits", ud_loss="l1")
    w = out["weights"]
    teacher = w[:, 0] * out["pred_l"] + w[:, 1] * out["pred_v"] + w[:, 2] * out["pred_a"]
    assert t["ud"].item() == pytest.approx((out["pred"] - teacher).abs().mean().item(), rel=1e-5)
    with pytest.raises(UserError):
        build(ud_space="logits", ud_loss="softmax_mse")  # a constant on scalar regression logits


def test_router_input_and_arch():
    model, _, out, _ = _run(router_input="encoded")
    assert isinstance(model.net.router, L2NormMLPRouter)
    assert model.net.router.l1.in_features == 3 * model.hp.d_model and model.net.transfer_ali is None
    model, _, out, _ = _run(router_arch="bn_mlp", router_hidden=8)
    r = model.net.router
    assert isinstance(r, BNMLPRouter) and r.l1.out_features == 8
    info = make_info("unaligned")
    assert r.l1.in_features == info.seq_lens["text"] * (12 + 7 + 5)
    assert torch.allclose(out["weights"].sum(1), torch.ones(6), atol=1e-6)
    # a training batch of one sample does not break BatchNorm
    model.train()
    one = make_batch(info, n=1)
    assert model(one)["weights"].shape == (1, 3)


def test_temperature_scales_router_logits():
    torch.manual_seed(0)
    r1 = L2NormMLPRouter(20, 3, temperature=1.0)
    r2 = L2NormMLPRouter(20, 3, temperature=0.1)
    r2.load_state_dict(r1.state_dict())
    x = torch.randn(4, 20)
    assert torch.allclose(r2.logits(x), 10 * r1.logits(x), atol=1e-5)
    # hidden vector is L2-normalised before the ReLU: logits bounded by |W2 row| + |b2|, over t
    bound = (r1.l2.weight.norm(dim=1) + r1.l2.bias.abs()) / 1.0
    assert (r1.logits(100 * x).abs() <= bound + 1e-5).all()


def test_transfer_layers_applied_only_unaligned():
    m, _ = build("official", "unaligned")
    assert m.net.transfer_applied == {"v": True, "a": True}
    info = make_info("unaligned")
    assert m.net.transfer_ali["a"].linear.in_features == info.seq_lens["audio"]
    assert m.net.transfer_ali["v"].linear.out_features == info.seq_lens["text"]
    m, _ = build("official", "aligned")
    assert m.net.transfer_applied == {"v": False, "a": False}


def test_text_mode_resolution_and_record():
    assert EMOEHParams().resolved_text_mode() == "features"
    assert EMOEHParams(text_model="/some/bert").resolved_text_mode() == "bert"
    assert EMOEHParams(text_model="/x", text_mode="features").resolved_text_mode() == "features"
    m, _ = build()
    rec = m.record()
    assert rec["text_mode"] == "features" and rec["text_model"] is None and rec["face"] == "official"
    m, _ = build(bert=True)
    assert m.record()["text_mode"] == "bert" and m.net.bert is not None
    with pytest.raises(UserError):
        EMOEHParams(text_mode="bert").validate()
    with pytest.raises(UserError, match="no frozen text features"):
        build(info=make_info(text_features=False))
    with pytest.raises(UserError, match="bench never downloads"):
        build(text_model="/nonexistent/bert-dir")


def test_presets_trainer_fields():
    off = EMOE.default_hparams("mosi", "aligned")
    assert (off.batch_size, off.learning_rate, off.weight_decay, off.grad_accum, off.grad_accum_drop_tail,
            off.grad_clip_value, off.early_stop, off.max_epochs, off.plateau_patience, off.plateau_factor,
            off.val_loss) == (16, 1e-4, 0.0, 10, True, 0.0, 10, 0, 5, 0.5, "sample_mean")
    pap = EMOEPaper.default_hparams("mosi", "aligned")
    assert (pap.grad_accum, pap.max_epochs, pap.early_stop, pap.batch_size) == (1, 50, 50, 16)
    for k, v in PAPER_OVERRIDES.items():
        assert getattr(pap, k) == v
    mosei = EMOE.default_hparams("mosei", "unaligned")
    assert (mosei.kernel_l, mosei.kernel_a, mosei.kernel_v) == (5, 1, 3)
    got = (mosei.attn_dropout, mosei.attn_dropout_a, mosei.embed_dropout, mosei.text_dropout)
    assert got == (0.4, 0.0, 0.0, 0.3)
    assert EMOEPaper.default_hparams("mintrec", "unaligned").ud_loss == "kl"
    mintrec = EMOE.default_hparams("mintrec", "unaligned")
    assert (mintrec.select_on, mintrec.early_stop) == ("f1", 8)
    with pytest.raises(UserError):
        preset("mintrec", "aligned")
    with pytest.raises(UserError):
        preset("iemocap", "aligned")


def test_set_overrides_and_validate():
    hp = EMOE.default_hparams("mosi", "unaligned")
    hp2 = apply_overrides(hp, {"mome": "false", "fusion": "concat", "temperature": "0.5",
                               "importance_norm": "softmax", "val_loss": "batch_mean_4dp", "kernel_a": "3"})
    assert (hp2.mome, hp2.fusion, hp2.temperature, hp2.importance_norm, hp2.val_loss, hp2.kernel_a) == (
        False, "concat", 0.5, "softmax", "batch_mean_4dp", 3)
    for bad in ({"fusion": "mean"}, {"temperature": "0"}, {"d_model": "30"}, {"ud_loss": "kl"},
                {"importance_eps": "0"}, {"text_mode": "bert"}, {"early_stop": "0"}):
        with pytest.raises(UserError):
            apply_overrides(hp, bad)


def test_paper_face_defaults_build_and_train_step():
    model, batch, out, terms = _run("paper", train=True)
    assert isinstance(model.net.router, BNMLPRouter)
    assert model.hp.encoder_sharing == "per_modality" and model.hp.importance_norm == "softmax"
    terms["total"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_conv_skipped_when_width_equals_d_model():
    info = make_info("unaligned", vision_dim=16)  # d_model = 16 in the tiny profile
    m, _ = build(info=info)
    assert m.net.conv_applied == {"l": True, "v": False, "a": True}
    assert m(make_batch(info, n=2))["pred"].shape == (2,)


def test_kernel_longer_than_sequence_is_user_error():
    with pytest.raises(UserError, match="kernel"):
        build(kernel_l=50)


def test_replace_preserves_validation_types():
    hp = dataclasses.replace(EMOEHParams(), alpha=0.5)
    hp.validate()  # a replaced copy is still an EMOEHParams that validates its combinations
    assert type(hp) is EMOEHParams and hp.alpha == 0.5
    with pytest.raises(UserError, match="not divisible by n_heads"):
        dataclasses.replace(hp, d_model=30, n_heads=4).validate()
