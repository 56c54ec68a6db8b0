"""``bench check`` and ``bench report``: option validation and the commands (the statistics live in
bench/check.py and bench/verdict.py)."""

from __future__ import annotations

import math
from pathlib import Path

from bench import check
from bench.check import DEFAULT_FLOORS, DEFAULT_K, CheckOptions
from bench.check_csv import frozen_text_blocks, read_long_csv, table_values
from bench.config import parse_sets
from bench.errors import UserError, did_you_mean
from bench.report.specs import require_table
from bench.text_encoder import text_choice
from bench.verdict import COMBINED_FLOOR, parse_published_as

FLOOR_METRICS = ("acc7", "acc2", "f1", "acc", "precision", "recall", "mae", "corr")


def _number(flag: str, text, positive: bool = True) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise UserError(f"{flag}: {text} is not a number") from None
    if not math.isfinite(v) or (positive and v <= 0) or v < 0:
        raise UserError(f"{flag}: {text} must be a finite {'positive' if positive else 'non-negative'} number")
    return v


def _metric_values(flag: str, items: list[str]) -> dict:
    out = {}
    for item in items:
        name, eq, value = (x.strip() for x in item.partition("="))
        if not eq:
            raise UserError(f"{flag} {item!r}: expected METRIC=VALUE, e.g. {flag} mae=0.02")
        if name not in FLOOR_METRICS:
            raise UserError(f"{flag} {name}={value}: unknown metric {name!r}.{did_you_mean(name, FLOOR_METRICS)}")
        out[name] = _number(f"{flag} {name}", value)
    return out


def _power_tables(text) -> int:
    v = _number("--power-tables", text, positive=False)
    if v != int(v) or v > 100_000:
        raise UserError(f"--power-tables: {text} must be a whole number from 0 (no power simulation) to 100000")
    return int(v)


def check_options(args):
    """CheckOptions from the command line; every bad value is a one-line exit 2."""
    floors = {**DEFAULT_FLOORS, **_metric_values("--floor", getattr(args, "floor", []))}
    k = DEFAULT_K if getattr(args, "k", None) is None else _number("--k", args.k)
    alpha = _number("--alpha", getattr(args, "alpha", 0.05))
    if alpha >= 1:
        raise UserError(f"--alpha: {alpha} must be below 1 (e.g. 0.05)")
    return CheckOptions(k=k, floors=floors, profile=getattr(args, "profile", "compact"),
                        overrides=parse_sets(getattr(args, "sets", [])), epochs=getattr(args, "epochs", None),
                        published_as=parse_published_as(getattr(args, "published_as", "single")), alpha=alpha,
                        assume_std=_metric_values("--assume-std", getattr(args, "assume_std", [])),
                        seed_std=getattr(args, "seed_std", "moderated"),
                        combined_floor=_number("--combined-floor", getattr(args, "combined_floor", COMBINED_FLOOR),
                                               positive=False),
                        text=text_choice(args))


def cmd_check(args) -> int:
    spec = require_table(args.table)
    opts = check_options(args)
    rows = tuple(r.strip() for r in args.rows.split(",") if r.strip()) if args.rows else None
    opts.rows = check.check_rows(spec, rows)
    results = Path(args.results)
    ref_dir = Path(args.reference_dir) if args.reference_dir else None
    if args.from_csv and (args.against != "published" or args.update):
        raise UserError("--from-csv compares a CSV with the published numbers; use it with --against published")
    if not args.from_csv:
        check.require_results(results)
    if args.update:
        if args.against != "reference":
            raise UserError("--update writes reference results; use it with --against reference")
        path = check.update_reference(spec, results, opts, args.source, ref_dir)
        print(f"reference for table {spec.number} ({args.source}) written: {path}")
        return 0
    if args.against == "published":
        power_tables = _power_tables(getattr(args, "power_tables", "0"))
        values, frozen = None, None
        if args.from_csv:

            lines = read_long_csv(Path(args.from_csv))
            values, frozen = table_values(spec, lines, Path(args.from_csv)), frozen_text_blocks(spec, lines)
        cells = check.published_input(spec, results, opts, values, frozen)
        df = check.compare_published(cells, opts)
        shape = "one run" if opts.published_as == 1 else f"the best of {opts.published_as} runs"
        std = "seed stds moderated over the table" if opts.seed_std == "moderated" else "each cell's own seed std"
        rows_rule = ("rows and table beyond one floor" if opts.combined_floor == 1 else
                     f"rows and table beyond {opts.combined_floor:g} floors" if opts.combined_floor else
                     "rows and table on any significant shift (--combined-floor 0)")
        print(f"Table {spec.number} against the published numbers (each counted as {shape}; one-sided tests, {std}, "
              f"Holm at {opts.alpha:g}; floors as minimum gaps, {rows_rule}; docs/verdicts.md)")
        print(check.format_verdicts(df))
        if power_tables:
            print("\n".join(check.power_lines(cells, df, opts, power_tables)))
        summary = check.published_summary(df)
    else:
        df = check.check_reference(spec, results, opts, args.source, ref_dir, opts.rows, args.same_seeds)
        print(f"Table {spec.number} against reference {check.reference_path(spec, args.source, ref_dir)} "
              f"(band: max({opts.k}·SE, floor))")
        print(check.format_report(df))
        summary = ", ".join(f"{k} {v}" for k, v in df["verdict"].value_counts().to_dict().items())
    published_dir = args.against == "published" and not args.from_csv
    default_csv = results / f"check-table{spec.number}-published.csv" if published_dir else None
    csv = Path(args.csv) if args.csv else default_csv
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        df.drop(columns=[c for c in ("values",) if c in df]).to_csv(csv, index=False)
    code = check.gate_exit_code(df)
    print(("FAIL: " if code else "PASS: ") + summary + (f" (per-cell CSV: {csv})" if csv else ""))
    return code


def cmd_report(args) -> int:
    text = check.build_report(Path(args.results), check_options(args),
                              Path(args.reference_dir) if args.reference_dir else None,
                              _power_tables(getattr(args, "power_tables", "0")))
    out = Path(args.output) if args.output else Path(args.results) / "report.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written: {out}")
    return 0
