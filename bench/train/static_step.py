"""Device-bound training: fixed-shape steps (optionally CUDA graphs), fused Adam, no per-step host sync.

The loop path (:func:`bench.train.trainer.train`) is host-bound on a GPU: a small EMOE step issues
about 1,500 kernel launches from Python and reads every loss term back to the host
(docs/performance.md §5). This trainer keeps the loop path's mathematics and semantics (same
initialisation, batch order, summed gradient accumulation with the tail dropped or stepped, value
clipping, plateau scheduler, early stopping, best-validation checkpoint, one test evaluation) and
changes only how a step is issued:

* every mini-batch is gathered from the device-resident split through a **static index buffer** of a
  fixed shape, so forward + loss + backward can be **captured once as a CUDA graph** and replayed
  (``capture=True``, CUDA only). The epoch's last, smaller batch gets **its own graph at its own
  shape** (exact: no padding, no masking -- a masked tail would not be exact for batch-statistics
  layers such as the BatchNorm in emoe-paper's router, nor for the methods' mean-reduced loss terms);
* gradients are zeroed in place (``_foreach_zero_``; the same values as ``set_to_none``, the memory
  the graph writes stays put); a parameter that received no gradient in the first backward keeps
  ``None`` and Adam skips it, as in the loop path;
* Adam is ``fused=True`` (one multi-tensor kernel; ``adam="foreach"`` or ``"default"`` -- torch's choice,
  i.e. what the loop path uses -- on request). Fused Adam rounds differently in the last bits;
* the loss terms are summed on the device (float64) and read once per epoch.

``capture=False`` runs the very same static-buffer step eagerly: that is what the CPU tests compare
with the loop path (bitwise with ``adam="default"``). Methods with per-step hooks (Self-MM) or bf16
autocast are refused (:func:`static_blocker`). Dropout inside a graph draws from the CUDA generator's
Philox stream at the offsets eager execution would use (torch's graph-safe RNG); the GPU script checks
equality with the loop path (``scripts/gpu_issue16.py equality``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bench.data.tensors import DatasetBundle, Split
from bench.errors import UserError
from bench.method import Method, TrainHParams
from bench.text_encoder import uses_bert
from bench.train.seeding import seed_everything
from bench.train.trainer import SingleModel, TrainOutcome, run_epochs

ADAM_KINDS = ("fused", "foreach", "default")
GRAPH_MODES = ("off", "on", "auto")

# Configurations whose captured step (torch's default Adam) equalled the loop step bitwise on a GPU
# (scripts/gpu_issue16.py equality; docs/performance.md §6/§7): ``--graphs auto`` captures exactly these.
# Key: the method's registry name, with "+bert" when the run fine-tunes a BERT (bench.text_encoder.uses_bert).
CAPTURE_EQUAL = frozenset({"dmd", "emoe", "emoe+bert", "emoe-paper", "graph_mfn", "lf_dnn", "lmf", "mfm", "mfn", "mult",
                           "tfn"})


def capture_key(method_cls: type[Method], hp) -> str:
    """The :data:`CAPTURE_EQUAL` key of a configuration: method name, "+bert" when a BERT runs."""

    name = getattr(method_cls, "name", method_cls.__name__)
    return f"{name}+bert" if uses_bert(hp) else name


def resolve_graphs(graphs: str, method_cls: type[Method], hp, device) -> tuple[str, str]:
    """``--graphs`` for one configuration -> ("on" | "off", Adam kind). ``on``: the static step with fused
    Adam (as requested). ``auto``: the static step with torch's default Adam -- the loop path's numbers bitwise --
    on CUDA for the configurations in :data:`CAPTURE_EQUAL`; off elsewhere (always off on CPU)."""
    if graphs not in GRAPH_MODES:
        raise UserError(f"--graphs {graphs!r}: expected one of {', '.join(GRAPH_MODES)}")
    if graphs == "on":
        return "on", "fused"
    if graphs == "auto" and str(device).startswith("cuda") and static_blocker(method_cls) is None \
            and capture_key(method_cls, hp) in CAPTURE_EQUAL:
        return "on", "default"
    return "off", "fused"


def static_blocker(method_cls: type[Method]) -> str | None:
    """Why ``method_cls`` cannot use the static step, or None."""
    for hook in ("on_epoch_start", "after_step"):
        if getattr(method_cls, hook) is not getattr(Method, hook):
            return f"it overrides the hook {hook}() (state outside the parameters, updated from Python)"
    return None


def make_adam(model: Method, adam: str) -> torch.optim.Adam:
    if adam not in ADAM_KINDS:
        raise UserError(f"adam={adam!r}: expected one of {', '.join(ADAM_KINDS)}")
    kw = {"fused": {"fused": True}, "foreach": {"foreach": True}, "default": {}}[adam]
    return torch.optim.Adam(model.param_groups(), **kw)


class StaticStep:
    """Forward + loss + backward of one mini-batch through a static index buffer per batch size.

    ``step(idx)`` copies ``idx`` into the buffer of its size and runs (or replays) the step; gradients
    accumulate into ``.grad``; returns the term tensors (static: overwritten by the next call of the same
    size). With ``capture=True`` the first call of each size captures a CUDA graph (after warm-up
    iterations whose side effects -- gradients, buffers such as BatchNorm statistics, RNG state -- are
    undone, so the captured run is the loop path's step)."""

    def __init__(self, model: Method, split: Split, hp: TrainHParams, capture: bool = False,
                 warmup: int = 2, log: Callable[[str], None] | None = None):
        self.model, self.split, self.hp = model, split, hp
        self.device = split.labels.device
        self.capture = bool(capture) and self.device.type == "cuda"
        self.warmup = warmup
        self.log = log or (lambda _: None)
        self.idx: dict[int, torch.Tensor] = {}
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.terms: dict[int, dict[str, torch.Tensor]] = {}
        self.capture_error: str | None = None
        self.grads_ready = False

    # ------------------------------------------------------------------ the step itself
    def _fwd_bwd(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = self.split.take(idx)
        out = self.model(batch)
        terms = self.model.loss_terms(out, batch)
        terms["total"].backward()
        if self.hp.grad_clip_value > 0 and self.hp.grad_clip_at == "backward":
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            if grads:
                torch._foreach_clamp_min_(grads, -self.hp.grad_clip_value)
                torch._foreach_clamp_max_(grads, self.hp.grad_clip_value)
        return {k: v.detach() for k, v in terms.items()}

    def grads(self) -> list[torch.Tensor]:
        return [p.grad for p in self.model.parameters() if p.grad is not None]

    def zero_grad(self) -> None:
        if not self.grads_ready:  # before the first backward: the loop path's set_to_none
            for p in self.model.parameters():
                p.grad = None
            return
        g = self.grads()
        if g:
            torch._foreach_zero_(g)

    def __call__(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        size = int(idx.shape[0])
        if size not in self.idx:
            self.idx[size] = torch.empty(size, dtype=torch.long, device=self.device)
        buf = self.idx[size]
        buf.copy_(idx)
        if not self.capture or self.capture_error is not None:
            terms = self._fwd_bwd(buf)
            self.grads_ready = True
            return terms
        if not self.grads_ready:  # the first backward allocates the gradients the graphs accumulate into
            terms = self._fwd_bwd(buf)
            self.grads_ready = True
            return terms
        if size not in self.graphs:
            try:
                self._capture(size)
            except Exception as e:  # noqa: BLE001 - any capture failure falls back to the eager step
                self.capture_error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                self.log(f"CUDA graph capture failed ({self.capture_error}); continuing with the eager static step")
                return self._fwd_bwd(buf)
        self.graphs[size].replay()
        return self.terms[size]

    def _capture(self, size: int) -> None:
        """Warm up on a side stream, undo its side effects, capture one graph for this batch size."""
        buf = self.idx[size]
        grads = self.grads()
        saved_grads = [g.clone() for g in grads]
        saved_buffers = {n: b.clone() for n, b in self.model.named_buffers()}
        rng = torch.cuda.get_rng_state(self.device)
        cpu_rng = torch.get_rng_state()
        graph = torch.cuda.CUDAGraph()
        prev_stream = torch.cuda.current_stream(self.device)
        try:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    self._fwd_bwd(buf)
            torch.cuda.current_stream(self.device).wait_stream(side)
            torch.cuda.synchronize(self.device)
            with torch.cuda.graph(graph):  # own memory pool: graphs of two sizes replay in any order
                terms = self._fwd_bwd(buf)
            torch.cuda.synchronize(self.device)
        finally:  # undo warm-up and capture (also after a failed capture): stream, gradients, buffers, RNG
            torch.cuda.set_stream(prev_stream)  # a failing capture_end() skips the graph context's own restore
            with torch.no_grad():
                for g, s in zip(grads, saved_grads):
                    g.copy_(s)
                for n, b in self.model.named_buffers():
                    b.copy_(saved_buffers[n])
            torch.cuda.set_rng_state(rng, self.device)
            torch.set_rng_state(cpu_rng)
        self.graphs[size], self.terms[size] = graph, terms
        self.log(f"captured a CUDA graph for batches of {size}")

    def record(self) -> dict:
        return {"captured_sizes": sorted(self.graphs), "capture_error": self.capture_error}


class StaticModel(SingleModel):
    """:class:`~bench.train.trainer.SingleModel` stepped through a :class:`StaticStep` and ``make_adam``'s
    optimiser; loss terms stay on the device until the epoch ends (no per-step host read)."""

    sums_on_host = False

    def __init__(self, method_cls: type[Method], hp: TrainHParams, bundle: DatasetBundle, seed: int,
                 device: str | torch.device = "cpu", capture: bool = False, adam: str = "fused",
                 log: Callable[[str], None] | None = None):
        self.capture, self.adam = bool(capture), adam
        super().__init__(method_cls, hp, bundle, seed, device)
        self.stepper = StaticStep(self.model, self.train_split, hp, capture=capture, log=log)

    def make_optimizer(self) -> torch.optim.Optimizer:
        return make_adam(self.model, self.adam)

    def zero_grad(self) -> None:
        self.stepper.zero_grad()

    def forward_backward(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.stepper(idx)

    def step(self) -> None:
        _step(self.model, self.optimizer, self.hp)

    def record(self, model: Method) -> dict:
        return {**model.record(), "static_step": {"capture": self.capture, "adam": self.adam, **self.stepper.record()}}


def train_static(method_cls: type[Method], hp: TrainHParams, bundle: DatasetBundle, seed: int,
                 device: str | torch.device = "cpu", capture: bool = False, adam: str = "fused",
                 on_epoch: Callable[[dict], None] | None = None, log: Callable[[str], None] | None = None,
                 ) -> TrainOutcome:
    """:func:`bench.train.trainer.train` with the static step (module docstring): the same epoch loop
    (:func:`bench.train.trainer.run_epochs`, guards included). ``model_record`` gains ``static_step``
    (capture requested/achieved, graph sizes, Adam kind)."""
    why = static_blocker(method_cls)
    if why is not None:
        raise UserError(f"method {getattr(method_cls, 'name', method_cls.__name__)!r} cannot use the static "
                        f"step (--graphs on): {why}. Use --graphs off")
    members = StaticModel(method_cls, hp, bundle, seed, device, capture=capture, adam=adam, log=log)
    return run_epochs(members, None if on_epoch is None else lambda _k, row: on_epoch(row))[0]


def _step(model: Method, optimizer: torch.optim.Optimizer, hp: TrainHParams) -> None:
    if hp.grad_clip_value > 0 and hp.grad_clip_at == "step":
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if grads:
            torch._foreach_clamp_min_(grads, -hp.grad_clip_value)
            torch._foreach_clamp_max_(grads, hp.grad_clip_value)
    optimizer.step()


def static_stepper(method_cls: type[Method], hp: TrainHParams, split: Split, info, seed: int, device,
                   capture: bool, adam: str = "fused"):
    """``step(idx)``: one optimiser step (zero, static forward/backward, clip, Adam) of a freshly seeded
    model -- the device-bound counterpart of :func:`bench.perf.single_model_stepper` for measurements."""
    seed_everything(seed)
    model = method_cls(hp, info).to(device)
    opt = make_adam(model, adam)
    model.train()
    stepper = StaticStep(model, split, hp, capture=capture)

    def step(idx: torch.Tensor) -> None:
        stepper.zero_grad()
        stepper(idx)
        _step(model, opt, hp)

    step.model, step.stepper = model, stepper
    return step
