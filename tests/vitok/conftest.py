"""vitok tests run their tiny models on one intra-op thread.

With models this small each op is microseconds of work, and on a 2-core machine shared with other jobs the
OpenMP barrier between two threads costs far more than it saves (measured: 22 ms vs 0.8-1.3 s per training
step of N-N/8 under load). The previous thread count is restored after each test.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
