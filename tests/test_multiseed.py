"""bench.train.multiseed: the vmap ensemble and the process pool reproduce the loop path."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from bench.errors import UserError
from bench.method import Method
from bench.registry import get_method
from bench.train.multiseed import (
    ExecOptions,
    VmapEnsemble,
    accelerated,
    exec_record,
    train_many,
    vmap_blocker,
    vmap_math_attention,
)
from bench.train.seeding import seed_everything
from tests.helpers import ToyMethod, make_bundle

SEEDS = [1, 2, 3]


class TinyMLP(Method):
    """A vmap-able test method (no hooks): mean-pooled inputs -> MLP with dropout."""

    name = "tiny-mlp"

    def __init__(self, hp, info):
        super().__init__(hp, info)
        d = info.dims["text"] + info.dims["audio"] + info.dims["vision"]
        self.net = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 1))

    def forward(self, batch):
        x = torch.cat([batch.text.mean(1), batch.audio.mean(1), batch.vision.mean(1)], dim=-1)
        return {"pred": self.net(x).squeeze(-1)}
_DROPOUTS = ("attn_dropout", "attn_dropout_a", "attn_dropout_v", "relu_dropout", "res_dropout", "embed_dropout",
             "text_dropout", "output_dropout")


def tiny_hp(method: str, **kw):
    """A small configuration of ``method`` with every dropout at 0 (deterministic forward)."""
    cls = get_method(method)
    hp = cls.default_hparams("mosi", "aligned")
    zero = {k: 0.0 for k in _DROPOUTS}
    if method.startswith("emoe"):
        size = dict(d_model=16, n_heads=2, n_layers=1)
    else:  # mult
        size = dict(d_model=8, num_heads=2, nlevels=1, conv_kernel_l=1, conv_kernel_a=1, conv_kernel_v=1)
    base = dict(grad_accum=2, batch_size=8, **zero, **size)
    base.update(kw)
    return cls, dataclasses.replace(hp, **base)


@pytest.fixture(scope="module")
def bundle():
    return make_bundle(sizes=(48, 16, 16))


def _loop_step(cls, hp, bundle, seed, idx, lr=None):
    """What trainer.train does for one optimiser step of one seed (no accumulation)."""
    seed_everything(seed)
    model = cls(hp, bundle.info())
    groups = model.param_groups()
    if lr is not None:
        for g in groups:
            g["lr"] = lr
    opt = torch.optim.Adam(groups)
    model.train()
    model.max_abs_grad = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for _ in range(2):  # two Adam steps: the second one uses non-zero moments
        opt.zero_grad(set_to_none=True)
        batch = bundle.splits["train"].take(idx)
        model.loss_terms(model(batch), batch)["total"].backward()
        for n, p in model.named_parameters():
            if p.grad is not None:
                model.max_abs_grad[n] = torch.maximum(model.max_abs_grad[n], p.grad.abs())
        if hp.grad_clip_value > 0:
            torch.nn.utils.clip_grad_value_(model.parameters(), hp.grad_clip_value)
        opt.step()
    return model


def _assert_params_close(stacked, k, ref, lr, n_steps=2):
    """Member ``k`` of the stack equals ``ref`` to 1e-5, except elements whose exact gradient is 0
    (the attention key bias: softmax is shift-invariant; a bias before BatchNorm): their computed
    gradient is rounding noise (1e-10 to 1e-7) that Adam normalises into +-lr steps of arbitrary sign in
    *both* paths. Those must stay within Adam's bound (n_steps * lr)."""
    for name, p in ref.named_parameters():
        got, want = stacked[name][k], p.detach()
        noise = ref.max_abs_grad[name] < 1e-6
        torch.testing.assert_close(got[~noise], want[~noise], atol=1e-5, rtol=0, msg=name)
        torch.testing.assert_close(got[noise], want[noise], atol=2 * n_steps * lr, rtol=0, msg=name)


