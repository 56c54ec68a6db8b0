"""``bench ls``, ``bench describe``, ``bench data`` and ``bench aggregate``: what is registered, a method's size,
the data files, and all finished runs as CSV."""

from __future__ import annotations

import json
from pathlib import Path

from bench import store
from bench.cli.table_cmd import list_tables
from bench.config import parse_sets
from bench.data import load_dataset, resolve_data_root, settings_for
from bench.data.verify import verify_root
from bench.describe import canonical_info, describe
from bench.errors import UserError
from bench.registry import datasets, get_dataset_loader, get_method, methods
from bench.runner import default_setting, resolve_hparams
from bench.text_encoder import text_choice, text_overrides


# ---------------------------------------------------------------------------------------- ls
def cmd_ls(args) -> int:
    if args.what == "methods":
        for name, cls in sorted(methods().items()):
            print(f"{name:14s} {', '.join(cls.families):22s} {cls.description}")
    elif args.what == "datasets":
        for name in sorted(datasets()):
            kind = "synthetic (embedded default)" if name.startswith("synthetic-") else "real (needs --data-root)"
            print(f"{name:18s} {'/'.join(settings_for(name)):18s} {kind}")
    else:
        list_tables()
    return 0


# ---------------------------------------------------------------------------------- describe
def cmd_describe(args) -> int:
    method_cls = get_method(args.method)
    get_dataset_loader(args.dataset)
    setting = args.setting or default_setting(method_cls, settings_for(args.dataset))
    data_root = resolve_data_root(args.data_root)
    if args.dataset.startswith("synthetic-") or data_root is not None:
        bundle = load_dataset(args.dataset, setting, data_root=data_root, profile=args.profile or "compact",
                              clean_nan=args.clean_nan, seed=args.data_seed)
        info = bundle.info()
    else:
        info = canonical_info(args.dataset, setting)
    sets = parse_sets(args.sets)
    sets = {**text_overrides(method_cls, info.family, setting, text_choice(args), sets), **sets}
    hp = resolve_hparams(method_cls, info.family, setting, sets)
    d = describe(method_cls, hp, info)
    if args.json:
        print(json.dumps(d, indent=1, default=str))
        return 0
    print(f"{d['method']} on {args.dataset}-{setting}: dims {d['dims']}, lengths {d['seq_lens']}")
    print("parameters:")
    for g, n in d["parameters"].items():
        print(f"  {g:24s} {n:>14,d}")
    print("hyper-parameters:")
    for k, v in d["hparams"].items():
        print(f"  {k:24s} {v}")
    return 0


# -------------------------------------------------------------------------------------- data
def cmd_data(args) -> int:
    if args.data_command == "verify":
        root = resolve_data_root(args.data_root)
        if root is None:
            raise UserError("data verify needs --data-root (or BENCH_DATA_ROOT) pointing at the MMSA/MIntRec data root")
        rows = verify_root(root)
        bad = 0
        for r in rows:
            sha = (r.get("sha256") or "-")[:16]
            print(f"{r['status']:9s} {r['dataset']:8s} {r['setting']:10s} {sha:16s} {r['path']}")
            bad += r["status"] == "mismatch"
        present = sum(r["status"] != "missing" for r in rows)
        print(f"{present} of {len(rows)} expected files present; {bad} checksum mismatch(es)")
        return 0
    setting = args.setting or settings_for(args.dataset)[0]
    bundle = load_dataset(args.dataset, setting, profile=args.profile, seed=args.data_seed)
    print(f"{bundle.name}-{setting} ({bundle.source}, profile {args.profile}, data seed {args.data_seed}) "
          f"fingerprint {bundle.fingerprint[:16]}")
    for split, s in bundle.splits.items():
        shapes = {k: tuple(v.shape) for k, v in s.tensors().items() if k != "index"}
        print(f"  {split:5s} n={len(s):6d} {shapes}")
    return 0


def cmd_aggregate(args) -> int:
    long = store.to_long(Path(args.out))
    if long.empty:
        raise UserError(f"no finished runs under {Path(args.out) / 'runs'}")
    summary = store.summarize(long)
    long_path = Path(args.out) / "runs-long.csv"
    sum_path = Path(args.out) / "runs-summary.csv"
    long.to_csv(long_path, index=False)
    summary.to_csv(sum_path, index=False)
    print(f"{len(long)} rows -> {long_path}; {len(summary)} cells -> {sum_path}")
    return 0
