"""Resolved run configuration: method defaults for (dataset family, setting) + ``--set`` overrides.

The resolved configuration is canonical JSON; its hash names the run directory, so the same
configuration always maps to the same place on disk (DomainBed's hashed run dirs).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass

from bench.errors import UserError, did_you_mean

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(raw: str, tp, key: str):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if raw.lower() in ("none", "null", ""):
            return None
        tp = args[0]
        origin = typing.get_origin(tp)
    if origin in (tuple, list):
        elem = (typing.get_args(tp) or (str,))[0]
        items = [s for s in raw.strip("[]()").split(",") if s.strip()]
        vals = [_convert(s.strip(), elem, key) for s in items]
        return tuple(vals) if origin is tuple else vals
    if typing.get_origin(tp) is typing.Literal:
        choices = typing.get_args(tp)
        if raw not in choices:
            raise UserError(f"--set {key}={raw}: expected one of {', '.join(map(str, choices))}")
        return raw
    try:
        if tp is bool:
            low = raw.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if tp is int:
            return int(raw)
        if tp is float:
            return float(raw)
    except ValueError:
        raise UserError(f"--set {key}={raw}: expected a value of type {tp.__name__}") from None
    return raw


def parse_sets(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for p in pairs or []:
        if "=" not in p:
            raise UserError(f"--set {p!r}: expected key=value, e.g. --set learning_rate=0.001")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def apply_overrides(hp, overrides: dict[str, str]):
    """A copy of the dataclass ``hp`` with string overrides converted to each field's type."""
    hints = typing.get_type_hints(type(hp))
    names = {f.name for f in dataclasses.fields(hp)}
    changes = {}
    for k, raw in overrides.items():
        if k not in names:
            raise UserError(f"unknown hyper-parameter {k!r} for {type(hp).__qualname__}.{did_you_mean(k, names)}")
        changes[k] = _convert(raw, hints[k], k)
    hp = dataclasses.replace(hp, **changes)
    check = getattr(hp, "validate", None)
    if check is not None:
        check()
    return hp


@dataclass(frozen=True)
class RunSpec:
    """Everything that identifies one training run except the seed."""

    method: str
    dataset: str
    setting: str
    hparams: dict
    data_fingerprint: str
    # Execution options that change the numbers (e.g. {"amp": "bf16"}); empty for the default float32
    # path and then left out of the hash, so results of earlier versions keep their hash.
    numerics: dict = dataclasses.field(default_factory=dict)

    def canonical(self) -> str:
        d = dataclasses.asdict(self)
        if not d["numerics"]:
            d.pop("numerics")
        return json.dumps(d, sort_keys=True, default=str)

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:12]
