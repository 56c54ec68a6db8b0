"""Declared hyper-parameter rules (bench/config.py): every bad value is one line naming key, value, allowed."""

import dataclasses
import math
import types
import typing

import pytest

from bench.cli import main
from bench.config import Allowed, RunSpec, apply_overrides, check_hparams, declared_rules, hparam_problem
from bench.data import settings_for
from bench.errors import UserError
from bench.registry import get_method, methods
from bench.runner import resolve_hparams

# (key, value, what the error must say is allowed): every case of issue 14 plus the boundaries
BAD_SETS = [
    ("batch_size", "0", "an integer >= 1"),
    ("batch_size", "-5", "an integer >= 1"),
    ("select_on", "nosuch", "one of has0_acc2, has0_f1, non0_acc2, non0_f1, acc7, acc5, acc3, mae, corr, acc, f1, "
                            "precision, recall, loss"),
    ("plateau_factor", "2", "a finite number in (0, 1)"),
    ("plateau_factor", "0", "a finite number in (0, 1)"),
    ("hidden_text", "0", "an integer >= 1"),
    ("learning_rate", "nan", "a finite number > 0"),
    ("learning_rate", "inf", "a finite number > 0"),
    ("learning_rate", "-1", "a finite number > 0"),
    ("learning_rate", "0", "a finite number > 0"),
    ("dropout_text", "1.5", "a finite number in [0, 1)"),
    ("dropout_text", "1", "a finite number in [0, 1)"),
    ("dropout_text", "-0.1", "a finite number in [0, 1)"),
    ("max_epochs", "-1", "an integer >= 0"),
    ("early_stop", "-3", "an integer >= 1"),
    ("early_stop", "0", "an integer >= 1"),
    ("weight_decay", "-1", "a finite number >= 0"),
    ("weight_decay", "-inf", "a finite number >= 0"),
    ("val_loss", "bogus", "one of sample_mean, batch_mean_4dp"),
    ("grad_clip_at", "bogus", "one of step, backward"),
    ("eval_batch_size", "-1", "an integer >= 0"),
]


@pytest.mark.parametrize("key, value, allowed", BAD_SETS)
def test_validator_names_key_value_and_allowed(key, value, allowed):
    hp = get_method("lf_dnn").default_hparams("mosi", "unaligned")
    with pytest.raises(UserError) as e:
        apply_overrides(hp, {key: value})
    assert str(e.value) == f"--set {key}={value}: expected {allowed}"


