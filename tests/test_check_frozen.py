"""`bench check --against published` leaves BERT rows run on frozen text features out of the verdict."""

import dataclasses
import json

import pandas as pd

from bench import store
from bench.check import FROZEN_TEXT
from bench.cli import main
from bench.config import RunSpec
from bench.published import lookup
from bench.registry import get_method
from bench.report.planning import plan
from bench.report.specs import TABLES, metric_key
from bench.runner import resolve_hparams
from bench.text_encoder import TextChoice, paper_uses_bert

SPEC = TABLES[1]


def write_frozen_table1(out, worse_rows=()):
    """Table 1 on real data with --text frozen: every cell at the paper's number ± 0.2 points over 3 seeds,
    except ``worse_rows``, 5 points worse in every metric. Returns the planned runs."""
    planned = plan(SPEC, "real", "full", text=TextChoice(None, True))
    for p in planned:
        hp = resolve_hparams(get_method(p.row.method), SPEC.family, p.setting, p.overrides)
        cfg = json.loads(json.dumps(dataclasses.asdict(hp), default=str))
        run_spec = RunSpec(p.row.method, p.dataset, p.setting, cfg, "fp")
        for i, seed in enumerate((1, 2, 3)):
            test = {}
            for m in SPEC.metrics:
                pub = lookup(SPEC.published_table, p.row.published_method, p.row.published_variant, m, p.setting)
                worse = 0.05 if p.row.label in worse_rows else 0.0
                sign = -1.0 if m == "mae" else 1.0
                test[metric_key(SPEC, m)] = (pub if pub is not None else 0.5) + (i - 1) * 0.002 - sign * worse
            result = {"method": p.row.method, "dataset": p.dataset, "setting": p.setting, "seed": seed,
                      "config_hash": run_spec.config_hash, "config": cfg, "test": test, "valid": {},
                      "data": {"name": p.dataset, "source": "real", "standard": True, "fingerprint": "fp" * 8,
                               "files": []}, "provenance": {"git": {"commit": "abc"}}, "selection": {}}
            store.write_run(store.run_dir(out, run_spec, seed), result)
    return planned


def test_frozen_text_bert_rows_are_not_comparable(tmp_path, capsys):
    planned = write_frozen_table1(tmp_path, worse_rows=("EMOE",))
    bert = {(p.row.label, p.setting) for p in planned if paper_uses_bert(get_method(p.row.method), "mosi", p.setting)}
    assert ("EMOE", "aligned") in bert and len(bert) < len(planned)
    csv = tmp_path / "cells.csv"
    code = main(["check", "--table", "1", "--against", "published", "--results", str(tmp_path), "--text", "frozen",
                 "--csv", str(csv)])
    out = capsys.readouterr().out
    # EMOE is 5 points worse, but on frozen text it is another model: left out, so the table passes
    assert code == 0, out
    assert f"{FROZEN_TEXT} {4 * len(bert)}" in out and "left out of the verdict" in out and "--text-model" in out
    df = pd.read_csv(csv)
    cells = df[df["level"] == "cell"]
    frozen = cells[cells["verdict"] == FROZEN_TEXT]
    assert set(zip(frozen["row"], frozen["setting"])) == bert and len(frozen) == 4 * len(bert)
    assert frozen["p"].isna().all() and frozen["p_adj"].isna().all() and frozen["mean"].notna().all()
    # the others are tested, and only they make up the family (Holm's weights): 4 cells per non-BERT block
    tested = cells[cells["p"].notna()]
    assert len(tested) == 4 * (len(planned) - len(bert)) and (tested["verdict"] == "reproduced").all()
    assert set(df[df["level"] == "row"]["row"]) == {p.row.label for p in planned} - {r for r, _ in bert}


def test_frozen_text_does_not_hide_other_rows(tmp_path, capsys):
    write_frozen_table1(tmp_path, worse_rows=("TFN",))  # TFN never used BERT: its regression still fails
    code = main(["check", "--table", "1", "--against", "published", "--results", str(tmp_path), "--text", "frozen"])
    out = capsys.readouterr().out
    assert code == 1 and "FAIL" in out and FROZEN_TEXT in out


def test_from_csv_text_column_marks_frozen_rows(tmp_path, capsys):
    from pathlib import Path

    raw = pd.read_csv(Path(__file__).parent / "fixtures" / "table4-published.csv")
    ud = raw["row"] == "UD only"
    raw["text"] = ["frozen" if u else "bert-base-uncased" for u in ud]
    raw.loc[ud & (raw["metric"] != "mae"), "value"] -= 0.05  # 5 points worse: would fail if compared
    path, csv = tmp_path / "runs.csv", tmp_path / "cells.csv"
    raw.to_csv(path, index=False)
    code = main(["check", "--table", "4", "--against", "published", "--from-csv", str(path), "--csv", str(csv)])
    out = capsys.readouterr().out
    cells = pd.read_csv(csv)
    cells = cells[cells["level"] == "cell"]
    assert code == 0 and f"{FROZEN_TEXT} 4" in out and "reproduced 12" in out
    assert set(cells[cells["verdict"] == FROZEN_TEXT]["row"]) == {"UD only"}
    raw["text"] = "bert-base-uncased"  # the same numbers said to come from BERT runs: compared, and worse
    raw.to_csv(path, index=False)
    code = main(["check", "--table", "4", "--against", "published", "--from-csv", str(path)])
    assert code == 1 and "FAIL" in capsys.readouterr().out
