"""``bench describe``: parameter counts per submodule group and the resolved hyper-parameters.

Models are built on the ``meta`` device, so describing a 300 M-parameter configuration costs no
memory and needs no data: dimensions come from the dataset's published shapes (real datasets) or
from the synthetic profile.
"""

from __future__ import annotations

import dataclasses

import torch

from bench.data.families import FAMILIES
from bench.data.tensors import DataInfo
from bench.method import count_parameter_groups

count_groups = count_parameter_groups  # the name tests and scripts use

# Published shapes of the real files (bench.data.families), used when no data is loaded:
# (family, setting) -> modality -> (sequence length, feature width) of the standard release.
REAL_SHAPES = {(name, setting): f.shapes[setting] for name, f in FAMILIES.items() for setting in f.settings}


def canonical_info(family: str, setting: str) -> DataInfo:
    f = FAMILIES[family]
    shapes = f.shapes[setting]
    return DataInfo(
        family=family, setting=setting, task=f.task, num_classes=f.num_classes,
        dims={k: v[1] for k, v in shapes.items()}, seq_lens={k: v[0] for k, v in shapes.items()},
        has_text_features=f.has_text_features, has_text_bert=True,
    )


def describe(method_cls, hp, info: DataInfo) -> dict:
    with torch.device("meta"):
        model = method_cls(hp, info)
    return {
        "method": method_cls.name, "family": info.family, "setting": info.setting,
        "dims": info.dims, "seq_lens": info.seq_lens,
        "parameters": count_parameter_groups(model, method_cls.describe_groups()),
        "hparams": dataclasses.asdict(hp),
        "record": model.record(),
    }
