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


@pytest.fixture
def jackd(tmp_path):
    """A JACK server (dummy driver, 44.1 kHz, 256-sample buffers, real time with no sound card) for ``live``
    tests; yields its log's path. Skips when jackd is missing (Debian: jackd2) or does not start."""
    import os
    import shutil
    import signal
    import subprocess
    import time

    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed (Debian: apt install jackd2)")
    log_path = tmp_path / "jackd.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(["jackd", "--no-realtime", "-d", "dummy", "-r", "44100", "-p", "256"],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    time.sleep(2.0)
    if process.poll() is not None:
        pytest.skip(f"jackd did not start: {log_path.read_text()[-500:]}")
    yield log_path
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=10)
