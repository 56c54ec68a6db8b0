"""Datasets: the real MMSA (MOSI, MOSEI) and MIntRec files, and their synthetic stand-ins.

Public API (used by the trainer and the CLI)::

    load_dataset(name, setting, *, data_root=None, profile="compact", clean_nan=False, seed=0,
                 cache_dir=None, tokenizer=None) -> DatasetBundle
    resolve_data_root(data_root) -> Path | None
    settings_for(name) -> tuple[str, ...]
    bench.data.verify.verify_root(data_root) -> list[dict]

Importing this package registers every dataset loader (:mod:`bench.data.loaders`); the facts of each
dataset family (settings, task, files, shapes) are in :mod:`bench.data.families`.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.data import families, mintrec, mmsa, synthetic  # noqa: F401  (registers the datasets)
from bench.data.loaders import get_dataset_loader
from bench.data.tensors import DatasetBundle
from bench.errors import UserError, did_you_mean

DATASET_NAMES = families.dataset_names()
REAL_DATASETS = tuple(families.FAMILIES)
PROFILES = synthetic.PROFILES
ENV_DATA_ROOT = "BENCH_DATA_ROOT"


def _normalise(name: str) -> str:
    key = str(name).strip().lower()
    if key not in DATASET_NAMES:
        get_dataset_loader(key)  # a dataset registered elsewhere, or UserError with did-you-mean
    return key


def settings_for(name: str) -> tuple[str, ...]:
    """The settings a dataset has: ("aligned", "unaligned") for MOSI/MOSEI, ("unaligned",) for MIntRec."""
    family = families.family_of(_normalise(name))
    if family is None:
        raise UserError(f"unknown dataset {name!r}.{did_you_mean(str(name), DATASET_NAMES)}")
    return families.FAMILIES[family].settings


def resolve_data_root(data_root) -> Path | None:
    """The data root: the argument, else ``$BENCH_DATA_ROOT``, else None (no path check here)."""
    if data_root is not None and str(data_root).strip() != "":
        return Path(data_root).expanduser()
    env = os.environ.get(ENV_DATA_ROOT, "").strip()
    return Path(env).expanduser() if env else None


def _no_root_message(name: str) -> str:
    return mintrec.no_root_message() if name == "mintrec" else mmsa.no_root_message(name)


def load_dataset(
    name: str,
    setting: str,
    *,
    data_root=None,
    profile: str = "compact",
    clean_nan: bool = False,
    seed: int = 0,
    cache_dir=None,
    tokenizer=None,
) -> DatasetBundle:
    """Load a dataset as a :class:`DatasetBundle` (splits train/valid/test, provenance, notes).

    Real datasets ("mosi", "mosei", "mintrec") need a data root (argument or BENCH_DATA_ROOT);
    ``profile`` and ``seed`` only apply to the synthetic ones, ``tokenizer`` only to MIntRec.
    """
    key = _normalise(name)
    loader = get_dataset_loader(key)
    if key in DATASET_NAMES:
        settings = settings_for(key)
        if setting not in settings:
            raise UserError(
                f"dataset {key!r} has no setting {setting!r}.{did_you_mean(str(setting), settings)}"
            )
    if profile not in PROFILES:
        raise UserError(f"unknown data profile {profile!r}.{did_you_mean(str(profile), PROFILES)}")
    root = resolve_data_root(data_root)
    if key in REAL_DATASETS and root is None:
        raise UserError(_no_root_message(key))
    return loader(
        root,
        setting,
        profile=profile,
        clean_nan=clean_nan,
        seed=seed,
        cache_dir=cache_dir,
        tokenizer=tokenizer,
    )


__all__ = ["DATASET_NAMES", "load_dataset", "resolve_data_root", "settings_for"]
