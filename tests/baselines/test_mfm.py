import dataclasses
import json
import math

import pytest
import torch

from baselines._align import avg_pool_align
from baselines.mfm import ADAM_DEFAULT_LR, MFM, MFMHParams, _Decoder, mmd, mmsa_kernel
from bench.cli import main
from bench.describe import canonical_info
from bench.errors import UserError
from tests.baselines.helpers import linear_params as _linear
from tests.baselines.helpers import meta_counts
from tests.conftest import shared_data
from tests.helpers import make_bundle
from tests.toy import make_bundle as make_tiny

TINY = dict(hidden_text=8, hidden_audio=4, hidden_vision=4, zy_size=6, zl_size=6, za_size=4, zv_size=4, fy_size=6,
            fl_size=4, fa_size=3, fv_size=3, memsize=8, nn1_shape=8, nn2_shape=8, gamma1_shape=8, gamma2_shape=8,
            out_shape=8)
SMALL = ["--set", "hidden_text=8", "--set", "hidden_vision=8", "--set", "memsize=8", "--set", "zl_size=8",
         "--set", "nn1_shape=8"]


def _cell(d_in, h):  # LSTMCell or one-layer LSTM
    return 4 * h * (d_in + h) + 2 * 4 * h


def _expected_counts(dl, da, dv, hl, ha, hv, zy, zl, za, zv, fy, fl, fa, fv, mem, nn1, nn2, g1, g2, out):
    total_h = hl + ha + hv
    att_in, gamma_in = 2 * total_h, 2 * total_h + mem
    return {
        "encoders": sum(_cell(d, z) + _linear(z, z) for d, z in ((dl, zl), (da, za), (dv, zv))),
        "mfn": (_cell(dl, hl) + _cell(da, ha) + _cell(dv, hv) + _linear(att_in, nn1) + _linear(nn1, att_in)
                + _linear(att_in, nn2) + _linear(nn2, mem) + _linear(gamma_in, g1) + _linear(g1, mem)
                + _linear(gamma_in, g2) + _linear(g2, mem)),
        "zy_proj": _linear(total_h + mem, zy),
        "factor_mlps": sum(_linear(z, f) + _linear(f, f) for z, f in ((zy, fy), (zl, fl), (za, fa), (zv, fv))),
        "decoders": sum(_cell(fy + f, fy + f) + _linear(fy + f, d) for f, d in ((fl, dl), (fa, da), (fv, dv))),
        "head": _linear(fy, fy) + _linear(fy, 1),
        "unused_mfn_head": _linear(total_h + mem, out) + _linear(out, 1),
    }


@pytest.mark.parametrize("family,setting", [("mosi", "aligned"), ("mosei", "unaligned")])
def test_parameter_count_by_hand(family, setting):
    hp = MFM.default_hparams(family, setting)
    _, c = meta_counts(MFM, family, setting, hp=hp)
    if family == "mosi":  # text 768, audio 5, vision 20; MMSA "mfm" MOSI block
        want = _expected_counts(768, 5, 20, 128, 32, 128, 80, 64, 80, 80, 64, 32, 16, 64, 64, 32, 64, 32, 64, 128)
    else:  # text 768, audio 74, vision 35; MOSEI block
        want = _expected_counts(768, 74, 35, 256, 32, 256, 32, 256, 80, 80, 16, 32, 80, 32, 64, 1278, 32, 64, 128, 256)
    assert {k: c[k] for k in want} == want
    assert c["total"] == sum(want.values()) and "other" not in c
    if family == "mosi":
        assert c["total"] == 1416123
    _, lean = meta_counts(MFM, family, setting, hp=dataclasses.replace(hp, build_unused=False))
    assert lean["total"] == c["total"] - want["unused_mfn_head"]


