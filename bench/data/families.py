"""The dataset families (MOSI, MOSEI, MIntRec), each registered once with its facts.

A family's settings, task, classes, the files its real loader reads, and the split sizes and feature shapes
of the standard release are declared here and nowhere else: the loaders (``mmsa``, ``mintrec``), the
synthetic stand-ins (``synthetic-<family>``), ``bench data verify``, ``bench describe``, the runner and the
tables read them from this module. It imports nothing from the loaders, so any module may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.errors import UserError, did_you_mean

SYNTHETIC_PREFIX = "synthetic-"
TASKS = ("regression", "classification")


@dataclass(frozen=True)
class Family:
    """One dataset family; ``name`` is also the real dataset's name, ``synthetic-<name>`` its stand-in."""

    name: str  # "mosi"
    title: str  # "CMU-MOSI": how notes and captions name the real data
    folder: str  # the family's folder under the data root
    task: str  # one of TASKS
    num_classes: int  # 1 for regression
    settings: tuple[str, ...]
    # setting -> role -> path under the data root, for every file the real loader reads (in reading order)
    files: dict[str, dict[str, str]]
    split_sizes: tuple[int, int, int]  # train/valid/test samples of the standard release
    # setting -> modality (text, audio, vision) -> (sequence length, feature width) of the standard release
    shapes: dict[str, dict[str, tuple[int, int]]]
    has_text_features: bool  # the release has frozen text features (MIntRec has only the text to tokenise)
    label_names: tuple[str, ...] = ()  # class names, label id = position (classification)

    @property
    def classification(self) -> bool:
        return self.task == "classification"

    @property
    def synthetic_name(self) -> str:
        return SYNTHETIC_PREFIX + self.name


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Make ``family`` known to every module that reads dataset facts; a name is registered once."""
    if family.name in FAMILIES and FAMILIES[family.name] != family:
        raise ValueError(f"dataset family {family.name!r} registered twice")
    if family.task not in TASKS:
        raise ValueError(f"dataset family {family.name!r}: task {family.task!r} is not one of {TASKS}")
    if set(family.files) != set(family.settings) or set(family.shapes) != set(family.settings):
        raise ValueError(f"dataset family {family.name!r}: files and shapes must cover exactly its settings")
    FAMILIES[family.name] = family
    return family


def _mmsa_files(folder: str) -> dict[str, dict[str, str]]:
    """thuiar/MMSA's layout: one feature pickle per setting (docs/data.md)."""
    return {s: {"features": f"{folder}/Processed/{s}_50.pkl"} for s in ("aligned", "unaligned")}


# Shapes: those of the released MMSA feature pickles, and thuiar/MIntRec data/audio_pre.py,
# video_pre.py (wav2vec 2.0 audio, at most 480 frames; 256-d video, at most 230 frames; 30 BERT word pieces).
MOSI = register_family(Family(
    name="mosi", title="CMU-MOSI", folder="MOSI", task="regression", num_classes=1,
    settings=("aligned", "unaligned"), files=_mmsa_files("MOSI"), split_sizes=(1284, 229, 686),
    shapes={"aligned": dict(text=(50, 768), audio=(50, 5), vision=(50, 20)),
            "unaligned": dict(text=(50, 768), audio=(375, 5), vision=(500, 20))},
    has_text_features=True,
))
MOSEI = register_family(Family(
    name="mosei", title="CMU-MOSEI", folder="MOSEI", task="regression", num_classes=1,
    settings=("aligned", "unaligned"), files=_mmsa_files("MOSEI"), split_sizes=(16326, 1871, 4659),
    shapes={"aligned": dict(text=(50, 768), audio=(50, 74), vision=(50, 35)),
            "unaligned": dict(text=(50, 768), audio=(500, 74), vision=(500, 35))},
    has_text_features=True,
))
# thuiar/MIntRec data/__init__.py: label id = position in this list (this exact order).
# fmt: off
MINTREC_LABELS = (
    "Complain", "Praise", "Apologise", "Thank", "Criticize", "Agree", "Taunt", "Flaunt", "Joke", "Oppose",
    "Comfort", "Care", "Inform", "Advise", "Arrange", "Introduce", "Leave", "Prevent", "Greet",
    "Ask for help",
)
# fmt: on
MINTREC = register_family(Family(
    name="mintrec", title="MIntRec", folder="MIntRec", task="classification", num_classes=len(MINTREC_LABELS),
    settings=("unaligned",),
    files={"unaligned": {"train": "MIntRec/train.tsv", "valid": "MIntRec/dev.tsv", "test": "MIntRec/test.tsv",
                         "audio": "MIntRec/audio_data/audio_feats.pkl",
                         "video": "MIntRec/video_data/video_feats.pkl"}},
    split_sizes=(1334, 445, 445),
    shapes={"unaligned": dict(text=(30, 768), audio=(480, 768), vision=(230, 256))},
    has_text_features=False, label_names=MINTREC_LABELS,
))


# ------------------------------------------------------------------------------------ lookups
def synthetic_families() -> dict[str, str]:
    """``{"synthetic-mosi": "mosi", ...}``: every registered family's synthetic stand-in."""
    return {f.synthetic_name: name for name, f in FAMILIES.items()}


def dataset_names() -> tuple[str, ...]:
    """The real datasets, then their synthetic stand-ins."""
    return (*FAMILIES, *synthetic_families())


def family_of(dataset: str) -> str | None:
    """The family of a dataset name (``synthetic-mosi`` -> ``mosi``); None for a name that is not a family's."""
    key = str(dataset).strip().lower()
    return key if key in FAMILIES else synthetic_families().get(key)


def get_family(name: str) -> Family:
    """The family of a family or dataset name; an unknown name is a one-line error with did-you-mean."""
    key = family_of(name)
    if key is None:
        raise UserError(f"unknown dataset family {name!r}.{did_you_mean(str(name), FAMILIES)}")
    return FAMILIES[key]


def dataset_name(family: str, source: str) -> str:
    """The dataset a table reads: the family itself on real data, its synthetic stand-in otherwise."""
    return family if source == "real" else SYNTHETIC_PREFIX + family


def expected_files() -> list[tuple[str, str, str]]:
    """``(family, setting, path relative to the data root)`` for every file the real loaders read."""
    return [(name, setting, rel) for name, f in FAMILIES.items() for setting in f.settings
            for rel in f.files[setting].values()]


def missing_data_files(family: str, setting: str, data_root) -> list[str]:
    """Files under ``data_root`` that the real loader of (family, setting) needs and that are absent."""
    root = Path(data_root)
    return [rel for fam, st, rel in expected_files() if fam == family and st == setting and not (root / rel).exists()]
