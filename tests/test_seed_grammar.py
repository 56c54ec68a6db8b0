"""``--seeds``: lists, inclusive ranges and an explicit count form; everything else is a one-line error."""

import pytest

from bench.cli import main
from bench.errors import UserError
from bench.train.seeding import MAX_SEED, MAX_SEEDS, parse_seeds, seeds_from_arg

hypothesis = pytest.importorskip("hypothesis", reason="the property tests need the 'test' extra (hypothesis)")
given, settings, st = hypothesis.given, hypothesis.settings, hypothesis.strategies


@pytest.mark.parametrize("text, seeds", [
    ("1111,1112", [1111, 1112]),
    ("1111-1115", [1111, 1112, 1113, 1114, 1115]),
    ("7, 1111-1113 ,0", [7, 1111, 1112, 1113, 0]),
    ("5x", [1111, 1112, 1113, 1114, 1115]),
    ("1X", [1111]),
    ("101", [101]),  # before the grammar: seed 101, while "100" meant 100 seeds
    ("100", [100]),
    ("3", [3]),
    ("0", [0]),
    (" 42 ", [42]),
    ("4294967295", [MAX_SEED]),
    ("4294967290-4294967295", list(range(4294967290, 4294967296))),
    ("9-9", [9]),
    ("00000000000000001111", [1111]),
    (None, [1111, 1112, 1113, 1114, 1115]),
])
def test_valid_seed_texts(text, seeds):
    assert parse_seeds(text) == seeds


def test_default_count_is_the_callers():
    assert parse_seeds(None, default_count=3) == [1111, 1112, 1113]
    assert parse_seeds("1112", default_count=3) == [1112]


BAD = [
    ("99999999999999999999", "seeds must be at most 4294967295"),
    ("4294967296", "seeds must be at most 4294967295"),
    ("9" * 5000, "seeds must be at most 4294967295"),  # past int()'s 4300-digit limit
    ("1-" + "9" * 5000, "seeds must be at most 4294967295"),
    ("9" * 5000 + "x", "the count must be 1 to 1000"),
    ("-1", "'-1' is not a seed"),
    ("1111,-5", "'-5' is not a seed"),
    ("", "no seeds given"),
    ("  ", "no seeds given"),
    (",,,", "an empty item"),
    ("1111,,1112", "an empty item"),
    ("1111,", "an empty item"),
    ("1115-1111", "the range 1115-1111 runs backwards"),
    ("0x", "the count must be 1 to 1000"),
    ("1001x", "the count must be 1 to 1000"),
    ("0-4294967295", "more than 1000 seeds"),
    ("1111,1111", "seeds repeat"),
    ("1111-1113,1112", "seeds repeat"),
    ("1.5", "'1.5' is not a seed"),
    ("1e3", "'1e3' is not a seed"),
    ("1_000", "'1_000' is not a seed"),
    ("abc", "'abc' is not a seed"),
    ("x5", "'x5' is not a seed"),
    ("3x,4", "'3x' is not a seed"),
    ("١٢", "'١٢' is not a seed"),  # non-ASCII digits
]


@pytest.mark.parametrize("text, problem", BAD)
def test_bad_seed_texts_say_what_is_wrong(text, problem):
    with pytest.raises(UserError) as e:
        parse_seeds(text)
    msg = str(e.value)
    assert msg.startswith("--seeds ") and f": {problem}" in msg and "\n" not in msg
    assert msg.endswith("or a count 5x (= 1111-1115)") and len(msg) < 250
    if len(text) <= 40:
        assert msg.startswith(f"--seeds {text!r}: ")


@pytest.mark.parametrize("text", ["99999999999999999999", "-1", "", ",,,", "1115-1111", "0x"])
@pytest.mark.parametrize("command", [
    ["run", "--method", "lf_dnn", "--dataset", "synthetic-mosi", "--epochs", "1"],
    ["run", "--table", "4", "--epochs", "1"],
    ["figure", "6", "--epochs", "1"],
])
def test_cli_bad_seeds_exit_2_with_one_line_before_training(capsys, tmp_path, command, text):
    code = main([*command, "--seeds", text, "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: --seeds {text!r}: ") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_a_lone_small_number_is_one_seed_with_a_note():
    notes = []
    assert seeds_from_arg("3", log=notes.append) == [3]
    assert notes == ["note: --seeds 3 trains seed 3 alone; write --seeds 3x for the first 3 default seed(s) "
                     "(1111-1113)"]
    notes.clear()
    assert seeds_from_arg("1111", log=notes.append) == [1111] and seeds_from_arg("3x", log=notes.append) == [
        1111, 1112, 1113]
    assert seeds_from_arg(None, 2, log=notes.append) == [1111, 1112] and notes == []


# --------------------------------------------------------------------------- properties
@st.composite
def seed_items(draw):
    """Disjoint items (a seed or an inclusive range), in random order, as (text, expanded seeds)."""
    starts = draw(st.lists(st.integers(0, MAX_SEED), min_size=1, max_size=8, unique=True))
    items, seeds, taken = [], [], set()
    for lo in starts:
        hi = min(MAX_SEED, lo + draw(st.integers(0, 12)))
        span = range(lo, hi + 1)
        if taken.intersection(span):
            continue
        taken.update(span)
        as_range = hi > lo or draw(st.booleans())
        items.append(f"{lo}-{hi}" if as_range else str(lo))
        seeds.extend(span)
    pad = draw(st.sampled_from(["", " "]))
    return (pad + ",").join(items), seeds


@settings(max_examples=150, deadline=None)
@given(seed_items())
def test_every_valid_list_or_range_round_trips(case):
    text, seeds = case
    assert parse_seeds(text) == seeds
    assert parse_seeds(",".join(map(str, seeds))) == seeds  # the expanded list reads back the same


@settings(max_examples=100, deadline=None)
@given(st.integers(1, MAX_SEEDS))
def test_every_count_is_the_first_n_default_seeds(n):
    assert parse_seeds(f"{n}x") == list(range(1111, 1111 + n))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789,- xX.+e_a\t١"), max_size=24) | st.text(max_size=12))
def test_any_text_is_seeds_in_range_or_a_user_error(text):
    try:
        seeds = parse_seeds(text)
    except UserError as e:
        assert str(e).startswith("--seeds ") and "\n" not in str(e)
        return
    assert seeds and len(seeds) <= MAX_SEEDS and len(set(seeds)) == len(seeds)
    assert all(type(s) is int and 0 <= s <= MAX_SEED for s in seeds)


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**70), -1) | st.integers(MAX_SEED + 1, 2**70))
def test_out_of_range_seeds_are_user_errors(seed):
    with pytest.raises(UserError):
        parse_seeds(str(seed))
    with pytest.raises(UserError):
        parse_seeds(f"1111,{seed}")
