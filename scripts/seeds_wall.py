"""Wall time of K seeds vs one seed, end to end (``bench.runner.run``: data, training, evaluation, storing).

The issue-7 target "5 seeds in <= 2x the wall time of 1 seed" (EMOE, MulT on a GPU) is about what a user
waits for, so this times whole runs, not optimiser steps (``python -m bench.perf`` times steps)::

    python scripts/seeds_wall.py --device cuda --epochs 3 --json seeds-wall.json

Each (method, mode, K) trains into a fresh temporary results directory (nothing is reused). The first
timed run of a method pays one-off CUDA/cuDNN start-up: a warm-up run of 1 epoch goes first.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from bench.runner import RunRequest, load_bundle, run


def timed_run(method: str, seeds: list[int], mode: str, device: str, epochs: int, bundle) -> float:
    with tempfile.TemporaryDirectory() as out:
        req = RunRequest(method=method, dataset="synthetic-mosi", setting="unaligned", seeds=seeds, epochs=epochs,
                         out=out, device=device, exec_mode=mode)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        run(req, bundle=bundle, log=lambda _: None, progress=False)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default="emoe,mult")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--modes", default="vmap,loop", help="modes for the K-seed run (the 1-seed run uses loop)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    seeds = list(range(1111, 1111 + args.k))
    bundle = load_bundle(RunRequest(method="emoe", dataset="synthetic-mosi", setting="unaligned"))
    rows = []
    for method in args.methods.split(","):
        timed_run(method, [1111], "loop", args.device, 1, bundle)  # warm-up (CUDA context, cuDNN autotune)
        one = timed_run(method, [1111], "loop", args.device, args.epochs, bundle)
        for mode in args.modes.split(","):
            many = timed_run(method, seeds, mode, args.device, args.epochs, bundle)
            row = {"method": method, "mode": mode, "k": args.k, "epochs": args.epochs, "one_seed_s": round(one, 2),
                   "k_seeds_s": round(many, 2), "ratio": round(many / one, 2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "torch": torch.__version__, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
