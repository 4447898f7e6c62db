"""NeuralVoice as a pyo object, on pyo's manual server: mixing, crossfades, control streams, rates, errors."""

import numpy as np
import pytest
import torch

pyo = pytest.importorskip("pyo")

from bridge.live.voices import NeuralVoice, ParametricVoice  # noqa: E402
from bridge.sonify.bundle import load_bundle  # noqa: E402
from bridge.sonify.voice import VoiceRenderer  # noqa: E402
from models.errors import InputError  # noqa: E402
from training.datasets import make_squares  # noqa: E402


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(preset="squares-sines")


@pytest.fixture(scope="module")
def squares():
    """A square at the far left and one at the far right (low and high pitch in squares-sines), as uint8 pixels."""
    images, factors = make_squares(400, size=32, seed=3)
    left, right = int(torch.argmin(factors[:, 0])), int(torch.argmax(factors[:, 0]))
    return [(images[i, 0].numpy() * 255).astype(np.uint8) for i in (left, right)]


@pytest.fixture
def server(request):
    sample_rate, buffer_size = getattr(request, "param", (44100, 256))
    s = pyo.Server(sr=sample_rate, nchnls=1, buffersize=buffer_size, audio="manual").boot()
    s.start()
    yield s
    s.stop()
    s.shutdown()


def record(server, objects, n_buffers):
    """Run the server for ``n_buffers`` and return what each object played, ``(n_buffers · buffersize,)`` each."""
    size = n_buffers * server.getBufferSize()
    tables = [pyo.DataTable(size=size) for _ in objects]
    recorders = [pyo.TableRec(obj, table).play() for obj, table in zip(objects, tables)]
    for _ in range(n_buffers):
        server.process()
    del recorders
    return [np.asarray(table.getBuffer()).copy() for table in tables]


