import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The LSTM-heavy baselines run many tiny kernels: with 2 intra-op threads on a shared 2-core
    machine they are several times slower than with one, so these tests pin one thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
