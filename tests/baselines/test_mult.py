"""MulT as thuiar/MMSA implements it: sizes, masks, dropout wiring, defaults and training."""

import dataclasses

import numpy as np
import pytest
import torch

from baselines.mult import MulT, MulTHParams
from bench.config import apply_overrides
from bench.describe import canonical_info, describe
from bench.train.trainer import train
from tests.baselines.helpers import linear_params as _linear
from tests.baselines.helpers import meta_counts
from tests.conftest import shared_data
from tests.toy import make_bundle

TINY = dict(d_model=8, num_heads=2, nlevels=1, conv_kernel_l=3, conv_kernel_a=3, conv_kernel_v=3)


def _encoder(d, layers):
    """Pre-LN layer: packed in-proj + out-proj, FFN d->4d->d, two LayerNorms; final LayerNorm."""
    layer = _linear(d, 3 * d) + _linear(d, d) + _linear(d, 4 * d) + _linear(4 * d, d) + 2 * 2 * d
    return layers * layer + 2 * d


def _by_hand(d, k, dims):
    conv = sum(dims[m] * d * k[m] for m in ("text", "audio", "vision"))
    return conv + 6 * _encoder(d, 4) + 3 * _encoder(2 * d, 4) + 2 * _linear(6 * d, 6 * d) + _linear(6 * d, 1)


# ------------------------------------------------------------------------------ sizes and defaults
@pytest.mark.parametrize("family,era,expected", [
    ("mosi", "current", 2_571_551), ("mosi", "table2021", 1_556_761),
    ("mosei", "current", 982_951), ("mosei", "table2021", 982_951),
])
@pytest.mark.parametrize("setting", ["aligned", "unaligned"])
def test_parameter_counts_match_mmsa(family, era, expected, setting):
    info = canonical_info(family, setting)  # text 768; MOSI audio 5 / vision 20, MOSEI 74 / 35
    hp = MulT.default_hparams(family, setting, era)
    _, counts = meta_counts(MulT, family, setting, hp=hp, info=info)
    assert "other" not in counts  # the four groups cover every parameter
    k = {"text": hp.conv_kernel_l, "audio": hp.conv_kernel_a, "vision": hp.conv_kernel_v}
    assert counts["total"] == expected == _by_hand(hp.d_model, k, info.dims)
    assert describe(MulT, hp, info)["parameters"]["total"] == expected


def test_mosi_current_groups():
    model, c = meta_counts(MulT, "mosi", "unaligned")
    assert (c["conv_proj"], c["crossmodal"], c["memory"], c["head"]) == (198_250, 736_200, 1_456_200, 180_901)
    assert model.conv_lengths() == {"text": 46, "audio": 371, "vision": 496}


def test_defaults_follow_mmsa_current_config():
    mosi, mosei = MulT.default_hparams("mosi", "unaligned"), MulT.default_hparams("mosei", "unaligned")
    assert MulT.default_hparams("mosi", "aligned") == mosi  # one block for both settings
    assert (mosi.d_model, mosi.num_heads, mosi.nlevels) == (50, 10, 4)
    assert (mosi.batch_size, mosi.learning_rate) == (16, 2e-3)
    assert (mosi.conv_kernel_l, mosi.conv_kernel_a, mosi.conv_kernel_v) == (5, 5, 5)
    assert (mosi.attn_dropout, mosi.attn_dropout_a, mosi.attn_dropout_v) == (0.3, 0.2, 0.0)
    assert (mosi.relu_dropout, mosi.res_dropout, mosi.embed_dropout) == (0.0, 0.0, 0.2)
    assert (mosi.text_dropout, mosi.output_dropout, mosi.plateau_patience) == (0.5, 0.5, 5)
    assert (mosei.d_model, mosei.num_heads, mosei.batch_size, mosei.learning_rate) == (30, 6, 4, 5e-4)
    assert (mosei.conv_kernel_l, mosei.conv_kernel_a, mosei.conv_kernel_v) == (5, 1, 3)
    assert (mosei.attn_dropout, mosei.text_dropout, mosei.plateau_patience) == (0.4, 0.3, 20)
    for hp in (mosi, mosei):
        # optimisation of trains/singleTask/MULT.py: value clipping after EVERY backward, 8 summed batches
        assert hp.grad_clip_value == 0.6 and hp.grad_clip_at == "backward"
        assert (hp.grad_accum, hp.grad_accum_drop_tail, hp.early_stop, hp.max_epochs) == (8, True, 8, 0)
        assert (hp.plateau_factor, hp.val_loss, hp.select_on) == (0.1, "batch_mean_4dp", "loss")
        assert hp.use_position_embedding is False and hp.apply_weight_decay is False


