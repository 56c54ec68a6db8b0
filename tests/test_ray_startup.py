"""Ray start-up is bounded: a ray.init that never returns is a one-line error naming --executor local (issue 14).

Ray itself is replaced by a fake module whose ``init`` blocks (as it does when the local instance cannot
reach itself over loopback); networking is never touched.
"""

import signal
import sys
import time
import types

import pytest

from bench.cli import main
from bench.errors import UserError
from bench.executors import ray_executor
from bench.executors.ray_executor import RayExecutor


@pytest.fixture
def blocking_ray(monkeypatch):
    """A fake ``ray`` whose ``init`` blocks (for a minute, unless the start-up deadline interrupts it)."""
    calls = []

    def init(**kwargs):
        calls.append(kwargs)
        time.sleep(60)

    fake = types.SimpleNamespace(init=init, is_initialized=lambda: False, shutdown=lambda: None, calls=calls)
    monkeypatch.setitem(sys.modules, "ray", fake)
    return fake


def test_blocked_ray_init_times_out_with_one_line(blocking_ray):
    ex = RayExecutor(init_timeout=0.2, num_cpus=2)
    with pytest.raises(UserError) as e:
        ex._init(blocking_ray)
    assert str(e.value) == ("Ray did not start within 0.2 s (connecting to a local Ray instance); a local instance "
                            "needs a working loopback interface. Use --executor local instead, or raise "
                            "BENCH_RAY_INIT_TIMEOUT")
    assert blocking_ray.calls == [{"include_dashboard": False, "log_to_driver": True, "num_cpus": 2}]
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_ray_replacing_the_sigterm_handler_is_undone():
    """``ray.init`` installs a SIGTERM handler that exits silently; the CLI's (Ctrl-C-like) one comes back."""
    def ours(signum, frame):
        raise KeyboardInterrupt

    def init(**kwargs):
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(15))

    before = signal.signal(signal.SIGTERM, ours)
    try:
        RayExecutor(init_timeout=5)._init(types.SimpleNamespace(init=init, is_initialized=lambda: False))
        assert signal.getsignal(signal.SIGTERM) is ours
    finally:
        signal.signal(signal.SIGTERM, before)


def test_ray_init_failure_is_one_line(monkeypatch):
    def init(**kwargs):
        raise ConnectionError("could not connect to 10.0.0.1:6379\nmore detail")

    fake = types.SimpleNamespace(init=init, is_initialized=lambda: False)
    with pytest.raises(UserError) as e:
        RayExecutor(address="10.0.0.1:6379", init_timeout=5)._init(fake)
    assert str(e.value) == ("Ray could not start (the Ray cluster at 10.0.0.1:6379): ConnectionError: could not "
                            "connect to 10.0.0.1:6379; use --executor local instead")


@pytest.mark.parametrize("raw, expected", [("", 120.0), ("2.5", 2.5), (" 30 ", 30.0)])
def test_init_timeout_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv(ray_executor.ENV_INIT_TIMEOUT, raw)
    assert RayExecutor().init_timeout == expected


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "nan", "inf"])
def test_bad_init_timeout_is_refused(monkeypatch, raw):
    monkeypatch.setenv(ray_executor.ENV_INIT_TIMEOUT, raw)
    with pytest.raises(UserError, match=f"BENCH_RAY_INIT_TIMEOUT='{raw}': expected a positive number of seconds"):
        RayExecutor()


def test_cli_run_with_a_hanging_ray_exits_2(capsys, tmp_path, monkeypatch, blocking_ray):
    monkeypatch.setenv(ray_executor.ENV_INIT_TIMEOUT, "0.2")
    code = main(["run", "--method", "lf_dnn", "--dataset", "synthetic-mosi", "--epochs", "1", "--seeds", "1111",
                 "--executor", "ray", "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: Ray did not start within 0.2 s") and "--executor local" in err
    assert list(tmp_path.rglob("done")) == []
