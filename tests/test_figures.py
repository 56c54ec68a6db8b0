"""Figures 4-6 on fixture runs (no training), plus one tiny end-to-end ``bench figure 6``."""

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bench import store
from bench.cli import main
from bench.config import RunSpec
from bench.registry import get_method
from bench.report.figure_numbers import importance_from_errors, neighbour_label_error, rank_agreement, select_samples
from bench.report.figure_render import render_sensitivity, render_tsne, render_weights
from bench.report.figure_specs import figures, require_figure
from bench.report.planning import plan, plan_figure
from bench.report.specs import TABLES
from bench.runner import RunRecord, resolve_hparams

N_TEST = 60


def fixture_done(tmp_path, planned, seeds, test_values, outputs=None):
    """[(planned run, [RunRecord])] written like the runner writes them."""
    done = []
    for p in planned:
        hp = resolve_hparams(get_method(p.row.method), "mosi", p.setting, p.overrides)
        cfg = json.loads(json.dumps(dataclasses.asdict(hp), default=str))
        rs = RunSpec(p.row.method, p.dataset, p.setting, cfg, "fp")
        recs = []
        for i, seed in enumerate(seeds):
            result = {"method": p.row.method, "dataset": p.dataset, "setting": p.setting, "seed": seed,
                      "config_hash": rs.config_hash, "config": cfg, "test": test_values(p, i), "valid": {},
                      "data": {"name": p.dataset, "setting": p.setting, "source": "synthetic", "standard": False,
                               "fingerprint": "fp" * 8, "profile": "compact", "files": []},
                      "provenance": {"git": {"commit": "abc1234567def", "dirty": False}},
                      "selection": {"rule": "lowest validation loss"}}
            path = store.write_run(store.run_dir(tmp_path, rs, seed), result, outputs(p, i) if outputs else None)
            recs.append(RunRecord(seed, path, result, reused=True))
        done.append((p, recs))
    return done


def test_importance_target_by_hand():
    # c = (0, 0.9, 0.9) -> 1/(c+0.1) = (10, 1, 1) -> (10, 1, 1)/12
    imp = importance_from_errors(np.array([[1.0, 1.0 + 0.9 ** 0.5, 1.0 - 0.9 ** 0.5]]), np.array([1.0]))
    assert imp[0] == pytest.approx([10 / 12, 1 / 12, 1 / 12])
    # same formula as EMOE's own target
    from emoe.objective import importance_target, unimodal_errors

    rng = np.random.default_rng(0)
    pred, y = rng.normal(size=(8, 3)), rng.normal(size=8)
    ref = importance_target(unimodal_errors(torch.tensor(pred), torch.tensor(y), "regression"), 0.1, "sum")
    assert importance_from_errors(pred, y) == pytest.approx(ref.numpy())


def test_rank_agreement_and_sample_selection():
    rng = np.random.default_rng(1)
    imp = rng.dirichlet([1, 1, 1], size=40)
    same = rank_agreement(imp, imp)
    assert same["rho_pooled"] == pytest.approx(1.0) and same["top1_agreement"] == 1.0
    assert rank_agreement(imp[:, ::-1], imp)["top1_agreement"] < 1.0
    sel = select_samples(imp, per_modality=4)
    assert len(sel) == 12 == len(set(sel.tolist()))
    assert imp[sel[:4], 0].min() >= np.sort(imp[:, 0])[-5]  # the first four are language's top samples


def test_neighbour_label_error_prefers_smooth_maps():
    y = np.linspace(-3, 3, 50)
    smooth = np.stack([y, np.zeros_like(y)], axis=1)
    shuffled = np.random.default_rng(0).permutation(smooth)
    assert neighbour_label_error(smooth, y) < neighbour_label_error(shuffled, y)


def test_figure_plans_reuse_table4_configs():
    fig4 = plan_figure(require_figure(4), "synthetic", "compact")
    assert len(fig4) == 1 + 4 * 2 and {p.dataset for p in fig4} == {"synthetic-mosi"}
    assert {p.setting for p in fig4} == {"aligned"}
    full = plan_figure(require_figure(4), "real", None)  # real data: the full budget by default
    assert len(full) == (1 + 4 * 4) * 2 * 2
    t4 = {p.row.label: p.overrides for p in plan(TABLES[4], "synthetic", "compact")}
    default = next(p for p in fig4 if p.row.label == "default")
    assert default.overrides == t4["MoME + UD (EMOE)"]  # same config hash: Table 4's runs are reused
    fig5 = {p.row.label: p.overrides for p in plan_figure(require_figure(5), "synthetic", "compact")}
    assert fig5["EMOE w/o MoME & UD"] == t4["w/o MoME, w/o UD"] and fig5["EMOE w/o UD"] == t4["MoME only"]
    temps = [p.overrides["temperature"] for p in fig4 if "temperature" in p.row.overrides]
    assert temps == ["0.01", "1"]
    assert set(figures()) == {4, 5, 6}


