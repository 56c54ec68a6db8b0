"""Registries of methods and datasets with did-you-mean lookup (after timm / lm-eval-harness).

Methods register with ``@register_method("name")`` in their own module under ``emoe/`` or
``baselines/``. ``bench`` itself never imports a model: :func:`load_builtin_methods` is the single
place that imports the model packages so their decorators run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from bench.errors import UserError, did_you_mean

_METHODS: dict[str, type] = {}
_DATASETS: dict[str, Callable] = {}

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


def register_dataset(name: str):
    """Function decorator: ``fn(data_root, setting, **opts) -> DatasetBundle``."""

    def deco(fn):
        _DATASETS[name] = fn
        return fn

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


def datasets() -> dict[str, Callable]:
    importlib.import_module("bench.data")
    return dict(_DATASETS)


def get_dataset_loader(name: str) -> Callable:
    ds = datasets()
    if name not in ds:
        raise UserError(f"unknown dataset {name!r}.{did_you_mean(name, ds)}")
    return ds[name]
