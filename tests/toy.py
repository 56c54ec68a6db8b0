"""The one toy-data builder of the test suite: tiny multimodal splits whose label is planted in chosen modalities.

Why one builder: every test that needs data (trainer, executors, per-method mathematics, the registry-wide
contract) gets the same layout as the real loaders (padded text with BERT ids, own audio/vision lengths
when unaligned), so a layout change is made once. The task is easy on purpose: each sample has a latent
target (a sentiment for regression, a class for classification) and every modality named in ``signal``
carries it at every valid frame along a fixed random direction (a per-class prototype for classification),
plus unit noise; BERT ids come from a label-dependent id band. A model that reads any informative
modality can beat the constant predictor.
"""

from __future__ import annotations

import torch

from bench.data.tensors import DataInfo, DatasetBundle, Split

VOCAB = 200  # token ids are in [1, VOCAB); 0 is padding
MODALITIES = ("text", "audio", "vision")


def make_split(n: int, gen: torch.Generator, setting: str = "unaligned", *, task: str = "regression",
               num_classes: int = 1, dims=(16, 3, 4), lens=(8, 10, 12), signal=("text", "audio", "vision"),
               strength: float = 1.0, zero_every: int = 7, padded: bool = True, directions=None) -> Split:
    """``n`` samples. ``lens`` = text, audio, vision steps (all equal to the text's when aligned);
    ``strength`` scales the planted label against unit noise; every ``zero_every``-th regression label is
    exactly 0 (Self-MM's excludeZero, Has0 metrics); ``padded=False`` gives every sample the full lengths (no
    zero frames); ``directions`` (from :func:`label_directions`) fixes
    how each modality encodes the label, shared by the splits of one bundle."""
    t_text, t_audio, t_vision = lens
    if setting == "aligned":
        t_audio = t_vision = t_text
    steps = {"text": t_text, "audio": t_audio, "vision": t_vision}
    directions = directions if directions is not None else label_directions(gen, task, num_classes, dims)
    if task == "classification":
        labels = torch.randint(0, num_classes, (n,), generator=gen)
        band = labels
    else:
        labels = (torch.rand(n, generator=gen) * 6 - 3).mul(10).round().div(10)
        if zero_every:
            labels[::zero_every] = 0.0
        band = (labels.round() + 3).long()  # 7 sentiment bands
    text_len = torch.randint(3, t_text + 1, (n,), generator=gen) if padded else torch.full((n,), t_text)
    lengths = {"text": text_len}
    if setting == "unaligned" and not padded:
        lengths["audio"], lengths["vision"] = torch.full((n,), t_audio), torch.full((n,), t_vision)
    elif setting == "unaligned":
        lengths["audio"] = torch.randint(2, t_audio + 1, (n,), generator=gen)
        lengths["vision"] = torch.randint(2, t_vision + 1, (n,), generator=gen)
    else:
        lengths["audio"] = lengths["vision"] = text_len
    feats = {}
    for m, d in zip(MODALITIES, dims, strict=True):
        x = torch.randn(n, steps[m], d, generator=gen)
        if m in signal:
            code = directions[m][labels] if task == "classification" else labels[:, None] / 3 * directions[m][0]
            x = x + strength * code[:, None, :]
        valid = torch.arange(steps[m])[None, :] < lengths[m][:, None]
        feats[m] = x * valid[..., None]
    mask = (torch.arange(t_text)[None, :] < text_len[:, None]).long()
    n_bands = num_classes if task == "classification" else 7
    width = (VOCAB - 1) // n_bands
    banded = 1 + band[:, None] * width + torch.randint(0, width, (n, t_text), generator=gen)
    neutral = torch.randint(1, VOCAB, (n, t_text), generator=gen)
    informative = ("text" in signal) & (torch.rand(n, t_text, generator=gen) < 0.7)
    ids = torch.where(informative, banded, neutral) * mask
    text_bert = torch.stack([ids, mask, torch.zeros_like(ids)], dim=1)
    kw = {}
    if setting == "unaligned":
        kw = dict(audio_lengths=lengths["audio"], vision_lengths=lengths["vision"])
    return Split(labels=labels if task == "classification" else labels.float(), audio=feats["audio"],
                 vision=feats["vision"], text=feats["text"], text_bert=text_bert, **kw)


def label_directions(gen: torch.Generator, task: str, num_classes: int, dims) -> dict[str, torch.Tensor]:
    """Per modality, how the label is written into the features: one unit-variance direction (regression)
    or one prototype per class (classification), each of norm sqrt(D)."""
    rows = num_classes if task == "classification" else 1
    out = {}
    for m, d in zip(MODALITIES, dims, strict=True):
        w = torch.randn(rows, d, generator=gen)
        out[m] = w / w.norm(dim=1, keepdim=True) * d ** 0.5
    return out


def make_bundle(setting: str = "unaligned", sizes=(48, 16, 16), seed: int = 0, *, family: str = "mosi",
                num_classes: int | None = None, **split_kw) -> DatasetBundle:
    """Train/valid/test toy splits (see :func:`make_split` for the options). ``family`` mintrec makes a
    classification task (4 classes unless ``num_classes`` says otherwise)."""
    task = "classification" if family == "mintrec" else "regression"
    k = (num_classes or 4) if task == "classification" else 1
    gen = torch.Generator().manual_seed(seed)
    dims = split_kw.get("dims", (16, 3, 4))
    directions = label_directions(gen, task, k, dims)
    splits = {name: make_split(n, gen, setting, task=task, num_classes=k, directions=directions, **split_kw)
              for name, n in zip(("train", "valid", "test"), sizes, strict=True)}
    return DatasetBundle(name="toy", family=family, setting=setting, task=task, splits=splits, source="synthetic",
                         num_classes=k, fingerprint=f"toy-{family}-{setting}-{seed}-{sizes}-{sorted(split_kw.items())}")


def info_of(setting: str = "unaligned", family: str = "mosi", **kw) -> DataInfo:
    """The :class:`DataInfo` of a toy bundle, without keeping the data."""
    return make_bundle(setting, sizes=(2, 1, 1), family=family, **kw).info()
