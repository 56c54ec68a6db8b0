"""The paper's tables in LaTeX, laid out as the EMOE paper prints them.

A Methods column (Table 4: its MoME/UD check-mark columns instead), metric headers with ↑/↓, ``*`` on the
rows the paper marks BERT-based, the paper's decimals. Tables 1-2 put the settings side by side
(Aligned | Unaligned column groups in a ``table*``, the text width of a two-column page); the others stack
settings in blocks separated by rules and fit one column. Our cell is the test mean with the std as a
subscript; next to real standard data the paper's value sits in a small italic line under ours. The
caption is short (data, seeds, selection, markers); the full provenance follows in a ``\\footnotesize``
note, ``\\benchnote{...}`` (``\\newcommand{\\benchnote}[1]{}`` before the table hides it).

Plain string assembly, not pandas Styler: Styler sets the caption above the tabular and cannot emit
``\\cmidrule`` under column groups, rules between setting blocks, a second line under a row, a font size
or a note; patching its output would be longer than the lines here. pandas still computes the cells.
Needs only ``\\usepackage{booktabs}`` (``\\checkmark`` falls back to a root sign without amssymb).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from bench.metrics import HIGHER_IS_BETTER
from bench.published import load_published
from bench.report.captions import caption
from bench.report.escape import latex_escape
from bench.report.frames import bert_in_paper, n_comparisons, shows_published
from bench.report.specs import Row, TableSpec, metric_key

GROUPED_TABLES = frozenset({"T1", "T2"})  # settings as column groups (published_table ids)
FLAG_COLUMNS = {"T4": (("MoME", "mome"), ("UD", "ud"))}  # header, override key: "false" in a row -> ✗
HEADERS = {"acc7": "Acc$_7$", "acc2": "Acc$_2$", "f1": "F1", "mae": "MAE", "acc": "Acc", "precision": "P",
           "recall": "R"}
SETTING_NAMES = {"aligned": "Aligned", "unaligned": "Unaligned"}
CAPTION_LIMIT = 300  # characters of the short caption as a reader sees it
LAYOUT_MARK = "% layout: paper"  # first line of every table this module writes
MACROS = (r"\providecommand{\benchpaper}[1]{{\scriptsize\itshape #1}}",
          r"\providecommand{\benchnote}[1]{\par\smallskip{\footnotesize\raggedright #1\par}}",
          r"\providecommand{\checkmark}{\ensuremath{\surd}}")
FROZEN_MARK = "°"
_OPENING_QUOTE = re.compile(r"(?<![\w.,)])'(?=\w)")  # a quote after a space or "(" opens: 'EMOE' -> `EMOE'
_OLD_MARKERS = "[published]: copied from the EMOE paper's Table {n}, not measured here; [paper X, Δ Y]: the paper's " \
               "value for a measured row and our difference."


@dataclass(frozen=True)
class CaptionFacts:
    """What the short caption says beyond the frame: seeds per row, the selection rule, standard data."""

    seeds: str  # "5" or "2/3"
    rule: str  # "checkpoint with the lowest validation loss"
    standard: bool  # real data with the standard published files (published values shown)

    @classmethod
    def of(cls, collected: dict, source: str) -> CaptionFacts:
        rules = sorted({r["selection"]["rule"] for rs in collected.values() for r in rs})
        return cls("/".join(str(n) for n in sorted({len(rs) for rs in collected.values()})), short_rule(rules[0]),
                   shows_published(collected, source))


def short_rule(rule: str) -> str:
    """The selection rule up to its first detail: "checkpoint with the lowest validation loss"."""
    return rule.split(" (")[0].split(";")[0].strip()


def table_latex(spec: TableSpec, df: pd.DataFrame, collected: dict, source: str) -> str:
    """The whole ``table``/``table*`` float for ``results/tables/tableN-<source>.tex``."""
    return assemble(spec, df, source, CaptionFacts.of(collected, source), provenance_note(spec, df, collected, source))


def assemble(spec: TableSpec, df: pd.DataFrame, source: str, facts: CaptionFacts, note: str) -> str:
    """The float from the frame, the caption facts and the provenance note (plain text)."""
    grouped = spec.published_table in GROUPED_TABLES
    settings = settings_of(spec, df)
    cells = cell_text(spec, df)
    colspec, header, body = (_grouped if grouped else _blocks)(spec, df, settings, cells, source)
    env = "table*" if grouped and len(settings) > 1 else "table"  # one setting group fits a column
    cap = _tex(short_caption(spec, df, source, facts, settings_shown=grouped or len(settings) > 1))
    return "\n".join([
        LAYOUT_MARK,
        f"% EMOE Table {spec.number} ({source} data) in the paper's layout (bench/report/latex.py; "
        f"`bench run --table {spec.number}` rewrites it); needs \\usepackage{{booktabs}}.",
        rf"\begin{{{env}}}[t]", *MACROS, r"\centering",
        r"{\footnotesize\setlength{\tabcolsep}{2.5pt}",
        rf"\begin{{tabular}}{{{colspec}}}", r"\toprule", *header, r"\midrule", *body, r"\bottomrule",
        r"\end{tabular}\par}",
        rf"\caption{{{cap}}}", rf"\label{{tab:table{spec.number}-{source}}}", rf"\benchnote{{{_tex(note)}}}",
        rf"\end{{{env}}}", ""])


# ------------------------------------------------------------------------------------ cells
def settings_of(spec: TableSpec, df: pd.DataFrame) -> list[str]:
    """The settings the frame has, in the spec's order (a --setting choice may add one the spec lacks)."""
    present = list(dict.fromkeys(df["setting"]))
    return [s for s in spec.settings if s in present] + [s for s in present if s not in spec.settings]


