"""Resolved run configuration: method defaults for (dataset family, setting) + ``--set`` overrides.

The resolved configuration is canonical JSON; its hash names the run directory, so the same
configuration always maps to the same place on disk (DomainBed's hashed run dirs).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated

from bench.errors import UserError, did_you_mean


# ------------------------------------------------------------------------- declared value rules
@dataclass(frozen=True)
class Allowed:
    """The values one hyper-parameter admits, declared beside the field as ``Annotated[type, Allowed(...)]``.

    Numbers (each element of a tuple) must be finite and inside the bounds; ``choices`` lists the only
    admitted values. :func:`check_hparams` reads these declarations; nothing else checks ranges.
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple | None = None
    why: str = ""  # appended to the error message (e.g. where a fixed value comes from)

    def admits(self, value) -> bool:
        if self.choices is not None:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)

    def describe(self, integer: bool) -> str:
        if self.choices is not None:
            text = "one of " + ", ".join(map(str, self.choices))
        else:
            kind = "an integer" if integer else "a finite number"
            if self.lo is not None and self.hi is not None:
                text = (f"{kind} in {'(' if self.lo_open else '['}{_num(self.lo)}, "
                        f"{_num(self.hi)}{')' if self.hi_open else ']'}")
            elif self.lo is not None:
                text = f"{kind} {'>' if self.lo_open else '>='} {_num(self.lo)}"
            elif self.hi is not None:
                text = f"{kind} {'<' if self.hi_open else '<='} {_num(self.hi)}"
            else:
                text = kind
        return f"{text} ({self.why})" if self.why else text


def shown(raw: str) -> str:
    """A user's value as typed, or quoted when it would break the one-line message (newlines, controls)."""
    return raw if raw.isprintable() else repr(raw)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def choice(*values, why: str = "") -> Allowed:
    """Only these values (for a ``str`` or ``int`` field that is not a ``Literal``)."""
    return Allowed(choices=tuple(values), why=why)


def between(lo: float | None, hi: float | None, lo_open: bool = False, hi_open: bool = False,
            why: str = "") -> Allowed:
    """Finite numbers from ``lo`` to ``hi`` (None: unbounded; ``*_open``: that end excluded)."""
    return Allowed(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, why=why)


# The common declarations; a field reads e.g. ``hidden_text: PosInt = 128``.
PosInt = Annotated[int, between(1, None)]  # sizes, layer counts, patience that must be >= 1
NonNegInt = Annotated[int, between(0, None)]  # counts where 0 means off / automatic
PosFloat = Annotated[float, between(0, None, lo_open=True)]  # learning rates, temperatures, epsilons
NonNegFloat = Annotated[float, between(0, None)]  # loss weights, decays, clip values (0 = off)
Prob = Annotated[float, between(0, 1, hi_open=True)]  # dropout probabilities: [0, 1)
Fraction = Annotated[float, between(0, 1)]  # proportions: [0, 1]
Factor = Annotated[float, between(0, 1, lo_open=True, hi_open=True)]  # multiplicative decay: (0, 1)
Finite = Annotated[float, between(None, None)]  # any finite number


def _rule_of(hint) -> Allowed | None:
    """The declared rule of a resolved type hint: ``Annotated[..., Allowed]``, a ``Literal`` or None."""
    if typing.get_origin(hint) is Annotated:
        rules = [m for m in hint.__metadata__ if isinstance(m, Allowed)]
        return rules[0] if rules else _rule_of(typing.get_args(hint)[0])
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rules = [_rule_of(a) for a in typing.get_args(hint) if a is not type(None)]
        return next((r for r in rules if r is not None), None)
    if typing.get_origin(hint) is typing.Literal:
        return Allowed(choices=typing.get_args(hint))
    return None


@functools.cache
def declared_rules(hp_cls: type) -> dict[str, Allowed | None]:
    """field -> its rule. A subclass that only changes a default (``batch_size: int = 16``) keeps the
    rule declared where the field was first annotated with one (the nearest class in the MRO)."""
    rules: dict[str, Allowed | None] = {}
    for f in dataclasses.fields(hp_cls):
        rules[f.name] = None
        for klass in hp_cls.__mro__:
            if f.name in inspect.get_annotations(klass):
                rule = _rule_of(typing.get_type_hints(klass, include_extras=True)[f.name])
                if rule is not None:
                    rules[f.name] = rule
                    break
    return rules


def hparam_problem(hp) -> tuple[str, object, str] | None:
    """The first field of ``hp`` outside its declared rule as (key, value, what is allowed), or None.

    A float field without a declaration must still be finite; ``None`` passes for optional fields.
    """
    hints = typing.get_type_hints(type(hp))
    for key, rule in declared_rules(type(hp)).items():
        value = getattr(hp, key)
        if value is None:
            continue
        integer = hints[key] is int or typing.get_args(hints[key])[:1] == (int,)
        items = value if isinstance(value, (tuple, list)) else (value,)
        if rule is None:
            if any(isinstance(v, float) and not math.isfinite(v) for v in items):
                return key, value, "a finite number"
            continue
        wrong_type = integer and any(isinstance(v, bool) or not isinstance(v, int) for v in items)
        if wrong_type or not all(rule.admits(v) for v in items):
            return key, value, rule.describe(integer)
    return None


def check_hparams(hp, overrides: dict[str, str] | None = None) -> None:
    """The one range/choice validator: raise a one-line :class:`UserError` naming the key, the value and
    what is allowed, then run the dataclass's own cross-field ``validate()`` (if it has one)."""
    problem = hparam_problem(hp)
    if problem is not None:
        key, value, allowed = problem
        if overrides and key in overrides:
            raise UserError(f"--set {key}={shown(overrides[key])}: expected {allowed}")
        raise UserError(f"hyper-parameter {key}={value!r} of {type(hp).__name__}: expected {allowed}")
    check = getattr(hp, "validate", None)
    if check is not None:
        check()

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
            raise UserError(f"--set {key}={shown(raw)}: expected one of {', '.join(map(str, choices))}")
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
        raise UserError(f"--set {key}={shown(raw)}: expected a value of type {tp.__name__}") from None
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
    check_hparams(hp, overrides)
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
