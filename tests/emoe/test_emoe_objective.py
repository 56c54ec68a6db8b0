"""Loss terms against values computed by hand on tiny tensors (paper Eq. 4-12, official code)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from emoe.config import EMOEHParams
from emoe.objective import (
    emoe_terms,
    entropy_loss,
    importance_target,
    sim_loss,
    ud_loss,
    ud_teacher,
    unimodal_errors,
)


def test_unimodal_errors_regression():
    y = torch.tensor([1.0, -2.0])
    preds = torch.tensor([[1.0, 0.0, 3.0], [-2.5, -2.0, 0.0]])
    c = unimodal_errors(preds, y, "regression")
    assert torch.allclose(c, torch.tensor([[0.0, 1.0, 4.0], [0.25, 0.0, 4.0]]))


def test_importance_target_sum_official():
    c = torch.tensor([[0.0, 1.0, 4.0]])
    inv = [1 / 0.1, 1 / 1.1, 1 / 4.1]
    s = sum(inv)
    got = importance_target(c, eps=0.1, norm="sum")
    assert torch.allclose(got, torch.tensor([[v / s for v in inv]]), atol=1e-7)
    assert got[0, 0].item() == pytest.approx(10 / (10 + 1 / 1.1 + 1 / 4.1), rel=1e-6)
    assert torch.allclose(got.sum(1), torch.ones(1))


def test_importance_target_softmax_paper():
    c = torch.tensor([[0.0, 1.0, 4.0]])
    inv = [1 / 0.1, 1 / 1.1, 1 / 4.1]
    z = sum(math.exp(v) for v in inv)
    got = importance_target(c, eps=0.1, norm="softmax")
    assert torch.allclose(got, torch.tensor([[math.exp(v) / z for v in inv]]), atol=1e-6)
    # tiny eps: nearly one-hot on the smallest error (paper's "very small" eps)
    hard = importance_target(torch.tensor([[1e-4, 0.5, 0.6]]), eps=1e-8, norm="softmax")
    assert hard[0, 0].item() == pytest.approx(1.0, abs=1e-6)


def test_unimodal_errors_classification():
    # C = 2, label 1, logits [0, ln 3] -> p_true = 0.75
    logits = torch.tensor([[[0.0, math.log(3)], [0.0, 0.0], [math.log(3), 0.0]]])  # (1, 3, 2)
    y = torch.tensor([1])
    c = unimodal_errors(logits, y, "classification", "one_minus_p_sq")
    assert torch.allclose(c, torch.tensor([[0.25 ** 2, 0.5 ** 2, 0.75 ** 2]]), atol=1e-6)
    ce = unimodal_errors(logits, y, "classification", "ce")
    assert torch.allclose(ce, torch.tensor([[-math.log(0.75), -math.log(0.5), -math.log(0.25)]]), atol=1e-6)


def test_sim_loss():
    w = torch.tensor([[0.5, 0.3, 0.2]])
    t = torch.tensor([[0.6, 0.2, 0.2]])
    assert sim_loss(w, t, "mse_mean").item() == pytest.approx(0.02 / 3, rel=1e-5)
    assert sim_loss(w, t, "mse_sum").item() == pytest.approx(0.02, rel=1e-5)


def test_entropy_loss():
    uniform = torch.full((4, 3), 1 / 3)
    assert entropy_loss(uniform, "clamp").item() == pytest.approx(-3 * math.log(3), rel=1e-6)
    assert entropy_loss(uniform, "add_eps", 1e-8).item() == pytest.approx(-3 * math.log(3), rel=1e-6)
    onehot = torch.tensor([[1.0, 0.0, 0.0]])
    # clamp: p = max(w, 1e-9) in both factors -> 3 * 2 * 1e-9 * ln(1e-9)
    want_onehot = 3 * 2 * 1e-9 * math.log(1e-9)
    assert entropy_loss(onehot, "clamp", 1e-9).item() == pytest.approx(want_onehot, rel=1e-4)
    assert entropy_loss(onehot, "add_eps", 1e-3).item() == pytest.approx(3 * math.log(1.001), rel=1e-4)
    w = torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]])
    want = sum(3 * sum(p * math.log(p) for p in row) for row in w.tolist()) / 2
    assert entropy_loss(w, "clamp").item() == pytest.approx(want, rel=1e-6)


def test_ud_loss_softmax_mse_and_teacher():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(3), 0.0]])  # softmax -> [0.75, 0.25]
    assert ud_loss(s, t, "softmax_mse").item() == pytest.approx(0.0625, rel=1e-6)
    assert ud_loss(s, t, "l1").item() == pytest.approx(math.log(3) / 2, rel=1e-6)
    assert ud_loss(s, t, "mse").item() == pytest.approx(math.log(3) ** 2 / 2, rel=1e-6)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert ud_loss(s, t, "kl").item() == pytest.approx(kl, rel=1e-5)
    w = torch.tensor([[0.5, 0.3, 0.2]])
    stack = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    assert torch.allclose(ud_teacher(w, stack, "sum"), torch.tensor([[0.5 + 0.9 + 1.0, 1.0 + 1.2 + 1.2]]))
    assert torch.allclose(ud_teacher(w, stack, "concat"), torch.tensor([[0.5, 1.0, 0.9, 1.2, 1.0, 1.2]]))


def _fixed_out():
    return {
        "pred": torch.tensor([0.5, -1.0]),
        "pred_l": torch.tensor([1.0, -2.5]),
        "pred_v": torch.tensor([0.0, -2.0]),
        "pred_a": torch.tensor([3.0, 0.0]),
        "weights": torch.tensor([[0.5, 0.3, 0.2], [1 / 3, 1 / 3, 1 / 3]]),
        "proj_c": torch.tensor([[0.0, 0.0], [1.0, 0.0]]),
        "proj_stack": torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]],
                                    [[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]]]),
    }


def test_total_official_by_hand():
    out, y = _fixed_out(), torch.tensor([1.0, -2.0])
    terms = emoe_terms(out, y, EMOEHParams())
    multi = (0.5 + 1.0) / 2
    uni_l, uni_v, uni_a = (0 + 0.5) / 2, (1 + 0) / 2, (2 + 2) / 2
    uni = (uni_l + uni_v + uni_a) / 3
    # importance: errors [[0,1,4],[0.25,0,4]], eps 0.1, sum-normalised
    rows = [[1 / 0.1, 1 / 1.1, 1 / 4.1], [1 / 0.35, 1 / 0.1, 1 / 4.1]]
    imp = [[v / sum(r) for v in r] for r in rows]
    w = out["weights"].tolist()
    sim = sum((w[b][m] - imp[b][m]) ** 2 for b in range(2) for m in range(3)) / 6
    ent = (3 * sum(p * math.log(p) for p in w[0]) + 3 * sum(p * math.log(p) for p in w[1])) / 2

    def softmax(v):
        z = sum(math.exp(x) for x in v)
        return [math.exp(x) / z for x in v]

    teacher = [[sum(w[b][m] * out["proj_stack"][b, m, k].item() for m in range(3)) for k in range(2)]
               for b in range(2)]
    ud = sum((a - b) ** 2 for r in range(2)
             for a, b in zip(softmax(out["proj_c"][r].tolist()), softmax(teacher[r]), strict=True)) / 4
    total = multi + uni + 0.1 * (ent + 0.1 * sim) + 0.1 * ud
    assert terms["multi"].item() == pytest.approx(multi, rel=1e-6)
    assert terms["uni_a"].item() == pytest.approx(uni_a, rel=1e-6)
    assert terms["uni"].item() == pytest.approx(uni, rel=1e-6)
    assert terms["sim"].item() == pytest.approx(sim, rel=1e-5)
    assert terms["entropy"].item() == pytest.approx(ent, rel=1e-6)
    assert terms["ud"].item() == pytest.approx(ud, rel=1e-5)
    assert terms["balance"].item() == pytest.approx(ent + 0.1 * sim, rel=1e-6)
    assert terms["total"].item() == pytest.approx(total, rel=1e-6)


def test_total_linear_in_weights():
    out, y = _fixed_out(), torch.tensor([1.0, -2.0])
    base = emoe_terms(out, y, EMOEHParams())
    for field, delta, term in (("lambda2", 0.4, lambda t: t["ud"]),
                               ("lambda1", 0.4, lambda t: t["balance"]),
                               ("alpha", 0.9, lambda t: 0.1 * t["sim"])):
        hp = dataclasses.replace(EMOEHParams(), **{field: getattr(EMOEHParams(), field) + delta})
        t2 = emoe_terms(out, y, hp)
        diff = (t2["total"] - base["total"]).item()
        assert diff == pytest.approx(delta * term(base).item(), rel=1e-4, abs=1e-9)


def test_paper_logit_ud_and_sum_sim():
    out, y = _fixed_out(), torch.tensor([1.0, -2.0])
    hp = dataclasses.replace(EMOEHParams(), ud_space="logits", ud_loss="l1", sim_loss="mse_sum")
    terms = emoe_terms(out, y, hp)
    w = out["weights"]
    zuni = (w * torch.stack([out["pred_l"], out["pred_v"], out["pred_a"]], 1)).sum(1)
    assert terms["ud"].item() == pytest.approx((out["pred"] - zuni).abs().mean().item(), rel=1e-6)
    ref = emoe_terms(out, y, EMOEHParams())
    assert terms["sim"].item() == pytest.approx(3 * ref["sim"].item(), rel=1e-6)


def test_classification_total():
    out = {
        "pred": torch.tensor([[0.0, math.log(3)]]),
        "pred_l": torch.tensor([[0.0, math.log(3)]]),
        "pred_v": torch.tensor([[0.0, 0.0]]),
        "pred_a": torch.tensor([[math.log(3), 0.0]]),
        "weights": torch.tensor([[0.5, 0.3, 0.2]]),
        "proj_c": torch.zeros(1, 4),
        "proj_stack": torch.zeros(1, 3, 4),
    }
    y = torch.tensor([1])
    terms = emoe_terms(out, y, EMOEHParams(), task="classification")
    assert terms["multi"].item() == pytest.approx(-math.log(0.75), rel=1e-6)
    want_uni = -(math.log(0.75) + math.log(0.5) + math.log(0.25)) / 3
    assert terms["uni"].item() == pytest.approx(want_uni, rel=1e-6)
    c = [0.0625, 0.25, 0.5625]
    inv = [1 / (v + 0.1) for v in c]
    imp = [v / sum(inv) for v in inv]
    sim = sum((a - b) ** 2 for a, b in zip([0.5, 0.3, 0.2], imp, strict=True)) / 3
    assert terms["sim"].item() == pytest.approx(sim, rel=1e-5)
    assert terms["ud"].item() == pytest.approx(0.0, abs=1e-12)
