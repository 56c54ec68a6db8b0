"""Registries of methods and datasets with did-you-mean lookup (after timm / lm-eval-harness).

Methods register with ``@register_method("name")`` in their own module under ``emoe/`` or
``baselines/``. ``bench`` itself never imports a model: :func:`load_builtin_methods` is the single
place that imports the model packages so their decorators run. Datasets register in
:mod:`bench.data.loaders` (re-exported here); the import goes one way, ``bench.data`` never imports this.
"""

from __future__ import annotations

import importlib

from bench.data.loaders import datasets, get_dataset_loader, register_dataset
from bench.errors import UserError, did_you_mean

__all__ = ["datasets", "get_dataset_loader", "get_method", "load_builtin_methods", "methods", "register_dataset",
           "register_method"]

_METHODS: dict[str, type] = {}

# Packages whose import registers the built-in methods.
BUILTIN_METHOD_PACKAGES = ("baselines", "emoe")


def register_method(name: str):
    """Class decorator: make a :class:`bench.method.Method` subclass available as ``name``."""

    def deco(cls):
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValueError(f"method {name!r} registered twice ({_METHODS[name]} and {cls})")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return deco


def load_builtin_methods() -> None:
    for pkg in BUILTIN_METHOD_PACKAGES:
        importlib.import_module(pkg)


def methods() -> dict[str, type]:
    load_builtin_methods()
    return dict(_METHODS)


def get_method(name: str) -> type:
    ms = methods()
    if name not in ms:
        raise UserError(f"unknown method {name!r}.{did_you_mean(name, ms)}")
    return ms[name]
