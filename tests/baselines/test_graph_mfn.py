import json
from itertools import chain, combinations

import pytest
import torch
from torch.nn import functional as F

from baselines.graph_mfn import DynamicFusionGraph, GraphMFN, GraphMFNHParams
from bench.cli import main
from tests.baselines.helpers import linear_params as _linear
from tests.baselines.helpers import lstm_params as _lstm
from tests.baselines.helpers import meta_counts
from tests.conftest import shared_data
from tests.helpers import make_bundle
from tests.toy import make_bundle as make_tiny

SMALL = dict(hidden_text=8, hidden_audio=4, hidden_vision=4, mem_size=6, inner_node_dim=3, dfg_hidden=5,
             att2_hidden=5, gamma1_hidden=5, gamma2_hidden=5, out_hidden=5)
SMALL_CLI = [x for k, v in SMALL.items() for x in ("--set", f"{k}={v}")]


@pytest.mark.parametrize("family,dims", [("mosi", (768, 5, 20)), ("mosei", (768, 74, 35))])
def test_parameter_count_by_hand(family, dims):
    model, c = meta_counts(GraphMFN, family, "aligned")
    ht, ha, hv = (256, 32, 256) if family == "mosi" else (64, 16, 64)
    k = 64 if family == "mosi" else 128
    mem = 300
    n2, g1, g2, o = (32, 128, 64, 256) if family == "mosi" else (32, 64, 256, 128)
    H = 100  # MMSA's hard-coded DFG core width
    lstms = _lstm(dims[0], ht) + _lstm(dims[1], ha) + _lstm(dims[2], hv)
    singletons = _linear(2 * ht, ht) + _linear(2 * ha, ha) + _linear(2 * hv, hv)
    vertex = _linear(H, k)  # the deep-copied pattern core of every DFG network
    vertices = (_linear(ht + ha, H) + _linear(ht + hv, H) + _linear(ha + hv, H)  # la, lv, av: singletons only
                + _linear(ht + ha + hv + 3 * k, H) + 4 * vertex)  # lav: 3 singletons + 3 bimodal vertices
    t_eff = (_linear(ht + ha + hv + 4 * k, H) + vertex  # T: 3 singletons + 4 multimodal vertices
             + _linear(ht + ha + hv, H) + _linear(H, k) + _linear(k, 19))  # efficacies: 6 + 6 + 7 = 19
    memory = _linear(k, n2) + _linear(n2, mem)
    gates = _linear(k + mem, g1) + _linear(g1, mem) + _linear(k + mem, g2) + _linear(g2, mem)
    head = _linear(ht + ha + hv + mem, o) + _linear(o, 1)
    got = tuple(c[g] for g in ("lstms", "singletons", "dfg_vertices", "dfg_t_efficacy", "memory", "gates", "head"))
    assert got == (lstms, singletons, vertices, t_eff, memory, gates, head)
    total = lstms + singletons + vertices + t_eff + memory + gates + head
    assert c["total"] == total and "other" not in c
    # MMSA never registers the vertex networks: they are not trained (frozen here)
    assert model.record()["trainable_parameters"] == total - vertices
    if family == "mosi":
        assert (c["total"], total - vertices) == (2_319_280, 2_110_624)


def test_defaults_follow_mmsa_config():
    hp = GraphMFN.default_hparams("mosi", "aligned")
    dims = (hp.hidden_text, hp.hidden_audio, hp.hidden_vision, hp.mem_size, hp.inner_node_dim)
    assert dims == (256, 32, 256, 300, 64)
    assert (hp.att2_hidden, hp.att2_dropout, hp.gamma1_hidden, hp.gamma1_dropout) == (32, 0.0, 128, 0.5)
    assert (hp.gamma2_hidden, hp.gamma2_dropout, hp.out_hidden, hp.out_dropout) == (64, 0.5, 256, 0.0)
    assert (hp.batch_size, hp.learning_rate, hp.weight_decay, hp.early_stop) == (32, 2e-3, 5e-3, 8)
    assert (hp.av_input, hp.dfg_hidden, hp.dfg_vertex_training, hp.singleton_source) == (
        "sequence", 100, "frozen", "hidden")
    hp = GraphMFN.default_hparams("mosei", "unaligned")
    dims = (hp.hidden_text, hp.hidden_audio, hp.hidden_vision, hp.mem_size, hp.inner_node_dim)
    assert dims == (64, 16, 64, 300, 128)
    assert (hp.att2_hidden, hp.att2_dropout, hp.gamma1_hidden, hp.gamma1_dropout) == (32, 0.5, 64, 0.0)
    assert (hp.gamma2_hidden, hp.gamma2_dropout, hp.out_hidden, hp.out_dropout) == (256, 0.7, 128, 0.7)
    assert (hp.batch_size, hp.learning_rate, hp.weight_decay) == (64, 2e-3, 1e-3)
    assert GraphMFN.default_setting == "aligned" and GraphMFN.settings == ("aligned", "unaligned")


