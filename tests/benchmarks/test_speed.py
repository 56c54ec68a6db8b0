"""Speed benchmarks: ``tox -e bench`` (``pytest tests/benchmarks --benchmark-enable --benchmark-only``).

The default test run does not collect this folder (tests/conftest.py): a benchmark asserts nothing. With
``--benchmark-enable --benchmark-disable`` every benchmark executes once, untimed, on reduced model sizes and
few samples; the full-size MOSI shapes of the heavy models run only in the timed mode. Throughput (samples/s), epoch
seconds and peak memory go to each benchmark's ``extra_info`` (``--benchmark-json`` keeps them).

Peak memory: CUDA ``max_memory_allocated``; on CPU the resident-set high-water mark (``peak_rss_mb``)
and, for reference, ``tracemalloc``'s peak (``tracemalloc_peak_mb``), which only sees Python's
allocator -- not tensor storage, which torch allocates with malloc directly.
"""

from __future__ import annotations

import dataclasses
import time
import tracemalloc

import pytest
import torch

from bench.data.tensors import DatasetBundle
from bench.perf import PeakMemory, batch_indices, model_config, shaped_bundle, single_model_stepper
from bench.registry import get_method
from bench.train.multiseed import VmapEnsemble
from bench.train.trainer import train
from tests.benchmarks.naive_emoe import naive_epoch

METHODS = ["emoe", "emoe-paper", "mult", "misa", "self_mm", "lf_dnn"]
# Reduced sizes for the untimed run (the timed run uses each method's real MOSI configuration).
SMALL = {
    "emoe": {"d_model": "32", "n_layers": "1", "n_heads": "4"},
    "emoe-paper": {"d_model": "32", "n_layers": "1", "n_heads": "4"},
    "mult": {"d_model": "10", "nlevels": "1", "num_heads": "2"},
}
# Full-size shapes whose single step takes seconds to tens of seconds on a CPU: timed mode only.
HEAVY_FULL = {"emoe", "emoe-paper", "mult"}
DROPOUTS = ("attn_dropout", "attn_dropout_a", "attn_dropout_v", "relu_dropout", "res_dropout", "embed_dropout",
            "text_dropout", "output_dropout")


@pytest.fixture
def timed(benchmark) -> bool:
    return not getattr(benchmark, "disabled", True)


@pytest.fixture
def device(timed) -> str:
    """The timed run uses the GPU when there is one (the untimed smoke run always uses the CPU)."""
    return "cuda" if timed and torch.cuda.is_available() else "cpu"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _config(method: str, timed: bool, setting: str = "unaligned", **extra):
    overrides = {} if timed else dict(SMALL.get(method, {}))
    overrides.update({k: str(v) for k, v in extra.items()})
    return model_config(method, setting, overrides=overrides)


def _record_rate(benchmark, samples_per_call: int) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None and stats.stats.mean > 0:
        benchmark.extra_info["samples_per_s"] = samples_per_call / stats.stats.mean


def _peak_memory(fn, device="cpu") -> dict:
    """Run ``fn`` once; peak memory above the start (RSS high-water or CUDA max allocated) + tracemalloc."""
    tracemalloc.start()
    with PeakMemory(device) as mem:
        fn()
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    key = "peak_cuda_mb" if torch.device(device).type == "cuda" else "peak_rss_mb"
    return {key: round(mem.peak_mb, 1), "tracemalloc_peak_mb": round(py_peak / 2**20, 2)}


def _subset(bundle: DatasetBundle, n: int) -> DatasetBundle:
    """The first ``n`` samples of every split (positions = indices, as Self-MM needs)."""
    splits = {k: s.take(torch.arange(min(n, len(s)))) for k, s in bundle.splits.items()}
    return dataclasses.replace(bundle, splits=splits)


# ------------------------------------------------------------------------------------ train step
@pytest.mark.parametrize("profile", ["compact", "full"])
@pytest.mark.parametrize("method", METHODS)
def test_train_step(benchmark, timed, device, method, profile):
    """One optimiser step (forward, loss, backward, Adam) at MOSI shapes; full shapes: batch 4."""
    if profile == "full" and method in HEAVY_FULL and not timed:
        pytest.skip("full-size shapes of this model run only with --benchmark-enable (seconds per step on CPU)")
    cls, hp = _config(method, timed)
    bs = hp.batch_size if profile == "compact" else 4
    if not timed:
        bs = min(bs, 8)
    bundle = shaped_bundle(profile, "unaligned", n=max(bs, 8)).to(device)
    step = single_model_stepper(cls, hp, bundle.info(), 1111, device)
    split = bundle.splits["train"]
    step.model.on_epoch_start(1, split)
    idx = torch.arange(bs, device=device)

    def run():
        step(split, idx)
        _sync(device)

    benchmark.extra_info.update(_peak_memory(run, device))
    benchmark.extra_info.update({"batch_size": bs, "profile": profile,
                                 "n_parameters": sum(p.numel() for p in step.model.parameters())})
    if profile == "full" and method in HEAVY_FULL:
        benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    else:
        benchmark(run)
    _record_rate(benchmark, bs)


