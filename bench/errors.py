"""User-facing errors: the CLI prints their message on one line and exits with code 2."""

from __future__ import annotations

import difflib


class UserError(Exception):
    """Bad input from the user (missing file, wrong key, unknown name): no traceback, exit 2."""


class DataError(UserError):
    """A data file exists but does not have the expected layout, shape, dtype or values."""


def did_you_mean(name: str, choices) -> str:
    """A suffix for an error message: the closest valid names, then every valid name."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"{hint} Valid choices: {', '.join(choices)}."
