"""Issue-16 measurements on a GPU (run by scripts/gpu_issue16.sh; every section also runs on CPU with --smoke).

Sections (each writes one JSON, rows appended as they finish so a killed section keeps what it measured):

* ``equality``: the static step under CUDA-graph capture vs the loop path's step -- parameters after a few
  optimiser steps (the last batch smaller: its own graph), per-step losses, dropout on and off, torch's Adam and
  fused Adam; and a whole 2-epoch run ``train_static`` vs ``train``;
* ``steps``: wall time per optimiser step and GPU busy fraction (profiler kernel time / wall) before (loop step)
  and after (static step: graph + fused Adam) for EMOE features mode, EMOE BERT mode (random bert-base), MulT,
  MISA, Self-MM, compact and full MOSI shapes;
* ``naive``: one EMOE epoch (build + train + valid/test) of the naive DataLoader/per-sample implementation
  (tests/benchmarks/test_speed.py) vs our trainer, plain and static;
* ``e2e``: end-to-end wall time of one EMOE row (5 seeds, short epochs) with ``--exec auto`` vs loop and
  loop + ``--graphs on``;
* ``summary``: one Markdown page from the JSON files.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SMOKE_SIZES = {"emoe": {"d_model": "16", "n_heads": "2", "n_layers": "1"},
               "mult": {"d_model": "8", "num_heads": "2", "nlevels": "1"},
               "misa": {"hidden_size": "16"}}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Rows:
    """A JSON file of rows, rewritten after every row (a killed section keeps its finished rows)."""

    def __init__(self, path: str | None, meta: dict):
        self.path, self.doc = path, {"meta": meta, "rows": []}

    def add(self, row: dict) -> None:
        self.doc["rows"].append(row)
        print(json.dumps(row), flush=True)
        if self.path:
            Path(self.path).write_text(json.dumps(self.doc, indent=1, default=str))


def meta(device: str) -> dict:
    from bench.perf import machine

    return {**machine(), "device": device}


def config(method: str, smoke: bool, **extra):
    from bench.perf import model_config

    overrides = dict(SMOKE_SIZES.get(method.split("-")[0], {})) if smoke else {}
    overrides.update({k: str(v) for k, v in extra.items()})
    return model_config(method, "unaligned", overrides=overrides)


def no_dropout(hp) -> dict:
    return {f.name: 0.0 for f in dataclasses.fields(hp)
            if "dropout" in f.name and isinstance(getattr(hp, f.name), float)}


def shaped(profile: str, n: int, device: str):
    from bench.perf import shaped_bundle

    b = shaped_bundle(profile, "unaligned", n=n)
    for s in b.splits.values():  # a valid BERT input: attention mask 1, segment ids 0
        s.text_bert[:, 1] = 1
        s.text_bert[:, 2] = 0
    return b.to(device)


# ------------------------------------------------------------------------------------ (a) equality
def plain_steps(cls, hp, split, info, seed, batches, device):
    from bench.train.seeding import seed_everything

    seed_everything(seed)
    model = cls(hp, info).to(device)
    opt = torch.optim.Adam(model.param_groups())
    model.train()
    losses = []
    for idx in batches:
        opt.zero_grad(set_to_none=True)
        batch = split.take(idx)
        terms = model.loss_terms(model(batch), batch)
        terms["total"].backward()
        if hp.grad_clip_value > 0:
            torch.nn.utils.clip_grad_value_(model.parameters(), hp.grad_clip_value)
        opt.step()
        losses.append(float(terms["total"].detach()))
    return model, losses


def static_steps(cls, hp, split, info, seed, batches, device, adam):
    from bench.train.seeding import seed_everything
    from bench.train.static_step import StaticStep, _step, make_adam

    seed_everything(seed)
    model = cls(hp, info).to(device)
    opt = make_adam(model, adam)
    model.train()
    stepper = StaticStep(model, split, hp, capture=device.startswith("cuda"))
    losses = []
    for idx in batches:
        stepper.zero_grad()
        terms = stepper(idx)
        _step(model, opt, hp)
        losses.append(float(terms["total"]))
    return model, losses, stepper.record()


def max_param_diff(a, b) -> tuple[float, str]:
    worst, name = 0.0, ""
    pb = dict(b.named_parameters())
    for n, p in a.named_parameters():
        d = float((p.detach() - pb[n].detach()).abs().max())
        if d > worst:
            worst, name = d, n
    return worst, name


def cmd_equality(args) -> int:
    from bench.train.static_step import capture_key, static_blocker

    out = Rows(args.json, meta(args.device))
    n, bs = (21, 8) if args.smoke else (69, 16)  # 4 full batches and a tail of 5 (its own graph)
    bundle = shaped("compact", n, args.device)
    split = bundle.splits["train"]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0)).to(args.device)
    batches = [perm[i:i + bs] for i in range(0, n, bs)]
    if not args.no_runs:  # first: a capture failure further down cannot spoil them
        try:
            whole_runs(out, args)
        except Exception as e:  # noqa: BLE001 - report and go on
            out.add({"run": "whole runs", "error": f"{type(e).__name__}: {str(e)[:300]}"})
    bert = "random:bert-mini" if args.smoke else args.bert_model
    dropouts = {"on": (True,), "off": (False,), "both": (False, True)}[args.dropout]
    for case in args.methods.split(","):
        method, _, text = case.partition("+")
        for dropout in dropouts:
            extra = {"text_model": bert} if text == "bert" else {}
            try:
                cls, hp = config(method, args.smoke, batch_size=bs, grad_accum=1, **extra)
                if static_blocker(cls):
                    out.add({"method": case, "key": case, "skipped": static_blocker(cls)})
                    break
                if not dropout:
                    hp = dataclasses.replace(hp, **no_dropout(hp))
                ref, ref_losses = plain_steps(cls, hp, split, bundle.info(), 1111, batches, args.device)
            except Exception as e:  # noqa: BLE001 - report and go on
                out.add({"method": case, "dropout": dropout, "error": f"{type(e).__name__}: {str(e)[:300]}"})
                continue
            for adam in args.adam.split(","):
                try:
                    got, losses, rec = static_steps(cls, hp, split, bundle.info(), 1111, batches, args.device, adam)
                    diff, where = max_param_diff(got, ref)
                    row = {"method": case, "key": capture_key(cls, hp), "dropout": dropout, "adam": adam,
                           "steps": len(batches), "max_abs_param_diff": diff, "worst_param": where,
                           "max_abs_loss_diff": max(abs(a - b) for a, b in zip(losses, ref_losses)),
                           "losses_loop": ref_losses, "losses_static": losses, **rec}
                    del got
                except Exception as e:  # noqa: BLE001 - report and go on
                    row = {"method": case, "dropout": dropout, "adam": adam,
                           "error": f"{type(e).__name__}: {str(e)[:300]}"}
                out.add(row)
            del ref
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
    return 0


def whole_runs(out, args) -> None:
    """``bench run`` --graphs auto vs off, and a whole ``train_static`` (captured) vs ``train`` (2 epochs, compact
    synthetic MOSI, Table 4's compact EMOE)."""
    from bench.data import load_dataset
    from bench.registry import get_method

    EMOE_COMPACT = get_method("emoe").preset("compact")
    from bench.train.static_step import train_static
    from bench.train.trainer import train

    data = load_dataset("synthetic-mosi", "unaligned", profile="compact")
    if args.smoke:
        from tests.benchmarks.test_speed import _subset

        data = _subset(data, 37)
    cls, hp = config("emoe", args.smoke, **{**EMOE_COMPACT, "max_epochs": "2", "early_stop": "10"})
    runner_rows(out, data, args)
    t0 = time.perf_counter()
    ref = train(cls, hp, data, 1111, device=args.device)
    loop_s = round(time.perf_counter() - t0, 2)
    for adam in args.adam.split(","):
        t1 = time.perf_counter()
        got = train_static(cls, hp, data, 1111, device=args.device, capture=args.device.startswith("cuda"), adam=adam)
        t2 = time.perf_counter()
        out.add({"run": "train_static vs train", "adam": adam, "epochs": 2,
                 "valid_loss_loop": [r["valid"]["loss"] for r in ref.history],
                 "valid_loss_static": [r["valid"]["loss"] for r in got.history],
                 "test_mae_loop": ref.test["mae"], "test_mae_static": got.test["mae"],
                 "test_mae_abs_diff": abs(ref.test["mae"] - got.test["mae"]),
                 "loop_s": loop_s, "static_s": round(t2 - t1, 2),
                 **got.model_record["static_step"]})


def runner_rows(out, data, args) -> None:
    """What the default switch changes: ``bench run`` of one EMOE seed with ``--graphs auto`` (on CUDA: the static
    step with torch's Adam) vs ``--graphs off`` -- every stored number must be equal."""
    from bench.registry import get_method
    from bench.runner import RunRequest, run

    EMOE_COMPACT = get_method("emoe").preset("compact")

    sets = {**(SMOKE_SIZES["emoe"] if args.smoke else {}), **{k: str(v) for k, v in EMOE_COMPACT.items()}}
    res = {}
    for graphs in ("off", "auto"):
        lines = []
        with tempfile.TemporaryDirectory() as tmp:
            req = RunRequest(method="emoe", dataset="synthetic-mosi", setting="unaligned", seeds=[1111], epochs=2,
                             out=tmp, device=args.device, exec_mode="loop", graphs=graphs, overrides=sets)
            t0 = time.perf_counter()
            try:
                (rec,) = run(req, bundle=data, log=lines.append, progress=False)
                res[graphs] = {"test": rec.result["test"], "valid": rec.result.get("valid"),
                               "model_static_step": rec.result.get("model", {}).get("static_step"),
                               "seconds": round(time.perf_counter() - t0, 2), "log": [ln for ln in lines
                                                                                     if "--graphs" in ln]}
            except Exception as e:  # noqa: BLE001
                res[graphs] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
    same = "error" not in res["off"] and "error" not in res["auto"] and res["off"]["test"] == res["auto"]["test"] \
        and res["off"]["valid"] == res["auto"]["valid"]
    out.add({"run": "bench run --graphs auto vs off", "equal": same, **res})


# ------------------------------------------------------------------------------------ (b) steps
BERT_BASE = {"text_model": "random:bert-base-uncased"}  # BertConfig's default sizes, random weights (no download)
STEP_CASES = (  # label, method, profile, overrides
    ("emoe features full", "emoe", "full", {}),
    ("emoe features compact", "emoe", "compact", {}),
    ("mult full", "mult", "full", {}),
    ("mult compact", "mult", "compact", {}),
    ("emoe bert full", "emoe", "full", BERT_BASE),
    ("misa bert full", "misa", "full", BERT_BASE),
    ("self_mm bert full", "self_mm", "full", BERT_BASE),
    ("misa full", "misa", "full", {}),
    ("self_mm full", "self_mm", "full", {}),
)


def profile_steps(step, idx, device, steps) -> dict:
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    _sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        step(idx[i])
    _sync(device)
    wall = (time.perf_counter() - t0) / steps
    row = {"wall_ms": round(wall * 1e3, 3)}
    if device.startswith("cuda"):
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            t0 = time.perf_counter()
            for i in range(steps):
                step(idx[i])
            _sync(device)
            pwall = (time.perf_counter() - t0) / steps
        ev = prof.key_averages()
        gpu = sum(e.self_device_time_total for e in ev if e.device_type == DeviceType.CUDA) / 1e6 / steps
        launches = sum(e.count for e in ev if e.key.startswith(("cudaLaunchKernel", "cuLaunchKernel")))
        row.update(gpu_kernel_ms=round(gpu * 1e3, 3), gpu_busy=round(gpu / wall, 3),
                   profiled_wall_ms=round(pwall * 1e3, 3), kernel_launches_per_step=round(launches / steps, 1),
                   graph_launches_per_step=round(sum(e.count for e in ev if e.key.startswith("cudaGraphLaunch"))
                                                 / steps, 1))
    return row


def cmd_steps(args) -> int:
    from bench.perf import single_model_stepper
    from bench.train.static_step import static_blocker, static_stepper

    out = Rows(args.json, meta(args.device))
    steps, warm = (2, 1) if args.smoke else (args.steps, args.warmup)
    only = set(args.cases.split(",")) if args.cases else None
    cases = [c for c in STEP_CASES if not only or c[0] in only]
    if only:  # in the order given
        cases.sort(key=lambda c: args.cases.split(",").index(c[0]))
    for label, method, profile, extra in cases:
        if args.smoke and "bert" in label:
            extra = {**extra, "text_model": "random:bert-mini"}
        from bench.text_encoder import uses_bert
        try:
            cls, hp = config(method, args.smoke, **extra)
            bs = hp.batch_size
            bundle = shaped("compact" if args.smoke else profile, max(4 * bs, 64), args.device)
            split = bundle.splits["train"]
            gen = torch.Generator().manual_seed(0)
            idx = torch.stack([torch.randperm(len(split), generator=gen)[:bs] for _ in range(warm + 2 * steps)])
            idx = idx.to(args.device)
            before = single_model_stepper(cls, hp, bundle.info(), 1111, args.device)
            for i in range(warm):
                before(split, idx[i])
            b = profile_steps(functools.partial(before, split), idx[warm:], args.device, steps)
            del before
            row = {"case": label, "batch_size": bs, "bert": uses_bert(hp), "adam_after": args.adam, "before": b}
            why = static_blocker(cls)
            if why:
                row["after"] = {"skipped": why}
            else:
                after = static_stepper(cls, hp, split, bundle.info(), 1111, args.device,
                                       capture=args.device.startswith("cuda"), adam=args.adam)
                for i in range(warm):
                    after(idx[i])
                a = profile_steps(after, idx[warm:], args.device, steps)
                a.update(after.stepper.record())
                row["after"] = a
                row["speedup"] = round(b["wall_ms"] / a["wall_ms"], 2)
                del after
        except Exception as e:  # noqa: BLE001 - report and go on
            row = {"case": label, "error": f"{type(e).__name__}: {str(e)[:300]}"}
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
        out.add(row)
    return 0


# ------------------------------------------------------------------------------------ (c) naive
def cmd_naive(args) -> int:
    from bench.data import load_dataset
    from bench.train.static_step import train_static
    from bench.train.trainer import train
    from tests.benchmarks.test_speed import _subset, naive_epoch

    out = Rows(args.json, meta(args.device))
    profiles = ["compact"] + ([] if args.smoke else ["full"] if args.full else [])
    for profile in profiles:
        bundle = load_dataset("synthetic-mosi", "unaligned", profile=profile)
        if args.smoke:
            bundle = _subset(bundle, 24)
        cls, hp = config("emoe", args.smoke, max_epochs=1)
        rounds = 1 if profile == "full" or args.smoke else 2
        res = {}
        for impl in ("naive", "ours", "ours_static"):
            times = []
            for _ in range(rounds):
                _sync(args.device)
                t0 = time.perf_counter()
                if impl == "naive":
                    torch.manual_seed(1111)
                    model = cls(hp, bundle.info()).to(args.device)
                    opt = torch.optim.Adam(model.param_groups())
                    naive_epoch(model, bundle, hp, opt, torch.Generator().manual_seed(1111), args.device)
                elif impl == "ours":
                    train(cls, hp, bundle, 1111, device=args.device)
                else:
                    train_static(cls, hp, bundle, 1111, device=args.device, capture=args.device.startswith("cuda"))
                _sync(args.device)
                times.append(round(time.perf_counter() - t0, 3))
            res[impl] = times
        out.add({"profile": profile, "train_samples": len(bundle.train), "seconds": res,
                 "naive_over_ours": round(min(res["naive"]) / min(res["ours"]), 2),
                 "naive_over_ours_static": round(min(res["naive"]) / min(res["ours_static"]), 2)})
    return 0


# ------------------------------------------------------------------------------------ (e) end to end
def cmd_e2e(args) -> int:
    from bench.runner import RunRequest, load_bundle, run

    out = Rows(args.json, meta(args.device))
    k = 2 if args.smoke else args.k
    sets = dict(SMOKE_SIZES["emoe"]) if args.smoke else {}
    for profile in args.profiles.split(","):
        bundle = load_bundle(RunRequest(method="emoe", dataset="synthetic-mosi", setting="unaligned", profile=profile))
        if args.smoke:
            from tests.benchmarks.test_speed import _subset

            bundle = _subset(bundle, 24)
        with tempfile.TemporaryDirectory() as tmp:  # warm-up: CUDA context, kernel caches, imports
            run(RunRequest(method="emoe", dataset="synthetic-mosi", setting="unaligned", profile=profile, seeds=[7],
                           epochs=1, out=tmp, device=args.device, overrides=sets), bundle=bundle, log=lambda _: None,
                progress=False)
        cases = [("1 seed loop", 1, "loop", "off"), (f"{k} seeds auto", k, "auto", "off"),
                 (f"{k} seeds loop", k, "loop", "off"), (f"{k} seeds loop --graphs on", k, "loop", "on")]
        for label, n, mode, graphs in cases:
            lines = []
            with tempfile.TemporaryDirectory() as tmp:
                req = RunRequest(method="emoe", dataset="synthetic-mosi", setting="unaligned", profile=profile,
                                 seeds=list(range(1111, 1111 + n)), epochs=args.epochs, out=tmp, device=args.device,
                                 exec_mode=mode, graphs=graphs, overrides=sets)
                _sync(args.device)
                t0 = time.perf_counter()
                try:
                    recs = run(req, bundle=bundle, log=lines.append, progress=False)
                    err = None
                except Exception as e:  # noqa: BLE001
                    recs, err = [], f"{type(e).__name__}: {str(e)[:300]}"
                _sync(args.device)
                wall = time.perf_counter() - t0
            out.add({"profile": profile, "case": label, "seeds": n, "epochs": args.epochs, "wall_s": round(wall, 2),
                     "error": err, "auto_line": next((ln for ln in lines if "--exec auto" in ln), None),
                     "exec_modes": sorted({r.result["provenance"]["execution"]["exec_mode"] for r in recs}),
                     "test_mae": [round(r.result["test"]["mae"], 4) for r in recs]})
    return 0


# ------------------------------------------------------------------------------------ plan
PLAN_TARGETS = (["--table", "1"], ["--table", "2"], ["--table", "3", "--set", "text_model=random:bert-base-uncased"],
                ["--table", "4"], ["--table", "5"], ["--table", "6"], ["--figure", "4"])


def cmd_plan(args) -> int:
    """``bench plan`` for Tables 1-6 + Figure 4 in one process (Table 3's full protocol fine-tunes BERT: a random
    bert-base stands in for the geometry)."""
    import contextlib
    import io

    from bench.cli import main as bench_main

    text = ["--text-model", args.text_model] if args.text_model else []
    with open(args.out, "w") as f:
        for target in PLAN_TARGETS:
            if text and "--set" in target:  # --text-model already gives Table 3's BERT rows their encoder
                target = target[:2]
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                code = bench_main(["plan", *target, "--seeds", f"{args.seeds}x", "--device", args.device, "--profile",
                                   args.profile, "--out", args.results, "--throughput-dir", args.throughput_dir,
                                   *text])
            f.write(buf.getvalue() + (f"(exit {code})\n" if code else "") + "\n")
            f.flush()
            lines = buf.getvalue().splitlines()
            print(" ".join(target), "|", next((ln for ln in lines if "estimated wall time" in ln), lines[-1:]),
                  flush=True)
    return 0


# ------------------------------------------------------------------------------------ summary
def cmd_summary(args) -> int:
    d = Path(args.dir)

    def rows(name):
        p = d / name
        return json.loads(p.read_text())["rows"] if p.exists() else []

    lines = ["# issue 16 GPU measurements", ""]
    m = next((json.loads((d / f).read_text())["meta"] for f in ("equality.json", "steps.json") if (d / f).exists()),
             {})
    lines.append(f"machine: {m.get('gpu', m.get('cpu_model'))}, torch {m.get('torch')}, {m.get('utc_date')}")
    lines += ["", "## (a) static step (CUDA graph) vs loop step", "",
              "| method | dropout | adam | max abs param diff | max abs loss diff | graphs | error |",
              "|---|---|---|---|---|---|---|"]
    for r in rows("equality.json"):
        if "skipped" in r:
            lines.append(f"| {r['method']} | | | | | | skipped: {r['skipped']} |")
        elif r.get("run", "").startswith("bench run"):
            a, o = r.get("auto", {}), r.get("off", {})
            lines.append(f"| bench run --graphs auto vs off | | | equal: {r['equal']} | test MAE "
                         f"{a.get('test', {}).get('mae')} vs {o.get('test', {}).get('mae')} | "
                         f"{a.get('model_static_step')} | {a.get('seconds')} s vs {o.get('seconds')} s "
                         f"{a.get('error') or ''}{o.get('error') or ''} |")
        elif "method" in r:
            lines.append(f"| {r['method']} | {r['dropout']} | {r['adam']} | {r.get('max_abs_param_diff', '-')} | "
                         f"{r.get('max_abs_loss_diff', '-')} | {r.get('captured_sizes', '-')} | "
                         f"{r.get('error') or r.get('capture_error') or ''} |")
        elif "error" in r:
            lines.append(f"| {r.get('run')} | | | | | | {r['error'][:120]} |")
        else:
            lines.append(f"| whole run ({r['adam']}) | | | test MAE diff {r['test_mae_abs_diff']:.2e} | valid loop "
                         f"{r['valid_loss_loop']} static {r['valid_loss_static']} | {r.get('captured_sizes')} | "
                         f"loop {r['loop_s']} s, static {r['static_s']} s |")
    lines += ["", "## (b) step time and GPU busy fraction, before (loop) -> after (static step + graph; Adam: "
              "adam_after in steps.json)", "",
              "| case | batch | before ms | busy | launches | after ms | busy | speed-up | note |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows("steps.json"):
        if "error" in r:
            lines.append(f"| {r['case']} | | | | | | | | {r['error'][:120]} |")
            continue
        b, a = r["before"], r["after"]
        lines.append(f"| {r['case']} | {r['batch_size']} | {b['wall_ms']} | {b.get('gpu_busy')} | "
                     f"{b.get('kernel_launches_per_step')} | {a.get('wall_ms', '-')} | {a.get('gpu_busy', '-')} | "
                     f"{r.get('speedup', '-')} | {a.get('skipped') or a.get('capture_error') or ''} |")
    lines += ["", "## (c) EMOE epoch: naive vs ours", ""]
    for r in rows("naive.json"):
        lines.append(f"- {r['profile']} ({r['train_samples']} train): seconds {r['seconds']}; naive/ours "
                     f"{r['naive_over_ours']}, naive/ours-static {r['naive_over_ours_static']}")
    lines += ["", "## (e) end to end, one EMOE row", ""]
    for r in rows("e2e.json"):
        extra = (f", {r['auto_line']}" if r["auto_line"] else "") + (f", ERROR {r['error']}" if r["error"] else "")
        lines.append(f"- {r['profile']} {r['case']} ({r['epochs']} epochs): {r['wall_s']} s, modes "
                     f"{r['exec_modes']}{extra}")
    tp = d / "cuda.csv"
    if tp.exists():
        import csv

        with tp.open(newline="") as f:
            tl = list(csv.DictReader(f))
        lines += ["", f"## throughput ({len(tl)} lines in cuda.csv)", "",
                  "| method | setting | exec | k | text | n_train | s/epoch | overhead s |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {t['method']} | {t['setting']} | {t['exec_mode']} | {t['k']} | {t.get('text') or 'features'} | "
                  f"{t['n_train']} | {t['seconds_per_epoch']} | {t['run_overhead_s']} |" for t in tl]
    plan = d / "plan.txt"
    if plan.exists():
        lines += ["", "## bench plan, 5 seeds, full profile", ""]
        lines += [f"- {ln}" for ln in plan.read_text().splitlines() if ln.startswith(("plan for", "runs to train"))]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("equality", "steps", "naive", "e2e"):
        p = sub.add_parser(name)
        p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        p.add_argument("--smoke", action="store_true", help="tiny sizes (a CPU check of the code paths)")
        p.add_argument("--json", default=None)
        p.add_argument("--threads", type=int, default=0)
    eq = sub.choices["equality"]
    eq.add_argument("--methods", default="emoe,mult,emoe-paper",
                    help="comma list; METHOD+bert = with a random BERT (--bert-model)")
    eq.add_argument("--dropout", choices=("on", "off", "both"), default="both")
    eq.add_argument("--adam", default="default,fused", help="comma list of Adam kinds for the static step")
    eq.add_argument("--bert-model", default="random:bert-base-uncased")
    eq.add_argument("--no-runs", action="store_true", help="only the step comparisons (no whole runs)")
    sub.choices["steps"].add_argument("--steps", type=int, default=10)
    sub.choices["steps"].add_argument("--warmup", type=int, default=3)
    sub.choices["steps"].add_argument("--adam", default="fused", choices=("fused", "foreach", "default"),
                                      help="the static step's Adam (default: what --graphs auto uses)")
    sub.choices["steps"].add_argument("--cases", default=None, help="comma list of case labels (default all)")
    sub.choices["naive"].add_argument("--full", action="store_true", help="also full MOSI shapes (1 round)")
    sub.choices["e2e"].add_argument("--k", type=int, default=5)
    sub.choices["e2e"].add_argument("--epochs", type=int, default=3)
    sub.choices["e2e"].add_argument("--profiles", default="compact")
    pl = sub.add_parser("plan")
    pl.add_argument("--device", default="cuda")
    pl.add_argument("--seeds", type=int, default=5)
    pl.add_argument("--profile", default="full")
    pl.add_argument("--results", default="no-results", help="results directory (its finished runs are reused)")
    pl.add_argument("--throughput-dir", required=True)
    pl.add_argument("--text-model", default=None,
                    help="BERT rows fine-tune this encoder (e.g. random:bert-base-uncased: the paper's protocol)")
    pl.add_argument("--out", required=True)
    s = sub.add_parser("summary")
    s.add_argument("--dir", required=True)
    s.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    return {"equality": cmd_equality, "steps": cmd_steps, "naive": cmd_naive, "e2e": cmd_e2e, "plan": cmd_plan,
            "summary": cmd_summary}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
