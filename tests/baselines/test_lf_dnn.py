import torch

from baselines.lf_dnn import LFDNN, LFDNNHParams
from tests.baselines.helpers import linear_params as _linear
from tests.baselines.helpers import lstm_params as _lstm
from tests.baselines.helpers import meta_counts
from tests.helpers import make_bundle


def test_parameter_count_mosi_by_hand():
    _, c = meta_counts(LFDNN, "mosi", "unaligned")  # text 768, audio 5, vision 20
    audio = 2 * 5 + _linear(5, 16) + 2 * _linear(16, 16)
    vision = 2 * 20 + _linear(20, 128) + 2 * _linear(128, 128)
    text = _lstm(768, 128) + _linear(128, 256)
    post = _linear(256 + 16 + 128, 128) + _linear(128, 128) + _linear(128, 1)
    assert (c["audio_subnet"], c["vision_subnet"], c["text_subnet"], c["post_fusion"]) == (audio, vision, text, post)
    assert c["total"] == 597_171 == audio + vision + text + post


def test_mosei_defaults_follow_mmsa():
    hp = LFDNN.default_hparams("mosei", "aligned")
    assert (hp.hidden_text, hp.hidden_audio, hp.hidden_vision, hp.text_out) == (128, 32, 128, 128)
    assert (hp.batch_size, hp.learning_rate, hp.weight_decay) == (64, 2e-3, 1e-3)
    assert LFDNN.default_hparams("mosi", "aligned").weight_decay == 0.01


def test_time_average_modes_differ_only_with_padding():
    from baselines.lf_dnn import _time_mean

    x = torch.tensor([[[1.0], [3.0], [0.0], [0.0]]])
    assert _time_mean(x, torch.tensor([2]), "padded").item() == 1.0  # MMSA: mean over all 4 frames
    assert _time_mean(x, torch.tensor([2]), "valid").item() == 2.0


def test_mmsa_text_dropout_quirk_is_inert():
    info = make_bundle().info()
    m = LFDNN(LFDNNHParams(dropout_text=0.9), info)
    assert m.text_drop.p == 0.0
    m2 = LFDNN(LFDNNHParams(dropout_text=0.9, text_dropout_mode="applied"), info)
    assert m2.text_drop.p == 0.9
