"""Speed benchmarks (``tox -e bench``). In the normal test run they execute once, untimed."""

import pytest
import torch

from bench.registry import get_method
from tests.helpers import make_bundle


def _train_step(method_cls, hp, bundle, batch_size):
    model = method_cls(hp, bundle.info())
    opt = torch.optim.Adam(model.param_groups())
    split = bundle.splits["train"]
    idx = torch.arange(batch_size)

    def step():
        opt.zero_grad()
        b = split.take(idx)
        model.loss_terms(model(b), b)["total"].backward()
        opt.step()

    return step


@pytest.mark.parametrize("method", ["lf_dnn"])
def test_train_step_toy_shapes(benchmark, method):
    cls = get_method(method)
    bundle = make_bundle(sizes=(64, 8, 8))
    step = _train_step(cls, cls.default_hparams("mosi", "aligned"), bundle, 32)
    benchmark(step)