def test_table_era_values_and_switch_through_overrides():
    v1 = MulT.default_hparams("mosi", "unaligned", "table2021")
    assert (v1.d_model, v1.conv_kernel_l, v1.conv_kernel_a, v1.conv_kernel_v) == (40, 1, 5, 1)
    assert (v1.batch_size, v1.learning_rate, v1.grad_clip_value, v1.plateau_patience) == (4, 1e-3, 0.8, 20)
    assert (v1.attn_dropout, v1.attn_dropout_a, v1.attn_dropout_v) == (0.1, 0.1, 0.2)
    assert (v1.relu_dropout, v1.res_dropout, v1.embed_dropout, v1.text_dropout, v1.output_dropout) == (
        0.2, 0.2, 0.1, 0.2, 0.1)
    assert v1.use_position_embedding is True
    now = MulT.default_hparams("mosi", "unaligned")
    # `--set hparams_era=table2021` on the current defaults gives the v1 block; fields set in the same
    # call keep their values; switching back restores the current block.
    assert apply_overrides(now, {"hparams_era": "table2021"}) == v1
    mixed = apply_overrides(now, {"hparams_era": "table2021", "learning_rate": "0.01"})
    assert mixed == dataclasses.replace(v1, learning_rate=0.01)
    assert apply_overrides(v1, {"hparams_era": "current"}) == now
    # MOSEI's values did not change: the era only turns the positions on; PE can be forced either way
    mosei = MulT.default_hparams("mosei", "unaligned")
    mosei_v1 = apply_overrides(mosei, {"hparams_era": "table2021"})
    assert dataclasses.replace(mosei_v1, hparams_era="current") == mosei and mosei_v1.use_position_embedding
    # the switch follows the recorded block, not the values: hand-set v1 values on `current` stay put
    hand = apply_overrides(now, {k: str(getattr(v1, k)) for k in ("d_model", "batch_size", "learning_rate")})
    assert (hand.d_model, hand.batch_size, hand.hparams_era, hand.defaults_from) == (40, 4, "current",
                                                                                     "mosi/current")
    assert MulTHParams(hparams_era="table2021") == v1  # the bare dataclass holds MOSI's current block
    assert not apply_overrides(v1, {"position_embedding": "false"}).use_position_embedding
    assert apply_overrides(now, {"position_embedding": "true"}).use_position_embedding


def test_registered_and_text_features_required():
    from bench.errors import UserError
    from bench.registry import methods

    # mintrec = the thuiar/MIntRec form (tests/baselines/test_mintrec_forms.py)
    assert methods()["mult"] is MulT and MulT.families == ("mosi", "mosei", "mintrec")
    info = dataclasses.replace(canonical_info("mosi", "unaligned"), has_text_features=False)
    with pytest.raises(UserError, match="text features"):
        MulT(MulTHParams(), info)
    with pytest.raises(UserError, match="divisible"):
        apply_overrides(MulTHParams(), {"d_model": "12", "num_heads": "5"})
    with pytest.raises(UserError, match="defaults_from"):
        apply_overrides(MulTHParams(), {"defaults_from": "iemocap/current"})


# ------------------------------------------------------------------------------ architecture
def test_attention_dropout_follows_source_modality():
    model = MulT(MulT.default_hparams("mosi", "unaligned"), canonical_info("mosi", "unaligned"))
    expected = {"l_with_a": 0.2, "v_with_a": 0.2, "l_with_v": 0.0, "a_with_v": 0.0,
                "a_with_l": 0.3, "v_with_l": 0.3, "l_mem": 0.3, "a_mem": 0.3, "v_mem": 0.3}
    for name, p in expected.items():
        enc = getattr(model, f"trans_{name}")
        depth, width = (4, 100) if name.endswith("mem") else (4, 50)
        assert len(enc.layers) == depth and enc.embed_dim == width, name
        assert [layer.self_attn.attn_dropout for layer in enc.layers] == [p] * depth, name
        assert enc.embed_dropout == 0.2 and enc.position_embedding is False, name
        assert all(layer.attn_mask for layer in enc.layers), name
    small = MulT(dataclasses.replace(MulTHParams(), nlevels=2), canonical_info("mosi", "aligned"))
    assert len(small.trans_l_with_a.layers) == 2 and len(small.trans_l_mem.layers) == 3


