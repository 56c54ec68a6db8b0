"""Planning: the runs behind a table or a figure (rows x settings x datasets, with budgets, text choice and
``--set`` values), and the settings a table runs on given the data present. Pure: nothing is printed."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from bench.data import families
from bench.errors import UserError, did_you_mean
from bench.method import hparam_fields
from bench.registry import get_method, methods
from bench.report.figure_specs import FigureSpec
from bench.report.specs import Row, TableSpec
from bench.text_encoder import text_overrides


def available(method: str) -> bool:
    return method in methods()


def supports(method: str, family: str, setting: str) -> bool:
    """Whether a registered method runs on this data (e.g. EF-LSTM needs aligned sequences)."""
    cls = get_method(method)
    return family in cls.families and setting in getattr(cls, "settings", (setting,))


def unsupported(spec: TableSpec) -> list[tuple[str, str]]:
    """(row label, setting) cells whose registered method cannot run on the table's data."""
    return [(r.label, s) for s in spec.settings for r in spec.measured_rows()
            if available(r.method) and not supports(r.method, spec.family, s)]


@dataclass(frozen=True)
class PlannedRun:
    row: Row
    setting: str
    dataset: str
    overrides: dict


dataset_name = families.dataset_name  # a dataset fact: bench/data/families.py


def budget(source: str, profile: str | None) -> str:
    """Model budget of a table/figure: ``--profile`` if given, else compact on synthetic and full on real data."""
    return profile or ("compact" if source == "synthetic" else "full")


def plan(spec: TableSpec, source: str, profile: str, user_sets: dict | None = None,
         rows: tuple[str, ...] | None = None, text=None) -> list[PlannedRun]:
    """The runs behind a table: one per (row with a registered method, setting), with the row's switches and,
    for the compact budget (``profile``), the spec's compact overrides (published-only rows and rows whose
    method is not implemented yet have no run). ``text`` (a :class:`bench.text_encoder.TextChoice`) gives the
    BERT rows their text model, or frozen features; ``--set`` values come last."""
    dataset = dataset_name(spec.family, source)
    out = []
    for setting in spec.settings:
        for row in spec.measured_rows():
            if (rows is not None and row.label not in rows) or not available(row.method):
                continue
            if not supports(row.method, spec.family, setting):
                continue
            overrides = {}
            if profile == "compact":
                overrides.update(get_method(row.method).preset("compact"))
                overrides.update(spec.compact_extra.get(row.method, {}))
            overrides.update(row.overrides)
            overrides.update(text_overrides(get_method(row.method), spec.family, setting, text, overrides))
            overrides.update(sets_for(row.method, user_sets or {}))
            out.append(PlannedRun(row, setting, dataset, overrides))
    if user_sets:
        check_sets_used(user_sets, {r.method for r in spec.measured_rows() if available(r.method)})
    return out


def sets_for(method: str, user_sets: dict) -> dict:
    """The ``--set`` values that apply to ``method``: ``key=value`` where its hyper-parameters have ``key``,
    and ``method.key=value`` (only that method)."""
    names = hparam_fields(get_method(method).HParams)
    out = {}
    for key, value in user_sets.items():
        scope, dot, name = key.rpartition(".")
        if dot and scope == method:
            out[name] = value
        elif not dot and key in names:
            out[key] = value
    return out


def check_sets_used(user_sets: dict, methods_in_table: set[str]) -> None:
    """A ``--set`` that no row of the table can take is a typo: say so (instead of silently ignoring it)."""
    known = {m: set(hparam_fields(get_method(m).HParams)) for m in methods_in_table}
    for key in user_sets:
        scope, dot, name = key.rpartition(".")
        if dot:
            if scope not in known:
                raise UserError(f"--set {key}: no row of this table runs method {scope!r} "
                                f"(rows: {', '.join(sorted(known))})")
            if name not in known[scope]:
                raise UserError(f"--set {key}: {scope} has no hyper-parameter {name!r}."
                                f"{did_you_mean(name, known[scope])}")
        elif not any(key in names for names in known.values()):
            every = set().union(*known.values()) if known else set()
            raise UserError(f"--set {key}: no method of this table has that hyper-parameter."
                            f"{did_you_mean(key, every)}")


# ------------------------------------------------------------------------------------ settings
missing_data_files = families.missing_data_files  # a dataset fact: bench/data/families.py