def _vmap_step(ens, bundle, idx, hp):
    for _ in range(2):
        ens.zero_grad()
        ens.forward_backward(bundle.splits["train"], idx)
        if hp.grad_clip_value > 0 and hp.grad_clip_at == "backward":
            ens.clip_grad_value(hp.grad_clip_value)
        ens.step()


@pytest.mark.parametrize("method,extra", [
    ("emoe", dict(weight_decay=0.01)),
    ("emoe-paper", dict(grad_clip_value=0.05)),  # BatchNorm router: stacked buffers
    ("mult", dict(grad_clip_value=0.05, grad_clip_at="step")),
])
def test_vmap_step_equals_loop_steps(bundle, method, extra):
    cls, hp = tiny_hp(method, **extra)
    gen = torch.Generator().manual_seed(0)
    idx = torch.stack([torch.randperm(48, generator=gen)[:8] for _ in SEEDS])
    ens = VmapEnsemble(cls, hp, bundle.info(), SEEDS)
    _vmap_step(ens, bundle, idx, hp)
    for k, seed in enumerate(SEEDS):
        ref = _loop_step(cls, hp, bundle, seed, idx[k])
        _assert_params_close(ens.params, k, ref, hp.learning_rate)
        for name, b in ref.named_buffers():
            # BatchNorm running stats see the noise-driven bias difference above (x momentum 0.1)
            torch.testing.assert_close(ens.buffers[name][k], b, atol=1e-4, rtol=0, msg=name)


def test_vmap_updates_stacked_buffers(bundle):
    """BatchNorm running statistics are updated per member inside vmap (one forward: exact)."""
    cls, hp = tiny_hp("emoe-paper")
    idx = torch.stack([torch.arange(8) + 8 * k for k in range(3)])
    ens = VmapEnsemble(cls, hp, bundle.info(), SEEDS)
    ens.forward_backward(bundle.splits["train"], idx)
    assert ens.buffers, "the paper router has BatchNorm buffers"
    for k, seed in enumerate(SEEDS):
        seed_everything(seed)
        model = cls(hp, bundle.info()).train()
        model(bundle.splits["train"].take(idx[k]))
        for name, b in model.named_buffers():
            torch.testing.assert_close(ens.buffers[name][k], b, atol=1e-6, rtol=0, msg=name)
        assert int(ens.buffers["net.router.bn.num_batches_tracked"][k]) == 1


