"""Forward/backward shapes, determinism, classification (MIntRec) and registration."""

from __future__ import annotations

import torch

from bench.registry import get_method
from emoe.method import EMOE, EMOEPaper
from tests.emoe.emoe_helpers import build, make_batch, make_info

D = 16  # tiny d_model


def test_eval_mode_is_deterministic_and_batch_independent():
    model, info = build("official", "unaligned", seed=3)
    model.eval()
    batch = make_batch(info, n=6, seed=4)
    with torch.no_grad():
        full = model(batch)["pred"]
        part = model(batch.take(torch.arange(3)))["pred"]
    assert torch.allclose(full[:3], part, atol=1e-5)


def test_classification_mintrec():
    info = make_info("unaligned", family="mintrec", task="classification", num_classes=20)
    for face in ("official", "paper"):
        model, _ = build(face, "unaligned", info=info, seed=5)
        model.train()
        batch = make_batch(info, n=7, seed=6)
        out = model(batch)
        assert out["pred"].shape == (7, 20) and out["pred_v"].shape == (7, 20)
        terms = model.loss_terms(out, batch)
        assert {"multi", "uni", "sim", "entropy", "ud"} <= set(terms)
        terms["total"].backward()
        assert "design_note" in model.record()
        # the trainer's evaluation path: Method.task_loss on (B, C) logits
        assert model.task_loss(out["pred"], batch.labels, reduction="none").shape == (7,)


def test_zero_padded_frames_get_position_zero():
    """Zero audio/vision frames give an exactly-zero conv output (bias-free) -> position 0."""
    model, info = build("official", "unaligned", seed=7)
    batch = make_batch(info, n=2, seed=8, zero_pad_tail=6)
    x = batch.audio.transpose(1, 2)
    proj = model.net.conv_proj["a"](x)
    enc = model.net.encoder_c(proj)
    k = model.hp.kernel_a
    n_zero = 6 - (k - 1)
    assert torch.equal(enc[:, 0, -n_zero:], torch.zeros(2, n_zero))
    assert (enc[:, 0, :-n_zero] != 0).all()


def test_registered():
    assert get_method("emoe") is EMOE and get_method("emoe-paper") is EMOEPaper
    assert EMOE.name == "emoe" and EMOEPaper.name == "emoe-paper"
    assert "mintrec" in EMOE.families
    assert EMOE.export_keys == ("weights", "fused", "pred_l", "pred_v", "pred_a")
