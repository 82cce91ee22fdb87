"""Shared fixtures for the unit tests."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Each test runs torch on one thread: the suite runs two workers on a 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
