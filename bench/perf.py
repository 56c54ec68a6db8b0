"""Training throughput of the multi-seed execution modes: ``python -m bench.perf``.

For each model (default: EMOE in features mode and MulT, MOSI shapes) and each K (seeds trained at
once) it times ``--steps`` optimiser steps of every member in each mode:

* ``loop``: the seeds one after another (one model resident at a time), as ``--exec loop`` trains;
* ``vmap``: one :class:`bench.train.multiseed.VmapEnsemble` step for all K members;
* ``vmap+compile``: the same with ``torch.compile`` (compilation happens in the warm-up steps and
  is reported separately as ``compile_s``; skipped on CPU unless named in ``--modes``: inductor's
  CPU code generation takes minutes);
* ``procs``: K spawned processes on the same device, each stepping its own model; timed from a
  common barrier after every worker has built its model and warmed up.

A step = forward + loss + backward + Adam on one mini-batch (no accumulation, no evaluation), on
random MOSI-shaped tensors (``--profile compact``: the synthetic generator's compact shapes;
``full``: the real MOSI feature shapes). Reported per (model, mode, K): seconds, member steps/s
(K x steps / seconds), samples/s, speed-up over ``loop`` at the same K, and peak memory (CUDA: max
allocated above the start; CPU: the peak resident set above the start, summed over workers).

Example (CPU, about a minute)::

    python -m bench.perf --k 1,5 --steps 3 --warmup 1 --batch-size 8 --json perf-cpu.json
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import datetime as _dt
import gc
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch
from tabulate import tabulate

from bench.config import apply_overrides
from bench.data.synthetic import planned_shapes
from bench.data.tensors import DatasetBundle, Split
from bench.registry import get_method
from bench.train.multiseed import VmapEnsemble, accelerated
from bench.train.seeding import seed_everything

MODES = ("loop", "vmap", "vmap+compile", "procs")
DEFAULT_MODELS = ("emoe", "mult")


# ------------------------------------------------------------------------------------ data
def shaped_bundle(profile: str = "compact", setting: str = "unaligned", n: int = 64, seed: int = 0,
                  family: str = "mosi") -> DatasetBundle:
    """Random tensors with the synthetic generator's shapes for ``family`` (``n`` samples per split)."""
    shapes = planned_shapes(f"synthetic-{family}", setting, profile)
    gen = torch.Generator().manual_seed(seed)
    splits = {}
    for name, fields in shapes.items():
        kw = {}
        for key, shape in fields.items():
            shape = (n,) + tuple(shape[1:])
            if key == "text_bert":
                kw[key] = torch.randint(1, 1000, shape, generator=gen)
            elif key.endswith("_lengths"):
                kw[key] = torch.full(shape, fields["audio" if key.startswith("audio") else "vision"][1])
            elif key == "labels":
                kw[key] = (torch.randn(shape, generator=gen) * 1.5).clamp(-3, 3)
            else:
                kw[key] = torch.randn(shape, generator=gen)
        splits[name] = Split(**kw)
    return DatasetBundle(name=f"shaped-{family}-{profile}", family=family, setting=setting, task="regression",
                         splits=splits, source="synthetic", fingerprint=f"shaped-{profile}-{setting}-{n}-{seed}")


def model_config(method: str, setting: str = "unaligned", family: str = "mosi", overrides: dict | None = None):
    cls = get_method(method)
    hp = cls.default_hparams(family, setting)
    if overrides:
        hp = apply_overrides(hp, {k: str(v) for k, v in overrides.items()})
    return cls, hp