def peak_hz(block, sample_rate):
    spectrum = np.abs(np.fft.rfft(block * np.hanning(block.size)))
    k = int(np.argmax(spectrum[1:])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sample_rate / block.size


def test_the_voice_mixes_like_any_pyo_object(server, bundle):
    voice = NeuralVoice(bundle=bundle)
    sine = pyo.Sine(freq=330, mul=0.2)
    mixed, scaled = voice + sine, voice * 0.5
    alone, sine_out, mixed_out, scaled_out = record(server, [voice, sine, mixed, scaled], 100)
    assert np.sqrt(np.mean(alone**2)) > 1e-3  # it sounds before anything is set
    np.testing.assert_allclose(mixed_out, alone + sine_out, atol=1e-6)
    np.testing.assert_allclose(scaled_out, 0.5 * alone, atol=1e-7)


def test_building_a_voice_leaves_process_state_alone(server, bundle):
    """Freezing the collector is the live command's choice (bridge.cli.live), not a side effect of a constructor."""
    import gc

    from synth.engine import settle_garbage_collector

    gc.unfreeze()
    NeuralVoice(bundle=bundle)
    assert gc.get_freeze_count() == 0
    settle_garbage_collector()
    assert gc.get_freeze_count() > 10_000  # torch's, pyo's and the models' objects
    gc.unfreeze()


def test_the_voice_plays_exactly_what_its_stream_makes(server, bundle, squares):
    voice = NeuralVoice(bundle=bundle, mul=0.25)
    reference = VoiceRenderer(models=bundle.models, sample_rate=44100)
    voice.setImage(squares[1], fadetime=0.3)
    reference.set_image(squares[1], fadetime_s=0.3)
    (out,) = record(server, [voice], 200)
    np.testing.assert_allclose(out, 0.25 * reference.render(out.size), atol=1e-7)


@pytest.mark.parametrize("fadetime", [0.5, 2.0])
def test_set_image_crossfades_over_the_fadetime(server, bundle, squares, fadetime):
    """The pitch moves from the left square's to the right square's within the fadetime, S-shaped."""
    sample_rate, start_s = 44100, 1.0
    voice = NeuralVoice(bundle=bundle)
    voice.setImage(squares[0], fadetime=0.0)
    (before,) = record(server, [voice], round(start_s * sample_rate / 256))
    voice.setImage(squares[1], fadetime=fadetime)
    (after,) = record(server, [voice], round((fadetime + 1.5) * sample_rate / 256))
    # the change starts at the first frame decoded after the call: the decoder runs ahead of the play
    # position by the vocoder's latency, the push in progress and the next, and the FIFO it starts at
    start_s = voice.renderer.timeline.event_times_s[-1]
    lead_samples = voice.renderer.vocoder_latency_samples + 2 * voice.renderer.frames_per_push * 512
    fifo_s = 4 * 256 / sample_rate
    assert 0 <= start_s - before.size / sample_rate <= lead_samples / 8000 + fifo_s
    out = np.concatenate([before, after])
    hop, size = 441, 4096
    times = np.arange(0, out.size - size, hop)
    pitch = np.log2([peak_hz(out[t : t + size], sample_rate) for t in times])
    times_s = (times + size / 2) / sample_rate
    low, high = np.median(pitch[times_s < start_s - 0.1]), np.median(pitch[-10:])
    assert high - low > 0.5  # the two squares are over half an octave apart
    fraction = (pitch - low) / (high - low)
    # a 4096-sample analysis window blurs times by ±46 ms; the streaming pipeline adds one frame (64 ms)
    blur_s = 0.15
    assert np.all(fraction[times_s < start_s - blur_s] < 0.1)
    assert np.all(fraction[times_s > start_s + fadetime + blur_s] > 0.9)
    crossing_s = times_s[np.argmax(fraction > 0.5)] - start_s
    assert 0.3 * fadetime - blur_s < crossing_s < 0.7 * fadetime + blur_s


def test_a_latent_stream_drives_a_sine_and_its_pitch_follows(server, bundle):
    sample_rate = 44100
    voice = NeuralVoice(bundle=bundle)
    sine = pyo.Sine(freq=voice.latent[0] * 200 + 600)
    control = pyo.Sig(voice.latent[0])
    steps = [-1.5, 0.5, 2.0]
    outputs = []
    for value in steps:
        voice.setLatent([value, 0.0], fadetime=0.0)
        outputs.append(record(server, [sine, control], 120))  # 0.7 s each
    for (tone, latent), value in zip(outputs, steps):
        settled = slice(tone.size // 2, tone.size // 2 + 8192)
        expected_hz = float(np.mean(latent[settled])) * 200 + 600
        assert abs(float(np.mean(latent[settled])) - value) < 0.01
        assert abs(peak_hz(tone[settled], sample_rate) - expected_hz) < 2.0


@pytest.mark.parametrize("server", [(44100, 64), (48000, 1024), (48000, 128), (44100, 512)], indirect=True)
def test_the_voice_works_at_the_servers_rate_and_buffer_size(server, bundle, squares):
    sample_rate, buffer_size = int(server.getSamplingRate()), server.getBufferSize()
    voice = NeuralVoice(bundle=bundle)
    voice.setImage(squares[1], fadetime=0.1)
    (out,) = record(server, [voice], max(1, round(1.0 * sample_rate / buffer_size)))
    reference = VoiceRenderer(models=bundle.models, sample_rate=sample_rate)
    reference.set_image(squares[1], fadetime_s=0.1)
    np.testing.assert_allclose(out, reference.render(out.size), atol=1e-6)
    assert np.sqrt(np.mean(out[out.size // 2 :] ** 2)) > 1e-3


def test_two_voices_on_one_server_do_not_interfere(server, bundle, squares):
    first, second = NeuralVoice(bundle=bundle), NeuralVoice(bundle=bundle)
    first.setImage(squares[0], fadetime=0.0)
    second.setImage(squares[1], fadetime=0.0)
    reference = VoiceRenderer(models=bundle.models, sample_rate=44100)
    reference.set_image(squares[0], fadetime_s=0.0)
    out_first, out_second = record(server, [first, second], 150)
    np.testing.assert_allclose(out_first, reference.render(out_first.size), atol=1e-7)
    assert abs(peak_hz(out_first[-8192:], 44100) - peak_hz(out_second[-8192:], 44100)) > 50


def test_an_invalid_image_raises_and_the_previous_sound_goes_on(server, bundle, squares, tmp_path):
    voice = NeuralVoice(bundle=bundle)
    reference = VoiceRenderer(models=bundle.models, sample_rate=44100)
    voice.setImage(squares[1], fadetime=0.0)
    reference.set_image(squares[1], fadetime_s=0.0)
    (before,) = record(server, [voice], 50)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for bad in (corrupt, tmp_path / "missing.png", np.zeros((0, 5))):
        with pytest.raises(InputError):
            voice.setImage(bad)
    (after,) = record(server, [voice], 50)
    np.testing.assert_allclose(np.concatenate([before, after]), reference.render(before.size * 2), atol=1e-7)
    assert voice.stats.source_errors == 0


def test_a_failing_source_plays_silence_and_the_server_goes_on(server, bundle):
    voice = NeuralVoice(bundle=bundle)
    record(server, [voice], 5)
    voice.renderer.render = lambda n: 1 / 0  # e.g. a broken model
    sine = pyo.Sine(440)
    out, tone = record(server, [voice, sine], 10)
    assert voice.stats.source_errors == 10
    assert not out.any() and np.abs(tone).max() > 0.9


def test_a_voice_follows_an_image_folder_at_a_rate(server, bundle, squares, tmp_path):
    import time

    from PIL import Image

    for index, pixels in enumerate(squares):
        Image.fromarray(pixels).save(tmp_path / f"frame{index + 1}.png")
    voice = NeuralVoice(bundle=bundle, images=tmp_path, rate=1.0, fadetime=0.0)
    (out,) = record(server, [voice], round(1.2 * 44100 / 256))  # the step to frame2 is due at 1.0 s
    deadline = time.monotonic() + 10
    while voice.renderer._events or voice.renderer.timeline.n_events < 2:  # it reads and encodes in a thread
        assert time.monotonic() < deadline
        time.sleep(0.01)
        record(server, [voice], 1)
    (later,) = record(server, [voice], round(0.6 * 44100 / 256))
    first_hz, later_hz = peak_hz(out[8000:16192], 44100), peak_hz(later[-8192:], 44100)
    assert later_hz > first_hz * 1.4  # stepped from the left square (low) to the right one (high)


def test_parametric_voice_follows_the_mapped_parameters(server, bundle):
    voice = NeuralVoice(bundle=bundle)
    fm = ParametricVoice(voice)
    assert len(fm) == 2  # stereo, panned by the "pan" parameter
    voice.setParam("fm_index", 0.0)  # no modulation: a sine at the carrier
    voice.setParam("pitch", 300.0)
    voice.setParam("cutoff_hz", 8000.0)
    (out,) = record(server, [pyo.Mix(fm, voices=1)], 100)
    assert abs(peak_hz(out[-8192:], 44100) - 300.0) < 2.0
    voice.setParam("pitch", 5000.0)  # clamped to the parameter's range, 110–880 Hz
    (out,) = record(server, [pyo.Mix(fm, voices=1)], 100)
    assert abs(peak_hz(out[-8192:], 44100) - 880.0) < 3.0
