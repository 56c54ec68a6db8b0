"""Baseline methods, one registered class per file (MMSA's definitions and hyper-parameters)."""

from baselines import dmd, lf_dnn, misa, mult, self_mm  # noqa: F401  (registers each method)