def test_efficacy_slots_follow_sdk_order():
    dfg = DynamicFusionGraph([2, 3, 4], 5, hidden=6)
    slots = dfg.efficacy_slots()
    assert slots["0_1"] == [((0,), 0), ((1,), 1)]
    assert slots["0_2"] == [((0,), 2), ((2,), 3)]
    assert slots["1_2"] == [((1,), 4), ((2,), 5)]
    assert slots["0_1_2"] == [((0,), 6), ((1,), 7), ((2,), 8), ((0, 1), 9), ((0, 2), 10), ((1, 2), 11)]
    assert slots["T"] == [((0,), 12), ((1,), 13), ((2,), 14), ((0, 1), 15), ((0, 2), 16), ((1, 2), 17),
                          ((0, 1, 2), 18)]
    assert dfg.n_efficacies == 19


def _set(linear, weight, bias):
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(weight))
        linear.bias.copy_(torch.tensor(bias))


def test_dfg_vertices_and_efficacies_by_hand():
    dfg = DynamicFusionGraph([1, 1, 1], 1, hidden=1, train_vertices=True)
    # efficacies: h = 0.5 v_l + 0.25 v_a (order l, a, v), core identity, alpha_e = (e + 1) / 10 * h
    _set(dfg.efficacy[0], [[0.5, 0.25, 0.0]], [0.0])
    _set(dfg.efficacy[1], [[1.0]], [0.0])
    _set(dfg.efficacy[2], [[(e + 1) / 10] for e in range(19)], [0.0] * 19)
    # every vertex network and T: sum of its weighted inputs (Linear(., 1) of ones, then identity)
    for net in [*dfg.vertices.values(), dfg.t_network]:
        _set(net[0], [[1.0] * net[0].in_features], [0.0])
        _set(net[1], [[1.0]], [0.0])
    seen = {}
    dfg.vertices["0_1_2"][0].register_forward_pre_hook(lambda m, i: seen.update(lav_in=i[0]))
    v_l, v_a, v_v = torch.tensor([[1.0]]), torch.tensor([[2.0]]), torch.tensor([[3.0]])
    with torch.no_grad():
        t_out, nodes, eff = dfg([v_l, v_a, v_v])
    h = 0.5 * 1 + 0.25 * 2  # = 1.0
    a = [(e + 1) / 10 * h for e in range(19)]
    assert eff[0].tolist() == pytest.approx(a)
    la = a[0] * 1 + a[1] * 2  # 0.5
    lv = a[2] * 1 + a[3] * 3  # 1.5
    av = a[4] * 2 + a[5] * 3  # 2.8
    lav_in = [a[6] * 1, a[7] * 2, a[8] * 3, a[9] * la, a[10] * lv, a[11] * av]
    lav = sum(lav_in)  # 10.51
    t = a[12] * 1 + a[13] * 2 + a[14] * 3 + a[15] * la + a[16] * lv + a[17] * av + a[18] * lav
    assert [float(nodes[k]) for k in ((0, 1), (0, 2), (1, 2))] == pytest.approx([0.5, 1.5, 2.8])
    assert seen["lav_in"][0].tolist() == pytest.approx(lav_in)  # the trimodal vertex's input, in order
    assert float(nodes[(0, 1, 2)]) == pytest.approx(10.51)
    assert float(t_out) == pytest.approx(t) and float(t_out) == pytest.approx(36.959)


def test_vertex_networks_frozen_like_mmsa_and_share_initial_pattern():
    bundle = make_bundle()
    for mode in ("frozen", "trained"):
        torch.manual_seed(0)
        model = GraphMFN(GraphMFNHParams(**SMALL, dfg_vertex_training=mode), bundle.info())
        nets = [*model.dfg.vertices.values(), model.dfg.t_network]
        # every vertex network and T start from one deep-copied pattern Linear(H, k) (SDK/MMSA)
        assert all(torch.equal(n[1].weight, nets[0][1].weight) for n in nets)
        assert not torch.equal(model.dfg.efficacy[1].weight[:, :3], nets[0][1].weight[:, :3])
        before = {k: v.clone() for k, v in model.state_dict().items()}
        opt = torch.optim.Adam(model.param_groups())
        b = bundle.splits["train"].take(torch.arange(16))
        model.loss_terms(model(b), b)["total"].backward()
        opt.step()
        after = model.state_dict()
        vertex_keys = [k for k in after if k.startswith("dfg.vertices.")]
        assert len(vertex_keys) == 4 * 4  # saved with the model either way
        changed = [not torch.equal(before[k], after[k]) for k in vertex_keys]
        assert (not any(changed)) if mode == "frozen" else all(changed), mode
        assert not torch.equal(before["dfg.t_network.0.weight"], after["dfg.t_network.0.weight"])


