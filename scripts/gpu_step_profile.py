"""Where one EMOE training step's time goes on a GPU: wall time vs summed GPU kernel time (torch.profiler).

A step whose GPU kernels add up to far less than its wall time is bound by the host (Python, kernel
launches), which a faster data path cannot fix; CUDA graphs / torch.compile can::

    python scripts/gpu_step_profile.py --method emoe --steps 10
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from bench.perf import batch_indices, model_config, shaped_bundle, single_model_stepper


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--method", default="emoe")
    ap.add_argument("--profile", default="compact", choices=("compact", "full"))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    cls, hp = model_config(args.method)
    bundle = shaped_bundle(args.profile, n=64)
    step = single_model_stepper(cls, hp, bundle.info(), 1111, dev)
    train = bundle.train.to(dev)
    idx = batch_indices(len(bundle.train), hp.batch_size, 1, args.steps + 3).to(dev)
    for i in range(3):
        step(train, idx[i, 0])
    sync()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        t0 = time.perf_counter()
        for i in range(3, 3 + args.steps):
            step(train, idx[i, 0])
        sync()
        wall = (time.perf_counter() - t0) / args.steps
    events = prof.key_averages()
    # kernel time = the "Self CUDA time total" of the profiler's table (kernels only: summing every operator's
    # self device time would count a kernel under its aten op and again as itself); launches from the runtime calls
    gpu = sum(e.self_device_time_total for e in events if e.device_type == DeviceType.CUDA) / 1e6 / args.steps
    kernels = sum(e.count for e in events if e.key.startswith("cudaLaunchKernel"))
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
    row = {"method": args.method, "profile": args.profile, "device": name,
           "wall_ms_per_step": round(wall * 1e3, 2), "gpu_kernel_ms_per_step": round(gpu * 1e3, 2),
           "gpu_busy_fraction": round(gpu / wall, 3), "kernel_launches_per_step": round(kernels / args.steps)}
    print(json.dumps(row))
    print(events.table(sort_by="self_cpu_time_total", row_limit=12))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(row, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
