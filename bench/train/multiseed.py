"""Several seeds of one configuration in one call: a loop, a vmap ensemble, or worker processes.

``train_many(method_cls, hp, bundle, seeds, device, exec_mode)`` returns one
:class:`~bench.train.trainer.TrainOutcome` per seed, in seed order, with the loop path's semantics
(bench/train/trainer.py; docs/performance.md compares the modes):

``loop``
    :func:`bench.train.trainer.train` once per seed. The reference; bitwise reproducible on CPU.
``vmap``
    One process, the K seeds as a leading batch dimension of every parameter and buffer
    (``torch.func.stack_module_state`` + ``functional_call`` + ``vmap(randomness="different")``).
    Each member is initialised exactly as the loop path initialises that seed, sees its own batch
    order (a generator seeded by its seed), has its own Adam moments, learning rates
    (``ReduceLROnPlateau`` per member), early stopping and best-validation snapshot, and finished
    members leave the stack. Summed gradient accumulation (tail dropped or stepped) and value
    clipping ("step" or "backward") are elementwise, hence identical per member. Dropout masks come
    from one RNG stream for all members, so a vmap run is *not* bitwise equal to the loop run with
    the same seeds (equal when dropout is off, up to float rounding); record ``exec_mode``.
    Only models vmap can batch: no LSTM/GRU (MISA, Self-MM, LF-DNN), no BERT, no real
    ``on_epoch_start``/``after_step`` hooks (Self-MM) -- those get a :class:`UserError` naming
    ``--exec procs``.
``procs``
    K spawned worker processes on the same device, each running :func:`trainer.train` for one seed
    (``workers`` at a time); bitwise equal to ``loop`` on CPU with the same thread count.

``amp="bf16"`` (autocast around forward and loss; outputs cast back to float32) and ``compile=True``
(``torch.compile`` of the forward, or of the vmapped step) are opt-in for every mode and must be
recorded with the results (:func:`exec_record`).
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import dataclasses
import functools
import hashlib
import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from bench.data.tensors import DatasetBundle, Split
from bench.errors import UserError
from bench.method import Method, TrainHParams
from bench.nn.transformer import MultiheadAttention
from bench.train.evaluation import batches, evaluate, split_metrics
from bench.train.guards import check_loss, check_stepped  # noqa: F401 - tests switch the guards off here and in trainer
from bench.train.seeding import seed_everything
from bench.train.trainer import TrainOutcome, run_epochs, train

EXEC_MODES = ("loop", "vmap", "procs")
# what --exec accepts: "auto" picks one of EXEC_MODES per configuration (bench/train/autoexec.py)
EXEC_CHOICES = ("auto",) + EXEC_MODES
AMP_MODES = ("off", "bf16")
# Keyword arguments of every torch.compile call made here (e.g. {"mode": "reduce-overhead"} for CUDA
# graphs; tests use {"backend": "eager"}: inductor's CPU code generation takes minutes).
COMPILE_OPTIONS: dict = {}


def _compile(fn):
    return torch.compile(fn, **COMPILE_OPTIONS)

__all__ = [
    "AMP_MODES", "COMPILE_OPTIONS", "EXEC_CHOICES", "EXEC_MODES", "ExecOptions", "VmapEnsemble", "accelerated",
    "check_vmappable",
    "exec_record", "train_many", "vmap_blocker",
]


# ------------------------------------------------------------------------------------ options
@dataclass(frozen=True)
class ExecOptions:
    """How seeds are executed; everything here belongs in the results' provenance."""

    exec_mode: str = "loop"
    amp: str = "off"
    compile: bool = False
    workers: int = 0  # procs: concurrent processes (0 = one per seed)
    threads_per_worker: int = 0  # procs: torch threads in each worker (0 = cores / workers)
    # "on": the loop path's device-bound static step (bench/train/static_step.py: CUDA graphs, fused Adam);
    # "auto": per configuration (static_step.resolve_graphs), the runner replaces it by "on"/"off" + graphs_adam
    graphs: str = "off"
    graphs_adam: str = "fused"  # the static step's Adam: fused (--graphs on) or default (--graphs auto: exact)

    def validate(self) -> None:
        if self.exec_mode not in EXEC_CHOICES:
            raise UserError(f"--exec {self.exec_mode!r}: expected one of {', '.join(EXEC_CHOICES)}")
        if self.graphs not in ("off", "on", "auto"):
            raise UserError(f"--graphs {self.graphs!r}: expected off, on or auto")
        if self.graphs == "on" and (self.amp != "off" or self.compile):
            raise UserError("--graphs on captures the float32 eager step; it does not combine with --amp or "
                            "--compile (torch.compile mode=reduce-overhead makes its own graphs)")
        if self.amp not in AMP_MODES:
            raise UserError(f"--amp {self.amp!r}: expected one of {', '.join(AMP_MODES)}")
        if self.workers < 0 or self.threads_per_worker < 0:
            raise UserError("workers and threads_per_worker must be >= 0")


