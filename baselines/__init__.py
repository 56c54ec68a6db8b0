"""Baseline methods, one registered class per file (MMSA's definitions and hyper-parameters)."""

from baselines import dmd, ef_lstm, lf_dnn, lmf, misa, mult, self_mm, tfn  # noqa: F401  (registers each)
