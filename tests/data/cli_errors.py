"""Run ``bench run`` in-process on a data root and return its one-line error (exit 2, no traceback)."""

from __future__ import annotations

from pathlib import Path

from bench.cli import main


def run_argv(root: Path, out: Path, dataset: str = "mosi", setting: str = "aligned", *extra: str) -> list[str]:
    method = "mult" if dataset == "mintrec" else "lf_dnn"
    # MulT's MIntRec form reads BERT: a random tiny one, so the data checks (not the text-model refusal) answer
    text = ["--text-model", "random:bert-mini"] if dataset == "mintrec" else []
    return ["run", "--method", method, "--dataset", dataset, "--setting", setting, "--data-root", str(root),
            "--epochs", "1", "--seeds", "1111", "--out", str(out), *text, *extra]


def one_line_error(capsys, argv: list[str]) -> str:
    """The message of a CLI call that must fail with exit 2 and exactly one stderr line."""
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]
