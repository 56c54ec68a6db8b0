"""Which settings and which budget a table runs with: --setting, the files under a data root, --profile."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.errors import UserError
from bench.report.planning import budget, choose_settings, missing_data_files, plan
from bench.report.specs import TABLES
from tests.conftest import shared_data

# EMOE fine-tunes BERT in the paper: on real data without a text model it must be told --text frozen
TINY_EMOE = ["--set", "d_model=16", "--set", "n_heads=2", "--set", "n_layers=1", "--text", "frozen"]


@pytest.fixture
def mosi_unaligned_only(tmp_path):
    """A data root holding only the MOSI unaligned pickle (like mosi229); existence is all that is checked."""
    f = tmp_path / "MOSI" / "Processed" / "unaligned_50.pkl"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"")
    return tmp_path


def test_budget_defaults_compact_on_synthetic_full_on_real():
    assert budget("synthetic", None) == "compact" and budget("real", None) == "full"
    assert budget("real", "compact") == "compact" and budget("synthetic", "full") == "full"


def test_compact_overrides_follow_the_budget_not_the_source():
    spec = TABLES[4]
    compact = {p.row.label: p.overrides for p in plan(spec, "real", "compact")}
    full = {p.row.label: p.overrides for p in plan(spec, "real", "full")}
    assert compact["MoME + UD (EMOE)"]["d_model"] == "64" and "d_model" not in full["MoME + UD (EMOE)"]
    assert full["UD only"] == {"mome": "false"}


def test_synthetic_table_keeps_its_settings():
    spec, notes = choose_settings(TABLES[1], None, "synthetic")
    assert spec is TABLES[1] and notes == []


def test_setting_restricts_a_table_and_may_replace_an_unstated_one():
    spec, notes = choose_settings(TABLES[1], "aligned", "synthetic")
    assert spec.settings == ("aligned",) and notes == []
    spec, notes = choose_settings(TABLES[4], "unaligned", "synthetic")  # the paper states no setting
    assert spec.settings == ("unaligned",) and notes == ["run on unaligned data (--setting; the paper states no "
                                                         "setting)"]
    assert spec.assumptions.startswith("setting unstated in the paper; unaligned used (--setting unaligned; the "
                                       "suite's default is aligned). Removing MoME")
    assert "aligned used (its full row" not in spec.assumptions  # the default's sentence is replaced, not kept
    spec, _ = choose_settings(TABLES[5], "unaligned", "synthetic")
    assert spec.assumptions.startswith("setting unstated in the paper; unaligned used (--setting unaligned; the "
                                       "suite's default is aligned). RE = router entropy")
    with pytest.raises(UserError, match="table 3 reports the settings unaligned; --setting aligned"):
        choose_settings(TABLES[3], "aligned", "synthetic")


def test_real_root_runs_the_settings_it_has(mosi_unaligned_only):
    root = mosi_unaligned_only
    assert missing_data_files("mosi", "aligned", root) == ["MOSI/Processed/aligned_50.pkl"]
    assert missing_data_files("mosi", "unaligned", root) == []
    spec, notes = choose_settings(TABLES[1], None, "real", root)
    assert spec.settings == ("unaligned",)
    assert notes == ["aligned not run: the data root has no mosi aligned file"]
    with pytest.raises(UserError, match=r"table 4 needs mosi data .*missing aligned: MOSI/Processed/aligned_50.pkl"
                                        r".*--setting unaligned runs it on that file"):
        choose_settings(TABLES[4], None, "real", root)
    spec, _ = choose_settings(TABLES[4], "unaligned", "real", root)
    assert spec.settings == ("unaligned",)
    with pytest.raises(UserError, match="table 2 needs mosei data"):
        choose_settings(TABLES[2], None, "real", root)
    with pytest.raises(UserError, match="table 3 needs mintrec data"):
        choose_settings(TABLES[3], None, "real", root)


def test_missing_table_data_is_a_one_line_error(mosi_unaligned_only, tmp_path, capsys):
    code = main(["run", "--table", "2", "--data-root", str(mosi_unaligned_only), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: table 2 needs mosei data") and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_table_4_renders_on_mosi229(tmp_path, capsys):
    root = shared_data("mosi229")
    code = main(["run", "--table", "4", "--data-root", str(root), "--setting", "unaligned", "--profile", "compact",
                 "--seeds", "1111,1112", "--epochs", "1", "--out", str(tmp_path), "--quiet", *TINY_EMOE])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "note: run on unaligned data" in out and "budget: compact" in out
    md = (tmp_path / "tables" / "table4-real.md").read_text()
    assert "NON-STANDARD files" in md and "unaligned_50.pkl sha256 0249717835f1" in md
    assert "unaligned used (--setting unaligned" in md and "Compact budget" in md
    assert "MoME + UD (EMOE) (frozen text)" in md  # EMOE fine-tunes BERT in the paper
    assert "[published]" not in md and "paper" not in md.split("\n\n")[0]  # no published numbers beside mosi229
    assert md.count("± ") >= 4 * 4  # four rows x four metrics, mean ± std over two seeds


FAST_ROUTER = ["--set", "router_input=encoded"]  # the official raw-input router is 52M parameters on mosi229


@pytest.mark.slow
@pytest.mark.parametrize("number, setting_args, rows", [
    (5, ["--setting", "unaligned"], ("w/o RE", "w/o WIS", "EMOE")),
    (6, [], ("Sum", "Concat")),  # the paper's aligned + unaligned: the aligned half is skipped and named
])
def test_tables_5_and_6_render_on_mosi229(tmp_path, capsys, number, setting_args, rows):
    root = shared_data("mosi229")
    code = main(["run", "--table", str(number), "--data-root", str(root), *setting_args, "--profile", "compact",
                 "--seeds", "1111,1112", "--epochs", "1", "--out", str(tmp_path), "--quiet", *TINY_EMOE,
                 *FAST_ROUTER])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    md = (tmp_path / "tables" / f"table{number}-real.md").read_text()
    body = [line for line in md.splitlines() if line.startswith("| unaligned")]
    assert [line.split("|")[2].strip() for line in body] == [f"{r} (frozen text)" for r in rows]  # --text frozen
    assert not any(line.startswith("| aligned") for line in md.splitlines())
    assert "NON-STANDARD files" in md and "[published]" not in md
    if number == 6:
        assert "note: aligned not run: the data root has no mosi aligned file" in out
        assert "Aligned not run: the data root has no mosi aligned file" in md


@pytest.mark.slow
def test_figure_4_renders_on_mosi229(tmp_path, capsys):
    root = shared_data("mosi229")
    code = main(["figure", "4", "--data-root", str(root), "--settings", "unaligned", "--datasets", "mosi",
                 "--profile", "compact", "--grid", "0.01,1", "--seeds", "1111,1112", "--epochs", "1",
                 "--out", str(tmp_path), "--quiet", *TINY_EMOE, *FAST_ROUTER])
    assert code == 0, capsys.readouterr().err
    assert "9 configuration(s) × 2 seed(s)" in capsys.readouterr().out  # default + 4 parameters x 2 values
    numbers = json.loads((tmp_path / "figures" / "fig4-real.json").read_text())
    assert numbers["source"] == "real" and "compact budget (--profile compact)" in numbers["notes"]
    assert "frozen text features (--text frozen), not the paper's fine-tuned BERT" in numbers["notes"]
    assert (tmp_path / "figures" / "fig4-real.png").stat().st_size > 10_000


@pytest.mark.slow
def test_figure_6_renders_on_mosi229(tmp_path, capsys):
    root = shared_data("mosi229")
    args = ["figure", "6", "--data-root", str(root), "--profile", "compact", "--seeds", "1111", "--epochs", "1",
            "--out", str(tmp_path), "--quiet", *TINY_EMOE]
    assert main(args) == 2  # figure 6 uses aligned data by default; mosi229 has only the unaligned file
    err = capsys.readouterr().err
    assert "figure 6 needs mosi aligned data" in err and "--settings unaligned" in err
    assert main([*args, "--settings", "unaligned"]) == 0, capsys.readouterr().err
    assert (tmp_path / "figures" / "fig6-real.png").exists()
    assert "weights vs importance-from-errors: Spearman" in capsys.readouterr().out


def test_set_applies_to_the_rows_that_have_the_key():
    spec = TABLES[1]
    runs = {(p.row.label, p.setting): p.overrides for p in plan(spec, "synthetic", "compact",
                                                                    {"d_model": "16", "misa.hidden_size": "8"})}
    assert runs[("EMOE", "aligned")]["d_model"] == "16" and runs[("MulT", "aligned")]["d_model"] == "16"
    assert "d_model" not in runs[("LF-DNN", "aligned")] and "d_model" not in runs[("MISA", "aligned")]
    assert runs[("MISA", "unaligned")]["hidden_size"] == "8"
    assert runs[("MMIM", "unaligned")].get("hidden_size") is None  # scoped to misa only


@pytest.mark.parametrize("sets, message", [
    ({"d_modle": "16"}, "--set d_modle: no method of this table has that hyper-parameter. Did you mean"),
    ({"misa.hidden_sise": "8"}, "--set misa.hidden_sise: misa has no hyper-parameter 'hidden_sise'"),
    ({"tfn.hidden_text": "8"}, "no row of this table runs method 'tfn'"),
])
def test_a_set_no_row_can_take_is_an_error(sets, message):
    spec = TABLES[1] if "tfn" not in str(sets) else TABLES[4]
    with pytest.raises(UserError, match=message.replace(".", r"\.").replace("(", r"\(")):
        plan(spec, "synthetic", "compact", sets)
