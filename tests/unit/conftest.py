from __future__ import annotations

import pytest


@pytest.fixture
def one_torch_thread():
    """One torch thread: faster on shared cores, and the same float sums as trainer subprocesses
    started with OMP_NUM_THREADS=1."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
