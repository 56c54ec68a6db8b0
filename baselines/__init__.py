"""Baseline methods, one registered class per file (MMSA's definitions and hyper-parameters)."""

from baselines import lf_dnn  # noqa: F401  (registers "lf_dnn")
