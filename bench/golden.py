"""Machine-robust golden check of every registered method: one training step on a fixed batch.

Why: a rerun of whole training runs depends on the CPU (float reordering, and on Intel CPUs torch draws
dropout masks with MKL's generator, elsewhere with its own), so it cannot be compared number by number.
One step from fixed weights on a fixed batch can: every random draw (initialisation, dropout masks,
shuffles) comes from numpy's PCG64 through :class:`PortableRNG`, the same on every machine, so what is
left between machines is float rounding. Each case records the predictions, every loss term, every
parameter's gradient norm and every parameter's change after one optimiser step (Adam with the
method's own parameter groups, as the trainer does). ``tests/golden/step-golden.json`` holds them;
regenerate deliberately with ``python -m bench.golden --write`` (docs/ci-gate.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import math
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from bench.data.tensors import DataInfo, Split
from bench.registry import get_method, methods
from bench.train.trainer import _step

GOLDEN_PATH = Path(__file__).resolve().parent.parent / "tests" / "golden" / "step-golden.json"
FAMILIES = ("pred", "loss", "grad", "step")
# |current - golden| <= RTOL * max(|golden|, scale of its family in that case). 100x above the largest
# float-reordering difference measured (docs/ci-gate.md), far below what a changed lr or loss makes.
RTOL = 1e-3
INIT_SEED, DATA_SEED, STEP_SEED = 20240, 20241, 20242
N_SAMPLES = 8
GRAD_FLOOR = 1e-6  # modules with a smaller gradient norm (relative) have their Adam step left out
MODULE_DEPTH = 3  # parameter-name components that name a module in the golden file
VOCAB = 200

aten = torch.ops.aten


# --------------------------------------------------------------------------- portable randomness
class PortableRNG(TorchDispatchMode):
    """Serve torch's random ops from numpy's PCG64, so that draws do not depend on the CPU or the torch
    build (torch's CPU dropout uses MKL's generator on Intel only). A random op it does not know raises,
    so a new kind of draw cannot silently make the golden numbers machine-dependent."""

    def __init__(self, seed: int):
        super().__init__()
        self.rng = np.random.default_rng(seed)
        self.draws = 0

    def _uniform(self, shape, like: torch.Tensor | None = None, dtype=None) -> torch.Tensor:
        self.draws += 1
        out = torch.from_numpy(self.rng.random(tuple(shape)))
        return out.to(dtype or (like.dtype if like is not None else torch.get_default_dtype()))

    def _normal(self, shape, dtype) -> torch.Tensor:
        self.draws += 1
        return torch.from_numpy(self.rng.standard_normal(tuple(shape))).to(dtype)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        handler = _HANDLERS.get(func.overloadpacket)
        if handler is not None:
            return handler(self, func, *args, **kwargs)
        if torch.Tag.nondeterministic_seeded in func.tags:
            raise RuntimeError(f"golden: random op {func} has no portable replacement in bench.golden.PortableRNG")
        return func(*args, **kwargs)


def _uniform_(mode, func, self, *a, **kw):
    lo = a[0] if len(a) > 0 else kw.get("from", 0.0)
    hi = a[1] if len(a) > 1 else kw.get("to", 1.0)
    return self.copy_(mode._uniform(self.shape, dtype=torch.float64) * (hi - lo) + lo)


def _normal_(mode, func, self, mean=0.0, std=1.0, generator=None, **kw):
    return self.copy_(mode._normal(self.shape, torch.float64) * std + mean)


def _bernoulli_(mode, func, self, p=0.5, generator=None, **kw):
    return self.copy_((mode._uniform(self.shape, dtype=torch.float64) < p).to(self.dtype))


def _bernoulli(mode, func, self, p=None, generator=None, **kw):
    prob = self if p is None else p
    return (mode._uniform(self.shape, dtype=torch.float64) < prob).to(self.dtype)


def _native_dropout(mode, func, x, p, train=None):
    if train is False or p == 0:
        return x.clone(), torch.ones_like(x, dtype=torch.bool)
    keep = mode._uniform(x.shape, dtype=torch.float64) < 1 - p  # as dropout's bernoulli_(1 - p)
    scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
    return x * keep.to(x.dtype) * scale, keep


def _randperm(mode, func, n, *a, dtype=None, device=None, **kw):
    mode.draws += 1
    return torch.as_tensor(mode.rng.permutation(int(n)), dtype=dtype or torch.int64, device=device)


def _rand_like(mode, func, x, *a, dtype=None, **kw):
    return mode._uniform(x.shape, dtype=dtype or x.dtype)


def _randn_like(mode, func, x, *a, dtype=None, **kw):
    return mode._normal(x.shape, dtype or x.dtype)


def _randn(mode, func, size, *a, dtype=None, **kw):
    return mode._normal(size, dtype or torch.get_default_dtype())


def _rand(mode, func, size, *a, dtype=None, **kw):
    return mode._uniform(size, dtype=dtype or torch.get_default_dtype())


_HANDLERS: dict = {
    aten.uniform_: _uniform_,
    aten.normal_: _normal_,
    aten.bernoulli_: _bernoulli_,
    aten.bernoulli: _bernoulli,
    aten.native_dropout: _native_dropout,
    aten.randperm: _randperm,
    aten.rand_like: _rand_like,
    aten.randn_like: _randn_like,
    aten.randn: _randn,
    aten.rand: _rand,
}


# --------------------------------------------------------------------------- the fixed inputs
def golden_info(setting: str) -> DataInfo:
    """A tiny MOSI-like geometry (text 12-d, audio 5-d, vision 7-d; 8/10/12 steps unaligned)."""
    lens = (8, 8, 8) if setting == "aligned" else (8, 10, 12)
    return DataInfo(family="mosi", setting=setting, task="regression", num_classes=1,
                    dims={"text": 12, "audio": 5, "vision": 7},
                    seq_lens={"text": lens[0], "audio": lens[1], "vision": lens[2]},
                    has_text_features=True, has_text_bert=True)


def golden_batch(info: DataInfo, n: int = N_SAMPLES, seed: int = DATA_SEED) -> Split:
    """A fixed batch drawn with numpy (same bits everywhere): padded text with BERT ids, labels in
    [-3, 3] with exact zeros (Self-MM), own audio/vision lengths when unaligned."""
    rng = np.random.default_rng(seed)
    tl, ta, tv = info.seq_lens["text"], info.seq_lens["audio"], info.seq_lens["vision"]
    text_len = rng.integers(3, tl + 1, n)
    mask = (np.arange(tl)[None, :] < text_len[:, None]).astype(np.int64)
    ids = rng.integers(1, VOCAB, (n, tl)) * mask
    text_bert = np.stack([ids, mask, np.zeros_like(ids)], axis=1)
    text = (rng.random((n, tl, info.dims["text"])) * 2 - 1) * mask[..., None]
    audio = rng.random((n, ta, info.dims["audio"])) * 2 - 1
    vision = rng.random((n, tv, info.dims["vision"])) * 2 - 1
    labels = np.round(rng.random(n) * 6 - 3, 1)
    labels[::4] = 0.0
    kw = {}
    if info.setting == "unaligned":
        kw["audio_lengths"] = torch.as_tensor(rng.integers(2, ta + 1, n))
        kw["vision_lengths"] = torch.as_tensor(rng.integers(2, tv + 1, n))
        audio *= np.arange(ta)[None, :, None] < kw["audio_lengths"].numpy()[:, None, None]
        vision *= np.arange(tv)[None, :, None] < kw["vision_lengths"].numpy()[:, None, None]
    f = torch.get_default_dtype()
    return Split(labels=torch.as_tensor(labels).to(f), audio=torch.as_tensor(audio).to(f),
                 vision=torch.as_tensor(vision).to(f), text=torch.as_tensor(text).to(f),
                 text_bert=torch.as_tensor(text_bert), **kw)


def tiny_bert_config():
    from transformers import BertConfig  # lazy: transformers only for the BERT golden cases

    return BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                      vocab_size=VOCAB, max_position_embeddings=32, attn_implementation="eager")


# --------------------------------------------------------------------------- cases
def golden_cases() -> list[str]:
    """``method`` (its default text input) for every registered method, plus ``method+bert`` (a tiny
    random BERT) for each that can fine-tune one; a BERT-only method has only the ``+bert`` case."""
    cases = []
    for name, cls in sorted(methods().items()):
        bert = "bert_config" in inspect.signature(cls.__init__).parameters
        if "text_mode" in {f.name for f in dataclasses.fields(cls.HParams)} or not bert:
            cases.append(name)
        if bert:
            cases.append(name + "+bert")
    return cases


def case_setting(cls) -> str:
    preferred = getattr(cls, "default_setting", None)
    return preferred if preferred in cls.settings else cls.settings[-1]


def compute_case(case: str, hp_change: Callable | None = None,
                 loss_change: Callable | None = None) -> dict[str, dict[str, float]]:
    """One trainer step of ``case`` from the fixed init on the fixed batch, as numbers by family.

    ``hp_change(hp) -> hp`` and ``loss_change(terms) -> terms`` exist for the gate's negative controls
    (a doubled learning rate, a dropped loss term)."""
    name, _, variant = case.partition("+")
    cls = get_method(name)
    setting = case_setting(cls)
    info = golden_info(setting)
    hp = cls.default_hparams("mosi", setting)
    if hp_change is not None:
        hp = hp_change(hp)
    batch = golden_batch(info)
    kw = {"bert_config": tiny_bert_config()} if variant == "bert" else {}
    with _math_attention():
        return _one_step(cls, hp, info, batch, kw, loss_change)


def _math_attention():
    """The math attention kernel spells dropout out as ordinary random ops, which PortableRNG serves
    (``torch.nn.attention`` exists from torch 2.3; older builds have no fused CPU kernel to avoid)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        return contextlib.nullcontext()
    return sdpa_kernel([SDPBackend.MATH])


