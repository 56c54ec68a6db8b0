"""One line for an OS error (disk full, I/O, a path longer than the OS allows) naming the path and what to do:
the CLI prints it, and the store adds it to the errors it re-raises."""

from __future__ import annotations

import errno


def _short(path) -> str:
    text = str(path)
    return text if len(text) <= 120 else f"{text[:60]}...{text[-40:]} ({len(text)} characters)"


def os_error_line(e: OSError) -> str:
    """One line naming the path and what went wrong, e.g. for ENOSPC, EIO or ENAMETOOLONG."""
    why = e.strerror or type(e).__name__
    paths = [_short(p) for p in (e.filename, e.filename2) if p is not None]
    where = f"{' -> '.join(paths)}: " if paths else ""
    hint = ""
    if e.errno == errno.ENAMETOOLONG:
        hint = "; expected a shorter path (each name at most 255 bytes, the whole path at most 4096)"
    elif e.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "; free some space and rerun the same command (finished runs are kept)"
    return f"{where}{why}{hint}"
