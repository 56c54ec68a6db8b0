"""The dataset-name -> loader registry (after timm / lm-eval-harness).

Loaders register with ``@register_dataset("name")`` in their module (``mmsa``, ``mintrec``, ``synthetic``);
importing :mod:`bench.data` imports those modules, so the built-in datasets are registered by the time any
``bench.data`` module is in use. ``bench.registry`` re-exports these functions; nothing here imports it.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.errors import UserError, did_you_mean

_DATASETS: dict[str, Callable] = {}


def register_dataset(name: str):
    """Function decorator: ``fn(data_root, setting, **opts) -> DatasetBundle``."""

    def deco(fn):
        _DATASETS[name] = fn
        return fn

    return deco


def datasets() -> dict[str, Callable]:
    return dict(_DATASETS)


def get_dataset_loader(name: str) -> Callable:
    if name not in _DATASETS:
        raise UserError(f"unknown dataset {name!r}.{did_you_mean(name, _DATASETS)}")
    return _DATASETS[name]
