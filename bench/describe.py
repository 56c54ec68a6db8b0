"""``bench describe``: parameter counts per submodule group and the resolved hyper-parameters.

Models are built on the ``meta`` device, so describing a 300 M-parameter configuration costs no
memory and needs no data: dimensions come from the dataset's published shapes (real datasets) or
from the synthetic profile.
"""

from __future__ import annotations

import dataclasses

import torch

from bench.data.tensors import DataInfo
from bench.method import count_parameter_groups

count_groups = count_parameter_groups  # the name tests and scripts use

# Published shapes of the real files (thuiar/MMSA README; MIntRec README), used when no data is loaded.
REAL_SHAPES = {
    ("mosi", "aligned"): dict(text=(50, 768), audio=(50, 5), vision=(50, 20)),
    ("mosi", "unaligned"): dict(text=(50, 768), audio=(375, 5), vision=(500, 20)),
    ("mosei", "aligned"): dict(text=(50, 768), audio=(50, 74), vision=(50, 35)),
    ("mosei", "unaligned"): dict(text=(50, 768), audio=(500, 74), vision=(500, 35)),
    ("mintrec", "unaligned"): dict(text=(30, 768), audio=(480, 768), vision=(230, 256)),
}


def canonical_info(family: str, setting: str) -> DataInfo:
    shapes = REAL_SHAPES[(family, setting)]
    classification = family == "mintrec"
    return DataInfo(
        family=family, setting=setting, task="classification" if classification else "regression",
        num_classes=20 if classification else 1,
        dims={k: v[1] for k, v in shapes.items()}, seq_lens={k: v[0] for k, v in shapes.items()},
        has_text_features=not classification, has_text_bert=True,
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