def exec_record(opts: ExecOptions, seeds: Sequence[int]) -> dict:
    """Provenance fields for a result produced by :func:`train_many` (merge into ``provenance``)."""
    rec = {"exec_mode": opts.exec_mode, "amp": opts.amp, "compile": bool(opts.compile)}
    if opts.graphs == "on" and opts.exec_mode == "loop":
        rec["static_step"] = True  # the capture outcome is in the result's model record (static_step)
    if opts.exec_mode == "vmap":
        # members share one dropout RNG stream: the result depends on the whole group
        rec["ensemble_seeds"] = [int(s) for s in seeds]
        rec["ensemble_rng_seed"] = _ensemble_seed(seeds)
    if opts.exec_mode == "procs":
        rec["workers"] = opts.workers or len(seeds)
        rec["threads_per_worker"] = opts.threads_per_worker or None
    return rec


def _ensemble_seed(seeds: Sequence[int]) -> int:
    digest = hashlib.sha256(",".join(str(int(s)) for s in seeds).encode()).hexdigest()
    return int(digest[:8], 16)


# ------------------------------------------------------------------------------------ amp / compile
def _autocast(device_type: str, amp: str):
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=amp == "bf16")


def _to_float32(out: dict) -> dict:
    return {k: (v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
            for k, v in out.items()}


@functools.cache
def accelerated(method_cls: type[Method], amp: str = "off", compile: bool = False) -> type[Method]:
    """``method_cls`` with bf16 autocast around forward + loss terms and/or a compiled forward.

    Outputs are cast back to float32, so evaluation losses and metrics are computed in float32.
    Returns ``method_cls`` itself when both options are off.
    """
    if amp not in AMP_MODES:
        raise UserError(f"--amp {amp!r}: expected one of {', '.join(AMP_MODES)}")
    if amp == "off" and not compile:
        return method_cls
    base_forward = method_cls.forward
    fwd = _compile(base_forward) if compile else base_forward

    def _device_type(self) -> str:
        p = next(self.parameters(), None)
        return p.device.type if p is not None else "cpu"

    def forward(self, batch):
        with _autocast(_device_type(self), amp):
            out = fwd(self, batch)
        return _to_float32(out)

    def loss_terms(self, out, batch):
        with _autocast(_device_type(self), amp):
            terms = method_cls.loss_terms(self, out, batch)
        return _to_float32(terms)

    return type(f"{method_cls.__name__}Accelerated", (method_cls,),
                {"forward": forward, "loss_terms": loss_terms, "__module__": method_cls.__module__,
                 "__qualname__": f"{method_cls.__qualname__}Accelerated"})


# ------------------------------------------------------------------------------------ vmap checks
def vmap_blocker(model: nn.Module) -> str | None:
    """Why ``model`` cannot be trained as a vmap ensemble, or None when it can."""
    for name, m in model.named_modules():
        if isinstance(m, nn.RNNBase):
            return (f"it contains a recurrent layer ({name}: {type(m).__name__}); vmap has no batching "
                    "rule for aten::lstm/gru")
        if type(m).__module__.startswith("transformers."):
            return f"it runs a Hugging Face model ({name}: {type(m).__name__}; K copies of BERT)"
    cls = type(model)
    for hook in ("on_epoch_start", "after_step", "on_epoch_end"):
        if getattr(cls, hook) is not getattr(Method, hook):
            return f"it overrides the per-step hook {hook}() (state outside the parameters)"
    return None


def check_vmappable(model: nn.Module, name: str = "") -> None:
    why = vmap_blocker(model)
    if why is not None:
        label = name or getattr(model, "name", type(model).__name__)
        raise UserError(f"method {label!r} cannot run with --exec vmap: {why}. "
                        "Use --exec procs (one process per seed on the same device) or --exec loop.")


# ------------------------------------------------------------------------------------ stacked Adam
class _StackedAdam:
    """``torch.optim.Adam`` (L2 weight decay, no amsgrad) over stacked parameters ``(K, ...)`` with a
    learning rate per (group, member). With equal learning rates it runs the same elementwise ops as
    torch's single-tensor Adam; different ones are applied as a (K, 1, ...) scale."""

    def __init__(self, groups: list[dict], n_members: int):
        self.groups = []
        for g in groups:
            betas = tuple(g.get("betas", (0.9, 0.999)))
            if g.get("amsgrad") or g.get("maximize") or g.get("decoupled_weight_decay"):
                raise UserError("vmap ensemble: only plain Adam parameter groups are supported")
            self.groups.append({"names": list(g["names"]), "lr": [float(g["lr"])] * n_members,
                                "weight_decay": float(g.get("weight_decay", 0.0)), "betas": betas,
                                "eps": float(g.get("eps", 1e-8))})
        self.state: dict[str, dict] = {}

    def keep(self, members: list[int]) -> None:
        idx = None
        for g in self.groups:
            g["lr"] = [g["lr"][k] for k in members]
        for st in self.state.values():
            if idx is None:
                idx = torch.tensor(members, device=st["exp_avg"].device)
            st["exp_avg"] = st["exp_avg"][idx].contiguous()
            st["exp_avg_sq"] = st["exp_avg_sq"][idx].contiguous()

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor]) -> None:
        for g in self.groups:
            names = [n for n in g["names"] if params[n].grad is not None]
            if not names:
                continue
            ps = [params[n] for n in names]
            grads = [p.grad for p in ps]
            for n, p in zip(names, ps):
                if n not in self.state:
                    self.state[n] = {"step": 0, "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                     "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
            sts = [self.state[n] for n in names]
            for st in sts:
                st["step"] += 1
            beta1, beta2 = g["betas"]
            wd, eps = g["weight_decay"], g["eps"]
            if wd != 0:
                grads = torch._foreach_add(grads, ps, alpha=wd)
            exp_avgs = [st["exp_avg"] for st in sts]
            exp_avg_sqs = [st["exp_avg_sq"] for st in sts]
            torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
            steps = {st["step"] for st in sts}
            lrs = g["lr"]
            uniform = all(lr == lrs[0] for lr in lrs)
            for step in sorted(steps):
                sel = [i for i, st in enumerate(sts) if st["step"] == step]
                bc1 = 1 - beta1 ** step
                bc2_sqrt = (1 - beta2 ** step) ** 0.5
                denom = torch._foreach_sqrt([exp_avg_sqs[i] for i in sel])
                torch._foreach_div_(denom, bc2_sqrt)
                torch._foreach_add_(denom, eps)
                if uniform:
                    torch._foreach_addcdiv_([ps[i] for i in sel], [exp_avgs[i] for i in sel], denom,
                                            value=-(lrs[0] / bc1))
                else:
                    neg = torch.tensor([-(lr / bc1) for lr in lrs], dtype=ps[0].dtype, device=ps[0].device)
                    for i, d in zip(sel, denom):
                        p = ps[i]
                        p.add_((exp_avgs[i] / d) * neg.view((-1,) + (1,) * (p.dim() - 1)))


# ------------------------------------------------------------------------------------ the ensemble
def _stack_batch(split: Split, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """(K, B) indices -> every tensor field as (K, B, ...)."""
    return {k: v[idx] for k, v in split.tensors().items()}


def vmap_math_attention(env: str | None = None) -> bool:
    """Whether a vmap ensemble uses the spelled-out attention (default) or SDPA.

    SDPA under vmap fails or falls back on both devices: CPU SDPA has no batching rule (a slow
    per-member loop), and on CUDA (H200, torch 2.11) the fused memory-efficient kernel rejects the
    vmapped additive mask ("attn_bias: wrong shape (batch dimension)", "LSE is not correctly aligned")
    -- EMOE's causal self-attention hits it. ``BENCH_VMAP_ATTENTION=sdpa`` opts back in."""
    env = (os.environ.get("BENCH_VMAP_ATTENTION", "") if env is None else env).strip().lower()
    if env not in ("", "math", "sdpa"):
        raise UserError(f"BENCH_VMAP_ATTENTION={env!r}: expected math or sdpa")
    return env != "sdpa"


def _use_math_attention(model: nn.Module) -> int:
    """Switch every bench.nn.transformer.MultiheadAttention to its spelled-out ``math`` implementation
    (same maths as SDPA; see :func:`vmap_math_attention`)."""

    n = 0
    for m in model.modules():
        if isinstance(m, MultiheadAttention) and m.impl != "math":
            m.impl = "math"
            n += 1
    return n


class VmapEnsemble:
    """K members of one method as stacked tensors; the building block of ``exec_mode="vmap"``
    (and of bench.perf). Members are built exactly as :func:`trainer.train` builds each seed."""

    def __init__(self, method_cls: type[Method], hp: TrainHParams, info, seeds: Sequence[int],
                 device: str | torch.device = "cpu", amp: str = "off", compile: bool = False,
                 math_attention: bool | None = None):
        from torch.func import stack_module_state

        if amp not in AMP_MODES:
            raise UserError(f"--amp {amp!r}: expected one of {', '.join(AMP_MODES)}")
        self.device = torch.device(device)
        self.seeds = [int(s) for s in seeds]
        self.amp, self.compile = amp, compile
        models = []
        for s in self.seeds:
            seed_everything(s)
            models.append(method_cls(hp, info).to(self.device))
            if len(models) == 1:
                check_vmappable(models[0], getattr(method_cls, "name", method_cls.__name__))
        self.template = models[0]
        self.hp = hp
        if math_attention is None:
            math_attention = vmap_math_attention()
        if math_attention:
            for m in models:
                _use_math_attention(m)
        params, buffers = stack_module_state(models)
        self.params: dict[str, torch.Tensor] = params
        self.buffers: dict[str, torch.Tensor] = buffers
        name_of = {id(p): n for n, p in self.template.named_parameters()}
        groups = []
        for g in self.template.param_groups():
            names = [name_of[id(p)] for p in g["params"]]
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "names": names})
        self.optimizer = _StackedAdam(groups, len(self.seeds))
        del models  # only the template module is kept; the members live in the stacked tensors
        self._build_fns()
        seed_everything(_ensemble_seed(self.seeds))

    # ------------------------------------------------------------------ functions
    def _build_fns(self) -> None:
        from torch.func import functional_call, vmap

        tmpl = self.template
        amp, dev = self.amp, self.device.type

        def loss_fn(params, buffers, bt):
            batch = Split(**bt)
            with _autocast(dev, amp):
                out = functional_call(tmpl, (params, buffers), (batch,))
                if amp != "off":
                    out = _to_float32(out)
                terms = tmpl.loss_terms(out, batch)
            terms = _to_float32(terms) if amp != "off" else terms
            return terms["total"], {k: v.detach() for k, v in terms.items()}

        export_keys = tuple(getattr(type(tmpl), "export_keys", ()))

        def eval_fn(params, buffers, bt):
            batch = Split(**bt)
            with _autocast(dev, amp):
                out = functional_call(tmpl, (params, buffers), (batch,))
            if amp != "off":
                out = _to_float32(out)
            per_sample = tmpl.task_loss(out["pred"], batch.labels, reduction="none")
            extras = {k: out[k] for k in export_keys if k in out and out[k] is not None}
            return out["pred"], per_sample, extras

        self._loss = vmap(loss_fn, in_dims=(0, 0, 0), randomness="different")
        self._eval = vmap(eval_fn, in_dims=(0, 0, None), randomness="different")
        if self.compile:
            self._loss = _compile(self._loss)
            self._eval = _compile(self._eval)

    @property
    def size(self) -> int:
        return len(self.seeds)

    # ------------------------------------------------------------------ training steps
    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    def forward_backward(self, split: Split, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """One mini-batch per member (``idx`` (K, B) positions in ``split``); gradients are summed into
        ``.grad`` (accumulation); returns the detached loss terms, each (K,)."""
        self.template.train()
        try:
            total, terms = self._loss(self.params, self.buffers, _stack_batch(split, idx))
        except RuntimeError as e:  # pragma: no cover - depends on the model
            if "atching rule" in str(e) or "vmap" in str(e):
                raise UserError(f"--exec vmap failed for {type(self.template).__name__}: {e}. "
                                "Use --exec procs or --exec loop.") from e
            raise
        total.sum().backward()
        return terms

    @torch.no_grad()
    def clip_grad_value(self, clip: float) -> None:
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        if grads:
            torch._foreach_clamp_min_(grads, -clip)
            torch._foreach_clamp_max_(grads, clip)

    def step(self) -> None:
        if self.hp.grad_clip_value > 0 and self.hp.grad_clip_at == "step":
            self.clip_grad_value(self.hp.grad_clip_value)
        self.optimizer.step(self.params)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def predict(self, split: Split, batch_size: int, export: bool = False):
        """Every member on ``split`` in split order: pred (K, N, ...), per-batch float32 loss sums and
        means (K, n_batches), and the export outputs when asked."""
        self.template.eval()
        preds, sums, means = [], [], []
        extras: dict[str, list] = {}
        for idx in batches(len(split), batch_size):
            bt = split.take(idx.to(split.labels.device)).tensors()
            pred, per_sample, ex = self._eval(self.params, self.buffers, bt)
            preds.append(pred.detach().float())
            sums.append(per_sample.sum(dim=1))
            means.append(per_sample.mean(dim=1))
            if export:
                for k, v in ex.items():
                    extras.setdefault(k, []).append(v.detach().float())
        out = {"pred": torch.cat(preds, dim=1), "loss_sums": torch.stack(sums, 1), "loss_means": torch.stack(means, 1)}
        out.update({k: torch.cat(v, dim=1) for k, v in extras.items()})
        return out

    def evaluate(self, split: Split, batch_size: int, val_loss_mode: str = "sample_mean") -> list[dict]:
        """:func:`bench.train.evaluation.evaluate`'s metrics for every member."""
        res = self.predict(split, batch_size)
        labels = split.labels.cpu().numpy()
        pred = res["pred"].cpu()
        sums = res["loss_sums"].double().cpu().numpy()
        means = res["loss_means"].double().cpu().numpy()
        return [split_metrics(self.template.info.task, pred[k], labels, float(sums[k].sum()), means[k],
                              val_loss_mode)[0] for k in range(self.size)]

    # ------------------------------------------------------------------ members
    @torch.no_grad()
    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member ``k``'s parameters and buffers (copies), keyed like ``named_parameters/buffers``."""
        state = {n: t[k].detach().clone() for n, t in self.params.items()}
        state.update({n: t[k].detach().clone() for n, t in self.buffers.items()})
        return state

    @torch.no_grad()
    def load_into_template(self, state: dict[str, torch.Tensor]) -> Method:
        for n, t in self.template.named_parameters():
            t.copy_(state[n])
        for n, t in self.template.named_buffers():
            if n in state:
                t.copy_(state[n])
        return self.template

    @torch.no_grad()
    def keep(self, members: list[int]) -> None:
        """Drop every member not in ``members`` (finished seeds leave the stack)."""
        if members == list(range(self.size)):
            return
        idx = torch.tensor(members, device=self.device)
        self.params = {n: t[idx].detach().clone().requires_grad_(t.requires_grad) for n, t in self.params.items()}
        self.buffers = {n: t[idx].clone() for n, t in self.buffers.items()}
        self.optimizer.keep(members)
        self.seeds = [self.seeds[k] for k in members]


# ------------------------------------------------------------------------------------ vmap training
class _EnsembleMembers:
    """A :class:`VmapEnsemble` as the epoch loop's :class:`~bench.train.members.Members` (member ``k`` =
    ``seeds[k]``; its position in the stack shifts as finished members leave)."""

    sums_on_host = False

    def __init__(self, method_cls, hp: TrainHParams, bundle: DatasetBundle, seeds: Sequence[int], device,
                 amp: str, compile: bool):
        self.device = torch.device(device)
        self.data = bundle.to(self.device)
        self.ens = VmapEnsemble(method_cls, hp, bundle.info(), seeds, self.device, amp=amp, compile=compile)
        self.method_cls, self.hp, self.seeds = method_cls, hp, list(self.ens.seeds)
        self.train_split = self.data.splits["train"]
        self.eval_bs = hp.eval_batch_size or hp.batch_size
        self.active = list(range(len(self.seeds)))
        self.lr_views: dict[int, torch.optim.Optimizer] = {}

    def _pos(self, k: int) -> int:
        return self.active.index(k)

    def start_epoch(self, epoch: int) -> None:
        """Nothing per epoch: vmap refuses methods with epoch hooks; forward_backward sets training mode."""

    def batch_order(self, perms: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(perms).to(self.device)

    def zero_grad(self) -> None:
        self.ens.zero_grad()

    def forward_backward(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = self.ens.forward_backward(self.train_split, idx)
        if self.hp.grad_clip_value > 0 and self.hp.grad_clip_at == "backward":
            self.ens.clip_grad_value(self.hp.grad_clip_value)
        return terms

    def step(self) -> None:
        self.ens.step()

    def validate(self) -> list[dict]:
        return self.ens.evaluate(self.data.splits["valid"], self.eval_bs, self.hp.val_loss)

    def snapshot(self, k: int) -> dict[str, torch.Tensor]:
        return self.ens.member_state(self._pos(k))

    def end_epoch(self, k: int, epoch: int, valid: dict, improved: bool) -> None:
        """vmap refuses methods that override on_epoch_end."""

    def lr_holder(self, k: int) -> torch.optim.Optimizer:
        """A stand-in optimiser with member ``k``'s learning rate per group (the scheduler's target)."""
        if k not in self.lr_views:
            pos = self._pos(k)
            self.lr_views[k] = torch.optim.SGD([{"params": [torch.zeros(1)], "lr": g["lr"][pos]}
                                                for g in self.ens.optimizer.groups])
        return self.lr_views[k]

    def lrs_changed(self, k: int) -> None:
        pos = self._pos(k)
        for g, view in zip(self.ens.optimizer.groups, self.lr_views[k].param_groups, strict=True):
            g["lr"][pos] = view["lr"]

    def lr(self, k: int) -> float:
        groups = self.ens.optimizer.groups
        return groups[0]["lr"][self._pos(k)] if groups else self.hp.learning_rate

    def retire(self, still: list[int]) -> None:
        if still and len(still) < len(self.active):
            self.ens.keep([self._pos(k) for k in still])
        self.active = list(still)

    def restore(self, k: int, state: dict[str, torch.Tensor]) -> Method:
        return self.ens.load_into_template(state)

    def evaluate(self, model: Method, split: str, export: bool) -> tuple[dict, dict]:
        keys = self.method_cls.export_keys if export else ()
        return evaluate(model, self.data.splits[split], self.eval_bs, self.hp.val_loss, export_keys=keys)

    def record(self, model: Method) -> dict:
        return copy.deepcopy(model.record())  # one template serves every member


def _train_vmap(method_cls, hp: TrainHParams, bundle: DatasetBundle, seeds: Sequence[int], device,
                amp: str, compile: bool, on_epoch: Callable[[int, dict], None] | None) -> list[TrainOutcome]:
    members = _EnsembleMembers(method_cls, hp, bundle, seeds, device, amp, compile)
    return run_epochs(members, None if on_epoch is None else lambda k, row: on_epoch(members.seeds[k], row))


# ------------------------------------------------------------------------------------ procs
def _proc_worker(method_cls, hp, bundle, seed, device, threads, amp, compile):
    torch.set_num_threads(max(1, int(threads)))
    cls = accelerated(method_cls, amp, compile)
    return train(cls, hp, bundle, seed, device=device)


def _default_threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _copied_to_cpu(bundle: DatasetBundle) -> DatasetBundle:
    splits = {}
    for name, split in bundle.splits.items():
        kw = {k: v.detach().to("cpu", copy=True) for k, v in split.tensors().items()}
        splits[name] = dataclasses.replace(split, **kw)
    return dataclasses.replace(bundle, splits=splits)


def _train_procs(method_cls, hp, bundle, seeds, device, amp, compile, workers, threads,
                 on_epoch) -> list[TrainOutcome]:
    workers = workers or len(seeds)
    threads = threads or _default_threads(workers)
    # Workers get CPU copies and move them to the device themselves (no CUDA IPC). Copies, because
    # sending a tensor to a worker moves its storage into shared memory, which would invalidate
    # numpy views of the caller's arrays (e.g. earlier outcomes' test_outputs["label"]).
    cpu_bundle = _copied_to_cpu(bundle)
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(seeds)), mp_context=ctx) as pool:
        futures = [pool.submit(_proc_worker, method_cls, hp, cpu_bundle, int(s), str(device), threads, amp,
                               compile) for s in seeds]
        outcomes = [f.result() for f in futures]
    if on_epoch is not None:
        for s, o in zip(seeds, outcomes):
            for row in o.history:
                on_epoch(int(s), row)
    return outcomes


# ------------------------------------------------------------------------------------ entry point
def train_many(method_cls: type[Method], hp: TrainHParams, bundle: DatasetBundle, seeds: Sequence[int],
               device: str | torch.device = "cpu", exec_mode: str = "loop", *, amp: str = "off",
               compile: bool = False, workers: int = 0, threads_per_worker: int = 0,
               on_epoch: Callable[[int, dict], None] | None = None) -> list[TrainOutcome]:
    """Train every seed in ``seeds`` (one :class:`TrainOutcome` each, same order).

    ``exec_mode``: "loop" | "vmap" | "procs" (module docstring). ``amp``: "off" | "bf16";
    ``compile``: torch.compile the forward (loop/procs) or the vmapped step (vmap).
    ``workers``/``threads_per_worker``: procs only (0 = one process per seed / cores / workers).
    ``on_epoch(seed, row)`` is called with every history row (procs: after the workers finish).
    """
    if exec_mode == "auto":
        raise UserError("train_many: exec_mode 'auto' is chosen per configuration by bench.train.autoexec first")
    opts = ExecOptions(exec_mode, amp, bool(compile), int(workers), int(threads_per_worker))
    opts.validate()
    seeds = [int(s) for s in seeds]
    if not seeds:
        return []
    if len(set(seeds)) != len(seeds):
        raise UserError(f"train_many: seeds repeat ({seeds})")
    if exec_mode == "loop":
        cls = accelerated(method_cls, amp, compile)
        outs = []
        for s in seeds:
            cb = None if on_epoch is None else functools.partial(on_epoch, s)
            outs.append(train(cls, hp, bundle, s, device=device, on_epoch=cb))
        return outs
    if exec_mode == "vmap":
        return _train_vmap(method_cls, hp, bundle, seeds, device, amp, compile, on_epoch)
    return _train_procs(method_cls, hp, bundle, seeds, device, amp, compile, workers, threads_per_worker,
                        on_epoch)