def test_defaults_follow_mmsa_config():
    hp = MFM.default_hparams("mosi", "aligned")
    assert (hp.hidden_text, hp.hidden_audio, hp.hidden_vision) == (128, 32, 128)
    assert (hp.zy_size, hp.zl_size, hp.za_size, hp.zv_size, hp.fy_size, hp.fl_size, hp.fa_size, hp.fv_size) == (
        80, 64, 80, 80, 64, 32, 16, 64)
    assert (hp.zy_to_fy_dropout, hp.zl_to_fl_dropout, hp.za_to_fa_dropout, hp.zv_to_fv_dropout,
            hp.fy_to_y_dropout) == (0.5, 0.5, 0.7, 0.5, 0.0)
    assert (hp.lda_mmd, hp.lda_xl, hp.lda_xa, hp.lda_xv) == (100, 0.5, 0.01, 0.5)
    assert (hp.memsize, hp.windowsize, hp.nn1_shape, hp.nn1_dropout, hp.nn2_shape, hp.nn2_dropout) == (
        64, 2, 32, 0.7, 64, 0.0)
    assert (hp.gamma1_shape, hp.gamma1_dropout, hp.gamma2_shape, hp.gamma2_dropout, hp.out_shape,
            hp.out_dropout) == (32, 0.0, 64, 0.5, 128, 0.2)
    assert (hp.batch_size, hp.learning_rate, hp.weight_decay, hp.early_stop) == (64, 2e-3, 1e-3, 8)
    assert (hp.apply_config_lr, hp.build_unused, hp.align_pooling, hp.val_loss) == (
        False, True, "windows", "batch_mean_4dp")
    assert (hp.grad_accum, hp.grad_clip_value, hp.plateau_patience) == (1, 0.0, 0)
    hp = MFM.default_hparams("mosei", "unaligned")
    assert (hp.hidden_text, hp.hidden_audio, hp.hidden_vision, hp.zy_size, hp.zl_size, hp.fy_size, hp.fa_size) == (
        256, 32, 256, 32, 256, 16, 80)
    assert (hp.lda_mmd, hp.lda_xl, hp.lda_xa, hp.lda_xv) == (10, 5.0, 2.0, 5.0)
    assert (hp.nn1_shape, hp.nn1_dropout, hp.gamma2_shape, hp.out_shape, hp.out_dropout) == (1278, 0.5, 128, 256, 0.0)
    assert (hp.batch_size, hp.learning_rate, hp.weight_decay) == (64, 1e-3, 5e-4)
    assert MFM.default_setting == "aligned" and set(MFM.settings) == {"aligned", "unaligned"}
    with pytest.raises(UserError, match="windowsize"):
        MFM(MFMHParams(windowsize=3), canonical_info("mosi", "aligned"))


def test_adam_gets_torch_default_lr_unless_asked():
    model = MFM(MFMHParams(**TINY), make_bundle().info())
    assert [g["lr"] for g in model.param_groups()] == [ADAM_DEFAULT_LR] == [1e-3]
    assert model.param_groups()[0]["weight_decay"] == 1e-3
    model = MFM(MFMHParams(**TINY, apply_config_lr=True), make_bundle().info())
    assert model.param_groups()[0]["lr"] == 2e-3 and model.record()["effective_learning_rate"] == 2e-3


def test_mmsa_kernel_and_mmd_by_hand():
    # k(x, y) = exp(-mean_d (x - y)^2 / dim): the squared distance is divided by dim twice
    x, y = torch.tensor([[0.0, 0.0, 0.0, 0.0]]), torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    assert float(mmsa_kernel(x, y)) == pytest.approx(math.exp(-1.0 / 4))
    assert float(mmsa_kernel(x, 2 * y)) == pytest.approx(math.exp(-4.0 / 4))
    # z = {(0,0), (2,0)}, prior = {(0,0), (0,0)}: k(p,p) = 1; k(z,z) = k(p,z) = (2 + 2/e)/4 (|(2,0)|^2/2/2 = 1)
    z, prior = torch.tensor([[0.0, 0.0], [2.0, 0.0]]), torch.zeros(2, 2)
    assert float(mmd(z, prior)) == pytest.approx((1 - math.exp(-1)) / 2)
    assert float(mmd(prior, prior)) == 0.0


def test_avg_pool_alignment_by_hand():
    x = torch.arange(5.0).view(1, 5, 1)  # frames 0..4, target length 2 -> append one copy of frame 4, pool 3
    assert avg_pool_align(x, 2, "windows").flatten().tolist() == pytest.approx([1.0, 11 / 3])  # (0,1,2), (3,4,4)
    assert avg_pool_align(x, 2, "strided").flatten().tolist() == pytest.approx([2.0, 8 / 3])  # (0,2,4), (1,3,4)
    x4 = torch.arange(4.0).view(1, 4, 1)  # divisible: no padding, pool 2
    assert avg_pool_align(x4, 2, "windows").flatten().tolist() == [0.5, 2.5]
    assert avg_pool_align(x4, 2, "strided").flatten().tolist() == [1.0, 2.0]
    assert avg_pool_align(x4, 4) is x4


def test_unaligned_inputs_are_pooled_to_text_length():
    tiny = make_tiny("unaligned")  # text 8, audio 10, vision 12
    b = tiny.splits["test"]
    for pooling in ("windows", "strided"):
        model = MFM(MFMHParams(**TINY, align_pooling=pooling), tiny.info()).eval()
        with torch.no_grad():
            out = model(b)
        assert torch.equal(out["x_a"], avg_pool_align(b.audio, 8, pooling))
        assert torch.equal(out["x_v"], avg_pool_align(b.vision, 8, pooling)) and out["x_v"].shape == (16, 8, 4)
        assert out["x_a_hat"].shape == (16, 8, 3) and out["x_l_hat"].shape == (16, 8, 16)
        assert "avg_pool" in model.record()["model_aligned"]


