"""The command line becomes one RunSettings (bench/cli/settings.py), and every RunRequest comes from it."""

from __future__ import annotations

import pytest
import torch

from bench.cli import build_parser
from bench.cli.settings import run_settings
from bench.errors import UserError
from bench.runner import RunRequest
from bench.text_encoder import TextChoice


def test_settings_carry_every_option_into_the_request(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    monkeypatch.delenv("BENCH_TEXT_MODEL", raising=False)
    before = torch.get_num_threads()
    args = build_parser().parse_args(
        ["run", "--table", "4", "--out", str(tmp_path), "--device", "cpu", "--exec", "procs", "--workers", "2",
         "--amp", "bf16", "--threads", "1", "--epochs", "3", "--profile", "full", "--data-seed", "7", "--clean-nan",
         "--force", "--text", "frozen", "--data-root", str(tmp_path)])
    try:
        s = run_settings(args)
        assert torch.get_num_threads() == 1  # --threads applied here, once
    finally:
        torch.set_num_threads(before)
    assert (s.source, s.threads, s.text, s.jobs, s.executor) == ("real", 1, TextChoice(None, True), 1, "local")
    req = s.request("emoe", "mosi", "aligned", [1111, 1112], {"fusion": "sum"})
    assert req == RunRequest(method="emoe", dataset="mosi", setting="aligned", seeds=[1111, 1112],
                             overrides={"fusion": "sum"}, epochs=3, data_root=str(tmp_path), out=str(tmp_path),
                             device="cpu", force=True, profile="full", clean_nan=True, data_seed=7,
                             exec_mode="procs", amp="bf16", compile=False, workers=2, graphs="auto")  # --graphs default


def test_defaults_resolve_exec_from_the_device_and_profile_to_compact(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    s = run_settings(build_parser().parse_args(["figure", "4", "--device", "cpu", "--out", str(tmp_path)]))
    assert (s.source, s.exec_mode, s.profile) == ("synthetic", "loop", None)
    assert s.request("emoe", "synthetic-mosi", "aligned", [1], {}).profile == "compact"


@pytest.mark.parametrize("argv, message", [
    (["--threads", "0"], "--threads 0: expected a positive number"),
    (["--jobs", "0"], "--jobs 0: expected >= 1"),
    (["--exec", "loop", "--workers", "2"], "--workers applies to --exec procs (got --exec loop)"),
    (["--exec", "vmap", "--graphs", "on"], "--graphs on applies to loop runs"),
])
def test_bad_execution_options_are_one_line_errors(argv, message, tmp_path):
    args = build_parser().parse_args(["run", "--table", "4", "--device", "cpu", "--out", str(tmp_path), *argv])
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_settings(args)
