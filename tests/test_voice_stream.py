"""VoiceRenderer (the live voice's sound) against the offline renderer, and its control side."""

import numpy as np
import pytest

from bridge.control.levels import LoudnessSettings
from bridge.sonify.bundle import load_bundle
from bridge.sonify.render import RenderSettings, render_items
from bridge.sonify.voice import VoiceRenderer
from bridge.sources.demo import demo_images
from models.errors import InputError, ParameterError

# The stated tolerance: live and offline differ only by float rounding (batched vs per-frame decoding,
# block-wise vs whole-signal PGHI): at most 1e-3 of full scale (−60 dB) where the phase decisions agree. Latents
# and mels agree to 7e-7 and 2.4e-7 (the default of issue 22's third round). PGHI's phase integration can take such
# a difference to a different phase decision in a region (7.9e-3 there; 1.5e-1 through the neural vocoder, which
# starts from PGHI's phase): the same magnitudes with other phases. The sounds are therefore compared as
# magnitude spectrograms, and sample by sample only over the first image, before any boundary.
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def loaded():
    return load_bundle(preset="default")


@pytest.mark.parametrize("vocoder", ["pghi", "neural"])
def test_the_stream_equals_the_offline_render_of_the_same_sequence(loaded, vocoder):
    from synth.vocoder import NeuralVocoder

    items = demo_images()[:4]
    # 16 kHz, hop 256: 0.512 s = 32 frames per image, a 0.064 s crossfade centred on each boundary
    seconds, crossfade = 0.512, 0.064
    settings = RenderSettings(seconds_per_image=seconds, crossfade_s=crossfade, vocoder=vocoder, peak_db=None,
                              fade_s=0.0, sample_rate=44100, loudness=LoudnessSettings(mode="raw"))
    offline = render_items(items, bundle=loaded, settings=settings).audio
    neural = NeuralVocoder.from_checkpoint(loaded.vocoder_path) if vocoder == "neural" else None
    voice = VoiceRenderer(models=loaded.models, sample_rate=44100, image=items[0], vocoder=neural)
    for index, item in enumerate(items[1:], start=1):
        voice.set_image(item.pixels, fadetime_s=crossfade, at_s=index * seconds - crossfade / 2)
    live = np.concatenate([voice.render(256) for _ in range(offline.size // 256)])
    compared = live.size - 3000  # the offline render's last frame has no look-ahead; the stream goes on
    assert np.abs(offline).max() > 0.1
    first = int(44100 * (seconds - crossfade))
    np.testing.assert_allclose(live[:first], offline[:first], atol=TOLERANCE if vocoder == "pghi" else 3e-3)
    difference = _spectrogram_db(live[:compared]) - _spectrogram_db(offline[:compared])
    # 99th percentile of |dB difference| over the bins (floored 60 dB down): 0.0008 (PGHI), 0.048 (neural), measured
    assert np.percentile(np.abs(difference), 99) < 0.5


def _spectrogram_db(audio: np.ndarray) -> np.ndarray:
    """Magnitude spectrogram in dB (2048-point frames, hop 512), floored 60 dB below its loudest bin."""
    import torch

    frames = torch.stft(torch.from_numpy(audio), 2048, 512, window=torch.hann_window(2048), return_complex=True).abs()
    db = 20 * np.log10(frames.numpy() + 1e-12)
    return np.maximum(db, db.max() - 60)


def test_block_sizes_do_not_change_the_output(loaded, rng):
    items = demo_images()[:2]
    one = VoiceRenderer(models=loaded.models, sample_rate=48000, image=items[0])
    other = VoiceRenderer(models=loaded.models, sample_rate=48000, image=items[0])
    for voice in (one, other):
        voice.set_image(items[1].pixels, fadetime_s=0.2, at_s=0.3)
    whole = one.render(48000)
    pieces = []
    while sum(piece.size for piece in pieces) < 48000:
        pieces.append(other.render(int(rng.integers(1, 1500))))
    np.testing.assert_array_equal(np.concatenate(pieces)[:48000], whole)


def test_controls_follow_the_images_and_held_parameters_win(loaded):
    items = demo_images()
    voice = VoiceRenderer(models=loaded.models, sample_rate=44100, image=items[0])
    first = voice.step_controls(control_rate_hz=172.0)
    voice.set_image(items[5].pixels, fadetime_s=0.0)
    voice.render(44100)
    later = voice.step_controls(control_rate_hz=172.0)
    assert not np.allclose(first.z_img, later.z_img)
    assert set(later.params) == set(voice.mapping.names)
    voice.set_param("pitch", 10_000.0)
    assert voice.step_controls(control_rate_hz=172.0).params["pitch"] == 880.0  # clamped to the mapping's range
    voice.set_param("pitch", None)
    assert voice.step_controls(control_rate_hz=172.0).params["pitch"] < 880.0


def test_bad_control_values_are_refused_or_clamped(loaded):
    voice = VoiceRenderer(models=loaded.models, sample_rate=44100)
    size = loaded.models.image_latent_dim
    with pytest.raises(ParameterError, match=f"expected {size}"):
        voice.set_latent(np.zeros(3))
    with pytest.raises(ParameterError, match="NaN"):
        voice.set_latent(np.full(size, np.nan))
    with pytest.raises(ParameterError, match="fade time"):
        voice.set_image(demo_images()[0].pixels, fadetime_s=-1.0)
    with pytest.raises(ParameterError):
        voice.set_param("no_such_parameter", 1.0)
    with pytest.raises(InputError):
        voice.set_image(np.zeros((0, 4)))
    voice.set_latent(np.full(size, np.inf), fadetime_s=0.0)
    voice.render(4096)
    np.testing.assert_allclose(voice.step_controls(control_rate_hz=172.0).z_img, voice.latent_range.high, rtol=1e-12)
    assert np.isfinite(voice.render(4096)).all()


def test_spreading_the_work_over_buffers_gives_the_same_samples(loaded):
    items = demo_images()[:3]
    voices = [VoiceRenderer(models=loaded.models, sample_rate=44100, image=items[0], spread_work=spread)
              for spread in (False, True)]
    for voice in voices:
        voice.set_image(items[1].pixels, fadetime_s=0.3, at_s=0.25)
        voice.set_image(items[2].pixels, fadetime_s=0.0, at_s=0.8)
    plain, spread = ([voice.render(256) for _ in range(250)] for voice in voices)
    np.testing.assert_array_equal(np.concatenate(spread), np.concatenate(plain))


def test_the_fade_in_is_the_offline_renders_fade(loaded):
    """A voice that fades in starts at silence and equals the offline render (raw loudness) with the same fade_s."""
    items = demo_images()[:2]
    settings = RenderSettings(seconds_per_image=0.512, crossfade_s=0.0, vocoder="pghi", peak_db=None, fade_s=0.05,
                              sample_rate=44100, loudness=LoudnessSettings(mode="raw"))
    offline = render_items(items[:1], bundle=loaded, settings=settings).audio
    voice = VoiceRenderer(models=loaded.models, sample_rate=44100, image=items[0], fade_in_s=0.05)
    live = np.concatenate([voice.render(100) for _ in range(50)])
    assert live[0] == 0.0 or abs(live[0]) < 1e-6 * np.abs(live).max()
    np.testing.assert_allclose(live[:4000], offline[:4000], atol=TOLERANCE)
    assert np.abs(live[:44]).max() < 0.01 * np.abs(live).max()  # the first millisecond is all but silent


def test_each_image_is_one_onset_heard_at_the_middle_of_its_glide(loaded):
    items = demo_images()
    voice = VoiceRenderer(models=loaded.models, sample_rate=44100, image=items[0])
    first = voice.step_controls(control_rate_hz=100.0)
    assert first.onsets == 1 and set(first.onset_positions) == set(voice.mapping.names)
    voice.set_image(items[1].pixels, fadetime_s=0.4, at_s=0.5)
    voice.set_latent(np.zeros(loaded.models.image_latent_dim), fadetime_s=0.0, at_s=1.5)  # a latent is not an image: no onset
    onsets = []
    for _ in range(200):  # 2 s in 10 ms steps
        voice.render(441)
        onsets.append(voice.step_controls(control_rate_hz=100.0).onsets)
    heard_at = (np.flatnonzero(np.diff(onsets))[0] + 1) * 0.01
    assert onsets[-1] == 2
    assert abs(heard_at - 0.7) < 0.02  # 0.5 s + half the 0.4 s glide
    # the onset's positions are the new image's targets, not the glide's passing values
    target = voice._target_positions(voice._values(*voice._encode(items[1].pixels)))
    assert voice.step_controls(control_rate_hz=100.0).onset_positions == target


def test_a_flood_of_latents_costs_one_glide_per_push(loaded, rng):
    voice = VoiceRenderer(models=loaded.models, sample_rate=44100)
    voice.render(4096)
    events_before = voice.timeline.n_events
    for _ in range(500):
        voice.set_latent(rng.normal(0, 3, loaded.models.image_latent_dim), fadetime_s=0.05)
    last = rng.normal(0, 3, loaded.models.image_latent_dim)
    voice.set_latent(last, fadetime_s=0.0)
    voice.render(8192)
    assert voice.timeline.n_events - events_before <= 2  # everything queued before one push is one event
    np.testing.assert_allclose(voice.step_controls(control_rate_hz=172.0).z_img, voice.latent_range.clamp(last)[0])
