"""Run orchestration: resolve config, load data once, train each missing seed, store results.

Finished runs (``done`` marker, same config hash) are reused unless ``force``; this is the resume
mechanism for interrupted multi-seed jobs and for tables that share runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench import provenance, store
from bench.config import RunSpec, apply_overrides
from bench.data import load_dataset, settings_for
from bench.data.families import get_family
from bench.data.tensors import DatasetBundle
from bench.errors import UserError, did_you_mean
from bench.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from bench.registry import get_method
from bench.text_encoder import drop_unread
from bench.train import autoexec
from bench.train.multiseed import ExecOptions, accelerated, exec_record, train_many
from bench.train.static_step import resolve_graphs, train_static
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

    # the hash covers what the method reads: no BERT checkpoint name on frozen text features
    hp = drop_unread(apply_overrides(hp, overrides))
    _check_select_on(hp.select_on, family, "--set " if "select_on" in overrides else "")
    return hp


def _check_select_on(select_on: str, family: str, prefix: str) -> None:
    """The selection metric must be one the dataset's task computes (f1 on MOSI would be a KeyError)."""

    task = get_family(family).task
    keys = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if select_on != "loss" and select_on not in keys:
        raise UserError(f"{prefix}select_on={select_on}: {family} is a {task} task; "
                        f"expected loss or one of {', '.join(keys)}")


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
    # How the missing seeds are trained (bench/train/multiseed.py; docs/performance.md): "loop" (the
    # reference), "vmap" (one ensemble), "procs" (one process per seed, ``workers`` at a time).
    exec_mode: str = "loop"
    amp: str = "off"  # "bf16": autocast forward + loss (changes the numbers: part of the config hash)
    compile: bool = False  # torch.compile the forward / the vmapped step (recorded)
    workers: int = 0  # procs: concurrent processes (0 = one per seed)
    graphs: str = "off"  # "on" / "auto": device-bound static step for loop runs (bench/train/static_step.py)

    def exec_options(self):

        opts = ExecOptions(self.exec_mode, self.amp, bool(self.compile), int(self.workers), graphs=self.graphs)
        opts.validate()
        return opts


@dataclass
class RunRecord:
    seed: int
    path: Path
    result: dict
    reused: bool


def load_bundle(req: RunRequest) -> DatasetBundle:

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


def run_spec(req: RunRequest, bundle: DatasetBundle, method_cls=None):
    """(hyper-parameters, :class:`RunSpec`) of ``req`` on ``bundle``: what the config hash is made of
    (``bench plan`` uses it to find finished runs without training)."""
    method_cls = method_cls or get_method(req.method)
    hp = resolve_hparams(method_cls, bundle.family, bundle.setting, req.overrides, req.epochs)
    spec = RunSpec(method=req.method, dataset=bundle.name, setting=bundle.setting, hparams=dataclasses.asdict(hp),
                   data_fingerprint=bundle.fingerprint, numerics={"amp": req.amp} if req.amp != "off" else {})
    return hp, spec


def run(req: RunRequest, bundle: DatasetBundle | None = None, log: Callable[[str], None] = print,
        progress: bool | None = None, method_cls=None) -> list[RunRecord]:
    """Train every seed of ``req`` that has no finished result; return all seeds' results.

    ``method_cls`` bypasses the registry (tests pass their own toy models this way). The missing
    seeds are trained with ``req.exec_mode`` (``auto``: chosen here, one printed line); each result
    records how (``provenance.execution``).
    """
    method_cls = method_cls or get_method(req.method)
    opts = req.exec_options()
    device = resolve_device(req.device)
    if bundle is None:
        bundle = load_bundle(req)
    hp, spec = run_spec(req, bundle, method_cls)
    out = Path(req.out)
    store.write_json_atomic(store.config_dir(out, spec) / "config.json",
                            {"spec": dataclasses.asdict(spec), "config_hash": spec.config_hash}, locked=True)
    label = f"{req.method} {bundle.name}-{bundle.setting}"
    records: dict[int, RunRecord] = {}
    todo = []
    for seed in req.seeds:
        path = store.run_dir(out, spec, seed)
        finished = None if req.force else store.load_finished(path)  # a corrupt run is warned about, retrained
        if finished is not None:
            records[seed] = RunRecord(seed, path, finished, reused=True)
            log(f"[{label} seed {seed}] finished run reused: {path}")
        else:
            todo.append(seed)
    chosen_by = None
    if opts.exec_mode == "auto" and todo:

        choice = autoexec.choose(method_cls, hp, bundle.info(), len(todo), device)
        opts = dataclasses.replace(opts, exec_mode=choice.mode)
        chosen_by = "auto"
        log(f"[{label}] --exec auto: {choice.mode} ({choice.reason})")
    if opts.graphs == "on" and opts.exec_mode != "loop":
        log(f"[{label}] --graphs on applies to loop runs; this configuration runs {opts.exec_mode}")
        opts = dataclasses.replace(opts, graphs="off")
    if opts.graphs == "auto":  # the static step where its capture is proven exact (static_step.CAPTURE_EQUAL)

        use, adam = ("off", "fused")
        if opts.exec_mode == "loop" and opts.amp == "off" and not opts.compile:
            use, adam = resolve_graphs("auto", method_cls, hp, device)
        opts = dataclasses.replace(opts, graphs=use, graphs_adam=adam)
        if use == "on":
            log(f"[{label}] --graphs auto: static step with CUDA graphs (torch's Adam: the loop path's numbers)")
    if opts.exec_mode == "loop" or len(todo) <= 1 and opts.exec_mode == "procs":
        for seed in todo:  # one at a time, each stored as soon as it finishes
            t0 = time.perf_counter()
            outcome = _train_one(method_cls, hp, bundle, seed, device, opts, label, progress, log)
            records[seed] = _store(req, bundle, spec, hp, seed, outcome, device, opts, [seed],
                                   time.perf_counter() - t0, log, chosen_by)
    elif todo:

        log(f"[{label}] training seeds {', '.join(map(str, todo))} together (--exec {opts.exec_mode})")
        t0 = time.perf_counter()
        try:
            with _amp_errors(opts, label, device):
                outcomes = train_many(method_cls, hp, bundle, todo, device, opts.exec_mode, amp=opts.amp,
                                      compile=opts.compile, workers=opts.workers)
        except (RuntimeError, UserError) as e:
            if chosen_by != "auto" or opts.exec_mode != "vmap":
                raise
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            log(f"[{label}] --exec auto: vmap failed ({first}); training with procs instead")
            opts = dataclasses.replace(opts, exec_mode="procs")
            t0 = time.perf_counter()
            outcomes = train_many(method_cls, hp, bundle, todo, device, "procs", amp=opts.amp,
                                  compile=opts.compile, workers=opts.workers)
        wall = time.perf_counter() - t0
        for seed, outcome in zip(todo, outcomes, strict=True):
            records[seed] = _store(req, bundle, spec, hp, seed, outcome, device, opts, todo, wall, log, chosen_by)
    return [records[s] for s in req.seeds]


