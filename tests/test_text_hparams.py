"""The shared text-encoder settings block (bench/text_hparams.py): one declaration, one cross-field rule."""

import dataclasses
import typing

import pytest

from bench.config import RunSpec, declared_rules
from bench.errors import UserError
from bench.registry import get_method, methods
from bench.runner import resolve_hparams
from bench.text_hparams import TextEncoderHParams

# the start of each method's message when text_mode=bert names no checkpoint (unchanged from before the block)
OWNERS = {"emoe": "emoe hyper-parameters", "emoe-paper": "emoe hyper-parameters", "dmd": "dmd hyper-parameters",
          "misa": "misa", "mmim": "mmim", "self_mm": "self_mm", "mult": "mult"}


def test_every_method_with_a_text_mode_takes_the_shared_block():
    with_mode = {n for n, c in methods().items() if "text_mode" in {f.name for f in dataclasses.fields(c.HParams)}}
    assert with_mode == set(OWNERS)
    assert all(issubclass(get_method(n).HParams, TextEncoderHParams) for n in with_mode)


def test_mult_narrows_text_mode_and_keeps_features_as_its_default():
    hp_cls = get_method("mult").HParams
    assert declared_rules(hp_cls)["text_mode"].choices == ("features", "bert")
    assert typing.get_args(typing.get_type_hints(hp_cls)["text_mode"]) == ("features", "bert")
    assert hp_cls().text_mode == "features" and get_method("misa").HParams().text_mode == "auto"


@pytest.mark.parametrize("name", sorted(OWNERS))
def test_bert_without_a_checkpoint_is_refused_by_the_one_rule(name):
    with pytest.raises(UserError) as e:
        resolve_hparams(get_method(name), "mosi", "aligned", {"text_mode": "bert"})
    assert str(e.value) == f"{OWNERS[name]}: text_mode=bert needs --set text_model=PATH (a local BERT directory)"


def test_auto_resolves_to_bert_exactly_when_a_checkpoint_is_named():
    assert TextEncoderHParams().resolved_text_mode() == "features"
    assert TextEncoderHParams(text_model="/x").resolved_text_mode() == "bert"
    assert TextEncoderHParams(text_mode="features", text_model="/x").resolved_text_mode() == "features"


# Computed on main before the block existed (fingerprint "0" * 64): configurations with text overrides keep
# their hash, so no finished run is orphaned.
PINNED = [("dmd", {"text_mode": "bert", "text_model": "/tmp/bert"}, "43742780cf00"),
          ("emoe", {"text_model": "random:bert-base-uncased"}, "decaec7841ec"),
          ("misa", {"text_finetune": "false"}, "598bf5d00ad4"),
          ("mmim", {"text_mode": "features", "text_model": "x"}, "d4177fcf56a1")]


@pytest.mark.parametrize("name, sets, expected", PINNED)
def test_config_hash_with_text_overrides_is_unchanged(name, sets, expected):
    hp = resolve_hparams(get_method(name), "mosi", "aligned", sets)
    assert RunSpec(name, "mosi", "aligned", dataclasses.asdict(hp), "0" * 64).config_hash == expected
