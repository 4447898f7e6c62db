"""Shared fixtures: a seeded rng, and one torch thread (tiny models run far slower on two busy cores)."""

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
