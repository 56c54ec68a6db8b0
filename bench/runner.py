"""Run orchestration: resolve config, load data once, train each missing seed, store results.

Finished runs (``done`` marker, same config hash) are reused unless ``force``; this is the resume
mechanism for interrupted multi-seed jobs and for tables that share runs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench import provenance, store
from bench.config import RunSpec, apply_overrides
from bench.data.tensors import DatasetBundle
from bench.errors import UserError, did_you_mean
from bench.registry import get_method
from bench.train.trainer import SELECTION_RULE, train


def resolve_device(device: str | None) -> str:
    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    if device not in ("cpu",) and not device.startswith("cuda") and device != "mps":
        raise UserError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    return device


def resolve_hparams(method_cls, family: str, setting: str, overrides: dict[str, str] | None,
                    epochs: int | None = None):
    if family not in method_cls.families:
        raise UserError(f"method {method_cls.name!r} has no configuration for {family} data "
                        f"(supported: {', '.join(method_cls.families)})")
    hp = method_cls.default_hparams(family, setting)
    overrides = dict(overrides or {})
    if epochs is not None:
        if epochs < 1:
            raise UserError(f"--epochs {epochs}: expected a positive number of epochs")
        overrides["max_epochs"] = str(epochs)
    return apply_overrides(hp, overrides)


def default_setting(method_cls, dataset_settings: tuple[str, ...]) -> str:
    preferred = getattr(method_cls, "default_setting", None)
    if preferred in dataset_settings:
        return preferred
    return dataset_settings[-1] if "unaligned" in dataset_settings else dataset_settings[0]


@dataclass
class RunRequest:
    method: str
    dataset: str
    setting: str | None = None
    seeds: list[int] = field(default_factory=lambda: [1111])
    overrides: dict[str, str] = field(default_factory=dict)
    epochs: int | None = None
    data_root: str | None = None
    out: str = "results"
    device: str = "auto"
    force: bool = False
    profile: str = "compact"
    clean_nan: bool = False
    data_seed: int = 0


@dataclass
class RunRecord:
    seed: int
    path: Path
    result: dict
    reused: bool


def load_bundle(req: RunRequest) -> DatasetBundle:
    from bench.data import load_dataset, settings_for

    settings = settings_for(req.dataset)
    setting = req.setting
    if setting is None:
        setting = default_setting(get_method(req.method), settings)
    if setting not in settings:
        raise UserError(f"dataset {req.dataset!r} has no setting {setting!r}.{did_you_mean(setting, settings)}")
    return load_dataset(req.dataset, setting, data_root=req.data_root, profile=req.profile,
                        clean_nan=req.clean_nan, seed=req.data_seed)


def data_record(bundle: DatasetBundle, profile: str, data_seed: int) -> dict:
    return {
        "name": bundle.name, "family": bundle.family, "setting": bundle.setting, "task": bundle.task,
        "source": bundle.source, "standard": bundle.standard, "fingerprint": bundle.fingerprint,
        "files": bundle.files, "notes": bundle.notes, "sizes": bundle.sizes(),
        "profile": profile if bundle.source == "synthetic" else None,
        "data_seed": data_seed if bundle.source == "synthetic" else None,
    }


def run(req: RunRequest, bundle: DatasetBundle | None = None, log: Callable[[str], None] = print,
        progress: bool | None = None, method_cls=None) -> list[RunRecord]:
    """Train every seed of ``req`` that has no finished result; return all seeds' results.

    ``method_cls`` bypasses the registry (tests pass their own toy models this way).
    """
    from tqdm.auto import tqdm

    method_cls = method_cls or get_method(req.method)
    device = resolve_device(req.device)
    if bundle is None:
        bundle = load_bundle(req)
    hp = resolve_hparams(method_cls, bundle.family, bundle.setting, req.overrides, req.epochs)
    hp_dict = dataclasses.asdict(hp)
    spec = RunSpec(method=req.method, dataset=bundle.name, setting=bundle.setting, hparams=hp_dict,
                   data_fingerprint=bundle.fingerprint)
    out = Path(req.out)
    store.write_json_atomic(store.config_dir(out, spec) / "config.json",
                            {"spec": dataclasses.asdict(spec), "config_hash": spec.config_hash})
    records = []
    for seed in req.seeds:
        path = store.run_dir(out, spec, seed)
        if store.is_done(path) and not req.force:
            records.append(RunRecord(seed, path, store.read_result(path), reused=True))
            log(f"[{req.method} {bundle.name}-{bundle.setting} seed {seed}] finished run reused: {path}")
            continue
        bar = tqdm(desc=f"{req.method} {bundle.name}-{bundle.setting} seed {seed}", unit="epoch",
                   total=hp.max_epochs or None, disable=(None if progress is None else not progress),
                   leave=False)

        def on_epoch(row, bar=bar):
            bar.update(1)
            bar.set_postfix(val_loss=f"{row['valid']['loss']:.4f}", best="*" if row["improved"] else "")

        t0 = time.perf_counter()
        try:
            outcome = train(method_cls, hp, bundle, seed, device=device, on_epoch=on_epoch)
        finally:
            bar.close()
        wall = time.perf_counter() - t0
        result = {
            "schema": store.RESULT_SCHEMA,
            "method": req.method, "dataset": bundle.name, "setting": bundle.setting, "seed": seed,
            "config_hash": spec.config_hash, "config": hp_dict,
            "data": data_record(bundle, req.profile, req.data_seed),
            "selection": {"rule": SELECTION_RULE, "select_on": hp.select_on, "best_epoch": outcome.best_epoch,
                          "epochs_run": outcome.epochs_run, "stopped": outcome.stopped,
                          "optimizer_steps": outcome.n_optimizer_steps},
            "valid": outcome.valid, "test": outcome.test, "history": outcome.history,
            "model": {"n_parameters": outcome.n_parameters, **outcome.model_record},
            "provenance": {**provenance.collect(device, exec_mode="loop"), "wall_time_s": wall, "seed": seed},
        }
        store.write_run(path, result, outcome.test_outputs)
        records.append(RunRecord(seed, path, result, reused=False))
        log(f"[{req.method} {bundle.name}-{bundle.setting} seed {seed}] {format_line(result)} "
            f"({outcome.epochs_run} epochs, best {outcome.best_epoch}, {wall:.1f}s) -> {path}")
    return records


def format_line(result: dict) -> str:
    t = result["test"]
    if "mae" in t:
        keys = (("mae", "MAE"), ("corr", "Corr"), ("non0_acc2", "Acc-2(non0)"), ("has0_acc2", "Acc-2(has0)"),
                ("acc7", "Acc-7"))
    else:
        keys = (("acc", "Acc"), ("f1", "F1"), ("precision", "P"), ("recall", "R"))
    parts = []
    for k, label in keys:
        v = t.get(k)
        parts.append(f"{label} {v:.4f}" if isinstance(v, (int, float)) else f"{label} n/a")
    return "test " + ", ".join(parts)