def _one_step(cls, hp, info, batch, kw, loss_change) -> dict[str, dict[str, float]]:
    with PortableRNG(INIT_SEED):
        model = cls(hp, info, **kw)
    _reinit_pretrained(model)
    model.train()
    with PortableRNG(STEP_SEED):
        optimizer = torch.optim.Adam(model.param_groups())
        model.on_epoch_start(1, batch)
        optimizer.zero_grad(set_to_none=True)
        out = model(batch)
        terms = model.loss_terms(out, batch)
        if loss_change is not None:
            terms = loss_change(terms)
        terms["total"].backward()
        grads = _by_module({n: p.grad for n, p in model.named_parameters()})
        if hp.grad_clip_value > 0 and hp.grad_clip_at == "backward":
            torch.nn.utils.clip_grad_value_(model.parameters(), hp.grad_clip_value)
        model.after_step(out, batch, 1)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        _step(model, optimizer, hp)
    step = _by_module({n: p.detach() - before[n] for n, p in model.named_parameters()})
    pred = out["pred"].detach().reshape(-1)
    return {"pred": {str(i): float(v) for i, v in enumerate(pred)},
            "loss": {k: float(v.detach()) for k, v in terms.items()},
            "grad": grads, "step": step}


def _reinit_pretrained(model: torch.nn.Module, seed: int = INIT_SEED) -> None:
    """Give every transformers model inside (the tiny BERT) BERT-style weights drawn here, N(0, 0.02)
    matrices, zero biases, unit LayerNorm scales, so the golden numbers do not depend on how the
    installed transformers version initialises (or orders its initialisation)."""
    try:
        from transformers import PreTrainedModel  # lazy: transformers only for BERT models
    except ImportError:
        return
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, PreTrainedModel):
                continue
            for name, p in module.named_parameters():
                if "LayerNorm" in name or "layer_norm" in name:
                    p.fill_(1.0 if name.endswith("weight") else 0.0)
                elif name.endswith("bias"):
                    p.zero_()
                else:
                    p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape)) * 0.02).to(p.dtype))