def test_decoder_feeds_back_its_hidden_state():
    torch.manual_seed(0)
    dec = _Decoder(5, 3)
    f = torch.randn(2, 5)
    got = dec(f, 4)
    hx = cx = torch.zeros(2, 5)
    inp, want = f, []
    for _ in range(4):
        hx, cx = dec.lstm(inp, (hx, cx))
        want.append(dec.fc1(hx))
        inp = hx  # step 0 reads f, later steps their own previous hidden state
    assert got.shape == (2, 4, 3) and torch.allclose(got, torch.stack(want, dim=1))


def test_loss_terms_weighting_by_hand():
    bundle = make_bundle()
    hp = MFMHParams(**TINY, lda_mmd=0.0, lda_xl=0.5, lda_xa=0.01, lda_xv=2.0)
    model = MFM(hp, bundle.info())
    z = torch.zeros(2, 1, 2)
    out = {"pred": torch.tensor([1.0, 1.0]), "x_l_hat": z, "x_l": z + 1, "x_a_hat": z, "x_a": z + 2,
           "x_v_hat": z + 1, "x_v": z + 4, **{f"z_{k}": torch.zeros(2, 3) for k in "lavy"}}
    batch = dataclasses.replace(bundle.splits["test"].take(torch.arange(2)), labels=torch.tensor([0.0, 3.0]))
    terms = model.loss_terms(out, batch)
    # L1 1.5; gen = 0.5 * 1 + 0.01 * 4 + 2.0 * 9
    assert float(terms["task"]) == 1.5 and float(terms["gen"]) == pytest.approx(0.5 + 0.04 + 18.0)
    assert float(terms["total"]) == pytest.approx(1.5 + 18.54)
    # the MMD term: lda_mmd * sum of four MMDs, each against a fresh N(0, I) sample of the factor's size
    model.hp.lda_mmd = 100.0
    out.update({f"z_{k}": torch.full((4, 3), float(i)) for i, k in enumerate("lavy")})
    torch.manual_seed(3)
    terms = model.loss_terms(out, batch)
    torch.manual_seed(3)
    want = sum(float(mmd(out[f"z_{k}"], torch.randn(4, 3))) for k in "lavy")
    assert float(terms["mmd"]) == pytest.approx(100 * want, rel=1e-6)
    assert float(terms["total"]) == pytest.approx(1.5 + 18.54 + 100 * want, rel=1e-6)


def test_gradient_paths():
    bundle = make_bundle()
    wide = {**TINY, "fl_size": 8, "fa_size": 8, "fv_size": 8, "fy_size": 8}  # no all-dead ReLU layer on 8 samples
    torch.manual_seed(0)
    model = MFM(MFMHParams(**wide), bundle.info()).eval()  # no dropout: deterministic paths
    b = bundle.splits["train"].take(torch.arange(8))

    def reached(key):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        model.loss_terms(model(b), b)[key].backward()
        return {name: any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in mod.parameters())
                for name, mod in model.named_children() if any(True for _ in mod.parameters())}

    total = reached("total")
    assert not total.pop("mfn_out_fc1") and not total.pop("mfn_out_fc2")  # MMSA's unused head is never trained
    assert all(total.values()), total
    task = reached("task")  # discriminative path only: MFN -> z_y -> f_y -> head
    assert task["mfn"] and task["last_to_zy"] and task["zy_to_fy"] and task["fy_to_y_fc1"]
    assert not any(task[k] for k in ("encoder_l", "encoder_a", "encoder_v", "zl_to_fl", "decoder_l", "decoder_v"))
    gen = reached("recon_vision")  # generative path: z_v and z_y feed the vision decoder
    assert gen["decoder_v"] and gen["zv_to_fv"] and gen["encoder_v"] and gen["zy_to_fy"] and gen["mfn"]
    assert not (gen["encoder_l"] or gen["decoder_l"] or gen["fy_to_y_fc1"])
    prior = reached("mmd")  # MMD acts on the z's only
    assert prior["encoder_l"] and prior["encoder_a"] and prior["mfn"] and prior["last_to_zy"]
    assert not (prior["zy_to_fy"] or prior["decoder_l"] or prior["fy_to_y_fc1"])


@pytest.mark.slow
def test_trains_on_mosi229_through_cli(tmp_path, capsys):
    root = shared_data("mosi229")
    code = main(["run", "--method", "mfm", "--dataset", "mosi", "--setting", "unaligned", "--data-root", str(root),
                 "--seeds", "1111", "--epochs", "1", "--out", str(tmp_path), "--quiet", *SMALL])
    assert code == 0, capsys.readouterr().err
    r = json.loads(next(tmp_path.glob("runs/mfm/mosi-unaligned/*/seed-1111/result.json")).read_text())
    assert r["data"]["sizes"] == {"train": 139, "valid": 47, "test": 43} and r["data"]["standard"] is False
    assert 0 < r["test"]["mae"] < 3
