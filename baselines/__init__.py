"""Baseline methods, one registered class per file (MMSA's definitions and hyper-parameters).

Every public module here (name not starting with ``_``) is imported, which registers its method, so a
new baseline is one file: nothing else needs editing for ``bench`` to find it.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
