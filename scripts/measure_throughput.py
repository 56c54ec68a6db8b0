"""Seconds per training epoch of every table method, for ``bench plan``'s throughput table (bench/throughput.py).

Each configuration (method x family x setting, with the tables' compact overrides for ``--budget compact`` or the
methods' own configurations for ``full``) trains ``--epochs`` epochs (2: the first pays one-off start-up) of one
seed on the synthetic dataset of ``--shapes`` through the shared trainer; the last epoch's seconds (training +
validation) are the figure, the rest of the call (build, final valid/test evaluation) is the run overhead::

    python scripts/measure_throughput.py --shapes compact --out results/throughput/cpu.csv     # this CPU
    python scripts/measure_throughput.py --device cuda --shapes full --vmap-k 5 --out cuda.csv  # a GPU

``--vmap-k K`` adds, on CUDA, one line per vmap-capable method for K seeds trained together (exec_mode vmap);
``--graphs`` one ``loop+graphs`` line per method that ``--graphs auto`` captures on CUDA (``--graphs all``: every
method the static step allows); ``--bert-methods`` one ``text=bert`` loop line per method whose paper fine-tunes
BERT, with a random bert-base-shaped encoder (``--bert-model``). Lines are measured phase by phase (every loop
line first, then graphs, vmap, BERT lines; ``--phases``), so a time limit (``--max-seconds``) cuts the least needed.
A training split whose last batch would hold one sample (BatchNorm cannot train on it: TFN, LMF) loses that
sample in the measurement only. A failed configuration is reported and left out (the plan then says "unknown").
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import throughput  # noqa: E402


def configurations(families: list[str], settings: list[str], budget: str, methods: list[str] | None):
    """Distinct (method, family, setting, overrides) over Tables 1-6 (the first row of a method wins)."""
    from bench.report.planning import plan
    from bench.report.specs import TABLES

    seen, out = set(), []
    for spec in TABLES.values():
        if spec.family not in families:
            continue
        for p in plan(spec, "synthetic", budget):
            if p.setting not in settings or (methods and p.row.method not in methods):
                continue
            key = (p.row.method, spec.family, p.setting)
            if key not in seen:
                seen.add(key)
                out.append((p.row.method, spec.family, p.setting, dict(p.overrides)))
    return out


def machine_label(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {torch.get_num_threads()} torch thread(s) (torch {torch.__version__})"


_BUNDLES: dict = {}


def dataset(family, setting, shapes, subset):
    """The synthetic dataset, or its first ``subset`` fraction of every split (an epoch is linear in samples:
    the plan scales by the training count, so a subset measures the same throughput for less device time)."""
    import dataclasses

    from bench.data import load_dataset

    key = (family, setting, shapes, subset)
    if key not in _BUNDLES:
        b = load_dataset(f"synthetic-{family}", setting, profile=shapes)
        if subset < 1:
            b = dataclasses.replace(b, splits={k: s.take(torch.arange(max(1, int(len(s) * subset))))
                                               for k, s in b.splits.items()})
        _BUNDLES[key] = b
    return _BUNDLES[key]


def no_single_tail(bundle, batch_size: int):
    """``bundle`` without its last training sample when the epoch's last batch would hold exactly one (a BatchNorm
    layer cannot train on one sample); a measurement-only change: the plan scales by training samples."""
    import dataclasses

    n = len(bundle.train)
    if n > 1 and n % batch_size == 1:
        splits = {**bundle.splits, "train": bundle.train.take(torch.arange(n - 1))}
        return dataclasses.replace(bundle, splits=splits)
    return bundle


def measure_one(method, family, setting, overrides, shapes, epochs, device, exec_mode="loop", k=1, graphs=False,
                subset=1.0):
    from bench.registry import get_method
    from bench.runner import resolve_hparams
    from bench.train.multiseed import train_many
    from bench.train.trainer import train

    cls = get_method(method)
    hp = resolve_hparams(cls, family, setting, {**overrides, "max_epochs": str(epochs), "early_stop": "1000"})
    bundle = no_single_tail(dataset(family, setting, shapes, subset), hp.batch_size)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t0 = time.perf_counter()
    if exec_mode == "vmap":
        history = train_many(cls, hp, bundle, list(range(1111, 1111 + k)), device, "vmap")[0].history
    elif graphs:  # what --graphs auto runs: the static step with torch's Adam (fused Adam: the same kernels' time)
        from bench.train.static_step import train_static

        history = train_static(cls, hp, bundle, 1111, device=device, capture=device.startswith("cuda"),
                               adam="default").history
    else:
        history = train(cls, hp, bundle, 1111, device=device).history
    sync()
    wall = time.perf_counter() - t0
    per_epoch = history[-1]["seconds"]
    overhead = max(0.0, wall - sum(r["seconds"] for r in history))
    return len(bundle.train), per_epoch, overhead


PHASES = ("loop", "graphs", "vmap", "bert")


def jobs(confs, args) -> list[tuple]:
    """(phase, method, family, setting, overrides, exec_mode, k, graphs, text, epochs) in measuring order."""
    from bench.describe import canonical_info
    from bench.registry import get_method
    from bench.runner import resolve_hparams
    from bench.text_encoder import paper_uses_bert, uses_bert
    from bench.train.autoexec import vmap_reason
    from bench.train.static_step import resolve_graphs, static_blocker

    cuda = args.device.startswith("cuda")
    out = []
    for method, family, setting, overrides in confs:
        cls = get_method(method)
        hp = resolve_hparams(cls, family, setting, overrides)
        if not uses_bert(hp):  # MAG-BERT always runs a BERT: only its BERT line can be measured
            out.append(("loop", method, family, setting, overrides, "loop", 1, False, "features", args.epochs))
        if args.graphs and static_blocker(cls) is None and (
                args.graphs == "all" or resolve_graphs("auto", cls, hp, "cuda")[0] == "on"):
            # two epochs at least: the first pays the capture of each batch shape
            out.append(("graphs", method, family, setting, overrides, "loop+graphs", 1, True, "features",
                        max(2, args.epochs)))
        if args.vmap_k and cuda and vmap_reason(cls, hp, canonical_info(family, setting)) is None:
            out.append(("vmap", method, family, setting, overrides, "vmap", args.vmap_k, False, "features",
                        args.epochs))
        if args.bert_methods and paper_uses_bert(cls, family, setting) and (
                args.bert_methods == "all" or method in args.bert_methods.split(",")):
            bert = {**overrides, "text_model": args.bert_model}
            if "text_mode" in overrides:
                bert["text_mode"] = "bert"
            out.append(("bert", method, family, setting, bert, "loop", 1, False, "bert", args.epochs))
    phases = args.phases.split(",")
    order = args.settings.split(",")
    first = [m for m in args.first.split(",") if m]
    out = [j for j in out if j[0] in phases]
    out.sort(key=lambda j: (phases.index(j[0]), order.index(j[3]), first.index(j[1]) if j[1] in first else len(first)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--shapes", default="compact", choices=("compact", "full"))
    ap.add_argument("--budget", default=None, choices=("compact", "full"), help="default: same as --shapes")
    ap.add_argument("--families", default="mosi")
    ap.add_argument("--settings", default="aligned,unaligned")
    ap.add_argument("--methods", default=None, help="comma list (default: every table method)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--vmap-k", type=int, default=0, help="CUDA: also K seeds in one vmap ensemble")
    ap.add_argument("--graphs", nargs="?", const="auto", default="", choices=("", "auto", "all"),
                    help="also loop+graphs lines (the static step): auto = the methods --graphs auto captures on "
                         "CUDA; all = every method the static step allows")
    ap.add_argument("--bert-methods", default="", help="comma list or 'all': also text=bert loop lines")
    ap.add_argument("--bert-model", default="random:bert-base-uncased", help="text model of the BERT lines")
    ap.add_argument("--phases", default=",".join(PHASES), help="which kinds of line, in this order")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    ap.add_argument("--max-seconds", type=float, default=0, help="stop starting new configurations after this")
    ap.add_argument("--first", default="", help="comma list of methods measured first within a phase")
    ap.add_argument("--subset", type=float, default=1.0,
                    help="measure on this fraction of every split (the plan scales by training samples)")
    ap.add_argument("--out", required=True, help="CSV to write (merged: lines of other keys are kept)")
    ap.add_argument("--script", default="scripts/measure_throughput.py")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    budget = args.budget or args.shapes
    date = _dt.date.today().isoformat()
    label = machine_label(args.device)
    out = Path(args.out)
    kept = throughput.load(out.stem, out.parent) if out.suffix == ".csv" else []  # the file's other lines
    new: list[throughput.Entry] = []
    confs = configurations(args.families.split(","), args.settings.split(","), budget,
                           args.methods.split(",") if args.methods else None)
    todo = jobs(confs, args)
    if todo:  # one throw-away epoch first: imports, CUDA context and kernel caches are not charged to a line
        _, method, family, setting, overrides, *_ = todo[0]
        try:
            measure_one(method, family, setting, overrides, args.shapes, 1, args.device, subset=args.subset)
        except Exception as e:  # noqa: BLE001 - the warm-up only warms
            print(f"warm-up failed ({type(e).__name__}: {str(e)[:200]}); measuring anyway", flush=True)
    t_start = time.perf_counter()

    def keys(entries):
        return {(e.method, e.family, e.setting, e.shapes, e.budget, e.exec_mode, e.k, e.text) for e in entries}

    def save():  # after every line: a section killed by its time limit keeps what it measured
        merged = [e for e in kept if next(iter(keys([e]))) not in keys(new)]
        throughput.write(merged + new, out)
        return merged

    for _, method, family, setting, overrides, mode, k, graphs, text, epochs in todo:
        what = f"{method} {family}-{setting} {mode}{' bert' if text == 'bert' else ''}"
        if args.max_seconds and time.perf_counter() - t_start > args.max_seconds:
            print(f"time budget spent: {what} not measured", flush=True)
            continue
        try:
            n_train, per_epoch, overhead = measure_one(method, family, setting, overrides, args.shapes, epochs,
                                                       args.device, "vmap" if mode == "vmap" else "loop", k, graphs,
                                                       args.subset)
        except Exception as e:  # noqa: BLE001 - report, leave the line out (plan: unknown)
            print(f"FAILED {what}: {type(e).__name__}: {str(e)[:200]}", flush=True)
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
            continue
        note = (f"last of {epochs} epoch(s), seed 1111"
                + (f"; on the first {args.subset:g} of every split" if args.subset < 1 else "")
                + (f"; text model {args.bert_model}" if text == "bert" else "")
                + ("; static step, torch's Adam" if graphs else ""))
        new.append(throughput.Entry(method, family, setting, args.shapes, budget, mode, k, n_train,
                                    round(per_epoch, 4), round(overhead, 3), "measured", args.script, label, date,
                                    note, text))
        print(f"{method:10s} {family}-{setting:9s} {mode:11s} {text:8s} k={k} n_train={n_train} "
              f"{per_epoch:.3f} s/epoch, overhead {overhead:.2f} s", flush=True)
        save()
    merged = save()
    print(f"wrote {len(new)} line(s) to {out} ({len(merged)} kept)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
