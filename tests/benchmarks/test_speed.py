"""Speed benchmarks: ``pytest tests/benchmarks --benchmark-enable --benchmark-only``.

In the normal test run (pyproject sets ``--benchmark-disable``) every benchmark executes once,
untimed, on reduced model sizes and few samples (a smoke test of the measured code paths); the
full-size MOSI shapes of the heavy models run only in the timed mode. Throughput (samples/s), epoch
seconds and peak memory go to each benchmark's ``extra_info`` (``--benchmark-json`` keeps them).

Peak memory: CUDA ``max_memory_allocated``; on CPU the resident-set high-water mark (``peak_rss_mb``)
and, for reference, ``tracemalloc``'s peak (``tracemalloc_peak_mb``), which only sees Python's
allocator -- not tensor storage, which torch allocates with malloc directly.
"""

from __future__ import annotations

import dataclasses
import time
import tracemalloc

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from bench.data.tensors import DatasetBundle, Split
from bench.metrics import compute_metrics
from bench.perf import PeakMemory, batch_indices, model_config, shaped_bundle, single_model_stepper
from bench.registry import get_method
from bench.train.multiseed import VmapEnsemble
from bench.train.trainer import train

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
class PerSampleDataset(Dataset):
    """MMSA's ``MMDataset`` pattern: numpy arrays, one dict of fresh tensors per sample."""

    def __init__(self, split: Split):
        self.text, self.audio = split.text.numpy(), split.audio.numpy()
        self.vision, self.labels = split.vision.numpy(), split.labels.numpy()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"text": torch.Tensor(self.text[i]), "audio": torch.Tensor(self.audio[i]),
                "vision": torch.Tensor(self.vision[i]), "labels": {"M": torch.Tensor(self.labels[i].reshape(-1))},
                "index": i}


def naive_forward(net, text, audio, vision) -> dict:
    """EMOENet.forward (official face) with the official per-sample fusion loop (emoe.py:159-168)."""
    hp = net.hp
    x = {"l": F.dropout(text, p=hp.text_dropout, training=net.training).transpose(1, 2),
         "v": vision.transpose(1, 2), "a": audio.transpose(1, 2)}
    enc = {m: net.encoder_c(net.conv_proj[m](x[m]) if net.conv_applied[m] else x[m]) for m in ("l", "v", "a")}
    w = net.route(text, vision, audio, enc)
    out, hs, feats = {"weights": w}, {}, {}
    for m in ("l", "v", "a"):
        h = net.transformers[m](enc[m].transpose(1, 2))[:, -1]
        feat, logit = net.unimodal_heads[m](h)
        hs[m], feats[m], out[f"pred_{m}"] = h, feat, logit.squeeze(-1)
    fused = []
    for i in range(w.shape[0]):  # per-sample Python loop, as the official code
        fused.append(w[i, 0] * hs["l"][i] + w[i, 1] * hs["v"][i] + w[i, 2] * hs["a"][i])
    c = torch.stack(fused)
    c_feat, c_logit = net.fused_head(c)
    out.update(pred=c_logit.squeeze(-1), proj_c=c_feat, feats=feats)
    return out


def naive_loss(out, y, hp):
    """Official EMOE.py:52-82 with the per-sample importance loop."""
    l1 = torch.nn.L1Loss()
    l_m = l1(out["pred"], y)
    l_l, l_v, l_a = (l1(out[f"pred_{m}"], y) for m in ("l", "v", "a"))
    imp = []
    for i in range(y.shape[0]):
        inv = [1.0 / ((y[i] - out[f"pred_{m}"][i]) ** 2 + hp.importance_eps) for m in ("l", "v", "a")]
        total = inv[0] + inv[1] + inv[2]
        imp.append(torch.stack([v / total for v in inv]))
    target = torch.stack(imp).detach()
    w = out["weights"]
    sim = torch.nn.MSELoss()(w, target)
    p = w.clamp_min(hp.entropy_eps)
    entropy = (w.shape[1] * (p * p.log()).sum(dim=1)).mean()
    teacher = sum(w[:, j:j + 1] * out["feats"][m] for j, m in enumerate(("l", "v", "a"))).detach()
    ud = ((torch.softmax(out["proj_c"], -1) - torch.softmax(teacher, -1)) ** 2).mean()
    return l_m + (l_l + l_v + l_a) / 3 + hp.lambda1 * (entropy + hp.alpha * sim) + hp.lambda2 * ud


