import json
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from baselines._align import avg_pool_align, pool_geometry
from baselines.mfn import MFN, MLP2, MFNHParams, delta_memory_attention, gated_memory_update, lstm_cell_states
from bench.cli import main
from bench.errors import UserError
from tests.baselines.helpers import linear_params as _linear
from tests.baselines.helpers import lstm_params as _lstm
from tests.baselines.helpers import meta_counts
from tests.conftest import shared_data
from tests.toy import make_bundle as make_tiny

SMALL = dict(hidden_text=8, hidden_audio=4, hidden_vision=4, mem_size=6, att1_hidden=5, att2_hidden=5,
             gamma1_hidden=5, gamma2_hidden=5, out_hidden=5)
SMALL_CLI = [x for k, v in SMALL.items() for x in ("--set", f"{k}={v}")]


@pytest.mark.parametrize("family,dims", [("mosi", (768, 5, 20)), ("mosei", (768, 74, 35))])
def test_parameter_count_by_hand(family, dims):
    hp = MFN.default_hparams(family, "aligned")
    _, c = meta_counts(MFN, family, "aligned", hp=hp)
    ht, ha, hv = (256, 32, 256) if family == "mosi" else (128, 32, 128)
    mem = 400 if family == "mosi" else 128
    h1, h2, g1, g2, o = (32, 64, 256, 32, 128) if family == "mosi" else (128, 128, 256, 256, 128)
    att = 2 * (ht + ha + hv)  # windowsize 2: [c_{t-1}; c_t]
    lstms = _lstm(dims[0], ht) + _lstm(dims[1], ha) + _lstm(dims[2], hv)
    attention = _linear(att, h1) + _linear(h1, att)
    memory = _linear(att, h2) + _linear(h2, mem)
    gates = _linear(att + mem, g1) + _linear(g1, mem) + _linear(att + mem, g2) + _linear(g2, mem)
    head = _linear(ht + ha + hv + mem, o) + _linear(o, 1)
    assert (c["lstms"], c["attention"], c["memory"], c["gates"], c["head"]) == (lstms, attention, memory, gates, head)
    assert c["total"] == lstms + attention + memory + gates + head and "other" not in c
    if family == "mosi":
        assert c["total"] == 2_172_657
    # unaligned data builds the same network (alignment has no parameters)
    _, un = meta_counts(MFN, family, "unaligned", hp=hp)
    assert un["total"] == c["total"]


def test_defaults_follow_mmsa_config():
    hp = MFN.default_hparams("mosi", "aligned")
    assert (hp.hidden_text, hp.hidden_audio, hp.hidden_vision, hp.mem_size) == (256, 32, 256, 400)
    assert (hp.att1_hidden, hp.att1_dropout, hp.att2_hidden, hp.att2_dropout) == (32, 0.2, 64, 0.0)
    assert (hp.gamma1_hidden, hp.gamma1_dropout, hp.gamma2_hidden, hp.gamma2_dropout) == (256, 0.7, 32, 0.5)
    assert (hp.out_hidden, hp.out_dropout) == (128, 0.0)
    assert (hp.batch_size, hp.learning_rate, hp.weight_decay, hp.early_stop) == (128, 2e-3, 0.0, 8)
    assert (hp.av_input, hp.time_average, hp.grad_accum, hp.grad_clip_value) == ("time_mean", "padded", 1, 0.0)
    assert hp.align_pooling == "windows"
    hp = MFN.default_hparams("mosei", "unaligned")
    assert (hp.hidden_text, hp.hidden_audio, hp.hidden_vision, hp.mem_size) == (128, 32, 128, 128)
    assert (hp.att1_hidden, hp.att1_dropout, hp.att2_hidden, hp.att2_dropout) == (128, 0.2, 128, 0.5)
    assert (hp.gamma1_hidden, hp.gamma1_dropout, hp.gamma2_hidden, hp.gamma2_dropout) == (256, 0.7, 256, 0.0)
    assert (hp.out_hidden, hp.out_dropout) == (128, 0.5)
    assert (hp.batch_size, hp.learning_rate, hp.weight_decay) == (64, 5e-4, 1e-4)
    assert MFN.default_setting == "aligned" and MFN.settings == ("aligned", "unaligned")