def choose_settings(spec: TableSpec, requested: str | None, source: str, data_root=None) -> tuple[TableSpec, list[str]]:
    """The table as it will run: ``--setting`` (one of the table's settings, or any setting where the paper
    states none) and, on real data, only the settings whose files exist under the data root. Returns the
    spec with those settings (the choice is added to its assumptions, hence to the caption) and the notes."""
    notes, file_notes = [], []  # console notes; the file notes also go into the caption
    settings = spec.settings
    if requested:
        if requested not in spec.settings and spec.setting_stated:
            raise UserError(f"table {spec.number} reports the settings {', '.join(spec.settings)}; "
                            f"--setting {requested} is not one of them")
        if requested not in spec.settings:
            notes.append(f"run on {requested} data (--setting; the paper states no setting)")
        settings = (requested,)
    if source == "real":
        absent = {s: missing_data_files(spec.family, s, data_root) for s in settings}
        present = tuple(s for s in settings if not absent[s])
        if not present:
            files = "; ".join(f"{s}: {', '.join(absent[s])}" for s in settings)
            others = [s for s in ("aligned", "unaligned")
                      if s not in settings and not missing_data_files(spec.family, s, data_root)]
            hint = ""
            if others and not spec.setting_stated and not requested:
                hint = f"; the paper states no setting for this table: --setting {others[0]} runs it on that file"
            raise UserError(f"table {spec.number} needs {spec.family} data that {data_root} does not have "
                            f"(missing {files}){hint}")
        skipped = [s for s in settings if s not in present]
        if skipped:
            file_notes.append(f"{', '.join(skipped)} not run: the data root has no {spec.family} "
                              f"{'/'.join(skipped)} file")
        settings = present
    notes += file_notes
    if settings == spec.settings and not notes:
        return spec, notes
    assumptions = spec.assumptions
    if requested and requested not in spec.settings:  # the spec's "... aligned used" sentence no longer holds
        assumptions = _UNSTATED_SETTING.sub(f"setting unstated in the paper; {requested} used (--setting "
                                            f"{requested}; the suite's default is {spec.settings[0]}).",
                                            assumptions, count=1)
    if file_notes:
        assumptions = assumptions.rstrip(".") + ". " + "; ".join(file_notes).capitalize() + "."
    return dataclasses.replace(spec, settings=settings, assumptions=assumptions), notes


# the opening sentence of an assumptions text where the paper states no setting (Tables 4 and 5)
_UNSTATED_SETTING = re.compile(r"^setting unstated in the paper; \w+ used(?: \([^)]*\))?\.")


def fmt_value(v: float) -> str:
    return f"{v:g}"


def light(source: str, profile: str | None) -> bool:
    """The compact budget: the default on synthetic data, on real data only when asked for."""
    return budget(source, profile) == "compact"


def plan_figure(spec: FigureSpec, source: str, profile: str, user_sets: dict | None = None,
                grid: tuple[float, ...] | None = None, families: tuple[str, ...] | None = None,
                settings: tuple[str, ...] | None = None, text=None) -> list:
    """One planned run per (variant, dataset, setting). Fig. 4's variants are ``param=value`` rows and one
    ``default`` row (every parameter at 0.1, the same config as Table 4's full row)."""
    small = light(source, profile)
    families = families or (spec.compact_families if small else spec.families)
    settings = settings or (spec.compact_settings if small else spec.settings)
    if spec.kind == "sensitivity":
        grid = tuple(grid or (spec.compact_grid if small else spec.grid))
        rows = [Row("default", "emoe", {})]
        rows += [Row(f"{p}={fmt_value(v)}", "emoe", {p: fmt_value(v)})
                 for p in spec.params for v in grid if not math.isclose(v, spec.default_value)]
    else:
        rows = list(spec.rows)
    out = []
    for fam in families:
        for setting in settings:
            for row in rows:
                ov = get_method(row.method).preset("compact") if small else {}
                ov.update(row.overrides)
                ov.update(text_overrides(get_method(row.method), fam, setting, text, ov))
                ov.update(user_sets or {})
                out.append(PlannedRun(row, setting, dataset_name(fam, source), ov))
    return out


def with_data_files(planned: list, data_root, spec: FigureSpec) -> tuple[list, list[str]]:
    """(planned runs whose data files exist under ``data_root``, sorted "dataset setting" names skipped)."""
    keep, skipped = [], set()
    for p in planned:
        if missing_data_files(p.dataset, p.setting, data_root):
            skipped.add(f"{p.dataset} {p.setting}")
        else:
            keep.append(p)
    if not keep:
        others = [s for s in ("aligned", "unaligned") if not missing_data_files("mosi", s, data_root)]
        hint = f"; --settings {others[0]} runs it on the {others[0]} file" if others else ""
        raise UserError(f"figure {spec.number} needs {', '.join(sorted(skipped))} data that {data_root} does not "
                        f"have{hint}")
    return keep, sorted(skipped)


def default_seeds(spec: FigureSpec, source: str, profile: str) -> int:
    return spec.seeds["compact"] if light(source, profile) else spec.seeds[source]
