"""Which parameter groups receive gradient from which loss term (the official code's detach points)."""

from __future__ import annotations

import pytest
import torch

from tests.emoe.emoe_helpers import build, make_batch

# finer groups than describe_groups: per-modality parts of the conv/transformer/head groups
PARTS = ["bert", "router", "transfer_ali", "conv_proj.l", "conv_proj.v", "conv_proj.a", "encoder_c",
         "encoders", "transformers.l", "transformers.v", "transformers.a", "unimodal_heads.l",
         "unimodal_heads.v", "unimodal_heads.a", "fused_head"]


def _reached(model, loss) -> set[str]:
    names, params = zip(*model.net.named_parameters(), strict=True)
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    hit = set()
    for n, g in zip(names, grads, strict=True):
        if g is not None and g.abs().sum() > 0:
            for part in PARTS:
                if n == part or n.startswith(part + "."):
                    hit.add(part)
    return hit


def _all_but(*excluded):
    return set(PARTS) - set(excluded)


@pytest.fixture(scope="module")
def official_terms():
    model, info = build("official", "unaligned", bert=True, seed=3)
    model.train()
    batch = make_batch(info, n=8, seed=4)
    out = model(batch)
    return model, model.loss_terms(out, batch)


def test_task_terms(official_terms):
    model, terms = official_terms
    heads = {"unimodal_heads.l", "unimodal_heads.v", "unimodal_heads.a"}
    assert _reached(model, terms["multi"]) == _all_but("encoders", *heads)
    assert _reached(model, terms["uni_l"]) == {"bert", "conv_proj.l", "encoder_c", "transformers.l",
                                              "unimodal_heads.l"}
    for m in "va":
        assert _reached(model, terms[f"uni_{m}"]) == {f"conv_proj.{m}", "encoder_c", f"transformers.{m}",
                                                      f"unimodal_heads.{m}"}


def test_router_terms_reach_only_router_transfer_bert(official_terms):
    model, terms = official_terms
    assert _reached(model, terms["entropy"]) == {"bert", "router", "transfer_ali"}
    assert _reached(model, terms["sim"]) == {"bert", "router", "transfer_ali"}


def test_ud_teacher_detached(official_terms):
    model, terms = official_terms
    heads = {"unimodal_heads.l", "unimodal_heads.v", "unimodal_heads.a"}
    assert _reached(model, terms["ud"]) == _all_but("encoders", *heads)


def test_total_never_reaches_dead_encoders(official_terms):
    model, terms = official_terms
    assert _reached(model, terms["total"]) == _all_but("encoders")


def test_aligned_transfer_gets_nothing():
    model, info = build("official", "aligned", bert=False, seed=1)
    batch = make_batch(info, n=4, seed=2)
    terms = model.loss_terms(model(batch), batch)
    hit = _reached(model, terms["total"])
    assert "transfer_ali" not in hit and "router" in hit and "bert" not in hit


def test_importance_not_detached_trains_heads_from_sim():
    model, info = build("official", "unaligned", bert=False, seed=5, importance_detach=False)
    batch = make_batch(info, n=8, seed=6)
    terms = model.loss_terms(model(batch), batch)
    hit = _reached(model, terms["sim"])
    assert {"unimodal_heads.l", "unimodal_heads.v", "unimodal_heads.a", "router"} <= hit


def test_per_modality_encoders_replace_shared():
    model, info = build("official", "unaligned", bert=False, seed=7, encoder_sharing="per_modality")
    batch = make_batch(info, n=4, seed=8)
    hit = _reached(model, model.loss_terms(model(batch), batch)["total"])
    assert "encoders" in hit and "encoder_c" not in hit


def test_paper_face_router_on_encoded_features():
    model, info = build("paper", "unaligned", bert=False, seed=9)
    batch = make_batch(info, n=6, seed=10)
    terms = model.loss_terms(model(batch), batch)
    # encoded router input: the router losses reach the conv projections and encoders, not the heads
    hit = _reached(model, terms["entropy"])
    assert {"router", "conv_proj.l", "conv_proj.v", "conv_proj.a", "encoders"} <= hit
    assert not hit & {"transformers.l", "fused_head", "unimodal_heads.l"}
    # logit-space L_ud: teacher detached, student = fused prediction
    hit_ud = _reached(model, terms["ud"])
    assert "fused_head" in hit_ud
    assert not hit_ud & {"unimodal_heads.l", "unimodal_heads.v", "unimodal_heads.a"}