def naive_epoch(model, bundle: DatasetBundle, hp, optimizer, gen: torch.Generator, device="cpu") -> dict:
    """One official-style epoch: DataLoader + per-step ``.item()`` + CPU copies of every output, then
    validation and test passes (the official code evaluates both every epoch)."""
    net = model.net
    loader = DataLoader(PerSampleDataset(bundle.splits["train"]), batch_size=hp.batch_size, shuffle=True,
                        generator=gen)
    model.train()
    left, train_loss, y_pred, y_true = hp.grad_accum, 0.0, [], []
    for batch in loader:
        if left == hp.grad_accum:
            optimizer.zero_grad()
        left -= 1
        text, audio, vision = (batch[k].to(device) for k in ("text", "audio", "vision"))
        y = batch["labels"]["M"].to(device).view(-1)
        out = naive_forward(net, text, audio, vision)
        loss = naive_loss(out, y, hp)
        loss.backward()
        train_loss += loss.item()
        y_pred.append(out["pred"].detach().cpu())
        y_true.append(y.cpu())
        if not left:
            optimizer.step()
            left = hp.grad_accum
    compute_metrics("regression", torch.cat(y_pred).numpy(), torch.cat(y_true).numpy())
    res = {}
    model.eval()
    with torch.no_grad():
        for name in ("valid", "test"):
            preds, trues, losses = [], [], []
            for batch in DataLoader(PerSampleDataset(bundle.splits[name]), batch_size=hp.batch_size):
                y = batch["labels"]["M"].to(device).view(-1)
                out = naive_forward(net, *(batch[k].to(device) for k in ("text", "audio", "vision")))
                losses.append(F.l1_loss(out["pred"], y).item())
                preds.append(out["pred"].cpu())
                trues.append(y.cpu())
            res[name] = compute_metrics("regression", torch.cat(preds).numpy(), torch.cat(trues).numpy())
            res[name]["loss"] = round(float(np.mean(losses)), 4)
    return res


def _emoe_for_compare(timed: bool, dropout: bool = True):
    extra = {} if dropout else {k: 0.0 for k in DROPOUTS}
    cls, hp = _config("emoe", timed, setting="unaligned", **extra)
    return cls, hp


def test_naive_emoe_is_the_same_math():
    """The naive baseline computes what emoe computes (dropout off): outputs, loss, gradients."""
    from bench.data import load_dataset
    from bench.train.seeding import seed_everything

    bundle = _subset(load_dataset("synthetic-mosi", "unaligned", profile="compact"), 16)
    cls, hp = _emoe_for_compare(timed=False, dropout=False)
    seed_everything(0)
    model = cls(hp, bundle.info()).train()
    batch = bundle.train.take(torch.arange(16))
    out = model(batch)
    ours = model.loss_terms(out, batch)["total"]
    ours.backward()
    g_ours = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    nout = naive_forward(model.net, batch.text, batch.audio, batch.vision)
    naive = naive_loss(nout, batch.labels, hp)
    naive.backward()
    torch.testing.assert_close(nout["pred"], out["pred"])
    torch.testing.assert_close(naive, ours)
    for n, g in g_ours.items():
        torch.testing.assert_close(dict(model.named_parameters())[n].grad, g, atol=1e-6, rtol=1e-4, msg=n)


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


def test_perf_script_smoke(tmp_path, capsys):
    """``python -m bench.perf`` end to end on a tiny MulT (loop and vmap; procs: tests/test_multiseed)."""
    import json

    from bench import perf

    out = tmp_path / "perf.json"
    rc = perf.main(["--models", "mult", "--k", "1,2", "--modes", "loop,vmap", "--steps", "1", "--warmup", "0",
                    "--batch-size", "2", "--set", "d_model=10", "--set", "nlevels=1", "--set", "num_heads=2",
                    "--json", str(out)])
    assert rc == 0
    payload = json.loads(out.read_text())
    assert payload["machine"]["device"] == "cpu" and "torch" in payload["machine"]
    rows = payload["rows"]
    assert [(r["mode"], r["K"]) for r in rows] == [("loop", 1), ("vmap", 1), ("loop", 2), ("vmap", 2)]
    assert all(r["samples_per_s"] > 0 and r["speedup_vs_loop"] > 0 for r in rows)
    assert "member steps/s" in capsys.readouterr().out