def test_avg_pool_align_by_hand():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]).reshape(1, 5, 1)
    # 5 -> 2: pad one copy of the last frame, windows of 3: [1,2,3], [4,5,5]
    assert pool_geometry(5, 2) == (1, 3)
    assert torch.allclose(avg_pool_align(x, 2).flatten(), torch.tensor([2.0, 14.0 / 3.0]))
    # 6 -> 3 divides: no padding, windows of 2
    x6 = torch.arange(1.0, 7.0).reshape(1, 6, 1)
    assert torch.equal(avg_pool_align(x6, 3).flatten(), torch.tensor([1.5, 3.5, 5.5]))
    # 1 -> 4 (MMSA's need_normalized path): the single frame repeated
    one = torch.tensor([[[2.0, -1.0]]])
    assert torch.equal(avg_pool_align(one, 4), one.expand(1, 4, 2))
    # 3 -> 5 (shorter than the target): pad 2 copies of the last frame, windows of 1
    assert torch.equal(avg_pool_align(torch.tensor([[[1.0], [2.0], [3.0]]]), 5).flatten(),
                       torch.tensor([1.0, 2.0, 3.0, 3.0, 3.0]))
    assert avg_pool_align(x, 5) is x  # already the text length: unchanged
    # the MMSA 2.2.1 wheel groups frames with a stride: [1,2,3,4,5,5] -> rows [1,2], [3,4], [5,5] -> column means
    assert torch.allclose(avg_pool_align(x, 2, "strided").flatten(), torch.tensor([3.0, 11.0 / 3.0]))
    assert torch.equal(avg_pool_align(x6, 3, "strided").flatten(), torch.tensor([2.5, 3.5, 4.5]))
    assert torch.equal(avg_pool_align(one, 4, "strided"), one.expand(1, 4, 2))
    with pytest.raises(UserError, match="pooling"):
        avg_pool_align(x, 2, "median")
    # MOSI unaligned -> 50 text steps: audio 375 frames (pad 25, pool 8), vision 500 (pool 10)
    assert pool_geometry(375, 50) == (25, 8) and pool_geometry(500, 50) == (0, 10)


def test_inputs_time_mean_repeated_or_pooled_sequences():
    bundle = make_tiny("unaligned")  # text 8 steps, audio 10 frames, vision 12 frames, with lengths
    b = bundle.splits["test"]
    model = MFN(MFNHParams(**SMALL), bundle.info())
    x_l, x_a, x_v = model.aligned_inputs(b)
    assert x_l is b.text
    assert torch.allclose(x_a, b.audio.mean(1, keepdim=True).expand(-1, 8, -1))  # mean over padded frames
    assert torch.allclose(x_v, b.vision.mean(1, keepdim=True).expand(-1, 8, -1))
    model.hp.time_average = "valid"
    _, x_a, _ = model.aligned_inputs(b)
    want = b.audio.sum(1) / b.audio_lengths[:, None].float()
    assert torch.allclose(x_a[:, 3], want, atol=1e-6)
    model.hp.av_input = "sequence"
    _, x_a, x_v = model.aligned_inputs(b)
    # audio 10 -> 8: pad 6 last frames, windows of 2; vision 12 -> 8: pad 4, windows of 2
    a_pad = torch.cat([b.audio, b.audio[:, -1:].expand(-1, 6, -1)], 1)
    assert torch.allclose(x_a, a_pad.reshape(len(b), 8, 2, -1).mean(2))
    assert torch.allclose(x_v[:, 0], b.vision[:, :2].mean(1))
    model.hp.align_pooling = "strided"
    _, x_a, _ = model.aligned_inputs(b)
    assert torch.allclose(x_a, a_pad.reshape(len(b), 2, 8, -1).mean(1))
    assert torch.allclose(x_a[:, 0], (b.audio[:, 0] + b.audio[:, 8]) / 2)


def test_lstm_cell_states_equal_lstmcell_loop():
    torch.manual_seed(0)
    cell = nn.LSTMCell(3, 4)
    x = torch.randn(2, 5, 3)
    h_all, c_all = lstm_cell_states(cell, x)
    h = c = torch.zeros(2, 4)
    assert torch.equal(h_all[0], h) and torch.equal(c_all[0], c)
    for t in range(5):
        h, c = cell(x[:, t], (h, c))
        assert torch.allclose(h_all[t + 1], h, atol=1e-6) and torch.allclose(c_all[t + 1], c, atol=1e-6)


def _set(linear, weight, bias):
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(weight))
        linear.bias.copy_(torch.tensor(bias))


def test_delta_memory_attention_by_hand():
    att1 = MLP2(4, 4, 4, 0.0)
    _set(att1.fc1, torch.eye(4).tolist(), [0.0] * 4)
    _set(att1.fc2, torch.eye(4).tolist(), [0.0, 0.0, 0.0, 0.0])
    c_prev, c_new = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, -1.0]])
    c_star, a, attended = delta_memory_attention(c_prev, c_new, att1)
    assert c_star.tolist() == [[1.0, 0.0, 2.0, -1.0]]  # [c_{t-1}; c_t]
    # logits = relu(c*) = [1, 0, 2, 0]; softmax over the 4 entries
    den = math.e + 1 + math.e ** 2 + 1
    want_a = [math.e / den, 1 / den, math.e ** 2 / den, 1 / den]
    assert a[0].tolist() == pytest.approx(want_a, abs=1e-6)
    assert attended[0].tolist() == pytest.approx([want_a[0], 0.0, 2 * want_a[2], -want_a[3]], abs=1e-6)
    assert attended[0].tolist() == pytest.approx([0.224515, 0.0, 1.220592, -0.082595], abs=1e-6)


