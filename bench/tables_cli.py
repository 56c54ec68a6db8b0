"""``bench run --table N`` and ``bench ls tables`` (registries: bench/tables.py, bench/figures.py)."""

from __future__ import annotations

from bench.errors import UserError


def list_tables() -> None:
    from bench.figures import figures
    from bench.tables import TABLES

    for t in TABLES.values():
        print(f"table {t.number}: {t.title}")
    for f in figures().values():
        print(f"figure {f.number}: {f.title}  (python -m bench figure {f.number})")


def run_table(args) -> int:
    from bench.tables import TABLES, run_and_render

    if args.table not in TABLES:
        raise UserError(f"table {args.table} is not available; available: {', '.join(map(str, sorted(TABLES)))}")
    return run_and_render(TABLES[args.table], args)
