"""Print every planned run of every table and figure (synthetic/real x compact/full x text choice), with its config
hash where the data allow: diff the output before and after a refactoring to show that planning is unchanged.

    python scripts/plan_snapshot.py [--data-root ../shared/data/mosi229] > plans.txt
"""

from __future__ import annotations

import argparse
import hashlib
import json

from bench.plan import shape_bundle
from bench.report.figure_specs import figures
from bench.report.planning import choose_settings, plan, plan_figure
from bench.report.specs import TABLES
from bench.runner import RunRequest, load_bundle, run_spec
from bench.text_encoder import TextChoice

TEXTS = (None, TextChoice(None, True), TextChoice("random:bert-mini", False))


def config_hash(p, source: str, root: str | None, bundles: dict) -> str:
    req = RunRequest(method=p.row.method, dataset=p.dataset, setting=p.setting, overrides=p.overrides,
                     data_root=root if source == "real" else None)
    try:
        key = (p.dataset, p.setting)
        if key not in bundles:
            bundles[key] = shape_bundle(req) if source == "synthetic" else load_bundle(req)
        return hashlib.sha256(run_spec(req, bundles[key])[1].canonical().encode()).hexdigest()[:16]
    except Exception as e:  # noqa: BLE001 - a configuration that cannot resolve is part of the snapshot
        return f"ERR {type(e).__name__}: {str(e)[:80]}"


def lines(root: str | None):
    bundles: dict = {}
    for source in ("synthetic", "real") if root else ("synthetic",):
        for profile in ("compact", "full"):
            for text in TEXTS:
                head = f"{source} {profile} {text}"
                for n, spec in TABLES.items():
                    try:
                        planned = plan(choose_settings(spec, None, source, root)[0], source, profile, {}, text=text)
                    except Exception as e:  # noqa: BLE001
                        yield f"T{n} {head} ERR {e}"
                        continue
                    for p in planned:
                        yield (f"T{n} {head} | {p.row.label} | {p.setting} | {p.dataset} | "
                               f"{json.dumps(p.overrides, sort_keys=True)} | {config_hash(p, source, root, bundles)}")
                for n, fig in figures().items():
                    for p in plan_figure(fig, source, profile, {}, text=text):
                        yield (f"F{n} {head} | {p.row.label} | {p.setting} | {p.dataset} | "
                               f"{json.dumps(p.overrides, sort_keys=True)} | {config_hash(p, source, root, bundles)}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None, help="real data root for the real-data half (default: none)")
    print("\n".join(lines(ap.parse_args().data_root)))
