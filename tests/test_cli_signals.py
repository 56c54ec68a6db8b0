"""SIGTERM ends a run like Ctrl-C: the "interrupted" line, exit 143, nothing half-written marked done (issue 14)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.cli import signals

REPO = Path(__file__).resolve().parents[1]

# Runs the real CLI; training is replaced by a hook that says READY and then waits, so the test can
# signal the process at a known point (inside a run, before anything is stored).
SCRIPT = textwrap.dedent("""
    import signal, sys, time
    import bench.runner

    # Ctrl-C as in an interactive shell: a test run started in the background (nohup, &) passes SIGINT on as
    # ignored, and Python then installs no KeyboardInterrupt handler
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def hanging_train(*args, **kwargs):
        print("READY", flush=True)
        time.sleep(120)
        raise SystemExit("the signal did not arrive")

    bench.runner.train = hanging_train
    from bench.cli import main
    raise SystemExit(main(sys.argv[1:]))
""")


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143),
                                       pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)])  # Ctrl-C: as before
def test_signal_during_a_run_prints_interrupted_and_marks_nothing_done(tmp_path, sig, code):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}  # BENCH_CACHE: the session's
    env.pop("BENCH_DATA_ROOT", None)
    out = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, "run", "--method", "lf_dnn", "--dataset", "synthetic-mosi",
                             "--epochs", "1", "--seeds", "1111", "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        for line in proc.stdout:
            if line.strip() == "READY":
                break
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert err.strip() == "interrupted: finished runs are kept; rerun the same command to resume"
    assert list(out.glob("runs/*/*/*/seed-1111")) == [] and list(out.rglob("done")) == []


def test_sigterm_raises_keyboard_interrupt_only_inside_the_guard():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as e, signals.sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # the handler interrupts this at once
    assert signals.interrupt_exit_code(e.value) == 143
    assert signals.interrupt_exit_code(KeyboardInterrupt()) == 130
    assert signal.getsignal(signal.SIGTERM) is before
