import pytest
import torch

from baselines.lf_dnn import LFDNN, LFDNNHParams
from bench.train.trainer import train
from tests.baselines.helpers import assert_beats_constant, assert_gradients_reach, meta_counts
from tests.baselines.helpers import linear_params as _linear
from tests.baselines.helpers import lstm_params as _lstm
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


def test_trains_and_beats_constant_on_learnable_toy_data():
    bundle = make_bundle(sizes=(256, 64, 64))
    hp = LFDNNHParams(batch_size=32, max_epochs=25, early_stop=25)
    out = train(LFDNN, hp, bundle, seed=1111)
    assert_beats_constant(out, bundle)


def test_gradient_reaches_every_subnet():
    bundle = make_bundle()
    model = LFDNN(LFDNNHParams(), bundle.info())
    b = bundle.splits["train"].take(torch.arange(16))
    model.loss_terms(model(b), b)["total"].backward()
    assert_gradients_reach(model, ("audio_subnet", "vision_subnet", "text_lstm", "text_proj", "post_fusion"))


@pytest.mark.parametrize("family", ["mosi", "mosei"])
def test_forward_shapes(family):
    bundle = make_bundle()
    model = LFDNN(LFDNN.default_hparams(family, "aligned"), bundle.info()).eval()
    out = model(bundle.splits["test"])
    assert out["pred"].shape == (30,)
    hp = LFDNN.default_hparams(family, "aligned")
    assert out["fused"].shape == (30, hp.text_out + hp.hidden_audio + hp.hidden_vision)
