"""File checks on user-given data paths that turn OS refusals (a name too long, a denied directory) into
one-line errors instead of tracebacks: ``Path.is_file`` raises for those instead of answering False."""

from __future__ import annotations

from pathlib import Path

from bench.errors import UserError


def _refused(path: Path, e: OSError) -> UserError:
    return UserError(f"{path}: the operating system refuses this path ({e.strerror or type(e).__name__}); "
                     "check --data-root (BENCH_DATA_ROOT)")


def is_file(path) -> bool:
    try:
        return Path(path).is_file()
    except OSError as e:
        raise _refused(Path(path), e) from None


def is_dir(path) -> bool:
    try:
        return Path(path).is_dir()
    except OSError as e:
        raise _refused(Path(path), e) from None
