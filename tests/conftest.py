"""Shared fixtures: a seeded rng, one torch thread (tiny models run far slower on two busy cores), and the
cyclic garbage collector unfrozen after each test (building a voice freezes it, see synth.engine)."""

import gc

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _unfreeze_garbage_collector():
    yield
    gc.unfreeze()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
