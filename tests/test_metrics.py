import csv
import math

import numpy as np
import pytest
from scipy import stats

from bench.metrics import classification_metrics, regression_metrics
from tests.conftest import shared_data


def test_hand_computed_case():
    true = np.array([-2.6, -1.0, 0.0, 0.0, 0.5, 1.5, 2.5, 3.0])
    pred = np.array([-3.2, 0.4, 0.0, -0.3, 0.6, 1.4, 2.4, 2.0])
    m = regression_metrics(pred, true)
    # Has0: label>=0 -> F F T T T T T T ; pred>=0 -> F T T F T T T T
    assert m["has0_acc2"] == pytest.approx(6 / 8)  # mismatches at idx 1 and 3
    # Non0: drop the two zero labels -> 6 samples; pred>0 vs true>0: idx1 wrong
    assert m["non0_acc2"] == pytest.approx(5 / 6)
    # Acc-7: round(clip): true -> -3,-1,0,0,0(0.5 half-even),2,2(2.5 half-even),3
    #                     pred -> -3,0,0,-0,1(0.6),1,2,2
    assert m["acc7"] == pytest.approx(4 / 8)  # idx 0, 2, 3, 6
    # Acc-5 clips to [-2, 2]: true -> -2,-1,0,0,0,2,2,2 ; pred -> -2,0,0,0,1,1,2,2
    assert m["acc5"] == pytest.approx(5 / 8)
    assert m["mae"] == pytest.approx(np.mean(np.abs(pred - true)))  # unclipped
    assert m["corr"] == pytest.approx(stats.pearsonr(pred, true)[0], rel=1e-6)


def test_weighted_f1_argument_order_is_truth_first():
    true = np.array([1.0, 1.0, 1.0, 1.0, -1.0])
    pred = np.array([1.0, 1.0, -1.0, -1.0, -1.0])
    m = regression_metrics(pred, true)
    # truth-first: positive (support 4) P=1, R=1/2, F=2/3; negative (support 1) P=1/3, R=1, F=1/2
    assert m["non0_f1"] == pytest.approx((4 * 2 / 3 + 1 * 0.5) / 5)
    # the pre-2021 swapped order (as in the original MulT/MISA code) weights by predicted support
    assert m["non0_f1"] != pytest.approx((2 * 2 / 3 + 3 * 0.5) / 5)


def test_exact_zero_labels_and_predictions():
    true = np.array([0.0, 0.0, 1.0, -1.0])
    pred = np.array([0.0, -0.1, 0.0, 0.0])
    m = regression_metrics(pred, true)
    # Has0: a 0 label and a 0 prediction are both "non-negative"
    # idx1 (pred -0.1 < 0, label 0 >= 0) and idx3 (pred 0 >= 0, label -1) are wrong
    assert m["has0_acc2"] == pytest.approx(2 / 4)
    # Non0: only labels 1 and -1; a prediction of exactly 0 counts as negative
    assert m["non0_acc2"] == pytest.approx(1 / 2)


def test_constant_prediction_has_nan_corr():
    true = np.array([-1.0, 0.5, 2.0])
    m = regression_metrics(np.zeros(3), true)
    assert math.isnan(m["corr"])
    assert m["mae"] == pytest.approx(3.5 / 3)


def test_real_mosi_test_labels():
    path = shared_data("cmu_mosi", "label.csv")
    with open(path) as f:
        labels = np.array([float(r["label"]) for r in csv.DictReader(f) if r["mode"] == "test"])
    assert len(labels) == 686
    assert int((labels == 0).sum()) == 30  # Non0 denominator 656 (spec)
    m = regression_metrics(labels, labels)
    assert m["has0_acc2"] == m["non0_acc2"] == m["acc7"] == 1.0
    assert m["mae"] == 0.0
    # Predicting 0 everywhere: Has0 counts every non-negative label as correct,
    # Non0 counts only negative labels among the 656 non-zero ones.
    z = regression_metrics(np.zeros_like(labels), labels)
    assert z["has0_acc2"] == pytest.approx(np.mean(labels >= 0))
    assert z["non0_acc2"] == pytest.approx(np.sum(labels < 0) / 656)
    # Acc-7 of the zero predictor = share of labels that round (half to even) to 0
    assert z["acc7"] == pytest.approx(np.mean(np.round(labels) == 0))
    # 18 labels end in .5 (spec): half-to-even rounding decides their Acc-7 class
    assert int(np.sum(np.isclose(np.abs(labels) % 1, 0.5))) == 18


def test_classification_macro_metrics():
    true = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 0, 3])  # class 3 never occurs in truth
    m = classification_metrics(pred, true)
    assert m["acc"] == pytest.approx(3 / 6)
    # labels present in truth ∪ pred: {0,1,2,3}
    # P: c0 1/2, c1 2/3, c2 0, c3 0 -> mean 7/24; R: c0 1/2, c1 1, c2 0, c3 0 -> 3/8
    assert m["precision"] == pytest.approx((1 / 2 + 2 / 3) / 4)
    assert m["recall"] == pytest.approx((1 / 2 + 1) / 4)
    f1 = [2 * 0.5 * 0.5 / 1.0, 2 * (2 / 3) * 1 / (2 / 3 + 1), 0, 0]
    assert m["f1"] == pytest.approx(np.mean(f1))
    logits = np.eye(4)[pred] * 3.0
    assert classification_metrics(logits, true) == m
