"""Finding a table's finished runs by configuration, whatever text encoder the table was run with.

``bench check`` and ``bench report`` rebuild each row's configuration and look for stored results with
exactly that configuration. For rows whose paper fine-tunes BERT the text encoder (``--text-model``
checkpoint, or ``--text frozen``) is part of it; when the command is not told which one, it takes the runs
of the single text encoder the results hold for that row, and asks when there are several.
"""

from __future__ import annotations

import dataclasses
import json

from bench.errors import UserError
from bench.registry import get_method
from bench.runner import resolve_hparams
from bench.text_encoder import paper_uses_bert, text_of
from bench.text_hparams import TextEncoderHParams

TEXT_FIELDS = tuple(f.name for f in dataclasses.fields(TextEncoderHParams))  # text_mode, text_model, text_finetune
_ANY_MODEL = "<any text model>"  # stands in for the checkpoint while the other fields are resolved


def _canon(d: dict) -> str:
    return json.dumps(d, sort_keys=True, default=str)


def config_key(cfg: dict, mask_text: bool = False) -> str:
    """Canonical JSON of a resolved configuration, optionally without its text-encoder fields."""
    d = json.loads(_canon(cfg))
    if mask_text:
        for k in TEXT_FIELDS:
            d.pop(k, None)
    return _canon(d)


def planned_cells(planned, family: str, by_key: dict, choice, epochs: int | None) -> dict:
    """(row label, setting) -> the stored results of each planned run (``by_key``: (method, dataset, setting)
    -> results). ``choice``: the command's TextChoice, or None / nothing chosen."""
    chosen = choice is not None and choice.chosen
    cells = {}
    for p in planned:
        cls = get_method(p.row.method)
        loose = not chosen and "text_model" not in p.overrides and paper_uses_bert(cls, family, p.setting)
        overrides = {**p.overrides, "text_model": _ANY_MODEL} if loose else p.overrides
        try:
            hp = resolve_hparams(cls, family, p.setting, overrides, epochs)
        except UserError:  # a configuration that cannot run cannot have results
            cells[(p.row.label, p.setting)] = []
            continue
        want = config_key(dataclasses.asdict(hp), loose)
        found = [r for r in by_key.get((p.row.method, p.dataset, p.setting), [])
                 if config_key(r["config"], loose) == want]
        encoders = sorted({text_of(r) or "-" for r in found})
        if loose and len(encoders) > 1:
            shown = ", ".join("frozen features" if e == "frozen" else e for e in encoders)
            raise UserError(f"row {p.row.label} ({p.setting}) has finished runs with several text encoders ({shown}); "
                            "choose one with --text-model PATH or --text frozen")
        cells[(p.row.label, p.setting)] = found
    return cells
