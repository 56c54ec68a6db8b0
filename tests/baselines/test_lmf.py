import pytest
import torch

from baselines.lmf import LMF, LMFHParams, low_rank_fusion
from tests.baselines.helpers import linear_params as _linear
from tests.baselines.helpers import lstm_params as _lstm
from tests.baselines.helpers import meta_counts
from tests.helpers import make_bundle


def test_parameter_count_mosi_by_hand():
    _, c = meta_counts(LMF, "mosi", "unaligned")  # text 768, audio 5, vision 20
    audio = 2 * 5 + _linear(5, 16) + 2 * _linear(16, 16)
    vision = 2 * 20 + _linear(20, 128) + 2 * _linear(128, 128)
    text = _lstm(768, 128) + _linear(128, 64)  # text_out = 128 // 2
    factors = 3 * (17 + 129 + 65) * 1
    fusion = 3 + 1
    got = (c["audio_subnet"], c["vision_subnet"], c["text_subnet"], c["factors"], c["fusion_weights"])
    assert got == (audio, vision, text, factors, fusion)
    assert c["total"] == audio + vision + text + factors + fusion and "other" not in c


def test_defaults_follow_mmsa_config():
    hp = LMF.default_hparams("mosi", "unaligned")
    assert (hp.hidden_text, hp.hidden_audio, hp.hidden_vision, hp.rank) == (128, 16, 128, 3)
    assert (hp.dropout_audio, hp.dropout_vision, hp.dropout_text, hp.dropout_post) == (0.3,) * 4
    assert (hp.batch_size, hp.learning_rate, hp.factor_lr, hp.weight_decay, hp.early_stop) == (64, 1e-3, 1e-3, 5e-3, 8)
    hp = LMF.default_hparams("mosei", "aligned")
    assert (hp.hidden_text, hp.hidden_audio, hp.hidden_vision, hp.rank) == (128, 16, 128, 4)
    assert (hp.dropout_audio, hp.dropout_vision, hp.dropout_text, hp.dropout_post) == (0.2,) * 4
    assert (hp.batch_size, hp.learning_rate, hp.factor_lr, hp.weight_decay) == (32, 1e-3, 1e-3, 1e-3)
    assert LMF.default_setting == "unaligned"


def test_low_rank_fusion_equals_explicit_sum_over_rank():
    gen = torch.Generator().manual_seed(0)
    hs = [torch.randn(2, d, generator=gen) for d in (1, 2, 3)]
    factors = [torch.randn(3, d + 1, 2, generator=gen) for d in (1, 2, 3)]
    w = torch.randn(1, 3, generator=gen)
    b = torch.randn(1, 2, generator=gen)
    out, _ = low_rank_fusion(hs, factors, w, b)
    for n in range(2):
        z = [torch.cat([torch.ones(1), h[n]]) for h in hs]
        for o in range(2):
            total = b[0, o].item()
            for i in range(3):
                prod = 1.0
                for m in range(3):
                    prod *= sum(z[m][d].item() * factors[m][i, d, o].item() for d in range(len(z[m])))
                total += w[0, i].item() * prod
            assert out[n, o].item() == pytest.approx(total, rel=1e-5, abs=1e-6)
    # equals the TFN weight W = sum_i w_i a_i (x) v_i (x) t_i applied to the full outer product (out 0)
    W = sum(w[0, i] * torch.einsum("a,v,t->avt", factors[0][i, :, 0], factors[1][i, :, 0], factors[2][i, :, 0])
            for i in range(3))
    z = [torch.cat([torch.ones(1), h[0]]) for h in hs]
    full = torch.einsum("a,v,t->avt", *z)
    assert (W * full).sum().item() + b[0, 0].item() == pytest.approx(out[0, 0].item(), rel=1e-5)


def test_optimiser_groups_follow_mmsa():
    info = make_bundle().info()
    m = LMF(LMFHParams(factor_lr=5e-4, learning_rate=2e-3), info)
    g = m.param_groups()
    assert [p is q for p, q in zip(g[0]["params"], (m.audio_factor, m.video_factor, m.text_factor))] == [True] * 3
    assert g[0]["lr"] == 5e-4 and g[1]["lr"] == 2e-3 and g[0]["weight_decay"] == g[1]["weight_decay"] == 5e-3
    ids = {id(p) for grp in g for p in grp["params"]}
    assert id(m.fusion_weights) not in ids and id(m.fusion_bias) not in ids  # MMSA never updates them
    assert len(ids) == sum(1 for _ in m.parameters()) - 2
    m2 = LMF(LMFHParams(train_fusion_weights=True), info)
    assert len({id(p) for grp in m2.param_groups() for p in grp["params"]}) == sum(1 for _ in m2.parameters())
