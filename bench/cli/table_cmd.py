"""``bench run --table N`` and ``bench ls tables``: the console side of the tables (bench/report renders them)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench.cli.console import SYNTHETIC_BANNER
from bench.cli.execute import execute
from bench.config import parse_sets
from bench.report.figure_specs import figures
from bench.report.frames import seeds_note, table_frame
from bench.report.planning import available, budget, choose_settings, plan, unsupported
from bench.report.render import frame_to_markdown, render
from bench.report.specs import DEFAULT_TABLE_SEEDS, TABLES, require_table
from bench.run_settings import RunSettings
from bench.text_guard import refuse_silent_frozen
from bench.train.seeding import seeds_from_arg


def list_tables() -> None:
    """``bench ls tables``: every table and figure."""
    for t in TABLES.values():
        print(f"table {t.number}: {t.title}")
    for f in figures().values():
        print(f"figure {f.number}: {f.title}  (python -m bench figure {f.number})")


def run_table(args, settings: RunSettings) -> int:
    """``bench run --table N``: plan, train the missing runs, render and print the table."""
    spec = require_table(args.table)
    source, data_root = settings.source, settings.data_root
    seeds = seeds_from_arg(args.seeds, DEFAULT_TABLE_SEEDS[source])
    spec, setting_notes = choose_settings(spec, getattr(args, "setting", None), source, data_root)
    size = budget(source, args.profile)
    missing = sorted({r.method for r in spec.measured_rows() if not available(r.method)})
    print(f"Table {spec.number}: {spec.title}")
    if source == "synthetic":
        print(SYNTHETIC_BANNER)
        if any(not r.measured for r in spec.rows) or missing:
            print("[synthetic data] published rows are not shown (they are only shown next to real standard data)")
    if missing:
        print(f"not yet implemented (rows {'omitted' if source == 'synthetic' else 'shown from the paper only'}): "
              f"methods {', '.join(missing)}")
    if spec.pending:
        print("not yet measured: " + "; ".join(f"{k} ({v})" for k, v in spec.pending.items()))
    cant = unsupported(spec)
    if cant:
        print("not run (the method does not support this setting): " + ", ".join(f"{r} {s}" for r, s in cant))
    if source == "real" and size == "compact":
        spec = dataclasses.replace(spec, assumptions=spec.assumptions.rstrip(".") + ". Compact budget (--profile "
                                   "compact): smaller models and 20 epochs, not the methods' own configurations.")
    for note in setting_notes:
        print(f"note: {note}")
    if size == "compact":
        print("budget: compact (smaller models and 20 epochs where the spec says so; --profile full for the "
              "methods' own configurations)")
    choice = settings.text
    planned = plan(spec, source, size, parse_sets(args.sets), text=choice)
    refuse_silent_frozen(planned, source, choice, f"table {spec.number}", args.epochs, by_label=True)
    done, _ = execute(planned, settings, seeds)
    collected = {(p.row.label, p.setting): [r.result for r in recs] for p, recs in done}
    if not collected:
        print("nothing to render: no row of this table can run yet")
        return 0
    frame = table_frame(spec, collected, source)
    paths = render(spec, frame, collected, source, Path(settings.out) / "tables")
    print(frame_to_markdown(spec, frame, collected, source))
    note = seeds_note(spec, frame)
    if note:
        print(f"note: {note}")
    print("written: " + ", ".join(str(p) for p in paths))
    return 0