# ------------------------------------------------------------------------------------ memory
def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _release_freed_memory() -> None:
    """Give memory freed by earlier measurements back to the OS (glibc keeps freed heap pages, which
    would hide the next measurement's growth of the resident set)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory above the level at ``__enter__`` in MB: CUDA max allocated, or the CPU resident
    set's high-water mark (reset through /proc/self/clear_refs; without it the process maximum)."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.peak_mb = float("nan")
        self.kind = "cuda_max_allocated" if self.device.type == "cuda" else "rss_high_water"

    def __enter__(self):
        _release_freed_memory()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")  # resets VmHWM to the current RSS
                self.kind = "rss_high_water"
            except OSError:
                self.kind = "ru_maxrss"
            self.start = _rss_mb()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20 - self.start
        else:
            peak = None
            try:
                with open("/proc/self/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak = int(line.split()[1]) / 1024
            except OSError:
                pass
            if peak is None:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            self.peak_mb = peak - self.start
        return False


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------ steps
def batch_indices(n: int, batch_size: int, k: int, steps: int, seed: int = 0) -> torch.Tensor:
    """(steps, K, B) random training positions: every member its own batches."""
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.stack([torch.randperm(n, generator=gen)[:batch_size] for _ in range(k)])
                        for _ in range(steps)])


def single_model_stepper(cls, hp, info, seed: int, device, amp: str = "off", compile: bool = False):
    """``step(split, idx)``: one loop-path optimiser step of one freshly seeded model."""
    seed_everything(seed)
    model = accelerated(cls, amp, compile)(hp, info).to(device)
    opt = torch.optim.Adam(model.param_groups())
    model.train()

    def step(split: Split, idx: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        batch = split.take(idx)
        model.loss_terms(model(batch), batch)["total"].backward()
        if hp.grad_clip_value > 0:
            torch.nn.utils.clip_grad_value_(model.parameters(), hp.grad_clip_value)
        opt.step()

    step.model = model
    return step


def measure_loop(cls, hp, bundle, seeds, steps, warmup, device, idx, amp="off", compile=False) -> dict:
    data = bundle.to(device)
    split = data.splits["train"]
    idx = idx.to(device)
    seconds = 0.0
    with PeakMemory(device) as mem:
        for k, seed in enumerate(seeds):  # one model at a time, as the loop path trains
            step = single_model_stepper(cls, hp, data.info(), seed, device, amp, compile)
            for s in range(warmup):
                step(split, idx[s % len(idx), k])
            _sync(device)
            t0 = time.perf_counter()
            for s in range(steps):
                step(split, idx[s, k])
            _sync(device)
            seconds += time.perf_counter() - t0
            del step
    return {"seconds": seconds, "peak_mem_mb": mem.peak_mb, "mem_kind": mem.kind}


def measure_vmap(cls, hp, bundle, seeds, steps, warmup, device, idx, amp="off", compile=False) -> dict:
    data = bundle.to(device)
    split = data.splits["train"]
    idx = idx.to(device)
    with PeakMemory(device) as mem:
        ens = VmapEnsemble(cls, hp, data.info(), seeds, device, amp=amp, compile=compile)
        t0 = time.perf_counter()
        for s in range(warmup):
            ens.zero_grad()
            ens.forward_backward(split, idx[s % len(idx)])
            ens.step()
        _sync(device)
        warm_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for s in range(steps):
            ens.zero_grad()
            ens.forward_backward(split, idx[s])
            ens.step()
        _sync(device)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_mem_mb": mem.peak_mb, "mem_kind": mem.kind,
            "compile_s": warm_s if compile else None}


def _procs_worker(cls, hp, bundle, seed, k, steps, warmup, device, threads, idx, barrier, queue):
    try:
        torch.set_num_threads(threads)
        data = bundle.to(device)
        split = data.splits["train"]
        idx = idx.to(device)
        with PeakMemory(device) as mem:
            step = single_model_stepper(cls, hp, data.info(), seed, device)
            for s in range(warmup):
                step(split, idx[s % len(idx), k])
            _sync(device)
            barrier.wait()
            t0 = time.time()
            for s in range(steps):
                step(split, idx[s, k])
            _sync(device)
            t1 = time.time()
        queue.put((k, t0, t1, mem.peak_mb, mem.kind, None))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        try:
            barrier.abort()
        except Exception:  # noqa: BLE001
            pass
        queue.put((k, 0.0, 0.0, float("nan"), "", f"{type(e).__name__}: {e}"))


def measure_procs(cls, hp, bundle, seeds, steps, warmup, device, idx, threads: int = 0, timeout: float = 1800) -> dict:
    ctx = mp.get_context("spawn")
    k_total = len(seeds)
    threads = threads or max(1, (os.cpu_count() or 1) // k_total)
    barrier, queue = ctx.Barrier(k_total), ctx.Queue()
    cpu_bundle = bundle.to("cpu")
    procs = [ctx.Process(target=_procs_worker, args=(cls, hp, cpu_bundle, s, k, steps, warmup, str(device),
                                                     threads, idx, barrier, queue))
             for k, s in enumerate(seeds)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(60)
    errors = [r[5] for r in results if r[5]]
    if errors:
        raise RuntimeError(f"procs worker failed: {errors[0]}")
    start, end = min(r[1] for r in results), max(r[2] for r in results)
    return {"seconds": end - start, "peak_mem_mb": sum(r[3] for r in results),
            "mem_kind": f"{results[0][4]} (sum of {k_total} workers)", "threads_per_worker": threads}


def measure(method: str, mode: str, k: int, *, profile="compact", setting="unaligned", steps=5, warmup=1,
            batch_size=0, device="cpu", n_train=0, overrides=None, amp="off", threads=0, seed0=1111) -> dict:
    """One row of the table: ``mode`` x ``k`` seeds of ``method``."""
    cls, hp = model_config(method, setting, overrides=overrides)
    if batch_size:
        hp = dataclasses.replace(hp, batch_size=batch_size)
    bs = hp.batch_size
    n = n_train or max(4 * bs, 64)
    bundle = shaped_bundle(profile, setting, n=n)
    seeds = [seed0 + i for i in range(k)]
    idx = batch_indices(n, bs, k, max(steps, warmup, 1))
    t_all = time.perf_counter()
    if mode == "loop":
        res = measure_loop(cls, hp, bundle, seeds, steps, warmup, device, idx, amp)
    elif mode in ("vmap", "vmap+compile"):
        res = measure_vmap(cls, hp, bundle, seeds, steps, warmup, device, idx, amp, compile=mode == "vmap+compile")
    elif mode == "procs":
        res = measure_procs(cls, hp, bundle, seeds, steps, warmup, device, idx, threads=threads)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    member_steps = k * steps
    sec = max(res["seconds"], 1e-12)
    return {"model": method, "mode": mode, "K": k, "profile": profile, "setting": setting, "batch_size": bs,
            "steps": steps, **res, "member_steps_per_s": member_steps / sec,
            "samples_per_s": member_steps * bs / sec, "wall_s": time.perf_counter() - t_all}


# ------------------------------------------------------------------------------------ report
def machine() -> dict:
    info = {"platform": platform.platform(), "python": sys.version.split()[0], "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
            "utc_date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            info["cpu_model"] = names[0]
    except OSError:
        pass
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    if torch.cuda.is_available():
        info["cuda"] = torch.version.cuda
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def format_table(rows: list[dict]) -> str:
    table = []
    for r in rows:
        if "error" in r:
            table.append([r["model"], r["mode"], r["K"], "-", "-", "-", "-", "-", r["error"][:60]])
            continue
        table.append([r["model"], r["mode"], r["K"], f"{r['seconds']:.2f}", f"{r['member_steps_per_s']:.2f}",
                      f"{r['samples_per_s']:.1f}", f"{r.get('speedup_vs_loop', float('nan')):.2f}",
                      f"{r['peak_mem_mb']:.0f}",
                      "" if r.get("compile_s") is None else f"compile {r['compile_s']:.0f}s"])
    return tabulate(table, headers=["model", "mode", "K", "seconds", "member steps/s", "samples/s", "x loop",
                                    "peak MB", "note"])


def _parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma list (default: emoe,mult)")
    ap.add_argument("--k", default="1,5,10", help="seeds trained at once, comma list (default: 1,5,10)")
    ap.add_argument("--modes", default=None,
                    help=f"comma list of {','.join(MODES)} (default: all; CPU: without vmap+compile)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per member (default 10)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation happens here)")
    ap.add_argument("--batch-size", type=int, default=0, help="0 = each method's default (16 for EMOE/MulT)")
    ap.add_argument("--profile", default="compact", choices=("compact", "full"),
                    help="MOSI shapes: compact synthetic (default) or the real feature sizes")
    ap.add_argument("--setting", default="unaligned", choices=("aligned", "unaligned"))
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default; procs split them)")
    ap.add_argument("--amp", default="off", choices=("off", "bf16"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="hyper-parameter override for every model (repeatable)")
    ap.add_argument("--json", default=None, help="write the machine description and every row here")
    args = ap.parse_args(argv)

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    modes = args.modes.split(",") if args.modes else [m for m in MODES if not (m == "vmap+compile" and device == "cpu")]
    bad = [m for m in modes if m not in MODES]
    if bad:
        ap.error(f"unknown mode(s) {bad}; choose from {', '.join(MODES)}")
    overrides = dict(kv.split("=", 1) for kv in args.overrides)
    info = machine()
    info["device"] = device
    print(f"bench.perf on {info.get('gpu') or info.get('cpu_model', info['processor'])} ({device}), "
          f"torch {info['torch']}, {info['cpu_count']} CPUs, load {info.get('load_average')}", flush=True)
    rows = []
    for method in args.models.split(","):
        # one discarded step first: one-time allocations (thread pools, lazy initialisation) would
        # otherwise be charged to the first row's memory and time
        measure(method, "loop", 1, profile=args.profile, setting=args.setting, steps=1, warmup=0,
                batch_size=args.batch_size, device=device, overrides=overrides, amp=args.amp)
        for k in _parse_ints(args.k):
            loop_rate = None
            for mode in modes:
                try:
                    row = measure(method, mode, k, profile=args.profile, setting=args.setting, steps=args.steps,
                                  warmup=args.warmup, batch_size=args.batch_size, device=device,
                                  overrides=overrides, amp=args.amp, threads=args.threads)
                except Exception as e:  # noqa: BLE001 - report and go on (e.g. out of memory at K=10)
                    row = {"model": method, "mode": mode, "K": k, "error": f"{type(e).__name__}: {e}"}
                    if device.startswith("cuda"):
                        torch.cuda.empty_cache()
                if "error" not in row:
                    if mode == "loop":
                        loop_rate = row["member_steps_per_s"]
                    row["speedup_vs_loop"] = (row["member_steps_per_s"] / loop_rate) if loop_rate else float("nan")
                rows.append(row)
                print(format_table([row]).splitlines()[-1], flush=True)
    print()
    print(format_table(rows))
    if args.json:
        payload = {"machine": info, "args": vars(args), "rows": rows}
        Path(args.json).write_text(json.dumps(payload, indent=1, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
