"""Property test: random ``--set`` values for every method give a valid configuration or one line."""

import os

import pytest

from bench.config import declared_rules, hparam_problem
from bench.errors import UserError
from bench.registry import get_method
from bench.runner import resolve_hparams
from tests.test_hparam_rules import _default_configurations

hypothesis = pytest.importorskip("hypothesis", reason="the property tests need the 'test' extra (hypothesis)")
st = hypothesis.strategies
_VALUES = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["", "none", "true", "no", "abc", "1,2", "-0", "1e999", "0.5", "1", "0", "-1"]),
                    st.text(max_size=6))


@hypothesis.settings(max_examples=int(os.environ.get("HPARAM_FUZZ_EXAMPLES", 300)), deadline=None)
@hypothesis.given(st.data())
def test_random_set_values_give_a_valid_configuration_or_one_line_error(data):
    name, family, setting = data.draw(st.sampled_from(list(_default_configurations())))
    cls = get_method(name)
    keys = sorted(declared_rules(cls.HParams))
    overrides = data.draw(st.dictionaries(st.sampled_from(keys), _VALUES, min_size=1, max_size=3))
    try:
        hp = resolve_hparams(cls, family, setting, overrides)
    except UserError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert hparam_problem(hp) is None