def _by_module(tensors: dict[str, torch.Tensor | None], depth: int = MODULE_DEPTH) -> dict[str, float]:
    """L2 norm per module path (the first ``depth`` components of the parameter names): fine enough
    to show which part of a model changed, coarse enough to keep the golden file small."""
    sq: dict[str, float] = {}
    for name, t in tensors.items():
        key = ".".join(name.split(".")[:depth])
        sq[key] = sq.get(key, 0.0) + (0.0 if t is None else float(t.detach().double().pow(2).sum()))
    return {k: math.sqrt(v) for k, v in sq.items()}


# --------------------------------------------------------------------------- comparison
def compared_keys(golden: dict, fam: str) -> list[str]:
    """The keys of ``fam`` that are compared. Adam's first step is ``lr * g / (|g| + eps)``: for a
    gradient that is zero in exact arithmetic and float noise (~1e-10) in practice, that ratio is noise
    too, so the step of a module whose gradient norm is below ``GRAD_FLOOR`` x the case's largest is
    left out (its gradient is still compared)."""
    keys = list(golden.get(fam, {}))
    if fam != "step":
        return keys
    grads = golden.get("grad", {})
    floor = GRAD_FLOOR * max((abs(v) for v in grads.values()), default=0.0)
    return [k for k in keys if grads.get(k, 0.0) > floor]