def test_gated_memory_update_by_hand():
    g1, g2 = MLP2(2, 1, 1, 0.0), MLP2(2, 1, 1, 0.0)
    _set(g1.fc1, [[1.0, 2.0]], [0.0])  # input [attended; u]
    _set(g1.fc2, [[0.5]], [-1.0])
    _set(g2.fc1, [[1.0, -1.0]], [0.0])
    _set(g2.fc2, [[2.0]], [0.0])
    mem, attended, c_hat = torch.tensor([[0.5]]), torch.tensor([[1.0]]), torch.tensor([[-0.4]])
    with torch.no_grad():
        new, gam1, gam2 = gated_memory_update(mem, attended, c_hat, g1, g2)
    # gamma1 = sigmoid(0.5 * relu(1 + 2*0.5) - 1) = sigmoid(0) = 0.5; gamma2 = sigmoid(2 * relu(1 - 0.5)) = sigmoid(1)
    assert float(gam1) == pytest.approx(0.5) and float(gam2) == pytest.approx(1 / (1 + math.exp(-1)))
    assert float(new) == pytest.approx(0.5 * 0.5 + (1 / (1 + math.exp(-1))) * -0.4, abs=1e-7)
    assert float(new) == pytest.approx(-0.0424234, abs=1e-6)


def _mmsa_reference(model: MFN, x_l, x_a, x_v):
    """MMSA's MFN.forward written step by step (LSTMCell calls, per-step attention and gates)."""
    n, t = x_l.shape[0], x_l.shape[1]
    hp = model.hp
    h = [torch.zeros(n, d) for d in (hp.hidden_text, hp.hidden_audio, hp.hidden_vision)]
    c = [torch.zeros(n, d) for d in (hp.hidden_text, hp.hidden_audio, hp.hidden_vision)]
    mem = torch.zeros(n, hp.mem_size)
    cells = (model.lstm_l, model.lstm_a, model.lstm_v)
    for i in range(t):
        new = [cell(x[:, i], (hh, cc)) for cell, x, hh, cc in zip(cells, (x_l, x_a, x_v), h, c, strict=True)]
        c_star = torch.cat(c + [nc for _, nc in new], dim=1)
        att = F.softmax(model.att1.fc2(F.relu(model.att1.fc1(c_star))), dim=1)
        attended = att * c_star
        c_hat = torch.tanh(model.att2.fc2(F.relu(model.att2.fc1(attended))))
        both = torch.cat([attended, mem], dim=1)
        g1 = torch.sigmoid(model.gamma1.fc2(F.relu(model.gamma1.fc1(both))))
        g2 = torch.sigmoid(model.gamma2.fc2(F.relu(model.gamma2.fc1(both))))
        mem = g1 * mem + g2 * c_hat
        h = [nh for nh, _ in new]
        c = [nc for _, nc in new]
    last = torch.cat(h + [mem], dim=1)
    return model.out.fc2(F.relu(model.out.fc1(last))).squeeze(-1)


@pytest.mark.parametrize("av_input", ["time_mean", "sequence"])
def test_forward_equals_stepwise_mmsa_loop(av_input):
    bundle = make_tiny("unaligned")
    torch.manual_seed(3)
    model = MFN(MFNHParams(**SMALL, av_input=av_input), bundle.info()).eval()
    b = bundle.splits["test"]
    with torch.no_grad():
        got = model(b)["pred"]
        want = _mmsa_reference(model, *model.aligned_inputs(b))
    assert got.shape == (16,)
    assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.slow
def test_cli_run_on_mosi229(tmp_path, capsys):
    root = shared_data("mosi229")
    code = main(["run", "--method", "mfn", "--dataset", "mosi", "--setting", "unaligned", "--data-root", str(root),
                 "--seeds", "1111", "--epochs", "2", "--out", str(tmp_path), "--quiet", *SMALL_CLI])
    assert code == 0, capsys.readouterr().err
    r = json.loads(next(tmp_path.glob("runs/mfn/mosi-unaligned/*/seed-1111/result.json")).read_text())
    assert r["data"]["sizes"] == {"train": 139, "valid": 47, "test": 43}
    assert r["selection"]["epochs_run"] == 2 and 0 < r["test"]["mae"] < 3