def _train_one(method_cls, hp, bundle, seed, device, opts, label, progress, log=print):
    from tqdm.auto import tqdm


    bar = tqdm(desc=f"{label} seed {seed}", unit="epoch", total=hp.max_epochs or None,
               disable=(None if progress is None else not progress), leave=False)

    def on_epoch(row):
        bar.update(1)
        bar.set_postfix(val_loss=f"{row['valid']['loss']:.4f}", best="*" if row["improved"] else "")

    try:
        if opts.graphs == "on":

            return train_static(method_cls, hp, bundle, seed, device=device, capture=str(device).startswith("cuda"),
                                adam=opts.graphs_adam, on_epoch=on_epoch,
                                log=lambda m: log(f"[{label} seed {seed}] {m}"))
        with _amp_errors(opts, label, device):
            return train(accelerated(method_cls, opts.amp, opts.compile), hp, bundle, seed, device=device,
                         on_epoch=on_epoch)
    finally:
        bar.close()


@contextlib.contextmanager
def _amp_errors(opts, label: str, device: str):
    """A kernel without a bf16 version (e.g. oneDNN's CPU LSTM) becomes a one-line user error."""
    try:
        yield
    except RuntimeError as e:
        if opts.amp == "off":
            raise
        first = str(e).strip().splitlines()[0].rstrip(".") if str(e).strip() else type(e).__name__
        raise UserError(f"--amp {opts.amp} failed for {label} on {device}: {first}. "
                        "Run it without --amp (float32)") from e


def _store(req, bundle, spec, hp, seed, outcome, device, opts, group, wall, log, chosen_by=None) -> RunRecord:
    """Write one finished seed (atomically, ``done`` last) and log its line."""

    execution = exec_record(opts, group)
    if chosen_by:
        execution["chosen_by"] = chosen_by
    result = {
        "schema": store.RESULT_SCHEMA,
        "method": req.method, "dataset": bundle.name, "setting": bundle.setting, "seed": seed,
        "config_hash": spec.config_hash, "config": spec.hparams,
        "data": data_record(bundle, req.profile, req.data_seed),
        "selection": {"rule": SELECTION_RULE, "select_on": hp.select_on, "best_epoch": outcome.best_epoch,
                      "epochs_run": outcome.epochs_run, "stopped": outcome.stopped,
                      "optimizer_steps": outcome.n_optimizer_steps},
        "valid": outcome.valid, "test": outcome.test, "history": outcome.history,
        "model": {"n_parameters": outcome.n_parameters, **outcome.model_record},
        "provenance": {**provenance.collect(device, exec_mode=opts.exec_mode), "execution": execution,
                       "wall_time_s": wall, "wall_time_shared_by": len(group), "seed": seed},
    }
    path = store.run_dir(Path(req.out), spec, seed)
    store.write_run(path, result, outcome.test_outputs)
    log(f"[{req.method} {bundle.name}-{bundle.setting} seed {seed}] {format_line(result)} "
        f"({outcome.epochs_run} epochs, best {outcome.best_epoch}, {wall:.1f}s) -> {path}")
    return RunRecord(seed, path, result, reused=False)


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