def paper_decimals(table: str, metric: str) -> int:
    """Digits after the point as the paper prints this metric in this table (numbers.csv keeps the text)."""
    pub = load_published()
    printed = pub.loc[(pub["table"] == table) & (pub["metric"] == metric), "value"].dropna().astype(str)
    digits = [len(v.partition(".")[2]) for v in printed]
    return max(digits) if digits else (3 if metric == "mae" else 1)


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _number(value: float, metric: str, decimals: int) -> str:
    return f"{value * (1 if metric == 'mae' else 100):.{decimals}f}"


def ours(mean, std, metric: str, decimals: int, best: bool = False, significant: bool = False) -> str:
    """``52.3$_{\\pm 1.2}$`` (bold mean when best; a dagger above the std when significant); "--" if no mean."""
    if _missing(mean):
        return "--"
    num = _number(mean, metric, decimals)
    sub = "" if _missing(std) else rf"_{{\pm {_number(std, metric, decimals)}}}"
    sup = r"^{\dagger}" if significant else ""
    return (rf"\textbf{{{num}}}" if best else num) + (f"${sub}{sup}$" if sub or sup else "")


def cell_text(spec: TableSpec, df: pd.DataFrame) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(setting, row, metric) -> (our line, paper line). A row shown from the paper only has its number in
    italics on our line; a measured row next to real standard data has the paper's number on the second."""
    measured = df[(df["kind"] == "measured") & df["mean"].notna()]
    best = {}
    for (s, m), g in measured.groupby(["setting", "metric"]):
        best[(s, m)] = g["mean"].max() if HIGHER_IS_BETTER[metric_key(spec, m)] else g["mean"].min()
    out = {}
    for _, r in df.iterrows():
        m, digits = r["metric"], paper_decimals(spec.published_table, r["metric"])
        paper = "" if _missing(r["published"]) else _number(r["published"], m, digits)
        if r["kind"] != "measured":
            out[(r["setting"], r["row"], m)] = (rf"\textit{{{paper}}}" if paper else "--", "")
            continue
        significant = not _missing(r["p_holm"]) and r["p_holm"] < 0.05
        mine = ours(r["mean"], r["std"], m, digits, r["mean"] == best.get((r["setting"], m)), significant)
        out[(r["setting"], r["row"], m)] = (mine, rf"\benchpaper{{{paper}}}" if paper else "")
    return out


