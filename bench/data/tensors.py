"""The in-memory data contract shared by every loader, method and the trainer.

A dataset is a :class:`DatasetBundle` of three :class:`Split` objects whose arrays are torch
tensors that can live on the training device; a mini-batch is the same :class:`Split` type,
sliced by an index tensor (no per-sample Python loader on the hot path).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import torch

SPLITS = ("train", "valid", "test")
# Order of the per-sample modality importance columns (EMOE's [l, v, a] convention).
IMPORTANCE_ORDER = ("text", "vision", "audio")
_TENSOR_FIELDS = (
    "labels", "audio", "vision", "text", "text_bert", "audio_lengths", "vision_lengths",
    "importance", "index",
)


@dataclass
class Split:
    """One split (or one mini-batch) of a multimodal dataset.

    labels: (N,) float32 sentiment in [-3, 3] (regression) or int64 class ids (classification).
    audio / vision: (N, T, D) float32. text: (N, T_l, D_l) float32 frozen text features or None.
    text_bert: (N, 3, T_l) int64 rows input_ids, attention_mask, segment_ids, or None.
    *_lengths: (N,) int64 true frame counts (unaligned data only), else None.
    importance: (N, 3) planted modality importance in IMPORTANCE_ORDER (synthetic data only).
    index: (N,) int64 position of each sample in its split (Self-MM keys per-sample state on it).
    """

    labels: torch.Tensor
    audio: torch.Tensor
    vision: torch.Tensor
    text: torch.Tensor | None = None
    text_bert: torch.Tensor | None = None
    audio_lengths: torch.Tensor | None = None
    vision_lengths: torch.Tensor | None = None
    importance: torch.Tensor | None = None
    index: torch.Tensor | None = None
    ids: list[str] = field(default_factory=list)
    raw_text: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.index is None:
            self.index = torch.arange(len(self.labels))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def take(self, idx: torch.Tensor) -> Split:
        """A mini-batch: every tensor indexed by ``idx`` (ids/raw_text are left empty)."""
        kw = {}
        for name in _TENSOR_FIELDS:
            t = getattr(self, name)
            kw[name] = None if t is None else t[idx]
        return Split(**kw)

    def to(self, device) -> Split:
        kw = {n: (None if getattr(self, n) is None else getattr(self, n).to(device)) for n in _TENSOR_FIELDS}
        return replace(self, **kw)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name in _TENSOR_FIELDS and getattr(self, f.name) is not None}


@dataclass(frozen=True)
class DataInfo:
    """What a method needs to know to build itself: dimensions, lengths and task, no data."""

    family: str  # hyper-parameter block: "mosi" | "mosei" | "mintrec"
    setting: str  # "aligned" | "unaligned"
    task: str  # "regression" | "classification"
    num_classes: int
    dims: dict  # {"text": D_l, "audio": D_a, "vision": D_v}; text is None without features
    seq_lens: dict  # {"text": T_l or None, "audio": T_a, "vision": T_v}
    has_text_features: bool
    has_text_bert: bool


@dataclass
class DatasetBundle:
    """A loaded dataset: splits plus everything the results need to say where it came from."""

    name: str
    family: str
    setting: str
    task: str
    splits: dict[str, Split]
    source: str  # "synthetic" | "real"
    num_classes: int = 1
    label_names: list[str] | None = None
    files: list[dict] = field(default_factory=list)  # path, sha256, expected_sha256, status
    notes: list[str] = field(default_factory=list)  # cleaning counts, checksum warnings
    fingerprint: str = ""  # sha256 of the data files, or of the synthetic generator's parameters
    # True only when every file matches its published checksum (e.g. MMSA's): only such results may
    # be compared with published numbers. Synthetic data and mini sets such as mosi229 are False.
    standard: bool = False

    @property
    def train(self) -> Split:
        return self.splits["train"]

    def info(self) -> DataInfo:
        tr = self.train
        return DataInfo(
            family=self.family,
            setting=self.setting,
            task=self.task,
            num_classes=self.num_classes,
            dims={
                "text": None if tr.text is None else int(tr.text.shape[-1]),
                "audio": int(tr.audio.shape[-1]),
                "vision": int(tr.vision.shape[-1]),
            },
            seq_lens={
                "text": self._text_len(tr),
                "audio": int(tr.audio.shape[1]),
                "vision": int(tr.vision.shape[1]),
            },
            has_text_features=tr.text is not None,
            has_text_bert=tr.text_bert is not None,
        )

    @staticmethod
    def _text_len(tr: Split) -> int | None:
        if tr.text is not None:
            return int(tr.text.shape[1])
        if tr.text_bert is not None:
            return int(tr.text_bert.shape[2])
        return None  # e.g. real MIntRec without a tokenizer: no text input at all

    def to(self, device) -> DatasetBundle:
        return replace(self, splits={k: v.to(device) for k, v in self.splits.items()})

    def sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.splits.items()}
