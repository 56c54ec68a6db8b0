"""``--exec auto``: one execution mode per configuration (bench/train/autoexec.py), recorded as before."""

from __future__ import annotations

import json
import types

import pytest

from bench.describe import canonical_info
from bench.report.planning import plan
from bench.report.specs import TABLES
from bench.runner import RunRequest, resolve_hparams, run
from bench.train import autoexec
from tests.helpers import ToyMethod, make_bundle
from tests.test_multiseed import TinyMLP


def test_choice_per_row_of_table_1_on_cuda():
    """What auto picks for every measured row of Table 1 with 5 seeds on a GPU: vmap where the model has
    no recurrent layer / hook, procs otherwise (the table no longer stops at EF-LSTM)."""
    picked = {}
    for p in plan(TABLES[1], "synthetic", "compact"):
        if p.setting != "unaligned":
            continue
        from bench.registry import get_method

        cls = get_method(p.row.method)
        hp = resolve_hparams(cls, "mosi", p.setting, p.overrides)
        picked[p.row.method] = autoexec.choose(cls, hp, canonical_info("mosi", p.setting), 5, "cuda").mode
    assert picked["ef_lstm"] == "procs" and picked["misa"] == "procs" and picked["self_mm"] == "procs"
    assert picked["emoe"] == "vmap" and picked["mult"] == "vmap" and picked["dmd"] == "vmap"


def test_bert_text_mode_is_not_vmapped():
    from bench.registry import get_method

    cls = get_method("emoe")
    hp = resolve_hparams(cls, "mosi", "unaligned", {"text_mode": "bert", "text_model": "random:bert-base-uncased"})
    choice = autoexec.choose(cls, hp, canonical_info("mosi", "unaligned"), 5, "cuda")
    assert choice.mode == "procs" and "Hugging Face" in choice.reason


@pytest.mark.parametrize("cls,k,device,mode", [
    (TinyMLP, 5, "cuda", "vmap"),
    (TinyMLP, 5, "cuda:1", "vmap"),
    (TinyMLP, 1, "cuda", "loop"),   # a single seed: the loop (a one-member ensemble is slower, not loop-equal)
    (TinyMLP, 5, "cpu", "loop"),    # CPU: vmap is no faster
    (ToyMethod, 5, "cuda", "procs"),  # per-step hook
])
def test_choice_rules(cls, k, device, mode):
    info = make_bundle().info()
    assert autoexec.choose(cls, cls.HParams(), info, k, device).mode == mode


def test_runner_prints_and_records_the_choice(tmp_path):
    bundle = make_bundle(sizes=(32, 16, 16))
    lines = []
    req = RunRequest(method="tiny", dataset="toy", seeds=[1, 2], out=str(tmp_path), device="cpu", exec_mode="auto",
                     overrides={"max_epochs": "1"})
    recs = run(req, bundle=bundle, method_cls=TinyMLP, log=lines.append, progress=False)
    assert [ln for ln in lines if "--exec auto" in ln] == ["[tiny toy-aligned] --exec auto: loop (CPU: vmap is no "
                                                            "faster than the loop)"]
    for r in recs:
        assert r.result["provenance"]["execution"] == {"exec_mode": "loop", "amp": "off", "compile": False,
                                                       "chosen_by": "auto"}
        assert json.loads((r.path / "result.json").read_text())["provenance"]["exec_mode"] == "loop"


def test_auto_falls_back_to_procs_when_vmap_fails(tmp_path, monkeypatch):
    """A model the capability check passes but vmap cannot run: the configuration is trained with procs."""
    import bench.runner as runner
    import bench.train.multiseed as ms

    monkeypatch.setattr(autoexec, "choose", lambda *a, **k: autoexec.AutoChoice("vmap", "forced"))
    real = ms.train_many

    def flaky(method_cls, hp, bundle, seeds, device, exec_mode, **kw):
        if exec_mode == "vmap":
            raise RuntimeError("Batching rule not implemented for aten::something")
        return real(method_cls, hp, bundle, seeds, device, "loop", **{**kw, "workers": 0})

    monkeypatch.setattr(ms, "train_many", flaky)
    monkeypatch.setattr(runner, "train_many", flaky)  # the runner's own binding (imported at its module top)
    lines = []
    req = RunRequest(method="tiny", dataset="toy", seeds=[1, 2], out=str(tmp_path), device="cpu", exec_mode="auto",
                     overrides={"max_epochs": "1"})
    recs = run(req, bundle=make_bundle(sizes=(32, 16, 16)), method_cls=TinyMLP, log=lines.append, progress=False)
    assert any("vmap failed (Batching rule not implemented for aten::something); training with procs" in ln
               for ln in lines)
    assert {r.result["provenance"]["execution"]["exec_mode"] for r in recs} == {"procs"}


def test_cli_default_is_loop_on_cpu_and_auto_on_cuda():
    from bench.cli.settings import default_exec_mode

    ns = types.SimpleNamespace
    assert default_exec_mode(ns(exec_mode=None, device="cpu")) == "loop"
    assert default_exec_mode(ns(exec_mode=None, device="cuda:0")) == "auto"
    assert default_exec_mode(ns(exec_mode="vmap", device="cuda")) == "vmap"
