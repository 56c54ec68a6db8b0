"""On-disk cache for generated data: location, atomic writes, validated reads.

Location: the ``cache_dir`` argument, else ``$BENCH_CACHE``, else ``~/.cache/emoe-bench``.
An entry is a folder of ``.npy`` files plus ``meta.json``. It is written under a temporary name in the
same parent folder and renamed into place, so a reader never sees a half-written entry; large data
are generated straight into the entry through memory maps. An entry that does not load, lacks an
array, has a wrong shape or carries a different key is treated as absent: the caller regenerates and
replaces it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

ENV_CACHE = "BENCH_CACHE"
DEFAULT_CACHE = Path("~/.cache/emoe-bench")
META_FILE = "meta.json"


def cache_root(cache_dir=None) -> Path:
    """The cache folder (not created here)."""
    if cache_dir is not None and str(cache_dir).strip() != "":
        return Path(cache_dir).expanduser()
    env = os.environ.get(ENV_CACHE, "").strip()
    if env:
        return Path(env).expanduser()
    return DEFAULT_CACHE.expanduser()


def _canonical(meta: dict) -> dict:
    return json.loads(json.dumps(meta, sort_keys=True))


class EntryWriter:
    """Builds one cache entry in a temporary folder; :meth:`commit` renames it into place.

    :meth:`array` returns a writable ``.npy`` memory map, so large data (e.g. MOSEI full, ~8 GB) is
    generated straight to disk without holding it in memory. Disk space is reserved up front where the
    platform allows it, so a full disk is an ``OSError`` here rather than a crash while writing.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=self.path.name + ".tmp-", dir=self.path.parent))
        self._maps: list[np.memmap] = []

    def array(self, name: str, shape, dtype) -> np.ndarray:
        f = self.tmp / f"{name}.npy"
        a = np.lib.format.open_memmap(f, mode="w+", dtype=np.dtype(dtype), shape=tuple(shape))
        if hasattr(os, "posix_fallocate") and a.nbytes:
            fd = os.open(f, os.O_RDWR)
            try:
                os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
            except OSError as e:
                if e.errno == errno.ENOSPC:
                    raise
            finally:
                os.close(fd)
        self._maps.append(a)
        return a

    def commit(self, meta: dict) -> None:
        for a in self._maps:
            a.flush()
        self._maps.clear()
        (self.tmp / META_FILE).write_text(json.dumps(meta, sort_keys=True))
        os.chmod(self.tmp, 0o755)  # mkdtemp makes it owner-only
        if self.path.exists():  # a stale or corrupt entry: replace it
            shutil.rmtree(self.path, ignore_errors=True)
        try:
            os.replace(self.tmp, self.path)
        except OSError:
            if not (self.path / META_FILE).is_file():  # not a concurrent writer's finished entry
                raise
            shutil.rmtree(self.tmp, ignore_errors=True)

    def abort(self) -> None:
        self._maps.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)


def save_arrays(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write in-memory ``arrays`` (one ``<name>.npy`` each) and ``meta.json`` atomically as ``path``."""
    w = EntryWriter(path)
    try:
        for name, a in arrays.items():
            w.array(name, a.shape, a.dtype)[...] = a
        w.commit(meta)
    except BaseException:
        w.abort()
        raise


def load_arrays(path: Path, meta: dict, required: dict[str, tuple]) -> dict[str, np.ndarray] | None:
    """The arrays of a cache entry (read into memory), or None when absent or not usable.

    Entries are read, not memory-mapped: a mapped file that is later truncated in place would crash
    the process (SIGBUS) on the next access.

    ``meta`` must equal the stored record; ``required`` maps array names to their expected shapes.
    """
    path = Path(path)
    try:
        if not (path / META_FILE).is_file():
            return None
        if json.loads((path / META_FILE).read_text()) != _canonical(meta):
            return None
        out = {}
        for name, shape in required.items():
            a = np.load(path / f"{name}.npy", allow_pickle=False)
            if tuple(a.shape) != tuple(shape):
                return None
            out[name] = a
        return out
    except Exception:  # truncated file, bad header, unreadable folder, ...: regenerate
        return None
