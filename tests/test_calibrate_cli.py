"""``python -m bench.calibrate``'s line filters: a rerun of chosen lines with more tables (docs/verdicts.md)."""

import pandas as pd
import pytest

from bench import calibrate


def test_filters_select_exactly_the_requested_lines(tmp_path, capsys):
    out = tmp_path / "rates.csv"
    code = calibrate.main(["--tables", "40", "--seed", "3", "--table", "4", "--n", "3", "--std", "2",
                           "--scenario", "all cells 1σ worse", "--scenario", "faithful", "--out", str(out)])
    assert code == 0
    df = pd.read_csv(out)
    assert df[["table", "scenario", "n", "std_points", "tables"]].values.tolist() == [
        ["Table 4", "all cells 1σ worse", 3, 2.0, 40], ["Table 4", "faithful", 3, 2.0, 40]]
    # the same line through the library with the same seed: the filter changes which lines run, not their rates
    dense = next(sc for sc in calibrate.SCENARIOS if sc.name == "all cells 1σ worse")
    direct = calibrate.calibrate(40, 3, numbers=(4,), ns=(3,), stds=(2.0,), scenarios=(dense,))
    assert df["fail_rate"].iloc[0] == pytest.approx(direct["fail_rate"].iloc[0], abs=1e-4)
    assert "all cells 1σ worse" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--scenario", "two rows worse"], "no such scenario"),
    (["--n", "1"], "at least 2"),
    (["--std", "-1"], "positive seed std"),
    (["--table", "3"], "invalid choice"),
])
def test_bad_filters_are_one_line_errors(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        calibrate.main(["--tables", "10"] + args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