def _frozen(df: pd.DataFrame, label: str, source: str) -> bool:
    """A BERT row of the paper that ran on the dataset's frozen text features (real data only)."""
    if source != "real" or "text" not in df:
        return False
    return any("frozen" in str(t).split(";") for t in df.loc[df["row"] == label, "text"])


def method_label(spec: TableSpec, row: Row, df: pd.DataFrame, source: str) -> str:
    """Label, ``*`` where the paper marks the row BERT-based, ° where it ran on frozen text; italics when
    every cell of the row is the paper's."""
    star = "*" if spec.bert_star and bert_in_paper(spec, row) else ""
    text = row.label + star + (FROZEN_MARK if _frozen(df, row.label, source) else "")
    measured = (df.loc[df["row"] == row.label, "kind"] == "measured").any()
    return _tex(text) if measured else rf"\textit{{{_tex(text)}}}"


def _header(spec: TableSpec, metric: str) -> str:
    arrow = r"$\uparrow$" if HIGHER_IS_BETTER[metric_key(spec, metric)] else r"$\downarrow$"
    return f"{HEADERS[metric]} {arrow}"


def _rows_in(spec: TableSpec, df: pd.DataFrame, settings) -> list[Row]:
    present = set(df.loc[df["setting"].isin(settings), "row"])
    return [r for r in spec.rows if r.label in present]


def _line(cells: list[str]) -> str:
    return " & ".join(cells) + r" \\"


def _row_lines(label_cells: list[str], paper_label: list[str], pairs: list[tuple[str, str]]) -> list[str]:
    lines = [_line(label_cells + [p[0] for p in pairs])]
    if any(p[1] for p in pairs):
        lines.append(_line(paper_label + [p[1] for p in pairs]))
    return lines


# ------------------------------------------------------------------------------------ layouts
def _grouped(spec, df, settings, cells, source):
    """Tables 1-2: Methods | one column group per setting."""
    k = len(spec.metrics)
    colspec = "@{}l" + "c" * (k * len(settings)) + "@{}"
    groups = [rf"\multicolumn{{{k}}}{{c}}{{{SETTING_NAMES.get(s, s)}}}" for s in settings]
    rules = "".join(rf"\cmidrule(lr){{{2 + i * k}-{1 + (i + 1) * k}}}" for i in range(len(settings)))
    metrics = [_header(spec, m) for m in spec.metrics] * len(settings)
    header = [_line([""] + groups), rules, _line(["Methods"] + metrics)]
    body = []
    for row in _rows_in(spec, df, settings):
        pairs = [cells.get((s, row.label, m), ("--", "")) for s in settings for m in spec.metrics]
        body += _row_lines([method_label(spec, row, df, source)], [r"\quad\benchpaper{paper}"], pairs)
    return colspec, header, body


def _blocks(spec, df, settings, cells, source):
    """Every other table: Methods (Table 4: MoME | UD) [| Setting] | metrics, one block per setting."""
    flags = FLAG_COLUMNS.get(spec.published_table, ())
    with_setting = len(settings) > 1
    first = "c" * len(flags) if flags else "l"
    colspec = "@{}" + first + ("l" if with_setting else "") + "c" * len(spec.metrics) + "@{}"
    names = [f[0] for f in flags] or ["Methods"]
    header = [_line(names + (["Setting"] if with_setting else []) + [_header(spec, m) for m in spec.metrics])]
    paper = ([rf"\multicolumn{{{len(flags)}}}{{c}}{{\benchpaper{{paper}}}}"] if flags
             else [r"\quad\benchpaper{paper}"]) + ([""] if with_setting else [])
    body = []
    for i, s in enumerate(settings):
        if i:
            body.append(r"\midrule")
        for j, row in enumerate(_rows_in(spec, df, [s])):
            label = ([r"$\times$" if str(row.overrides.get(key, "")).lower() == "false" else r"\checkmark"
                      for _, key in flags] if flags else [method_label(spec, row, df, source)])
            if flags and _frozen(df, row.label, source):  # no method name to carry the mark: the last flag does
                label[-1] += r"$^{\circ}$"
            if with_setting:
                label.append(SETTING_NAMES.get(s, s) if j == 0 else "")
            pairs = [cells.get((s, row.label, m), ("--", "")) for m in spec.metrics]
            body += _row_lines(label, paper, pairs)
    return colspec, header, body


