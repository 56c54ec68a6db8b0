"""Budgets declared beside each method (``Method.presets``) are valid settings of that method."""

import pytest

from bench.config import apply_overrides
from bench.method import COMPACT_BUDGET
from bench.registry import methods

METHODS = sorted(methods())


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("preset", ["compact", "tiny"])
def test_preset_is_a_valid_setting_for_every_family(name, preset):
    cls = methods()[name]
    values = cls.preset(preset)
    for family in cls.families:
        setting = "unaligned" if family == "mintrec" else cls.settings[0]  # MIntRec is unaligned only
        hp = cls.default_hparams(family, setting)
        if family == "mintrec" and hasattr(hp, "text_mode"):
            values = {**values, "text_mode": "features"}  # as Table 3's compact rows (no BERT offline)
        hp = apply_overrides(hp, values)
        assert hp.max_epochs == 20 and hp.early_stop == 6  # every compact/tiny budget caps the epochs


def test_tiny_narrows_what_compact_sets_and_keeps_its_budget():
    emoe = methods()["emoe"]
    assert emoe.preset("compact")["d_model"] == "64"
    assert emoe.preset("tiny") == {**COMPACT_BUDGET, "d_model": "16", "n_heads": "2", "n_layers": "1",
                                   "grad_accum": "1", "learning_rate": "1e-3"}
    assert methods()["graph_mfn"].preset("compact") == COMPACT_BUDGET  # no preset of its own: the shared budget
    assert methods()["emoe"].preset("nosuch") == {}


def test_preset_is_a_copy():
    methods()["mult"].preset("compact")["d_model"] = "999"
    assert methods()["mult"].preset("compact")["d_model"] == "32"
