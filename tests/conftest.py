"""Fixtures shared across test modules."""
import pytest
import torch


@pytest.fixture(scope="module")
def single_thread():
    """Run torch on one thread: on shared 2-core machines, small ops and tiny trainings are
    orders of magnitude slower with a contended thread pool."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
