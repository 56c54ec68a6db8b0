"""``bench figure N``: plan, train the missing runs, draw the figure and write its numbers (bench/report draws)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from bench.cli.args import add_data_args, add_execution_args
from bench.cli.console import SYNTHETIC_BANNER
from bench.cli.execute import execute
from bench.cli.settings import run_settings
from bench.config import parse_sets
from bench.errors import UserError
from bench.report.figure_render import render_sensitivity, render_tsne, render_weights
from bench.report.figure_specs import FROZEN_TEXT_NOTE, REAL_COMPACT_NOTE, require_figure
from bench.report.planning import available, default_seeds, light, plan_figure, with_data_files
from bench.store import require_results_dir
from bench.text_guard import refuse_silent_frozen
from bench.train.seeding import seeds_from_arg


# ------------------------------------------------------------------------------------ command
def add_parser(sub) -> None:
    """The ``figure`` subcommand."""
    f = sub.add_parser("figure", help="run the missing runs of paper figure N (4, 5, 6) and draw it")
    f.add_argument("number", type=int, help="figure number (4: sensitivity, 5: t-SNE, 6: router weights)")
    f.add_argument("--seeds", default=None, help="a list 1111,1112, a range 1111-1115 or a count 3x; a lone "
                                                  "number is one seed (default: fig. 4 2x on compact synthetic, "
                                                  "3x synthetic full, 5x real; figs. 5-6: 1x)")
    f.add_argument("--epochs", type=int, default=None, help="cap on training epochs (sets max_epochs)")
    f.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", default=[],
                   help="override an EMOE hyper-parameter (repeatable)")
    f.add_argument("--grid", default=None, help="fig. 4: comma list of values (default 0.01,0.05,0.1,0.5,1; "
                                                 "compact synthetic 0.01,0.1,1)")
    f.add_argument("--datasets", default=None, help="comma list of families, e.g. mosi,mosei (fig. 4 default: "
                                                     "mosi,mosei; compact synthetic: mosi)")
    f.add_argument("--settings", default=None, help="comma list: aligned,unaligned (fig. 4 default both, "
                                                     "figs. 5-6 aligned; compact synthetic: aligned)")
    f.add_argument("--out", default="results", help="results directory (default: results)")
    f.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    f.add_argument("--force", action="store_true", help="rerun finished runs")
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    f.add_argument("--threads", type=int, default=None, help="torch intra-op CPU threads")
    add_data_args(f)
    add_execution_args(f)


def _csv(text: str | None, cast=str) -> tuple | None:
    if not text:
        return None
    try:
        return tuple(cast(x.strip()) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"{text!r}: expected a comma list of numbers") from None


def cmd_figure(args) -> int:
    opts = run_settings(args)
    spec = require_figure(args.number)
    require_results_dir(opts.out)
    source, data_root = opts.source, opts.data_root
    seeds = seeds_from_arg(args.seeds, default_seeds(spec, source, args.profile))
    grid = _csv(args.grid, float)
    if grid and any(v <= 0 for v in grid):
        raise UserError(f"--grid {args.grid}: values must be positive")
    families, settings = _csv(args.datasets), _csv(args.settings)
    if spec.kind != "sensitivity" and (grid or families):
        raise UserError("--grid and --datasets apply to figure 4 only")
    for s in settings or ():
        if s not in ("aligned", "unaligned"):
            raise UserError(f"--settings: unknown setting {s!r} (aligned, unaligned)")
    for fam in families or ():
        if fam not in ("mosi", "mosei"):
            raise UserError(f"--datasets: figure {spec.number} uses mosi and/or mosei, not {fam!r}")
    if not available("emoe"):
        raise UserError("figure needs the emoe method, which is not registered")
    if source == "real" and light(source, args.profile):  # say so on the figure, as table captions do
        spec = dataclasses.replace(spec, notes=f"{spec.notes}; {REAL_COMPACT_NOTE}" if spec.notes else
                                   REAL_COMPACT_NOTE)
    choice = opts.text
    planned = plan_figure(spec, source, args.profile, parse_sets(args.sets), grid, families, settings, text=choice)
    if source == "real":
        planned, skipped = with_data_files(planned, data_root, spec)
        if skipped:
            print(f"note: not run (no data file under the data root): {', '.join(skipped)}")
        refuse_silent_frozen(planned, source, choice, f"figure {spec.number}", args.epochs)
        text_note = FROZEN_TEXT_NOTE if choice.frozen else f"fine-tuned text encoder {choice.model}"
        spec = dataclasses.replace(spec, notes=f"{spec.notes}; {text_note}" if spec.notes else text_note)
    print(f"Figure {spec.number}: {spec.title}")
    if source == "synthetic":
        print(SYNTHETIC_BANNER)
    print(f"{len(planned)} configuration(s) × {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); "
          "finished runs are reused")
    done, bundles = execute(planned, opts, seeds)
    outdir = Path(opts.out) / "figures"
    if spec.kind == "sensitivity":
        paths, numbers = render_sensitivity(spec, done, source, outdir)
    elif spec.kind == "tsne":
        paths, numbers = render_tsne(spec, done, source, outdir)
        for k, v in numbers["panels"].items():
            print(f"  {k}: neighbour-label MAE {v['neighbour_label_mae']:.3f} on the t-SNE map (lower = smoother)")
    else:
        paths, numbers = render_weights(spec, done, source, outdir, bundles)
        for line in numbers["summary"]:
            print("  " + line)
    side = outdir / f"fig{spec.number}-{source}.json"
    side.write_text(json.dumps({"figure": spec.number, "title": spec.title, "source": source, "notes": spec.notes,
                                **numbers},
                               indent=1, default=str))
    print("written: " + ", ".join(str(p) for p in [*paths, side]))
    return 0
