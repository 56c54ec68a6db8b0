"""Which text encoder a run uses: the paper's BERT (``--text-model``) or, said aloud, the frozen features.

EMOE, MMIM, DMD, MISA and Self-MM (and, on MIntRec, MulT, MISA and MAG-BERT) fine-tune BERT in their
papers. Their hyper-parameters say so: a ``text_model`` field and a ``text_mode`` that is not
``features``. Without a BERT checkpoint they fall back to the dataset's frozen text features, a
different model; on real data that fallback must be chosen (``--text frozen``), never silent.

``text_model`` (and ``text_finetune``) are read only when a BERT runs: on frozen features they are reset
to the class defaults, so a run's configuration hash never depends on a checkpoint it does not read
(MulT's MOSI runs are the same runs whatever ``--text-model`` is).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from bench.data import families
from bench.errors import UserError
from bench.text_hparams import BERT_ONLY_FIELDS, resolve_text_mode

ENV_TEXT_MODEL = "BENCH_TEXT_MODEL"
TEXT_CHOICES = ("bert", "frozen")
# real datasets without frozen text features (MIntRec: only the text to tokenise)
NO_FROZEN_TEXT = tuple(name for name, f in families.FAMILIES.items() if not f.has_text_features)
NEED_TEXT_HINT = ("pass --text-model PATH (a local BERT directory such as bert-base-uncased; or set "
                  f"{ENV_TEXT_MODEL}) or choose --text frozen to train on the frozen text features (marked in tables)")


@dataclass(frozen=True)
class TextChoice:
    """``model``: the BERT checkpoint for methods whose paper fine-tunes BERT; ``frozen``: the user chose the
    dataset's frozen text features instead. Neither: nothing chosen (refused on real data)."""

    model: str | None = None
    frozen: bool = False

    @property
    def chosen(self) -> bool:
        return self.frozen or bool(self.model)


def normalise_model(model: str) -> str:
    """An existing path becomes absolute (the same checkpoint gives the same hash from any directory); a
    name (Hugging Face cache, ``random:bert-mini``) stays; a missing path is an error."""
    p = Path(model).expanduser()
    if p.exists():
        return str(p.resolve())
    if model.startswith(("/", "./", "../", "~")):
        raise UserError(f"--text-model {model}: no such directory; expected a local BERT directory "
                        "(config.json + weights) or a model name already in the Hugging Face cache")
    return model


def text_choice(args) -> TextChoice:
    """The text choice of a command from ``--text-model``, ``--text`` and ``$BENCH_TEXT_MODEL``."""
    flag = (getattr(args, "text_model", None) or "").strip()
    mode = getattr(args, "text", None)
    env = os.environ.get(ENV_TEXT_MODEL, "").strip()
    if mode == "frozen":
        if flag:
            raise UserError(f"--text frozen and --text-model {flag} contradict each other: give one of them")
        return TextChoice(None, True)  # $BENCH_TEXT_MODEL is ambient: --text frozen overrides it
    model = flag or env
    if mode == "bert" and not model:
        raise UserError(f"--text bert needs --text-model PATH (or {ENV_TEXT_MODEL})")
    return TextChoice(normalise_model(model) if model else None, False)


# ------------------------------------------------------------------------------ hyper-parameters
def _get(hp, key, default=None):
    return hp.get(key, default) if isinstance(hp, dict) else getattr(hp, key, default)


def _has(hp, key) -> bool:
    return key in hp if isinstance(hp, dict) else hasattr(hp, key)


def uses_bert(hp) -> bool:
    """Whether this configuration (dataclass or stored config dict) would run a BERT."""
    if not _has(hp, "text_model"):
        return False
    mode = _get(hp, "text_mode", "bert")  # MAG-BERT has no text_mode: always BERT
    return resolve_text_mode(mode, _get(hp, "text_model")) == "bert"


def on_frozen_features(hp) -> bool:
    """Whether this configuration runs on the dataset's frozen text features instead of a BERT."""
    return _has(hp, "text_mode") and not uses_bert(hp)


def paper_uses_bert(method_cls, family: str, setting: str) -> bool:
    """The paper configuration fine-tunes BERT: a ``text_model`` field and a text mode other than features."""
    try:
        hp = method_cls.default_hparams(family, setting)
    except Exception:  # a family the method has no block for
        return False
    return _has(hp, "text_model") and _get(hp, "text_mode", "bert") != "features"


def drop_unread(hp):
    """``hp`` with the text-model fields at their class defaults when the method runs on frozen features (it
    does not read them there), so they do not enter the configuration hash."""
    if not on_frozen_features(hp):
        return hp
    defaults = {f.name: f.default for f in dataclasses.fields(hp) if f.name in BERT_ONLY_FIELDS
                and f.default is not dataclasses.MISSING}
    changes = {k: v for k, v in defaults.items() if getattr(hp, k) != v}
    return dataclasses.replace(hp, **changes) if changes else hp


def text_overrides(method_cls, family: str, setting: str, choice: TextChoice | None, planned: dict) -> dict:
    """Overrides that put ``choice`` into a planned run of a method whose paper fine-tunes BERT (none for
    the others, e.g. MulT on MOSI). ``planned``: the run's other overrides (a compact budget that swaps the
    BERT for features gives way to an explicit ``--text-model``)."""
    if choice is None or not choice.chosen or not paper_uses_bert(method_cls, family, setting):
        return {}
    default_mode = _get(method_cls.default_hparams(family, setting), "text_mode")
    if choice.model:
        out = {"text_model": choice.model}
        if default_mode is not None and planned.get("text_mode") == "features":
            out["text_mode"] = default_mode
        return out
    return {"text_mode": "features"} if default_mode == "bert" else {}


def require_text_choice(offenders: list[str], what: str, choice: TextChoice) -> None:
    """One-line refusal, before any data is loaded, for real-data runs that would silently drop BERT."""
    if not offenders or choice.frozen:
        return
    names = ", ".join(dict.fromkeys(offenders))
    if choice.model:
        raise UserError(f"{what} on real data: {names} would train on the frozen text features (text_mode=features) "
                        f"although --text-model is given; add --text frozen to confirm, or drop text_mode=features")
    raise UserError(f"{what} on real data: {names} fine-tune{'s' if len(set(offenders)) == 1 else ''} BERT in "
                    f"the paper and no text model is given, so {'it' if len(set(offenders)) == 1 else 'they'} "
                    f"would train on the frozen text features; {NEED_TEXT_HINT}")


def text_of(result: dict) -> str:
    """"frozen" (frozen text features), the BERT checkpoint a run fine-tuned, or "" (no text encoder choice)."""
    cfg = result.get("config") or {}
    if on_frozen_features(cfg):
        return "frozen"
    return str(cfg.get("text_model")) if uses_bert(cfg) else ""