def test_conv_is_bias_free_and_skipped_when_dims_match():
    model = MulT(MulTHParams(), canonical_info("mosi", "unaligned"))
    assert model.proj_l.bias is None and model.proj_l.kernel_size == (5,) and model.proj_l.padding == (0,)
    info = dataclasses.replace(canonical_info("mosi", "aligned"), dims={"text": 50, "audio": 5, "vision": 20})
    skipped = MulT(MulTHParams(), info)
    assert isinstance(skipped.proj_l, torch.nn.Identity) and skipped.conv_lengths()["text"] == 50


def test_crossmodal_mask_is_shifted_causal():
    """text(46) <- audio(371): query step i sees key j iff j <= i + 325, in the mask, in the attention
    weights and in the gradients of the whole 4-layer encoder."""
    torch.manual_seed(0)
    model = MulT(MulT.default_hparams("mosi", "unaligned"), canonical_info("mosi", "unaligned")).eval()
    enc = model.trans_l_with_a
    q_in = torch.randn(1, 46, 50)
    k_in = torch.randn(1, 371, 50, requires_grad=True)
    seen = {}

    def hook(module, args, kwargs):
        seen["args"], seen["mask"] = args, kwargs["attn_mask"]

    handle = enc.layers[0].self_attn.register_forward_pre_hook(hook, with_kwargs=True)
    out = enc(q_in, k_in)
    handle.remove()
    i = torch.arange(46)[:, None]
    j = torch.arange(371)[None, :]
    allowed = j <= i + 325
    mask = seen["mask"]
    assert mask.shape == (46, 371)
    assert torch.equal(mask == 0, allowed) and bool(torch.isneginf(mask[~allowed]).all())
    # attention weights of layer 0 recomputed from the module's own projections and the hooked inputs
    attn = enc.layers[0].self_attn
    query, key = seen["args"][0], seen["args"][1]
    w_q, w_k = attn.in_proj_weight[:50], attn.in_proj_weight[50:100]
    b_q, b_k = attn.in_proj_bias[:50], attn.in_proj_bias[50:100]
    q = (query @ w_q.T + b_q).view(1, 46, 10, 5).transpose(1, 2) * attn.scaling
    k = (key @ w_k.T + b_k).view(1, 371, 10, 5).transpose(1, 2)
    weights = torch.softmax(q @ k.transpose(-1, -2) + mask, dim=-1)
    assert bool((weights[..., ~allowed] == 0).all()) and bool((weights[..., allowed] > 0).all())
    # end to end: output step i depends on exactly the keys 0..i+325
    probe = torch.randn(50)  # a plain sum of a LayerNorm output is constant: project instead
    for step in (0, 1, 20, 45):
        (grad,) = torch.autograd.grad(out[0, step] @ probe, k_in, retain_graph=True)
        used = grad[0].abs().sum(-1) > 0
        assert torch.equal(used, allowed[step]), step
    # the other direction (audio 371 <- text 46): every query sees every key (spec §9 item 21)
    handle = model.trans_a_with_l.layers[0].self_attn.register_forward_pre_hook(hook, with_kwargs=True)
    model.trans_a_with_l(torch.randn(1, 371, 50), torch.randn(1, 46, 50))
    handle.remove()
    assert seen["mask"].shape == (371, 46) and bool((seen["mask"] == 0).all())


def _tiny_bundle(setting, sizes=(48, 16, 16), seed=0):
    return make_bundle(setting, sizes=sizes, seed=seed, dims=(12, 3, 4), lens=(8, 12, 10))


def test_text_dropout_hits_the_text_input_only():
    bundle = _tiny_bundle("unaligned")
    batch = bundle.train.take(torch.arange(6))
    hp = dataclasses.replace(MulTHParams(), **TINY, attn_dropout=0, attn_dropout_a=0, embed_dropout=0,
                             output_dropout=0, text_dropout=1.0)
    model = MulT(hp, bundle.info())
    blank = dataclasses.replace(batch, text=torch.zeros_like(batch.text))
    with torch.no_grad():
        dropped = model.train()(batch)["pred"]
        expected = model.eval()(blank)["pred"]
        kept = model.eval()(batch)["pred"]
    assert torch.allclose(dropped, expected) and not torch.allclose(dropped, kept)
    # the original MulT's variant draws the text-input dropout from embed_dropout instead
    model.hp = dataclasses.replace(hp, text_input_dropout="embed_dropout")
    with torch.no_grad():
        assert torch.allclose(model.train()(batch)["pred"], kept)


