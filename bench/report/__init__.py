"""Reporting: table and figure specs as data, planning, frames, statistics and renderers (pure functions)."""
