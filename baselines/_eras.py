"""Hyper-parameter eras shared by the MMSA baselines (current JSON, MMSA's 2021 table, original code).

``hparams_era`` switches every era-dependent field of a method's dataclass between the current
MMSA JSON, the values that produced MMSA's 2021 table and the original authors' configuration. The
exact way is ``default_hparams(family, setting, era=...)``; ``--set hparams_era=...`` (which the runner
applies on top of the *current* defaults) switches every era-dependent field that still holds its
current default, so explicit ``--set`` values of other fields are kept.
"""

from __future__ import annotations

from bench.errors import UserError


def apply_era(hp, eras: dict[str, dict[str, dict]]) -> None:
    """Switch ``hp``'s era-dependent fields that still hold their current default to ``hp.hparams_era``.

    ``eras[family][era]`` maps field -> value; the "current" entry lists every era-dependent field.
    """
    family, era = hp.hparams_family, hp.hparams_era
    if family not in eras:
        raise UserError(f"hparams_family={family!r}: expected one of {', '.join(eras)}")
    if era not in eras[family]:
        raise UserError(f"hparams_era={era!r}: expected one of {', '.join(eras[family])}")
    current, target = eras[family]["current"], eras[family][era]
    for key, value in target.items():
        if getattr(hp, key) == current[key]:
            setattr(hp, key, value)


def era_defaults(method: str, hp_cls, eras: dict[str, dict[str, dict]], family: str, era: str):
    """``hp_cls`` with the values of ``eras[family][era]`` (the ``default_hparams`` of an era-aware method)."""
    if family not in eras:
        raise UserError(f"{method} has no configuration for {family!r} (supported: {', '.join(eras)})")
    if era not in eras[family]:
        raise UserError(f"{method}: unknown hparams_era {era!r} (expected {', '.join(eras[family])})")
    return hp_cls(hparams_era=era, hparams_family=family, **eras[family][era])
