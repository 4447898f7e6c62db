"""Real time through JACK (dummy driver): a neural voice plays for a few seconds without xruns.

Marked ``live`` (not in the default run): ``python -m pytest -m live``. Needs ``jackd`` (Debian: jackd2);
skipped without it. JACK's dummy driver runs in real time with no sound card, so this is the closest the
project's machines come to a performance.
"""

import time

import numpy as np
import pytest

pytestmark = pytest.mark.live
pyo = pytest.importorskip("pyo")


def test_a_voice_plays_through_jack_without_xruns(jackd):
    import torch

    from bridge.live.session import LIVE_AHEAD_BUFFERS
    from bridge.live.voices import NeuralVoice

    torch.set_num_threads(1)
    server = pyo.Server(sr=44100, nchnls=2, buffersize=256, audio="jack").boot()
    assert server.getIsBooted()
    server.start()
    voice = NeuralVoice("default", ahead=LIVE_AHEAD_BUFFERS, mul=0.3)
    out = voice.mix(2).out()
    time.sleep(1.0)  # warm-up: the worker fills its queue, JACK connects the ports
    underruns_before = voice.stats.underruns
    xruns_before = jackd.read_text().count("XRun")
    time.sleep(4.0)
    underruns = voice.stats.underruns - underruns_before
    xruns = jackd.read_text().count("XRun") - xruns_before
    buffers = voice.stats.n_buffers
    server.stop()
    server.shutdown()
    del out
    assert buffers > 4.5 * 44100 / 256 * 0.9  # it really ran in real time
    assert underruns == 0 and xruns == 0, f"{underruns} underruns, {xruns} JACK xruns in 4 s"
    assert np.isfinite(voice.stats.durations_s()).all()
