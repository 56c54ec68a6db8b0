"""Reporting: the paper's tables rendered from result frames (pure functions, no printing)."""