def relative_differences(golden: dict, current: dict) -> dict[str, dict[str, float]]:
    """``|current - golden| / max(|golden|, family scale)`` for every compared number (inf when a
    number is missing or not finite); the family scale is the largest magnitude in that family of the
    case, so entries that are zero up to rounding are measured on the family's scale."""
    out: dict[str, dict[str, float]] = {}
    for fam in FAMILIES:
        g, c = golden.get(fam, {}), current.get(fam, {})
        scale = max((abs(v) for v in g.values()), default=0.0)
        diffs = {}
        for k in compared_keys(golden, fam):
            cv = c.get(k)
            den = max(abs(g[k]), scale)
            if cv is None or not math.isfinite(cv):
                diffs[k] = math.inf
            else:
                diffs[k] = abs(cv - g[k]) / den if den > 0 else (0.0 if cv == 0 else math.inf)
        diffs.update({k: math.inf for k in c if k not in g})
        out[fam] = diffs
    return out


def max_relative_difference(golden: dict, current: dict) -> float:
    """The largest relative difference of a case (the measure the tolerance is set from)."""
    return max((v for fam in relative_differences(golden, current).values() for v in fam.values()), default=0.0)


def compare_case(golden: dict, current: dict, rtol: float = RTOL) -> list[str]:
    """Mismatches (empty = pass): a number missing on either side or farther than ``rtol`` (relative,
    see :func:`relative_differences`) from the golden one."""
    bad = []
    for fam, diffs in relative_differences(golden, current).items():
        for k, d in diffs.items():
            if d > rtol:
                bad.append(f"{fam}[{k}]: golden {golden.get(fam, {}).get(k)!r}, now "
                           f"{current.get(fam, {}).get(k)!r} (relative difference {d:.2g} > {rtol:g})")
    return bad


def environment() -> dict:
    return {"cpu": _cpu_model(), "machine": platform.machine(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": sys.version.split()[0]}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def compute_all(cases: list[str] | None = None, digits: int = 9) -> dict[str, dict]:
    """Every case, numbers rounded to ``digits`` significant digits (float32 carries about 7)."""
    return {c: {fam: {k: float(f"{v:.{digits}g}") for k, v in nums.items()} for fam, nums in compute_case(c).items()}
            for c in (cases or golden_cases())}


def write_golden(path: Path = GOLDEN_PATH, cases: list[str] | None = None) -> Path:
    torch.set_num_threads(1)
    data = {"about": "one trainer step per method on a fixed batch (bench/golden.py; docs/ci-gate.md)",
            "rtol": RTOL, "environment": environment(), "cases": compute_all(cases)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path


def load_golden(path: Path = GOLDEN_PATH) -> dict:
    return json.loads(Path(path).read_text())


def noise_report(golden_cases: dict, current: dict) -> dict[str, tuple[float, str, str]]:
    """Per family, the largest relative difference from the golden file and where (case, key)."""
    worst: dict[str, tuple[float, str, str]] = {f: (0.0, "", "") for f in FAMILIES}
    for case, g in golden_cases.items():
        for fam, diffs in relative_differences(g, current.get(case, {})).items():
            for k, d in diffs.items():
                if d > worst[fam][0]:
                    worst[fam] = (d, case, k)
    return worst


def main(argv: list[str]) -> int:
    """``--write [PATH]`` regenerates the golden file; ``--compare [PATH]`` recomputes every case here
    (this CPU, these threads) and prints the largest relative difference per family (noise measurement)."""
    if not argv or argv[0] not in ("--write", "--compare"):
        print("usage: python -m bench.golden --write|--compare [PATH]")
        return 2
    path = Path(argv[1]) if len(argv) > 1 else GOLDEN_PATH
    if argv[0] == "--write":
        print(f"written: {write_golden(path)}")
        return 0
    stored = load_golden(path)["cases"]
    now = compute_all(list(stored))
    for fam, (d, case, key) in noise_report(stored, now).items():
        print(f"{fam}: max relative difference {d:.3g} ({case} {key})")
    failing = {c: compare_case(stored[c], now[c]) for c in stored}
    print(f"environment: {environment()}; failing cases at rtol {RTOL:g}: "
          f"{[c for c, bad in failing.items() if bad] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
