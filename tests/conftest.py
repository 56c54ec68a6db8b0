import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """No test reads a user's data root; synthetic caches go to a per-session temp dir."""
    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    monkeypatch.delenv("BENCH_TEXT_MODEL", raising=False)
    cache = tmp_path_factory.getbasetemp() / "bench-cache"
    monkeypatch.setenv("BENCH_CACHE", str(cache))
    yield


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests run many tiny kernels: with 2 intra-op threads on a shared 2-core machine they are
    several times slower than with one (and CI has 2 cores), so every test pins one thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance (2 CPUs) for every Ray test of the session: starting Ray takes 5-15 s."""
    ray = pytest.importorskip("ray", reason="the Ray path needs the 'dist' extra (pip install 'emoe-bench[dist]')")
    os.environ.pop("RAY_ADDRESS", None)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def shared_data(*parts) -> Path:
    """A path under ../shared/data, or skip the test when the reference data is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"reference data {p} not present (only in the project's workspace; users do not have it)")
    return p


os.environ.setdefault("TQDM_DISABLE", "1")


BENCHMARKS = Path(__file__).resolve().parent / "benchmarks"


def pytest_ignore_collect(collection_path, config):
    """Speed benchmarks (tests/benchmarks) are collected only with ``--benchmark-enable`` (``tox -e bench``):
    in the default run they would execute untimed and assert nothing."""
    if Path(collection_path).resolve() == BENCHMARKS:
        try:
            enabled = config.getoption("benchmark_enable")
        except ValueError:  # pytest-benchmark not installed
            enabled = False
        return None if enabled else True
    return None
