"""Loading the MMSA / MIntRec feature pickles without running what they contain.

A plain ``pickle.load`` calls whatever a file names (``os.system``, ``builtins.eval``, ...), so a data
file from the internet could run code. These formats hold only dicts/lists of numpy arrays, numpy
scalars and strings, so :class:`DataUnpickler` resolves only the few globals such files reference
(numpy's array/dtype/scalar rebuild functions under both the numpy 1.x ``numpy.core`` and the numpy
2.x ``numpy._core`` paths, and builtin containers and scalars) and refuses every other global before
anything is called. The file is hashed (SHA-256) before it is opened as a pickle.
"""

from __future__ import annotations

import importlib
import os
import pickle
from pathlib import Path

from bench.data import checksums
from bench.errors import DataError

_BUILTIN_TYPES = ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float",
                  "bool", "complex")

# (module, name) as written in a pickle -> (module to import, attribute). Only numpy modules, the
# builtins module, collections and _codecs (protocol <= 2 writes bytes as _codecs.encode) are imported.
_NUMPY_CORE = {
    ("multiarray", "_reconstruct"),  # ndarray.__reduce__ (protocols 0-4)
    ("multiarray", "scalar"),  # numpy scalars (np.float32(1.5))
    ("numeric", "_frombuffer"),  # ndarray.__reduce_ex__ for protocol 5
}
ALLOWED_GLOBALS: dict[tuple[str, str], tuple[str, str]] = {
    **{(mod, t): ("builtins", t) for mod in ("builtins", "__builtin__") for t in _BUILTIN_TYPES},
    ("collections", "OrderedDict"): ("collections", "OrderedDict"),
    ("_codecs", "encode"): ("_codecs", "encode"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    **{(f"numpy.{pkg}.{sub}", name): (f"numpy.{sub}", name) for pkg in ("core", "_core") for sub, name in _NUMPY_CORE},
}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside :data:`ALLOWED_GLOBALS`."""

    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.module, self.name = module, name


def _numpy_core_module(sub: str):
    """numpy's ``_core.<sub>`` (numpy 2.x, and a shim in 1.26) or ``core.<sub>`` (older numpy 1.x)."""
    for pkg in ("numpy._core", "numpy.core"):
        try:
            return importlib.import_module(f"{pkg}.{sub}")
        except ImportError:
            continue
    raise ImportError(f"numpy has neither numpy._core.{sub} nor numpy.core.{sub}")


class DataUnpickler(pickle._Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS` and no persistent ids.

    It extends pickle's pure-Python unpickler, whose memo is a dict: the C one keeps an array sized by
    the largest memo index, so one damaged byte (index 402653499) made it allocate and zero 3 GB for
    over a minute. Speed on feature files is the same (their time is in reading the array bytes).
    """

    def find_class(self, module, name):
        target = ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise RefusedGlobal(module, name)
        mod, attr = target
        if mod.startswith("numpy."):
            return getattr(_numpy_core_module(mod.split(".", 1)[1]), attr)
        return getattr(importlib.import_module(mod), attr)

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not allowed in data pickles")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def _unreadable(path: Path, e: OSError) -> DataError:
    why = e.strerror or _first_line(e) or type(e).__name__
    return DataError(f"{path}: cannot read the file ({why}); expected a readable data file")


def load_data_pickle(path) -> tuple[object, str]:
    """``(object, sha256)`` of a data pickle: hashed first, then unpickled with :class:`DataUnpickler`.

    Every failure is a one-line :class:`DataError` naming the file: unreadable (permissions, I/O),
    not a pickle (garbage, truncated), a refused global (nothing was executed), or a file that
    changed between hashing and loading.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            sha = checksums.sha256_of_stream(f)
            f.seek(0)
            reader = checksums.HashingReader(f)
            try:
                obj = DataUnpickler(reader).load()
            except RefusedGlobal as e:
                raise DataError(
                    f"{path}: refused to load: the pickle calls {e.module}.{e.name}, but data pickles may "
                    "only contain numpy arrays, dtypes and scalars and builtin containers and scalars "
                    "(nothing from the file was run); is it really an MMSA/MIntRec feature file?"
                ) from None
            except OSError:
                raise
            except MemoryError:
                size = os.fstat(f.fileno()).st_size
                raise DataError(
                    f"{path}: ran out of memory while unpickling this {size / 1e9:.2f} GB file; it is larger "
                    "than this machine's memory allows, or damaged (a corrupt length field)"
                ) from None
            except Exception as e:
                raise DataError(
                    f"{path}: not a readable pickle file ({type(e).__name__}: {_first_line(e)}); it may be "
                    "truncated or corrupt: check it with 'bench data verify'"
                ) from None
            if reader.hexdigest() != sha:
                raise DataError(f"{path}: the file changed while it was being loaded; load it again")
    except OSError as e:
        raise _unreadable(path, e) from None
    return obj, sha
