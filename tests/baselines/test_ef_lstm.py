import dataclasses

import pytest
import torch

from baselines._align import avg_pool_align
from baselines.ef_lstm import EFLSTM, EFLSTMHParams
from bench.describe import canonical_info
from bench.errors import UserError
from tests.baselines.helpers import linear_params as _linear
from tests.baselines.helpers import lstm_params as _lstm
from tests.baselines.helpers import meta_counts
from tests.helpers import make_bundle


def test_parameter_count_mosi_by_hand():
    _, c = meta_counts(EFLSTM, "mosi", "aligned")  # T 50; text 768, audio 5, vision 20
    norm = 2 * 50
    lstm = _lstm(793, 128) + 3 * _lstm(128, 128)
    head = _linear(128, 128) + _linear(128, 1)
    assert (c["norm"], c["lstm"], c["head"]) == (norm, lstm, head)
    assert c["total"] == norm + lstm + head and "other" not in c


def test_defaults_follow_mmsa_config():
    hp = EFLSTM.default_hparams("mosi", "aligned")
    assert (hp.hidden, hp.num_layers, hp.dropout) == (128, 4, 0.5)
    assert (hp.batch_size, hp.learning_rate, hp.weight_decay, hp.early_stop) == (32, 1e-3, 5e-3, 8)
    hp = EFLSTM.default_hparams("mosei", "aligned")
    assert (hp.hidden, hp.num_layers, hp.dropout) == (256, 2, 0.4)
    assert (hp.batch_size, hp.learning_rate, hp.weight_decay) == (128, 5e-3, 1e-4)
    assert EFLSTM.default_setting == "aligned"


def test_unaligned_data_is_pooled_to_the_text_length_or_refused():
    # MMSA's need_model_aligned: audio/vision average-pooled to the text length before the model
    info = canonical_info("mosi", "unaligned")
    with torch.device("meta"):
        model = EFLSTM(EFLSTMHParams(), info)
    assert model.norm.num_features == info.seq_lens["text"] == 50
    bundle = make_bundle()
    b = bundle.splits["test"]
    short = dataclasses.replace(b, audio=b.audio[:, :4], vision=b.vision[:, :7])
    model = EFLSTM(EFLSTMHParams(hidden=8, num_layers=1), bundle.info()).eval()
    seen = {}
    model.norm.register_forward_hook(lambda _m, inp, _o: seen.setdefault("x", inp[0]))
    with torch.no_grad():
        model(short)
    t_len, d_t = b.text.shape[1], b.text.shape[2]
    x = seen["x"]
    assert x.shape[1] == t_len
    d_a = b.audio.shape[2]
    assert torch.equal(x[..., d_t:d_t + d_a], avg_pool_align(short.audio, t_len))
    assert torch.equal(x[..., d_t + d_a:], avg_pool_align(short.vision, t_len))
    refusing = EFLSTM(EFLSTMHParams(hidden=8, num_layers=1, unaligned_input="refuse"), bundle.info())
    with pytest.raises(UserError, match="unaligned_input=refuse"):
        refusing(short)
    with pytest.raises(UserError, match="aligned"):
        EFLSTM(EFLSTMHParams(unaligned_input="refuse"), info)


def test_early_fusion_is_per_frame_concatenation():
    bundle = make_bundle()
    model = EFLSTM(EFLSTMHParams(hidden=8, num_layers=1), bundle.info()).eval()
    b = bundle.splits["test"]
    seen = {}
    model.norm.register_forward_hook(lambda mod, inp, out: seen.setdefault("x", inp[0]))
    with torch.no_grad():
        model(b)
    assert torch.equal(seen["x"], torch.cat([b.text, b.audio, b.vision], dim=-1))
    # BatchNorm1d(T): one running statistic per time step (MMSA's BatchNorm1d(input_len))
    assert model.norm.num_features == b.text.shape[1]
