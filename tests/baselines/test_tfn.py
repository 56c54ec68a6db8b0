import pytest
import torch

from baselines.tfn import TFN, TFNHParams, tensor_fusion
from tests.baselines.helpers import linear_params as _linear
from tests.baselines.helpers import lstm_params as _lstm
from tests.baselines.helpers import meta_counts
from tests.helpers import make_bundle


def test_parameter_count_mosi_by_hand():
    _, c = meta_counts(TFN, "mosi", "unaligned")  # text 768, audio 5, vision 20
    audio = 2 * 5 + _linear(5, 32) + 2 * _linear(32, 32)
    vision = 2 * 20 + _linear(20, 128) + 2 * _linear(128, 128)
    text = _lstm(768, 128) + _linear(128, 32)
    post = _linear(33 * 129 * 33, 64) + _linear(64, 64) + _linear(64, 1)
    assert (c["audio_subnet"], c["vision_subnet"], c["text_subnet"], c["post_fusion"]) == (audio, vision, text, post)
    assert c["total"] == audio + vision + text + post and "other" not in c


def test_defaults_follow_mmsa_config():
    hp = TFN.default_hparams("mosi", "unaligned")
    dims = (hp.hidden_text, hp.hidden_audio, hp.hidden_vision, hp.text_out, hp.post_fusion_dim)
    assert dims == (128, 32, 128, 32, 64)
    assert (hp.dropout_audio, hp.dropout_vision, hp.dropout_text, hp.dropout_post) == (0.3, 0.3, 0.3, 0.5)
    assert (hp.batch_size, hp.learning_rate, hp.weight_decay, hp.early_stop) == (32, 1e-3, 0.0, 8)
    hp = TFN.default_hparams("mosei", "aligned")
    dims = (hp.hidden_text, hp.hidden_audio, hp.hidden_vision, hp.text_out, hp.post_fusion_dim)
    assert dims == (128, 16, 128, 128, 16)
    assert (hp.dropout_audio, hp.dropout_vision, hp.dropout_text, hp.dropout_post) == (0.4, 0.4, 0.4, 0.4)
    assert (hp.batch_size, hp.learning_rate, hp.weight_decay) == (128, 5e-3, 0.0)
    assert TFN.default_setting == "unaligned"


def test_tensor_fusion_equals_hand_outer_product():
    a = torch.tensor([[2.0]])
    v = torch.tensor([[3.0, -1.0]])
    t = torch.tensor([[5.0]])
    got = tensor_fusion(a, v, t)[0].tolist()
    # [1,2] x [1,3,-1] x [1,5], audio index slowest, text fastest
    want = []
    for ai in (1.0, 2.0):
        for vj in (1.0, 3.0, -1.0):
            for tk in (1.0, 5.0):
                want.append(ai * vj * tk)
    assert got == want
    # contains the unimodal vectors and the bias 1 (the reason for the appended 1)
    assert got[0] == 1.0 and got[6 + 0] == 2.0 and got[2] == 3.0 and got[1] == 5.0


def test_output_range_quirk():
    bundle = make_bundle()
    m = TFN(TFNHParams(hidden_text=8, text_out=4, hidden_vision=4, hidden_audio=4), bundle.info()).eval()
    with torch.no_grad():
        pred = m(bundle.splits["test"])["pred"]
    assert pred.shape == (30,) and float(pred.abs().max()) < 3.0
    m2 = TFN(TFNHParams(hidden_text=8, text_out=4, hidden_vision=4, hidden_audio=4, output_activation="linear"),
             bundle.info()).eval()
    m2.load_state_dict(m.state_dict())
    with torch.no_grad():
        raw = m2(bundle.splits["test"])["pred"]
    assert torch.allclose(pred, 6 * torch.sigmoid(raw) - 3)


@pytest.mark.parametrize("family", ["mosi", "mosei"])
def test_forward_shapes(family):
    bundle = make_bundle()
    hp = TFN.default_hparams(family, "aligned")
    model = TFN(hp, bundle.info()).eval()
    out = model(bundle.splits["test"])
    assert out["pred"].shape == (30,)
    assert out["fused"].shape == (30, (hp.hidden_audio + 1) * (hp.hidden_vision + 1) * (hp.text_out + 1))