@pytest.mark.parametrize("method", ["emoe", "mult"])
def test_vmap_gradients_equal_loop_gradients(bundle, method):
    """One backward of the ensemble = K backward passes (summed over 2 accumulated batches)."""
    cls, hp = tiny_hp(method)
    idx = torch.stack([torch.arange(8) + 8 * k for k in range(3)])
    ens = VmapEnsemble(cls, hp, bundle.info(), SEEDS)
    ens.zero_grad()
    for shift in (0, 24):
        ens.forward_backward(bundle.splits["train"], idx + shift)
    for k, seed in enumerate(SEEDS):
        seed_everything(seed)
        model = cls(hp, bundle.info())
        for shift in (0, 24):
            batch = bundle.splits["train"].take(idx[k] + shift)
            model.loss_terms(model(batch), batch)["total"].backward()
        for name, p in model.named_parameters():
            if p.grad is None:
                assert ens.params[name].grad is None, name
            else:
                torch.testing.assert_close(ens.params[name].grad[k], p.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_stacked_adam_equals_torch_adam():
    """Given the same gradients the stacked optimiser is torch.optim.Adam (weight decay included)."""
    from bench.train.multiseed import _StackedAdam

    gen = torch.Generator().manual_seed(0)
    members = [torch.randn(4, 3, generator=gen, requires_grad=True) for _ in range(3)]
    opts = [torch.optim.Adam([p], lr=1e-2, weight_decay=0.1) for p in members]
    stacked = torch.stack([p.detach() for p in members]).requires_grad_()
    adam = _StackedAdam([{"names": ["w"], "lr": 1e-2, "weight_decay": 0.1}], 3)
    for _ in range(3):
        grads = [torch.randn(4, 3, generator=gen) for _ in members]
        for p, g, o in zip(members, grads, opts):
            p.grad = g.clone()
            o.step()
        stacked.grad = torch.stack(grads)
        adam.step({"w": stacked})
        for k, p in enumerate(members):
            torch.testing.assert_close(stacked[k].detach(), p.detach(), atol=1e-7, rtol=0)


def test_vmap_per_member_learning_rates(bundle):
    """After ReduceLROnPlateau the members' learning rates differ: each must use its own."""
    cls, hp = tiny_hp("mult")
    lrs = [1e-3, 5e-4, 2e-3]
    idx = torch.stack([torch.arange(8) + 8 * k for k in range(3)])
    ens = VmapEnsemble(cls, hp, bundle.info(), SEEDS)
    for g in ens.optimizer.groups:
        g["lr"] = list(lrs)
    _vmap_step(ens, bundle, idx, hp)
    for k, seed in enumerate(SEEDS):
        ref = _loop_step(cls, hp, bundle, seed, idx[k], lr=lrs[k])
        _assert_params_close(ens.params, k, ref, lrs[k])


def _same_selection(a, b, tol=1e-4):
    assert (a.best_epoch, a.epochs_run, a.stopped, a.n_optimizer_steps) == \
        (b.best_epoch, b.epochs_run, b.stopped, b.n_optimizer_steps)
    assert [r["lr"] for r in a.history] == pytest.approx([r["lr"] for r in b.history])
    assert [r["improved"] for r in a.history] == [r["improved"] for r in b.history]
    for ra, rb in zip(a.history, b.history):
        assert ra["valid"]["loss"] == pytest.approx(rb["valid"]["loss"], abs=tol)
        assert ra["train"]["total"] == pytest.approx(rb["train"]["total"], abs=tol)
    for key, v in a.test.items():
        assert v == pytest.approx(b.test[key], abs=tol, nan_ok=True), key
    assert a.n_parameters == b.n_parameters


@pytest.mark.parametrize("method", ["emoe", "mult"])
def test_vmap_selection_equals_loop(bundle, method):
    """Per-seed early stopping, plateau schedule and best checkpoint: same as the loop path. With
    lr 3e-2 the seeds stop at different epochs (members leave the stack) and the lr is halved."""
    cls, hp = tiny_hp(method, learning_rate=3e-2, max_epochs=6, early_stop=2, plateau_patience=1)
    loop = train_many(cls, hp, bundle, SEEDS, exec_mode="loop")
    vm = train_many(cls, hp, bundle, SEEDS, exec_mode="vmap")
    assert len({o.epochs_run for o in loop}) > 1  # the fixture exercises per-seed stopping
    assert any(r["lr"] < hp.learning_rate for o in loop for r in o.history)
    for a, b in zip(vm, loop):
        _same_selection(a, b)
        for key in ("pred", "weights", "fused"):
            if key in b.test_outputs:
                assert a.test_outputs[key] == pytest.approx(b.test_outputs[key], abs=1e-4)


def test_vmap_three_epochs_without_stopping(bundle):
    """The plain case of the brief: 3 epochs, tail stepped (not dropped), backward-time clipping."""
    cls, hp = tiny_hp("emoe", max_epochs=3, early_stop=10, grad_accum=4, grad_accum_drop_tail=False,
                      grad_clip_value=0.5, grad_clip_at="backward", learning_rate=1e-3)
    loop = train_many(cls, hp, bundle, [7, 8], exec_mode="loop")
    vm = train_many(cls, hp, bundle, [7, 8], exec_mode="vmap")
    for a, b in zip(vm, loop):
        assert a.stopped == "max_epochs" and a.n_optimizer_steps == 3 * 2  # 6 batches / 4 -> 1 + tail
        _same_selection(a, b)


def test_vmap_with_dropout_runs_and_differs_from_loop(bundle):
    """Dropout on: members draw from one RNG stream, so results are close but not identical."""
    cls, hp = tiny_hp("emoe", max_epochs=1, text_dropout=0.3, output_dropout=0.3)
    vm = train_many(cls, hp, bundle, [1, 2], exec_mode="vmap")
    vm2 = train_many(cls, hp, bundle, [1, 2], exec_mode="vmap")
    assert [o.test["mae"] for o in vm] == [o.test["mae"] for o in vm2]  # reproducible for a fixed group
    assert all(o.epochs_run == 1 for o in vm)


@pytest.mark.parametrize("method", ["misa", "self_mm", "lf_dnn"])
def test_vmap_refuses_recurrent_models(bundle, method):
    cls = get_method(method)
    hp = cls.default_hparams("mosi", "aligned")
    with pytest.raises(UserError, match="--exec procs"):
        train_many(cls, hp, bundle, [1, 2], exec_mode="vmap")


def test_vmap_refuses_step_hooks(bundle):
    hp = ToyMethod.HParams()
    assert "after_step" in vmap_blocker(ToyMethod(hp, bundle.info()))
    with pytest.raises(UserError, match="--exec procs"):
        train_many(ToyMethod, hp, bundle, [1], exec_mode="vmap")


def test_bad_options(bundle):
    cls, hp = tiny_hp("emoe")
    with pytest.raises(UserError, match="--exec"):
        train_many(cls, hp, bundle, [1], exec_mode="threads")
    with pytest.raises(UserError, match="--amp"):
        train_many(cls, hp, bundle, [1], amp="fp8")
    with pytest.raises(UserError, match="repeat"):
        train_many(cls, hp, bundle, [1, 1])
    assert train_many(cls, hp, bundle, []) == []


@pytest.mark.slow
def test_procs_equal_loop_exactly(bundle):
    """Spawned workers (1 thread each) give bitwise the loop path's results on CPU."""
    cls, hp = tiny_hp("emoe", max_epochs=2, text_dropout=0.2)  # dropout on: the RNG must match too
    loop = train_many(cls, hp, bundle, [11, 12], exec_mode="loop")
    seen = []
    procs = train_many(cls, hp, bundle, [11, 12], exec_mode="procs", workers=2, threads_per_worker=1,
                       on_epoch=lambda seed, row: seen.append((seed, row["epoch"])))
    assert seen == [(11, 1), (11, 2), (12, 1), (12, 2)]
    for a, b in zip(procs, loop):
        assert a.test == b.test
        assert a.valid == b.valid
        assert [r["valid"] for r in a.history] == [r["valid"] for r in b.history]
        for key, v in b.test_outputs.items():
            assert (a.test_outputs[key] == v).all(), key


def test_loop_on_epoch_gets_the_seed(bundle):
    cls, hp = tiny_hp("mult", max_epochs=1)
    seen = []
    train_many(cls, hp, bundle, [3, 4], exec_mode="vmap", on_epoch=lambda s, r: seen.append(("vmap", s)))
    train_many(cls, hp, bundle, [3, 4], exec_mode="loop", on_epoch=lambda s, r: seen.append(("loop", s)))
    assert seen == [("vmap", 3), ("vmap", 4), ("loop", 3), ("loop", 4)]


def test_amp_bf16_loop_and_vmap(bundle):
    """bf16 autocast: runs on CPU, outputs stay float32, results close to (not equal to) float32."""
    cls, hp = tiny_hp("emoe", max_epochs=1)
    wrapped = accelerated(cls, "bf16", False)
    assert issubclass(wrapped, cls) and accelerated(cls, "off", False) is cls
    ref = train_many(cls, hp, bundle, [1], exec_mode="loop")[0]
    for mode in ("loop", "vmap"):
        out = train_many(cls, hp, bundle, [1], exec_mode=mode, amp="bf16")[0]
        assert out.test_outputs["pred"].dtype.name == "float32"
        assert out.test["mae"] == pytest.approx(ref.test["mae"], abs=0.1)


@pytest.mark.parametrize("mode", [pytest.param("loop", marks=pytest.mark.slow), "vmap"])
def test_compile_traces(bundle, monkeypatch, mode):
    """torch.compile of the forward (loop) / of the vmapped step (vmap), traced by dynamo with the
    eager backend (inductor's CPU code generation takes ~10 minutes here; GPU: bench.perf)."""
    import bench.train.multiseed as ms

    monkeypatch.setattr(ms, "COMPILE_OPTIONS", {"backend": "eager"})
    ms.accelerated.cache_clear()
    cls, hp = TinyMLP, TinyMLP.HParams(max_epochs=1)
    ref = train_many(cls, hp, bundle, [1, 2], exec_mode=mode)
    out = train_many(cls, hp, bundle, [1, 2], exec_mode=mode, compile=True)
    ms.accelerated.cache_clear()
    for a, b in zip(out, ref):
        assert a.test["mae"] == pytest.approx(b.test["mae"], abs=1e-4)


def test_exec_record():
    rec = exec_record(ExecOptions("vmap", "bf16", True), [1111, 1112])
    assert rec["exec_mode"] == "vmap" and rec["amp"] == "bf16" and rec["compile"] is True
    assert rec["ensemble_seeds"] == [1111, 1112] and isinstance(rec["ensemble_rng_seed"], int)
    assert exec_record(ExecOptions("procs", workers=2), [1, 2, 3])["workers"] == 2
    assert "ensemble_seeds" not in exec_record(ExecOptions(), [1])


def test_vmap_classification_selects_on_f1():
    """MIntRec-style: C-way logits (K, B, C), cross-entropy, selection on validation F1."""
    from bench.data import load_dataset

    b = load_dataset("synthetic-mintrec", "unaligned", profile="compact")
    b = dataclasses.replace(b, splits={k: s.take(torch.arange(40)) for k, s in b.splits.items()})
    cls = get_method("emoe")
    hp = dataclasses.replace(cls.default_hparams("mintrec", "unaligned"), d_model=16, n_heads=2, n_layers=1,
                             grad_accum=1, batch_size=8, max_epochs=3, learning_rate=3e-3,
                             **{k: 0.0 for k in _DROPOUTS})
    assert hp.select_on == "f1"
    loop = train_many(cls, hp, b, [1, 2], exec_mode="loop")
    vm = train_many(cls, hp, b, [1, 2], exec_mode="vmap")
    for a, c in zip(vm, loop):
        _same_selection(a, c)
        assert a.test_outputs["pred"].shape == (40, 20)


def test_vmap_uses_spelled_out_attention_unless_sdpa_is_asked_for(bundle, monkeypatch):
    """SDPA under vmap has no CPU batching rule, and CUDA's memory-efficient kernel rejects the vmapped causal
    mask (seen on an H200): the ensemble's attention modules run the math path on every device by default."""
    from bench.nn.transformer import MultiheadAttention

    assert vmap_math_attention("") and vmap_math_attention("math") and not vmap_math_attention("sdpa")
    with pytest.raises(UserError, match="BENCH_VMAP_ATTENTION='flash': expected math or sdpa"):
        vmap_math_attention("flash")
    cls = get_method("mult")
    hp = dataclasses.replace(cls.default_hparams("mosi", "unaligned"), d_model=8, num_heads=2, nlevels=1)

    def impls(ens):
        return {m.impl for m in ens.template.modules() if isinstance(m, MultiheadAttention)}

    monkeypatch.delenv("BENCH_VMAP_ATTENTION", raising=False)
    assert impls(VmapEnsemble(cls, hp, bundle.info(), [1, 2])) == {"math"}
    monkeypatch.setenv("BENCH_VMAP_ATTENTION", "sdpa")
    assert impls(VmapEnsemble(cls, hp, bundle.info(), [1, 2])) == {"sdpa"}
