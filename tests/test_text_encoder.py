"""--text-model / --text frozen: BERT methods never silently drop BERT on real data; the config hash covers
only what a method reads; check/report find a table's runs without repeating its flags."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bench.check import CheckOptions, collect_cells
from bench.cli import build_parser, main
from bench.config import RunSpec
from bench.errors import UserError
from bench.registry import get_method
from bench.report.planning import plan
from bench.report.specs import TABLES
from bench.runner import resolve_hparams
from bench.text_encoder import TextChoice, paper_uses_bert, text_choice
from tests.conftest import shared_data
from tests.data.conftest import mmsa_data, write_mmsa

TINY_EMOE = ["--set", "d_model=16", "--set", "n_heads=2", "--set", "n_layers=1", "--set", "router_input=encoded"]
BERT_ROWS_T1 = "MISA, Self-MM, MMIM, DMD, EMOE"


@pytest.fixture
def tiny_root(tmp_path):
    """MOSI aligned + unaligned pickles in MMSA's layout (12/5/6 samples, finite features)."""
    root = tmp_path / "data"
    for setting in ("aligned", "unaligned"):
        write_mmsa(root, mmsa_data(setting), "mosi", setting)
    return root


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 1-layer, 16-wide random BERT saved as a local folder (bert-base vocabulary: every token id fits)."""
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-bert")
    config = transformers.BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(str(path))
    return path


def _no_loading(monkeypatch):
    """Make any data loading fail loudly: a refusal must come before it."""
    import bench.data
    import bench.runner

    def boom(*a, **k):
        raise AssertionError("data were loaded before the refusal")

    monkeypatch.setattr(bench.data, "load_dataset", boom)
    monkeypatch.setattr(bench.runner, "load_dataset", boom)  # the runner's binding (imported at its module top)


# ------------------------------------------------------------------------------ which methods
def test_paper_bert_methods_come_from_their_hparams():
    bert = {m for m in ("emoe", "mmim", "dmd", "misa", "self_mm", "mult", "lf_dnn", "tfn", "mag_bert")
            if paper_uses_bert(get_method(m), "mosi", "aligned")}
    assert bert == {"emoe", "mmim", "dmd", "misa", "self_mm", "mag_bert"}  # MMSA's MulT reads frozen features
    assert paper_uses_bert(get_method("mult"), "mintrec", "unaligned")  # thuiar/MIntRec's MulT fine-tunes BERT


# ------------------------------------------------------------------------------ refusal on real data
def test_table1_on_mosi229_without_text_model_stops_before_training(tmp_path, capsys, monkeypatch):
    root = shared_data("mosi229")
    _no_loading(monkeypatch)
    code = main(["run", "--table", "1", "--data-root", str(root), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: table 1 on real data: {BERT_ROWS_T1} fine-tune BERT in the paper")
    assert "--text-model PATH" in err and "--text frozen" in err
    assert not (tmp_path / "runs").exists()


def test_single_real_run_refused_before_loading(tiny_root, tmp_path, capsys, monkeypatch):
    _no_loading(monkeypatch)
    for method in ("emoe", "misa", "self_mm", "mmim", "dmd"):
        code = main(["run", "--method", method, "--dataset", "mosi", "--setting", "aligned",
                     "--data-root", str(tiny_root), "--out", str(tmp_path)])
        err = capsys.readouterr().err
        assert code == 2 and f"run --method {method} on real data: {method} fine-tunes BERT" in err, err
    # lf_dnn and MMSA's MulT never used BERT: no text choice needed (they get past the check and load data)
    with pytest.raises(AssertionError, match="loaded before"):
        main(["run", "--method", "mult", "--dataset", "mosi", "--data-root", str(tiny_root), "--out", str(tmp_path)])


def test_contradictory_or_missing_text_choices_are_user_errors(tmp_path, monkeypatch):
    parse = build_parser().parse_args
    with pytest.raises(UserError, match="--text frozen and --text-model x contradict"):
        text_choice(parse(["run", "--table", "1", "--text", "frozen", "--text-model", "x"]))
    with pytest.raises(UserError, match="--text bert needs --text-model PATH"):
        text_choice(parse(["run", "--table", "1", "--text", "bert"]))
    with pytest.raises(UserError, match="--text-model ./nope: no such directory"):
        text_choice(parse(["run", "--table", "1", "--text-model", "./nope"]))
    monkeypatch.setenv("BENCH_TEXT_MODEL", str(tmp_path))
    assert text_choice(parse(["run", "--table", "1"])) == TextChoice(str(tmp_path.resolve()), False)
    assert text_choice(parse(["run", "--table", "1", "--text", "frozen"])) == TextChoice(None, True)  # env is ambient


@pytest.mark.slow
def test_text_frozen_runs_and_the_table_says_so(tiny_root, tmp_path, capsys):
    code = main(["run", "--table", "6", "--data-root", str(tiny_root), "--profile", "compact", "--seeds", "1111",
                 "--epochs", "1", "--out", str(tmp_path), "--quiet", "--text", "frozen", *TINY_EMOE])
    assert code == 0, capsys.readouterr().err
    md = (tmp_path / "tables" / "table6-real.md").read_text()
    rows = [line.split("|")[2].strip() for line in md.splitlines() if line.startswith("| aligned")]
    assert rows == ["Sum (frozen text)", "Concat (frozen text)"]
    assert ("(frozen text): Sum, Concat ran on the dataset's frozen text features instead of the paper's fine-tuned "
            "BERT (--text frozen)") in md
    r = json.loads(next((tmp_path / "runs" / "emoe").glob("mosi-aligned/*/seed-1111/result.json")).read_text())
    assert r["config"]["text_model"] == "" and r["model"]["text_mode"] == "features"


@pytest.mark.slow
def test_text_model_fine_tunes_the_given_bert(tiny_root, tiny_bert, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_TEXT_MODEL", str(tiny_bert))  # the environment variable flows into the table
    code = main(["run", "--table", "6", "--data-root", str(tiny_root), "--setting", "aligned", "--profile", "compact",
                 "--seeds", "1111", "--epochs", "1", "--out", str(tmp_path), "--quiet", *TINY_EMOE])
    assert code == 0, capsys.readouterr().err
    r = json.loads(next((tmp_path / "runs" / "emoe").glob("mosi-aligned/*/seed-1111/result.json")).read_text())
    assert r["config"]["text_model"] == str(tiny_bert.resolve())
    assert r["model"]["text_mode"] == "bert" and r["model"]["text_model"] == str(tiny_bert.resolve())
    md = (tmp_path / "tables" / "table6-real.md").read_text()
    assert f"Fine-tuned text encoder: {tiny_bert.resolve()} (Sum, Concat)." in md and "frozen text" not in md


# ------------------------------------------------------------------------------ configuration hash
def _hash(method, family, setting, overrides):
    hp = resolve_hparams(get_method(method), family, setting, overrides)
    return RunSpec(method, family, setting, dataclasses.asdict(hp), "fp").config_hash


def test_mult_hash_does_not_depend_on_the_text_model():
    plain = _hash("mult", "mosi", "aligned", {})
    assert plain == "5e7bc3fe16fb"  # the hash before --text-model existed (with it, it was 50657b5b2b9b)
    assert _hash("mult", "mosi", "aligned", {"text_model": "/models/bert-base-uncased"}) == plain
    assert _hash("mult", "mosi", "aligned", {"text_model": "x", "text_finetune": "false"}) == plain
    # EMOE reads it: a different model is a different run; without one the old hash stays
    assert _hash("emoe", "mosi", "aligned", {}) == "f1d78e499641"
    assert _hash("emoe", "mosi", "aligned", {"text_model": "x"}) != _hash("emoe", "mosi", "aligned", {})
    by_row = {p.row.label: p.overrides for p in plan(TABLES[1], "real", "full", text=TextChoice("/m"))
              if p.setting == "aligned"}
    assert by_row["MulT"] == {} and by_row["LF-DNN"] == {}
    assert all(by_row[r] == {"text_model": "/m"} for r in ("EMOE", "MISA", "Self-MM", "MMIM", "DMD"))


def test_table3_text_model_replaces_the_compact_feature_fallback():
    over = {p.row.label: p.overrides for p in plan(TABLES[3], "real", "compact", text=TextChoice("/m"))}
    assert over["MulT"]["text_mode"] == "bert" and over["MulT"]["text_model"] == "/m"
    assert over["MISA"]["text_mode"] == "bert" and over["MAG-BERT"]["text_model"] == "/m"
    frozen = {p.row.label: p.overrides for p in plan(TABLES[3], "real", "full", text=TextChoice(None, True))}
    assert frozen["MulT"] == {"text_mode": "features"} and frozen["MISA"] == {"text_mode": "features"}
    assert frozen["EMOE"] == {}  # text_mode auto without a model is already the frozen features


# ------------------------------------------------------------------------------ check / report
def _write_runs(out, spec, text=None, user_sets=None, rows=None):
    """Finished runs of a table as ``run --table`` writes them (config, hash, standard real data)."""
    from bench import store
    from bench.report.specs import metric_key

    n = 0
    for p in plan(spec, "real", "full", user_sets or {}, rows=rows, text=text):
        hp = resolve_hparams(get_method(p.row.method), spec.family, p.setting, p.overrides)
        cfg = json.loads(json.dumps(dataclasses.asdict(hp), default=str))
        rs = RunSpec(p.row.method, p.dataset, p.setting, cfg, "fp")
        for seed in (1111, 1112):
            result = {"method": p.row.method, "dataset": p.dataset, "setting": p.setting, "seed": seed,
                      "config_hash": rs.config_hash, "config": cfg, "valid": {},
                      "test": {metric_key(spec, m): 0.5 for m in spec.metrics},
                      "data": {"name": p.dataset, "source": "real", "standard": True, "fingerprint": "fp" * 8,
                               "files": []},
                      "provenance": {"git": {"commit": "abc"}}, "selection": {"rule": "best valid"}}
            store.write_run(store.run_dir(out, rs, seed), result)
            n += 1
    return n


def _found(cells):
    return {k: len(v) for k, v in cells.items()}


def test_check_finds_every_run_of_a_text_model_table(tmp_path, monkeypatch):
    spec = TABLES[1]
    # the old way (--set text_model=...) and the new one write the same runs: MulT's included
    _write_runs(tmp_path, spec, user_sets={"text_model": "/models/bert"})
    expected = {(r.label, s): 2 for s in spec.settings for r in spec.rows if not (r.label == "MCTN" and s != "aligned")}
    assert _found(collect_cells(spec, tmp_path, "real", CheckOptions(text=TextChoice("/models/bert")))) == expected
    # without any text flag: the runs of the one text encoder the results hold
    assert _found(collect_cells(spec, tmp_path, "real", CheckOptions())) == expected
    # another text model: only the BERT rows miss (MulT and the others are the same runs)
    other = _found(collect_cells(spec, tmp_path, "real", CheckOptions(text=TextChoice("/models/other"))))
    assert {k[0] for k, n in other.items() if n == 0} == set(BERT_ROWS_T1.split(", "))
    # frozen runs beside them: without a choice the command asks which
    _write_runs(tmp_path, spec, text=TextChoice(None, True), rows=("EMOE",))
    with pytest.raises(UserError, match=r"row EMOE \(aligned\) has finished runs with several text encoders "
                                        r"\(/models/bert, frozen features\); choose one with --text-model"):
        collect_cells(spec, tmp_path, "real", CheckOptions())
    frozen = _found(collect_cells(spec, tmp_path, "real", CheckOptions(text=TextChoice(None, True))))
    assert frozen[("EMOE", "aligned")] == 2 and frozen[("MISA", "aligned")] == 0 and frozen[("MulT", "aligned")] == 2


def test_check_and_report_take_the_text_model(tmp_path, monkeypatch):
    from bench.cli.check_cmd import check_options

    parse = build_parser().parse_args
    assert check_options(parse(["check", "--table", "1", "--text-model", str(tmp_path)])).text.model == \
        str(tmp_path.resolve())
    assert check_options(parse(["report", "--text", "frozen"])).text == TextChoice(None, True)
    monkeypatch.setenv("BENCH_TEXT_MODEL", "bert-base-uncased")
    assert check_options(parse(["report"])).text == TextChoice("bert-base-uncased", False)


def test_text_frozen_is_refused_on_real_mintrec(tmp_path, capsys):
    from bench.data.mintrec import AUDIO_FILE, SPLIT_FILES, VIDEO_FILE

    for rel in (*SPLIT_FILES.values(), AUDIO_FILE, VIDEO_FILE):  # existence is all that is checked first
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    code = main(["run", "--table", "3", "--data-root", str(tmp_path), "--out", str(tmp_path / "o"), "--text", "frozen"])
    err = capsys.readouterr().err
    assert code == 2 and ("table 3: real MIntRec data have no frozen text features (only the text to tokenise), so "
                          "--text frozen cannot run MAG-BERT, MulT, MISA, EMOE; pass --text-model PATH") in err
    code = main(["run", "--table", "3", "--data-root", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err  # MAG-BERT keeps its own default checkpoint name; the others need one
    assert code == 2 and ("table 3: MulT, MISA, EMOE need a BERT and real MIntRec data have no frozen text features; "
                          "pass --text-model PATH") in err


def test_figure_on_real_data_needs_a_text_choice(tiny_root, tmp_path, capsys, monkeypatch):
    _no_loading(monkeypatch)
    code = main(["figure", "6", "--data-root", str(tiny_root), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: figure 6 on real data: emoe fine-tunes BERT in the paper")
