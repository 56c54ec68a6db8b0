"""The CI regression gate (docs/ci-gate.md), in two parts that hold on any CPU and thread count:

1. golden step: every registered method takes one trainer step from a fixed init on a fixed batch
   (all random draws from numpy, bench/golden.py); predictions, loss terms, gradient norms and the
   step match tests/golden/step-golden.json to a relative tolerance 100x above measured float noise.
2. training check: a few seeds of a short EMOE training land inside the prediction band of the
   reference's seed spread (results/reference/gate-training.csv, bench/gate.py).

Both directions are tested: unchanged code passes (1 and 2 threads), a doubled learning rate or a
dropped loss term fails.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from bench import gate, golden
from bench.data import load_dataset
from bench.registry import get_method, methods

GOLDEN = golden.load_golden()["cases"]


def _double_lr(hp):
    return dataclasses.replace(hp, learning_rate=2 * hp.learning_rate)


# ------------------------------------------------------------------------------ golden step
def test_every_registered_method_has_a_golden_case():
    cases = golden.golden_cases()
    assert set(cases) == set(GOLDEN), "regenerate deliberately: python -m bench.golden --write"
    assert {c.partition("+")[0] for c in cases} == set(methods())


@pytest.mark.parametrize("case", golden.golden_cases())
def test_golden_step_matches(case):
    assert golden.compare_case(GOLDEN[case], golden.compute_case(case)) == []


@pytest.mark.parametrize("case", ["emoe", "misa+bert"])
def test_golden_step_holds_with_two_threads(case):
    torch.set_num_threads(2)  # the autouse fixture restores the count
    assert golden.compare_case(GOLDEN[case], golden.compute_case(case)) == []


def test_golden_fails_when_the_learning_rate_is_doubled():
    now = golden.compute_case("emoe", hp_change=_double_lr)
    bad = golden.compare_case(GOLDEN["emoe"], now)
    diffs = golden.relative_differences(GOLDEN["emoe"], now)
    assert bad and all(b.startswith("step[") for b in bad)  # forward and gradients are unchanged
    # Adam's first step is lr * g / (|g| + eps): doubling lr doubles every compared step
    assert max(diffs["step"].values()) == pytest.approx(1.0, rel=1e-3)
    assert max(diffs["grad"].values()) < golden.RTOL


def test_golden_fails_when_a_loss_term_is_dropped():
    # an hparam: EMOE without the unimodal losses (L_l + L_v + L_a)/3
    now = golden.compute_case("emoe", hp_change=lambda hp: dataclasses.replace(hp, keep_unimodal_loss=False))
    assert any(b.startswith("loss[total]") for b in golden.compare_case(GOLDEN["emoe"], now))
    # a monkeypatched objective: MISA's total without its weighted reconstruction term
    w = get_method("misa").default_hparams("mosi", "unaligned").recon_weight

    def drop_recon(terms):
        return {**terms, "total": terms["total"] - w * terms["recon"]}

    now = golden.compute_case("misa", loss_change=drop_recon)
    bad = golden.compare_case(GOLDEN["misa"], now)
    assert any(b.startswith("loss[total]") for b in bad) and any(b.startswith("grad[") for b in bad)


def test_portable_rng_serves_dropout_and_refuses_unknown_draws():
    x = torch.ones(4, 5)
    with golden.PortableRNG(7):
        a = torch.nn.functional.dropout(x, 0.5, training=True)
    with golden.PortableRNG(7):
        b = torch.nn.functional.dropout(x, 0.5, training=True)
    keep = np.random.default_rng(7).random((4, 5)) < 0.5  # the mask is numpy's, on every machine
    assert torch.equal(a, b) and torch.equal(a, torch.as_tensor(keep, dtype=torch.float32) * 2)
    with golden.PortableRNG(7), pytest.raises(RuntimeError, match="no portable replacement"):
        torch.poisson(torch.ones(3))


def test_compare_case_by_hand():
    g = {"pred": {"0": 1.0, "1": -2.0}, "loss": {"total": 0.5}, "grad": {"a": 10.0, "b": 1e-9},
         "step": {"a": 0.1, "b": 0.1}}
    near = {"pred": {"0": 1.00005, "1": -2.0}, "loss": {"total": 0.5}, "grad": {"a": 10.0, "b": 3e-9},
            "step": {"a": 0.1, "b": 0.07}}  # b's gradient is noise (< GRAD_FLOOR x 10): its step is not compared
    assert golden.compare_case(g, near, rtol=1e-4) == []
    far = {**near, "pred": {"0": 1.0005, "1": -2.0}}  # 5e-4 / max(1.0, family scale 2.0) = 2.5e-4
    assert golden.compare_case(g, far, rtol=1e-4) == [
        "pred[0]: golden 1.0, now 1.0005 (relative difference 0.00025 > 0.0001)"]
    missing = {**near, "loss": {}}
    assert golden.compare_case(g, missing, rtol=1e-4)[0].startswith("loss[total]: golden 0.5, now None")


# ------------------------------------------------------------------------------ training check
@pytest.fixture(scope="module")
def gate_runs():
    torch.set_num_threads(1)
    return gate.train_seeds(gate.GATE_SEEDS)


@pytest.mark.slow
def test_training_lands_in_the_reference_seed_band(gate_runs):
    values = [gate.metric_values(o) for o in gate_runs]
    report = gate.check(gate.read_reference(), {m: [v[m] for v in values] for m in gate.METRICS})
    assert report["passed"].all(), report.to_string()


@pytest.mark.slow
def test_training_check_fails_when_the_learning_rate_is_ten_times_larger():
    """A doubled lr moves the 4-epoch training curve by less than a seed s.d. (inside the band; the
    golden step catches it); ten times the lr lifts its mean by ~0.13 (5 s.d.), outside the band."""
    torch.set_num_threads(1)
    runs = gate.train_seeds(gate.GATE_SEEDS, lambda hp: dataclasses.replace(hp, learning_rate=10 * hp.learning_rate))
    values = [gate.metric_values(o) for o in runs]
    report = gate.check(gate.read_reference(), {m: [v[m] for v in values] for m in gate.METRICS}).set_index("metric")
    assert not report.loc["train_loss_mean", "passed"] and report.loc["train_loss_mean", "new_mean"] > report.loc[
        "train_loss_mean", "high"], report.to_string()


@pytest.mark.slow
def test_router_weights_follow_planted_importance(gate_runs):
    """Issue 3's check: on synthetic data EMOE's router weights correlate positively with the planted
    per-sample modality importance (both in [text, vision, audio] order)."""
    importance = load_dataset("synthetic-mosi", "aligned").splits["test"].importance.numpy()
    for outcome in gate_runs:
        weights = outcome.test_outputs["weights"]
        rho = [spearmanr(weights[:, m], importance[:, m])[0] for m in range(3)]
        assert min(rho) > 0.1 and np.mean(rho) > 0.3, rho


def test_reference_records_seeds_and_machine():
    ref = gate.read_reference()
    assert list(ref["metric"]) == list(gate.METRICS)
    for _, row in ref.iterrows():
        values = gate.read_values(row["values"])
        assert len(values) == row["n"] >= 10 and np.mean(values) == pytest.approx(row["mean"], abs=1e-6)
        assert row["cpu"] and row["torch"] and row["threads"] == 1


def test_prediction_band_by_hand():
    # mean 2, s 1, n 3, k 1: 2 ± t(2, 0.975) * sqrt(1/3 + 1) = 2 ± 4.302653 * 1.154701
    lo, hi = gate.prediction_band([1.0, 2.0, 3.0], k=1, alpha=0.05)
    assert (lo, hi) == pytest.approx((2 - 4.968275, 2 + 4.968275), abs=1e-5)
    ref = pd.DataFrame({"metric": ["m"], "values": ["1:1.0;2:2.0;3:3.0"]})
    assert gate.check(ref, {"m": [6.9]}, alpha=0.05)["passed"].tolist() == [True]
    assert gate.check(ref, {"m": [7.0]}, alpha=0.05)["passed"].tolist() == [False]
    assert gate.check(ref, {}, alpha=0.05)["passed"].tolist() == [False]  # a metric never measured fails