# ------------------------------------------------------------------------------------ epoch
@pytest.mark.parametrize("method", ["emoe", "mult", "misa", "self_mm", "lf_dnn"])
def test_epoch_time(benchmark, timed, device, method):
    """One epoch of the shared trainer (train + validation, then the final valid/test evaluation) on
    the compact synthetic MOSI set (untimed run: 32 samples per split, reduced sizes)."""
    from bench.data import load_dataset

    bundle = load_dataset("synthetic-mosi", "unaligned", profile="compact")
    if not timed:
        bundle = _subset(bundle, 32)
    cls, hp = _config(method, timed, max_epochs=1)
    if not timed and hasattr(hp, "grad_accum"):  # 32 samples = 2 batches: accumulating 8-10 would never step
        hp = dataclasses.replace(hp, grad_accum=1)
    seconds = {}

    def run():
        out = train(cls, hp, bundle, 1111, device=device)
        seconds["epoch_s"] = out.history[0]["seconds"]

    benchmark.pedantic(run, rounds=2 if timed else 1, iterations=1)
    benchmark.extra_info.update(seconds)
    benchmark.extra_info["train_samples"] = len(bundle.train)


# ------------------------------------------------------------------------------------ loop vs vmap
@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("mode", ["loop", "vmap"])
@pytest.mark.parametrize("method", ["emoe", "mult"])
def test_multiseed_step(benchmark, timed, device, method, mode, k):
    """One optimiser step of each of K seeds: K separate models (loop) vs one vmap ensemble."""
    cls, hp = _config(method, timed)
    bs = hp.batch_size if timed else 4
    if not timed:
        k = min(k, 2)
    bundle = shaped_bundle("compact", "unaligned", n=64).to(device)
    split = bundle.splits["train"]
    idx = batch_indices(64, bs, k, 1)[0].to(device)
    seeds = [1111 + i for i in range(k)]
    if mode == "loop":
        steppers = [single_model_stepper(cls, hp, bundle.info(), s, device) for s in seeds]

        def run():
            for j, step in enumerate(steppers):
                step(split, idx[j])
            _sync(device)
    else:
        ens = VmapEnsemble(cls, hp, bundle.info(), seeds, device)

        def run():
            ens.zero_grad()
            ens.forward_backward(split, idx)
            ens.step()
            _sync(device)

    benchmark.extra_info.update(_peak_memory(run, device))
    benchmark.extra_info.update({"K": k, "batch_size": bs})
    benchmark.group = f"multiseed-{method}-K{k}"
    benchmark(run)
    _record_rate(benchmark, k * bs)


# ------------------------------------------------------------------------------------ data loading
def test_load_dataset_cached(benchmark):
    from bench.data import load_dataset

    load_dataset("synthetic-mosi", "unaligned", profile="compact")  # fills the cache
    bundle = benchmark(load_dataset, "synthetic-mosi", "unaligned", profile="compact")
    assert len(bundle.train) == 400


# ------------------------------------------------------------------------------------ naive EMOE
def _emoe_for_compare(timed: bool, dropout: bool = True):
    extra = {} if dropout else {k: 0.0 for k in DROPOUTS}
    cls, hp = _config("emoe", timed, setting="unaligned", **extra)
    return cls, hp


@pytest.mark.parametrize("impl", ["ours", "naive"])
def test_emoe_epoch_ours_vs_naive(benchmark, timed, device, impl):
    """Per-epoch seconds of EMOE: the shared trainer (tensors indexed in place, vectorised fusion and
    importance) vs the official pattern (DataLoader of per-sample dicts, per-sample Python loops,
    ``.item()`` every step). Compare the two rows of group ``emoe-epoch``."""
    from bench.data import load_dataset

    bundle = load_dataset("synthetic-mosi", "unaligned", profile="compact")
    if not timed:
        bundle = _subset(bundle, 32)
    cls, hp = _emoe_for_compare(timed)
    hp = dataclasses.replace(hp, max_epochs=1, **({} if timed else {"grad_accum": 1}))  # 2 batches must step
    benchmark.group = "emoe-epoch"
    seconds = {}

    if impl == "ours":
        def run():
            t0 = time.perf_counter()
            train(cls, hp, bundle, 1111, device=device)
            seconds["epoch_s"] = time.perf_counter() - t0
    else:
        def run():
            t0 = time.perf_counter()
            torch.manual_seed(1111)
            model = cls(hp, bundle.info()).to(device)
            opt = torch.optim.Adam(model.param_groups())
            naive_epoch(model, bundle, hp, opt, torch.Generator().manual_seed(1111), device)
            _sync(device)
            seconds["epoch_s"] = time.perf_counter() - t0

    benchmark.pedantic(run, rounds=2 if timed else 1, iterations=1)
    benchmark.extra_info.update(seconds)
    benchmark.extra_info["train_samples"] = len(bundle.train)


def test_registry_covers_benchmarked_methods():
    for m in METHODS:
        get_method(m)