# ------------------------------------------------------------------------------------ text
def short_caption(spec: TableSpec, df: pd.DataFrame, source: str, facts: CaptionFacts,
                  settings_shown: bool = True) -> str:
    """Plain text, at most CAPTION_LIMIT characters: title, data, seeds, selection, markers."""
    parts = [spec.title.rstrip(".") + "."]
    if source == "synthetic":
        parts.append("SYNTHETIC data: not comparable with the paper, no published values.")
    elif facts.standard:
        parts.append("Real data.")
    else:
        parts.append("Real NON-STANDARD data files: no published values.")
    settings = settings_of(spec, df)
    if not settings_shown:
        parts.append(f"Setting {', '.join(settings)}{'' if spec.setting_stated else ' (paper: unstated)'}.")
    parts.append(f"Ours: test mean ± std, {facts.seeds} seeds, {facts.rule}.")
    if (df["kind"] == "published").any() or df["published"].notna().any():
        parts.append("Italic: the paper's values.")
    marks = ["Bold: best of ours"]
    rows = _rows_in(spec, df, settings)
    if spec.bert_star and any(bert_in_paper(spec, r) for r in rows):
        marks.append("*: BERT text in the paper")
    if any(_frozen(df, r.label, source) for r in rows):
        marks.append(f"{FROZEN_MARK}: frozen text features")
    if n_comparisons(df) and (df["p_holm"] < 0.05).any():
        marks.append(f"†: p < 0.05 (Welch, Holm) vs {spec.reference_row}")
    parts.append("; ".join(marks) + ".")
    return " ".join(parts)


def environment(results: list[dict]) -> str:
    """Versions and devices the results were computed with (as recorded in their provenance)."""
    versions, devices = set(), set()
    for r in results:
        prov = r.get("provenance") or {}
        v = prov.get("versions") or {}
        versions.add(", ".join(f"{k} {v[k]}" for k in ("python", "torch", "emoe-bench") if v.get(k)))
        d = prov.get("device") or {}
        if d.get("device"):
            devices.add(f"{d['device']} ({d.get('device_name') or 'unknown'})")
    versions.discard("")
    parts = ([f"Versions: {'; '.join(sorted(versions))}."] if versions else []) + \
        ([f"Device: {'; '.join(sorted(devices))}."] if devices else [])
    return " ".join(parts)


def provenance_note(spec: TableSpec, df: pd.DataFrame, collected: dict, source: str) -> str:
    """The long caption (data hashes, seeds, selection, tests, assumptions, commits, notes) with this
    layout's markers, plus versions and devices."""
    text = in_layout_words(spec, caption(spec, collected, source, df))
    env = environment([r for rs in collected.values() for r in rs])
    return f"Provenance. {text}" + (f" {env}" if env else "")


def in_layout_words(spec: TableSpec, long_caption: str) -> str:
    """The markdown table's long caption without its title, its markers renamed to this layout's."""
    text = long_caption.removeprefix(f"Table {spec.number}: {spec.title}").lstrip(". ")
    text = text.replace(_OLD_MARKERS.format(n=spec.number),
                        f"Italic: the EMOE paper's Table {spec.number} (a row in italics was not run here).")
    text = text.replace("(frozen text): ", f"{FROZEN_MARK}: ")  # the long caption's name for the mark
    return text.replace("Rows marked [published] are", "Rows in italics are")


def _tex(text: str) -> str:
    """latex_escape plus this layout's own symbol (° for frozen text) and opening quotes (`x' not 'x')."""
    return _OPENING_QUOTE.sub("`", latex_escape(text)).replace(FROZEN_MARK, r"$^{\circ}$")
