from dataclasses import dataclass
from typing import Literal

import pytest

from bench.config import RunSpec, apply_overrides, parse_sets
from bench.errors import UserError
from bench.method import TrainHParams
from bench.train.seeding import parse_seeds


@dataclass
class HP(TrainHParams):
    fusion: Literal["sum", "concat"] = "sum"
    mome: bool = True
    dims: tuple[int, ...] = (1, 2)
    temperature: float = 0.1


def test_overrides_are_converted_by_field_type():
    hp = apply_overrides(HP(), parse_sets(["mome=false", "temperature=0.5", "fusion=concat",
                                           "dims=3,4,5", "batch_size=8"]))
    assert hp.mome is False and hp.temperature == 0.5 and hp.fusion == "concat"
    assert hp.dims == (3, 4, 5) and hp.batch_size == 8


@pytest.mark.parametrize("pair, fragment", [
    ("temprature=1", "Did you mean 'temperature'"),
    ("fusion=mean", "expected one of sum, concat"),
    ("mome=maybe", "expected a value of type bool"),
    ("batch_size=1.5", "expected a value of type int"),
])
def test_bad_overrides_name_the_problem(pair, fragment):
    with pytest.raises(UserError) as e:
        apply_overrides(HP(), parse_sets([pair]))
    assert fragment in str(e.value)


def test_set_needs_key_value():
    with pytest.raises(UserError, match="expected key=value"):
        parse_sets(["learning_rate"])


def test_config_hash_is_canonical():
    a = RunSpec("m", "d", "aligned", {"b": 1, "a": 2}, "fp")
    b = RunSpec("m", "d", "aligned", {"a": 2, "b": 1}, "fp")
    c = RunSpec("m", "d", "aligned", {"a": 2, "b": 1}, "other-data")
    assert a.config_hash == b.config_hash != c.config_hash
    assert len(a.config_hash) == 12


def test_parse_seeds():
    assert parse_seeds(None) == [1111, 1112, 1113, 1114, 1115]
    assert parse_seeds("3x") == [1111, 1112, 1113]
    assert parse_seeds("3") == [3]  # a lone number is one seed (tests/test_seed_grammar.py)
    assert parse_seeds("1111,42") == [1111, 42]
    with pytest.raises(UserError):
        parse_seeds("a,b")
    with pytest.raises(UserError):
        parse_seeds("1111,1111")
