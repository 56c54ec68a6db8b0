"""Training the planned runs of a table or figure: ``bench plan``'s estimate first, then every missing seed
(finished runs are reused), with the data banner and a progress bar."""

from __future__ import annotations

import dataclasses

from tqdm.auto import tqdm

from bench import dispatch, plan, throughput
from bench.cli.console import print_data_banner
from bench.report.planning import PlannedRun, budget
from bench.run_settings import RunSettings
from bench.runner import load_bundle, resolve_device, run


def execute(planned: list[PlannedRun], settings: RunSettings, seeds: list[int]) -> tuple[list, dict]:
    """Run every missing seed of every planned run (finished runs are reused); data are loaded once per
    (dataset, setting). Returns ([(planned run, [RunRecord])] in plan order, {(dataset, setting): bundle})."""
    requests = [settings.request(p.row.method, p.dataset, p.setting, seeds, p.overrides) for p in planned]
    bundles, out = {}, []
    quiet = settings.quiet
    bar = announce_plan(planned, requests, settings, bundles)  # bench plan's estimate + a bar
    if requests and dispatch.wants_executor(settings):
        dispatch.run_elsewhere(requests, settings)
        requests = [dataclasses.replace(r, force=False) for r in requests]  # now finished: read them back
    shown = set()
    for p, req in zip(planned, requests, strict=True):
        key = (p.dataset, p.setting)
        if key not in bundles:
            bundles[key] = load_bundle(req)
        if settings.data_root and key not in shown:
            shown.add(key)
            print_data_banner(bundles[key])
        recs = run(req, bundle=bundles[key], progress=False if quiet else None)
        if bar is not None:
            bar.update(sum(not r.reused for r in recs))
        out.append((p, recs))
    if bar is not None:
        bar.close()
    return out, bundles


def announce_plan(planned, requests, settings: RunSettings, bundles: dict):
    """Print ``bench plan``'s table and estimate for these runs; return a progress bar over the runs to train
    (None when quiet or nothing is to train). Planning never stops a run: a failure is one printed line."""
    if not requests:
        return None
    try:
        device = requests[0].device
        if device in ("", "auto"):
            device = resolve_device(device)
        dev_class = throughput.device_class(device)
        entries = throughput.load(dev_class)
        rows = plan.plan_requests([(p.row.label, p.setting) for p in planned], requests,
                                  budget(settings.source, settings.profile), entries, device, bundles)
        print(plan.format_plan(rows, entries, dev_class, throughput.table_path(dev_class)))
    except Exception as e:  # noqa: BLE001 - the estimate is advisory
        print(f"plan: no estimate ({type(e).__name__}: {e})")
        return None
    todo = sum(r.todo for r in rows)
    if settings.quiet or not todo:
        return None
    return tqdm(total=todo, desc=f"table runs ({todo} to train)", unit="run")