def _mmsa_reference(model: GraphMFN, x_l, x_a, x_v):
    """MMSA's Graph_MFN.forward written step by step (LSTMCell calls, DFG fusion per step)."""
    hp, dfg = model.hp, model.dfg
    n, steps = x_l.shape[0], x_l.shape[1]
    h = [torch.zeros(n, d) for d in (hp.hidden_text, hp.hidden_audio, hp.hidden_vision)]
    c = [torch.zeros(n, d) for d in (hp.hidden_text, hp.hidden_audio, hp.hidden_vision)]
    mem = torch.zeros(n, hp.mem_size)
    cells = (model.lstm_l, model.lstm_a, model.lstm_v)
    transforms = (model.l_transform, model.a_transform, model.v_transform)
    power = list(chain.from_iterable(combinations(range(3), r) for r in range(4)))[1:]
    for i in range(steps):
        new = [cell(x[:, i], (hh, cc)) for cell, x, hh, cc in zip(cells, (x_l, x_a, x_v), h, c, strict=True)]
        singles = [F.relu(tr(torch.cat([hh, nh], 1))) for tr, hh, (nh, _) in zip(transforms, h, new, strict=True)]
        outputs = {(m,): s for m, s in enumerate(singles)}
        eff = dfg.efficacy(torch.cat(singles, 1))
        idx = 0
        for key in power[3:]:
            small = list(chain.from_iterable(combinations(key, r) for r in range(len(key) + 1)))[1:-1]
            inp = torch.cat([outputs[x] * eff[:, idx + y].view(-1, 1) for y, x in enumerate(small)], 1)
            outputs[key] = dfg.vertices["_".join(map(str, key))](inp)
            idx += len(small)
        small.append((0, 1, 2))
        attended = dfg.t_network(torch.cat([outputs[x] * eff[:, idx + y].view(-1, 1) for y, x in enumerate(small)], 1))
        c_hat = torch.tanh(model.att2.fc2(F.relu(model.att2.fc1(attended))))
        both = torch.cat([attended, mem], 1)
        g1 = torch.sigmoid(model.gamma1.fc2(F.relu(model.gamma1.fc1(both))))
        g2 = torch.sigmoid(model.gamma2.fc2(F.relu(model.gamma2.fc1(both))))
        mem = g1 * mem + g2 * c_hat
        h = [nh for nh, _ in new]
        c = [nc for _, nc in new]
    return model.out.fc2(F.relu(model.out.fc1(torch.cat(h + [mem], 1)))).squeeze(-1)


def test_forward_equals_stepwise_mmsa_loop_on_unaligned_data():
    bundle = make_tiny("unaligned")  # audio 10 and vision 12 frames avg-pooled to the 8 text steps
    torch.manual_seed(5)
    model = GraphMFN(GraphMFNHParams(**SMALL), bundle.info()).eval()
    b = bundle.splits["test"]
    with torch.no_grad():
        out = model(b)
        x_l, x_a, x_v = model.aligned_inputs(b)
        want = _mmsa_reference(model, x_l, x_a, x_v)
    assert x_a.shape[1] == x_v.shape[1] == 8
    assert torch.allclose(out["pred"], want, atol=1e-5)
    assert out["efficacies"].shape == (16, 8, 19) and out["fused"].shape == (16, 8 + 4 + 4 + 6)


def test_singleton_source_switch():
    bundle = make_bundle()
    b = bundle.splits["test"]
    model = GraphMFN(GraphMFNHParams(**SMALL), bundle.info())
    states = model.lstm_states(*model.aligned_inputs(b))
    for source, which in (("hidden", 0), ("cell", 1)):
        model.hp.singleton_source = source
        s_l, s_a, _ = model.singletons(states)
        a = states[1][which]
        assert torch.allclose(s_a, F.relu(model.a_transform(torch.cat([a[:-1], a[1:]], -1))))
        assert s_l.shape == (6, 30, 8)  # (T, B, singleton size = hidden_text)
        assert torch.allclose(s_a[0], F.relu(model.a_transform(torch.cat([torch.zeros_like(a[1]), a[1]], -1))))


@pytest.mark.slow
def test_cli_run_on_mosi229(tmp_path, capsys):
    root = shared_data("mosi229")
    code = main(["run", "--method", "graph_mfn", "--dataset", "mosi", "--setting", "unaligned", "--data-root",
                 str(root), "--seeds", "1111", "--epochs", "2", "--out", str(tmp_path), "--quiet", *SMALL_CLI])
    assert code == 0, capsys.readouterr().err
    r = json.loads(next(tmp_path.glob("runs/graph_mfn/mosi-unaligned/*/seed-1111/result.json")).read_text())
    assert r["data"]["sizes"] == {"train": 139, "valid": 47, "test": 43}
    assert r["selection"]["epochs_run"] == 2 and 0 < r["test"]["mae"] < 3