def test_figure4_renders_from_fixture(tmp_path):
    # two parameters x two metrics keep the drawing cheap; the full spec draws 4 x 4 panels the same way
    spec = dataclasses.replace(require_figure(4), params=("alpha", "temperature"), metrics=("acc7", "mae"))
    planned = plan_figure(spec, "synthetic", "compact", settings=("aligned", "unaligned"))

    def values(p, i):
        v = float(p.overrides.get("temperature", 0.1))
        return {"acc7": 0.40 + 0.02 * np.log10(v) + 0.01 * i, "mae": 0.80 - 0.01 * i}
    done = fixture_done(tmp_path, planned, (1111, 1112), values)
    paths, numbers = render_sensitivity(spec, done, "synthetic", tmp_path / "figures")
    assert [p.name for p in paths] == ["fig4-synthetic.png", "fig4-synthetic.pdf"]
    assert all(p.stat().st_size > 10_000 for p in paths)
    pts = [x for x in numbers["points"] if x["param"] == "temperature" and x["metric"] == "acc7"
           and x["setting"] == "aligned"]
    assert [x["value"] for x in pts] == [0.01, 0.1, 1.0]
    assert pts[0]["mean"] == pytest.approx(0.365) and pts[0]["n"] == 2
    assert pts[0]["std"] == pytest.approx(0.01 / 2 ** 0.5)
    assert numbers["seeds"] == [1111, 1112] and "SYNTHETIC" in numbers["data"]


def _outputs(p, i):
    rng = np.random.default_rng(10 * i + len(p.row.label))
    y = np.linspace(-3, 3, N_TEST).astype(np.float32)
    w = rng.dirichlet([1, 1, 1], size=N_TEST).astype(np.float32)
    return {"pred": y + 0.1, "label": y, "weights": w, "fused": np.stack([y, rng.normal(size=N_TEST)], 1),
            "pred_l": y + rng.normal(size=N_TEST) * 0.1, "pred_v": y + rng.normal(size=N_TEST),
            "pred_a": y + rng.normal(size=N_TEST) * 2}


def test_figures5_and_6_render_from_fixture(tmp_path):
    spec5, spec6 = require_figure(5), require_figure(6)
    done5 = fixture_done(tmp_path, plan_figure(spec5, "synthetic", "compact"), (1111,),
                         lambda p, i: {"mae": 0.8}, _outputs)
    paths, numbers = render_tsne(spec5, done5, "synthetic", tmp_path / "figures")
    assert paths[0].name == "fig5-synthetic.png" and paths[0].stat().st_size > 10_000
    assert set(numbers["panels"]) == {"EMOE", "EMOE w/o UD", "EMOE w/o MoME & UD"}
    done6 = fixture_done(tmp_path, plan_figure(spec6, "synthetic", "compact"), (1111, 1112),
                         lambda p, i: {"mae": 0.8}, _outputs)
    planted = torch.tensor(np.random.default_rng(5).dirichlet([1, 1, 1], size=N_TEST))
    bundles = {("synthetic-mosi", "aligned"): SimpleNamespace(splits={"test": SimpleNamespace(importance=planted)})}
    paths, numbers = render_weights(spec6, done6, "synthetic", tmp_path / "figures", bundles)
    assert paths[1].name == "fig6-synthetic.pdf" and paths[0].stat().st_size > 10_000
    assert len(numbers["per_seed"]) == 2 and len(numbers["samples"]) == 12
    first = numbers["per_seed"][0]
    out = _outputs(done6[0][0], 0)
    imp = importance_from_errors(np.stack([out["pred_l"], out["pred_v"], out["pred_a"]], 1), out["label"])
    assert first["vs_error_importance"] == rank_agreement(out["weights"], imp)
    assert "vs_planted" in first and "planted" in numbers["summary"][1]


@pytest.mark.slow
def test_figure6_end_to_end_tiny(tmp_path, capsys):
    """One real (tiny) training run: EMOE d 16, 1 layer, 1 epoch, then Fig. 6 and its numbers."""
    args = ["figure", "6", "--out", str(tmp_path), "--quiet", "--threads", "1", "--epochs", "1",
            "--set", "d_model=16", "--set", "n_heads=2", "--set", "n_layers=1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "[synthetic data]" in out and "weights vs planted importance" in out
    side = json.loads((tmp_path / "figures" / "fig6-synthetic.json").read_text())
    assert "compact budget" not in side["notes"]  # the compact note is for real data, where full is the default
    rho = side["per_seed"][0]["vs_planted"]["rho_pooled"]
    assert -1 <= rho <= 1
    assert (tmp_path / "figures" / "fig6-synthetic.png").stat().st_size > 10_000
    assert main(args) == 0  # resume: the finished run is reused
    assert "finished run reused" in capsys.readouterr().out


def test_figure_cli_errors(capsys):
    assert main(["figure", "7"]) == 2
    assert "figure 7 is not available" in capsys.readouterr().err
    assert main(["figure", "5", "--grid", "0.1,1"]) == 2
    assert "figure 4 only" in capsys.readouterr().err
    assert main(["figure", "4", "--grid", "0,1"]) == 2