@pytest.mark.parametrize("key, value, allowed", BAD_SETS)
def test_cli_bad_set_is_exit_2_one_line_and_trains_nothing(capsys, tmp_path, key, value, allowed):
    cap = [] if key == "max_epochs" else ["--epochs", "1"]  # --epochs N sets max_epochs itself
    code = main(["run", "--method", "lf_dnn", "--dataset", "synthetic-mosi", "--seeds", "1111", *cap,
                 "--out", str(tmp_path), "--quiet", "--set", f"{key}={value}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"error: --set {key}={value}: expected {allowed}\n"
    assert not list(tmp_path.glob("runs/**/result.json"))


def test_edges_of_the_ranges_are_accepted():
    hp = get_method("lf_dnn").default_hparams("mosi", "unaligned")
    ok = apply_overrides(hp, {"batch_size": "1", "dropout_text": "0", "max_epochs": "0", "weight_decay": "0",
                              "plateau_factor": "0.999", "learning_rate": "1e-30", "early_stop": "1"})
    assert (ok.batch_size, ok.dropout_text, ok.max_epochs, ok.plateau_factor, ok.learning_rate) == (
        1, 0.0, 0, 0.999, 1e-30)


def test_allowed_admits_exactly_its_interval():
    prob = Allowed(lo=0, hi=1, hi_open=True)
    assert [prob.admits(v) for v in (0, 0.0, 0.5, 0.999999, 1, 1.0, -1e-12, math.nan, math.inf, True, "0.5")] == [
        True, True, True, True, False, False, False, False, False, False, False]
    assert Allowed(lo=0, lo_open=True).describe(integer=False) == "a finite number > 0"
    assert Allowed(lo=4, why="d//4 outputs").describe(integer=True) == "an integer >= 4 (d//4 outputs)"
    assert Allowed(choices=(2,)).admits(2) and not Allowed(choices=(2,)).admits(3)


def test_select_on_must_be_a_metric_of_the_task(capsys, tmp_path):
    with pytest.raises(UserError, match="^--set select_on=f1: mosi is a regression task; expected loss or one of "
                                        "has0_acc2, has0_f1, non0_acc2, non0_f1, acc7, acc5, acc3, mae, corr$"):
        resolve_hparams(get_method("lf_dnn"), "mosi", "unaligned", {"select_on": "f1"})
    with pytest.raises(UserError, match="mintrec is a classification task"):
        resolve_hparams(get_method("emoe"), "mintrec", "unaligned", {"select_on": "mae"})
    assert resolve_hparams(get_method("lf_dnn"), "mosi", "unaligned", {"select_on": "mae"}).select_on == "mae"


def test_a_bad_value_that_did_not_come_from_set_is_named_with_its_class():
    hp = dataclasses.replace(get_method("lf_dnn").default_hparams("mosi", "unaligned"), dropout_text=1.5)
    with pytest.raises(UserError) as e:
        check_hparams(hp)
    assert str(e.value) == "hyper-parameter dropout_text=1.5 of LFDNNHParams: expected a finite number in [0, 1)"


def test_integer_fields_hold_integers():
    hp = dataclasses.replace(get_method("lf_dnn").default_hparams("mosi", "unaligned"), hidden_text=16.5)
    assert hparam_problem(hp) == ("hidden_text", 16.5, "an integer >= 1")


def test_subclass_default_keeps_the_base_declaration():
    dmd = get_method("dmd").HParams  # redeclares grad_clip_at: str = "backward", batch_size: int = 16
    assert declared_rules(dmd)["grad_clip_at"] == Allowed(choices=("step", "backward"))
    with pytest.raises(UserError, match=r"^--set grad_clip_at=each: expected one of step, backward$"):
        apply_overrides(dmd(), {"grad_clip_at": "each"})
    with pytest.raises(UserError, match=r"^--set batch_size=0: expected an integer >= 1$"):
        apply_overrides(dmd(), {"batch_size": "0"})


def test_tuple_fields_are_checked_elementwise():
    dmd = get_method("dmd").HParams
    with pytest.raises(UserError, match=r"^--set gd_prior_homo=0,0,1,0,nan,0: expected a finite number$"):
        apply_overrides(dmd(), {"gd_prior_homo": "0,0,1,0,nan,0"})


def test_fixed_values_say_why():
    with pytest.raises(UserError, match=r"^--set windowsize=3: expected one of 2 \(MMSA's MFN concatenates"):
        apply_overrides(get_method("mfm").HParams(), {"windowsize": "3"})
    with pytest.raises(UserError, match=r"^--set grad_accum=2: expected one of 1 \(MMSA's MMIM steps"):
        apply_overrides(get_method("mmim").HParams(), {"grad_accum": "2"})


def test_cross_field_rules_still_apply_after_the_declared_ones():
    emoe = get_method("emoe").default_hparams("mosi", "unaligned")
    with pytest.raises(UserError, match="d_model=30 is not divisible by n_heads=8"):
        apply_overrides(emoe, {"d_model": "30"})
    with pytest.raises(UserError, match="ud_loss=kl needs ud_space=logits"):
        apply_overrides(emoe, {"ud_loss": "kl"})


def _numeric(tp) -> bool:
    """int, float, a tuple/list of them, or any of these | None."""
    optional = typing.get_origin(tp) in (typing.Union, types.UnionType)
    args = [a for a in typing.get_args(tp) if a is not type(None)] if optional else [tp]
    return any(a in (int, float) or typing.get_origin(a) in (tuple, list) for a in args)


@pytest.mark.parametrize("name", sorted(methods()))
def test_every_numeric_field_declares_its_range(name):
    hp_cls = get_method(name).HParams
    hints = typing.get_type_hints(hp_cls)
    undeclared = [k for k, rule in declared_rules(hp_cls).items() if rule is None and _numeric(hints[k])]
    assert undeclared == []


def _default_configurations():
    for name, cls in sorted(methods().items()):
        for family in cls.families:
            for setting in settings_for(family):
                if setting in cls.settings:
                    yield name, family, setting


@pytest.mark.parametrize("name, family, setting", list(_default_configurations()))
def test_every_registered_default_passes_the_validator(name, family, setting):
    cls = get_method(name)
    hp = cls.default_hparams(family, setting)
    assert hparam_problem(hp) is None
    try:  # the whole resolution path, cross-field rules included
        resolve_hparams(cls, family, setting, {})
    except UserError as e:  # MIntRec forms of BERT methods: the one value no default can supply
        assert "needs --set text_model=PATH" in str(e) and family == "mintrec"


# Computed on main before the rules were declared (same canonical JSON, fingerprint "0" * 64): the
# annotations must not change any existing configuration's hash, so no finished run is orphaned.
PINNED_HASHES = {("lf_dnn", "mosi", "unaligned"): "ef4f0aea4bce", ("emoe", "mosi", "aligned"): "3699755df8d0",
                 ("lf_dnn", "mosei", "aligned"): "98edf2d211c1", ("emoe", "mosi", "unaligned"): "9f196b561b2c"}


@pytest.mark.parametrize("key", sorted(PINNED_HASHES))
def test_config_hash_of_defaults_is_unchanged(key):
    name, family, setting = key
    hp = get_method(name).default_hparams(family, setting)
    spec = RunSpec(method=name, dataset=family, setting=setting, hparams=dataclasses.asdict(hp),
                   data_fingerprint="0" * 64)
    assert spec.config_hash == PINNED_HASHES[key]


def _era_configurations():
    for name, family, setting in _default_configurations():
        if "hparams_era" in declared_rules(get_method(name).HParams) and family != "mintrec":  # mintrec: current only
            yield name, family, setting


@pytest.mark.parametrize("name, family, setting", list(_era_configurations()))
def test_every_era_switch_lands_on_declared_values(name, family, setting):
    """``validate()`` of era-aware methods rewrites fields after the declared check: every era's values
    must satisfy the declarations too."""
    cls = get_method(name)
    hp = cls.default_hparams(family, setting)
    eras = declared_rules(cls.HParams)["hparams_era"].choices
    assert len(eras) >= 2
    for era in eras:
        switched = apply_overrides(hp, {"hparams_era": era})
        assert switched.hparams_era == era and hparam_problem(switched) is None

