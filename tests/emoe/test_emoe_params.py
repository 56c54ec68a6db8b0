"""Parameter counts per group equal the official model's (bert-base geometry, built on the meta device)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bench.data.tensors import DataInfo
from emoe.method import EMOE, EMOEPaper
from emoe.model import count_parameters

GEOM = {"mosi": ((768, 5, 20), (50, 375, 500)), "mosei": ((768, 74, 35), (50, 500, 500))}

COMMON = {"bert": 109_482_240, "encoder_c": 65_536, "encoders_unused": 196_608, "transformers": 9_478_656,
          "unimodal_heads": 395_523, "fused_head": 131_841}
EXPECTED = {
    ("mosi", "unaligned"): dict(COMMON, router=196_525_227, conv_proj=1_015_040, transfer_ali=43_850,
                                total=317_334_521),
    ("mosi", "aligned"): dict(COMMON, router=196_525_227, conv_proj=1_015_040, transfer_ali=5_100,
                              total=317_295_771),
    ("mosei", "unaligned"): dict(COMMON, router=240_363_777, conv_proj=1_028_864, transfer_ali=50_100,
                                 total=361_193_145),
    ("mosei", "aligned"): dict(COMMON, router=240_363_777, conv_proj=1_028_864, transfer_ali=5_100,
                               total=361_148_145),
}


def _info(family, setting):
    dims, lens = GEOM[family]
    if setting == "aligned":
        lens = (50, 50, 50)
    return DataInfo(family, setting, "regression", 1, {"text": 768, "audio": dims[1], "vision": dims[2]},
                    {"text": lens[0], "audio": lens[1], "vision": lens[2]}, False, True)


def _meta(cls, hp, info):
    from transformers import BertConfig

    with torch.device("meta"):
        return cls(hp, info, bert_config=BertConfig())


@pytest.mark.parametrize("family,setting", sorted(EXPECTED))
def test_official_counts(family, setting):
    info = _info(family, setting)
    m = _meta(EMOE, EMOE.default_hparams(family, setting), info)
    assert count_parameters(m) == EXPECTED[(family, setting)]
    assert count_parameters(m.net) == EXPECTED[(family, setting)]
    assert m.record()["parameters"]["total"] == EXPECTED[(family, setting)]["total"]


def test_concat_fused_head():
    info = _info("mosi", "aligned")
    hp = dataclasses.replace(EMOE.default_hparams("mosi", "aligned"), fusion="concat")
    counts = count_parameters(_meta(EMOE, hp, info))
    assert counts["fused_head"] == 1_181_953
    assert counts["total"] == 317_295_771 - 131_841 + 1_181_953


def test_router_scale_and_paper_face():
    info = _info("mosi", "unaligned")
    m = _meta(EMOE, EMOE.default_hparams("mosi", "unaligned"), info)
    assert m.net.router.l1.in_features == 39_650 and m.net.router.l1.out_features == 4_956
    paper = count_parameters(_meta(EMOEPaper, EMOEPaper.default_hparams("mosi", "unaligned"), info))
    # BN router on 3 x 256 encoded features: 768*256+256 + 2*256 + 256*3+3 + 3 (alpha); no transfer layers
    assert paper["router"] == 768 * 256 + 256 + 512 + 771 + 3
    assert paper["transfer_ali"] == 0
    assert paper["encoders_unused"] == 196_608  # used in the paper face (per-modality encoders)


def test_mome_off_has_no_router():
    info = _info("mosi", "aligned")
    hp = dataclasses.replace(EMOE.default_hparams("mosi", "aligned"), mome=False)
    counts = count_parameters(_meta(EMOE, hp, info))
    assert counts["router"] == 0 and counts["transfer_ali"] == 0
    assert counts["total"] == 317_295_771 - 196_525_227 - 5_100


def test_describe_groups_cover_everything():
    info = _info("mosei", "unaligned")
    m = _meta(EMOE, EMOE.default_hparams("mosei", "unaligned"), info)
    groups = EMOE.describe_groups()
    assert set(groups) == {"bert", "router", "transfer_ali", "conv_proj", "encoder_c", "encoders_unused",
                           "transformers", "unimodal_heads", "fused_head"}
    assert "other" not in count_parameters(m)


def test_random_bert_base_name_gives_spec_counts():
    """``text_model=random:bert-base-uncased`` (what ``bench describe`` can use: no files needed)."""
    from bench.nn.bert import RANDOM_BERT_BASE

    info = _info("mosi", "unaligned")
    hp = dataclasses.replace(EMOE.default_hparams("mosi", "unaligned"), text_model=RANDOM_BERT_BASE)
    with torch.device("meta"):
        m = EMOE(hp, info)
    assert count_parameters(m)["total"] == 317_334_521
    rec = m.record()
    assert rec["text_mode"] == "bert" and rec["text_pretrained"] is False
