"""Baseline methods, one registered class per file (MMSA's definitions and hyper-parameters)."""

from baselines import lf_dnn, misa, self_mm  # noqa: F401  (registers "lf_dnn", "misa", "self_mm")
