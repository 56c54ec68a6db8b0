"""The speed benchmark's naive EMOE (the official per-sample pattern) is the same mathematics as ``emoe``."""

import torch

from bench.perf import model_config
from bench.train.seeding import seed_everything
from tests.benchmarks.naive_emoe import naive_forward, naive_loss
from tests.toy import make_bundle

DROPOUTS = ("attn_dropout", "attn_dropout_a", "attn_dropout_v", "relu_dropout", "res_dropout", "embed_dropout",
            "text_dropout", "output_dropout")


def test_naive_emoe_is_the_same_math():
    """Outputs, loss and every gradient agree (dropout off), so the benchmark compares like with like."""
    bundle = make_bundle("unaligned", sizes=(16, 1, 1), dims=(12, 5, 7))
    overrides = {"d_model": "32", "n_layers": "1", "n_heads": "4", **{k: "0.0" for k in DROPOUTS}}
    cls, hp = model_config("emoe", "unaligned", overrides=overrides)
    seed_everything(0)
    model = cls(hp, bundle.info()).train()
    batch = bundle.train
    out = model(batch)
    ours = model.loss_terms(out, batch)["total"]
    ours.backward()
    g_ours = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert g_ours
    model.zero_grad()
    nout = naive_forward(model.net, batch.text, batch.audio, batch.vision)
    naive = naive_loss(nout, batch.labels, hp)
    naive.backward()
    torch.testing.assert_close(nout["pred"], out["pred"])
    torch.testing.assert_close(naive, ours)
    for n, g in g_ours.items():
        torch.testing.assert_close(dict(model.named_parameters())[n].grad, g, atol=1e-6, rtol=1e-4, msg=n)