def test_weight_decay_is_ignored_unless_switched_on():
    info = canonical_info("mosi", "aligned")
    assert MulT(MulTHParams(), info).param_groups()[0]["weight_decay"] == 0.0
    hp = dataclasses.replace(MulTHParams(), apply_weight_decay=True)
    assert MulT(hp, info).param_groups()[0]["weight_decay"] == 0.005


# ------------------------------------------------------------------------------ training
def _synthetic_bundle():
    """synthetic-mosi unaligned (compact profile), subsampled so the test stays fast."""
    from bench.data import load_dataset

    bundle = load_dataset("synthetic-mosi", "unaligned", profile="compact")
    sizes = {"train": 96, "valid": 48, "test": 48}
    bundle.splits = {k: s.take(torch.arange(sizes[k])) for k, s in bundle.splits.items()}
    return bundle


def test_trains_end_to_end_with_mmsa_schedule(monkeypatch):
    bundle = _synthetic_bundle()
    hp = dataclasses.replace(MulT.default_hparams("mosi", "unaligned"), **TINY, batch_size=8, grad_accum=4,
                             max_epochs=3, early_stop=3)
    calls = []
    real_clip = torch.nn.utils.clip_grad_value_

    def counting_clip(params, value):
        calls.append(value)
        return real_clip(params, value)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_value_", counting_clip)
    a = train(MulT, hp, bundle, seed=1111)
    n_batches = 96 // 8
    assert calls == [0.6] * (3 * n_batches)  # clipped after every backward, never at the step
    assert a.n_optimizer_steps == 3 * (n_batches // 4) and a.epochs_run == 3
    assert a.test_outputs["fused"].shape == (48, 48) and np.isfinite(a.test["mae"])
    assert all(h["valid"]["loss"] == round(h["valid"]["loss"], 4) for h in a.history)  # MMSA's 4 dp
    assert a.model_record["position_embedding"] is False and a.n_parameters > 0
    monkeypatch.setattr(torch.nn.utils, "clip_grad_value_", real_clip)
    b = train(MulT, hp, bundle, seed=1111)
    assert np.array_equal(a.test_outputs["pred"], b.test_outputs["pred"])
    assert [h["valid"]["loss"] for h in a.history] == [h["valid"]["loss"] for h in b.history]


@pytest.mark.slow
def test_mosi229_smoke_beats_training_mean():
    """Real MOSI features (mosi229: 139/47/43 segments, MiniLM-384 text, COVAREP-5, FACET-20).

    MMSA's MOSI schedule unchanged (batch 16, 8 summed batches per step, lr 2e-3, value clip 0.6 after
    every backward, plateau 5, 4-dp validation loss) on a small MulT (d 8, 1 head, 1 cross-modal level,
    memory depth 3) for 10 epochs (= 10 optimiser steps). To fit in seconds on CPU the zero-padded
    tails beyond the longest real sequence are cropped (audio 375 -> 156, vision 500 -> 187 frames; no
    real frame is removed). Smoke-test figures only, not comparable with published MOSI numbers.
    Seed 1111, one thread: test MAE 1.4033, corr 0.427, Has0-Acc2 0.651 vs train-mean MAE 1.5512.
    """
    root = shared_data("mosi229")
    from bench.data import load_dataset

    bundle = load_dataset("mosi", "unaligned", data_root=str(root))
    assert bundle.info().dims == {"text": 384, "audio": 5, "vision": 20}
    t_a = max(int(s.audio_lengths.max()) for s in bundle.splits.values())
    t_v = max(int(s.vision_lengths.max()) for s in bundle.splits.values())
    bundle.splits = {k: dataclasses.replace(s, audio=s.audio[:, :t_a], vision=s.vision[:, :t_v])
                     for k, s in bundle.splits.items()}
    hp = dataclasses.replace(MulT.default_hparams("mosi", "unaligned"), d_model=8, num_heads=1, nlevels=1,
                             max_epochs=10)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these small ops run faster on one thread than on two contended ones
    try:
        out = train(MulT, hp, bundle, seed=1111)
    finally:
        torch.set_num_threads(threads)
    y = bundle.splits["test"].labels.numpy()
    const_mae = float(np.mean(np.abs(y - bundle.train.labels.numpy().mean())))
    print(f"mosi229 MulT test MAE {out.test['mae']:.4f} corr {out.test['corr']:.4f} "
          f"Has0-Acc2 {out.test['has0_acc2']:.4f} vs train-mean MAE {const_mae:.4f}")
    assert out.n_optimizer_steps == 10 and out.epochs_run == 10
    assert out.test["mae"] < const_mae
