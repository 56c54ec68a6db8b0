"""Table captions: data provenance, seeds, selection, statistics, text encoders and assumptions in words."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench import stats
from bench.report.frames import n_comparisons, seeds_note
from bench.report.planning import unsupported
from bench.report.specs import TableSpec


def caption(spec: TableSpec, collected: dict, source: str, df: pd.DataFrame | None = None) -> str:
    results = [r for rs in collected.values() for r in rs]
    first = results[0]
    seeds = sorted({r["seed"] for r in results})
    ns = sorted({len(rs) for rs in collected.values()})
    if source == "synthetic":
        fps = sorted({f"{r['data']['name']}-{r['data'].get('setting', r['setting'])} {r['data']['fingerprint'][:12]}"
                      for r in results})
        src = (f"SYNTHETIC data (profile {first['data'].get('profile')}; fingerprint {', '.join(fps)}); "
               "not comparable with the paper, published rows not shown")
    else:
        shas = []
        for r in results:
            for f in r["data"].get("files", []):
                tag = f"{Path(str(f.get('path'))).name} sha256 {str(f.get('sha256'))[:12]}"
                if tag not in shas:
                    shas.append(tag)
        std = all(r["data"].get("standard") for r in results)
        src = f"real data ({first['data']['name']}; {', '.join(shas)}{'' if std else '; NON-STANDARD files'})"
        if std and any(str(n).startswith("standard MIntRec established") for r in results
                       for n in r["data"].get("notes") or []):
            src += ("; standard MIntRec established by the published split sizes and feature shapes, not by checksum "
                    "(none is published for the feature pickles; their sha256 is recorded with every result)")
    commits = sorted({((r["provenance"].get("git") or {}).get("commit") or "unknown")[:10] for r in results})
    dirty = " (dirty)" if any((r["provenance"].get("git") or {}).get("dirty") for r in results) else ""
    rules = sorted({r["selection"]["rule"] for r in results})
    m = n_comparisons(df) if df is not None else 0
    parts = [
        f"Table {spec.number}: {spec.title}.", f"Data: {src}.",
        f"Cells: test mean ± sample std (ddof=1) over n={'/'.join(map(str, ns))} seeds ({', '.join(map(str, seeds))}); "
        f"{spec.convention}.",
        f"Selection: {'; '.join(rules)}.",
        f"Bold: best measured value per column{' (MAE lower is better)' if 'mae' in spec.metrics else ''}.",
        (f"†: Welch's t-test vs '{spec.reference_row}', Holm-corrected over the {m} comparisons of the table, "
         "p < 0.05 (permutation, Mann–Whitney and Hedges' g in the CSV)." if m else
         "No significance tests (a single measured row)."),
    ]
    if df is not None and (df["kind"] == "published").any():
        parts.append(f"[published]: copied from the EMOE paper's Table {spec.number}, not measured here; "
                     "[paper X, Δ Y]: the paper's value for a measured row and our difference.")
    text = text_caption(spec, df, source)
    if text:
        parts.append(text)
    if spec.pending:
        parts.append("Not yet measured: " + "; ".join(f"{k} ({v})" for k, v in spec.pending.items()) + ".")
    cant = unsupported(spec)
    if cant:
        parts.append("Not run (the method does not support this setting): "
                     + ", ".join(f"{r} {s}" for r, s in cant) + ".")
    parts += [f"Assumptions: {spec.assumptions}", f"Commit {', '.join(commits)}{dirty}."]
    note = seeds_note(spec, df) if df is not None else stats.min_seeds_note(min(ns))
    if note:
        parts.append(f"Note: {note}.")
    return " ".join(parts)


def text_caption(spec: TableSpec, df: pd.DataFrame | None, source: str) -> str:
    """The caption's sentence on text encoders: the paper's "*" and what the BERT rows actually ran on."""
    parts = []
    if spec.bert_star:
        parts.append("*: BERT text in the paper.")
    if df is None or "text" not in df:
        return " ".join(parts)
    by_text: dict[str, list[str]] = {}
    for (label, text), _ in df[df["kind"] == "measured"].groupby(["row", "text"], sort=False):
        for t in filter(None, str(text).split(";")):
            by_text.setdefault(t, [])
            if label not in by_text[t]:
                by_text[t].append(label)
    frozen = by_text.pop("frozen", [])
    if by_text:
        parts.append("Fine-tuned text encoder: " + "; ".join(f"{m} ({', '.join(rows)})" for m, rows in by_text.items())
                     + ".")
    if frozen and source == "synthetic":
        names = list(dict.fromkeys(r.published_method for r in spec.rows if r.label in frozen))
        parts.append(f"Text: {', '.join(names)} fine-tune{'s' if len(names) == 1 else ''} BERT in the paper; "
                     "synthetic data has no raw text, so (without --text-model) the synthetic frozen text features "
                     "are used.")
    elif frozen:
        parts.append(f"(frozen text): {', '.join(frozen)} ran on the dataset's frozen text features instead of the "
                     "paper's fine-tuned BERT (--text frozen); not the paper's configuration.")
    return " ".join(parts)
