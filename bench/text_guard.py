"""Refuse, before any data is loaded, real-data runs of BERT methods that would silently fall back to the frozen
text features (bench/text_encoder.py says why that must be chosen aloud)."""

from __future__ import annotations

from types import SimpleNamespace

from bench.data import settings_for
from bench.data.synthetic import SYNTHETIC_FAMILIES
from bench.errors import UserError
from bench.registry import get_method
from bench.runner import default_setting, resolve_hparams
from bench.text_encoder import (
    ENV_TEXT_MODEL,
    NO_FROZEN_TEXT,
    TextChoice,
    on_frozen_features,
    paper_uses_bert,
    require_text_choice,
    text_overrides,
)


def refuse_silent_frozen(planned, source: str, choice: TextChoice, what: str, epochs: int | None = None,
                         by_label: bool = False) -> None:
    """Refuse (before any data is loaded) planned real-data runs of BERT methods that would fall back to the
    frozen text features without ``--text frozen``. ``planned``: :class:`bench.report.planning.PlannedRun` items (on
    real data the dataset name is the family)."""
    if source != "real":
        return
    if choice.frozen:
        names = [p.row.label if by_label else p.row.method for p in planned if p.dataset in NO_FROZEN_TEXT
                 and paper_uses_bert(get_method(p.row.method), p.dataset, p.setting)]
        if names:
            raise UserError(f"{what}: real MIntRec data have no frozen text features (only the text to tokenise), so "
                            f"--text frozen cannot run {', '.join(dict.fromkeys(names))}; pass --text-model PATH")
        return
    offenders = []
    for p in planned:
        cls = get_method(p.row.method)
        name = p.row.label if by_label else p.row.method
        if not paper_uses_bert(cls, p.dataset, p.setting):
            continue
        try:
            hp = resolve_hparams(cls, p.dataset, p.setting, p.overrides, epochs)
        except UserError:
            if choice.model:
                raise
            offenders.append(name)  # e.g. MulT on MIntRec: text_mode=bert without a model
            continue
        if on_frozen_features(hp):
            offenders.append(name)
    if offenders and any(p.dataset in NO_FROZEN_TEXT for p in planned):
        raise UserError(f"{what}: {', '.join(dict.fromkeys(offenders))} need{'s' if len(set(offenders)) == 1 else ''} "
                        "a BERT and real MIntRec data have no frozen text features; pass --text-model PATH (a local "
                        f"BERT directory such as bert-base-uncased; or set {ENV_TEXT_MODEL})")
    require_text_choice(offenders, what, choice)


def single_run_overrides(method: str, dataset: str, setting: str | None, sets: dict, choice: TextChoice,
                         epochs: int | None = None) -> dict:
    """``bench run --method``: the ``--set`` values plus the text choice; on real data a BERT method that would
    fall back to frozen features without ``--text frozen`` is refused here, before any data is loaded."""
    cls = get_method(method)  # fail fast on an unknown name
    key = str(dataset).strip().lower()
    family = SYNTHETIC_FAMILIES.get(key, key)
    settings = settings_for(key)
    st = setting or default_setting(cls, settings)
    if st not in settings or family not in cls.families:
        return dict(sets)  # the runner names the problem
    overrides = {**text_overrides(cls, family, st, choice, sets), **sets}
    if key not in SYNTHETIC_FAMILIES:
        run = SimpleNamespace(row=SimpleNamespace(method=method), dataset=family, setting=st, overrides=overrides)
        refuse_silent_frozen([run], "real", choice, f"run --method {method}", epochs)
    return overrides
