"""The squares–sines pair on files, through the ``imgsonic`` command itself: the ``files_*`` rows of ``imgsonic eval``.

The in-memory evaluation (:mod:`training.evaluate`) synthesises at the model's own rate and never touches a file.
These checks do what a user does instead, and measure the outputs with tools the models never see::

    sine tones ─► 16-bit WAV files at 8, 22.05, 44.1, 48 kHz (and other rates, bit depths, channels, codecs)
        ─► imgsonic visualize ─► PNG frames ─► centroid of the square  vs  the tone's pitch and RMS level

    squares of side 4–32 px at random sub-pixel positions and edge softness ─► 64 px PNG files
        ─► imgsonic render --loudness raw (one sequence, one second per image, the model's own levels)
        ─► WAV ─► YIN pitch and RMS level per image  vs  the square's centre x and y

The command runs in this process through ``cli_main`` (``bridge.cli.main``, handed in by the ``eval`` command:
``training`` never imports ``bridge``), with the evaluated models' arguments (``--preset NAME``); its files go to
a temporary folder that is removed afterwards.

Tones (:func:`tone_set`) spread evenly over MIDI 40–84 and −35…−5 dB RMS, each with a random phase, in an order
that makes pitch and level uncorrelated, so any cross-correlation in the result is the model's. Each
file holds them one after another, one second each, between half a second of silence at either end; frame
``k + 1`` of ``visualize --fps 1 --window-s 0.5`` then sees only tone ``k``. The squares' centres lie on a
jittered grid for the same reason.

Metrics (keys of the returned dict)
-----------------------------------
``files_visualize_*`` (the four target rates, 16-bit WAV): ``pairing`` (which factor drives which axis),
``abs_rho`` / ``cross_leakage`` per rate (pitch, loudness), their worst cases ``abs_rho_min`` and
``leakage_max``, and ``rate_spread_px``: for each tone the largest distance of its four centroids from their
mean, in pixels of the 128 px frame ``visualize`` writes by default, at most over the tones (0 = the same frame
at every rate). ``files_visualize_wav16_16khz``, ``…_wav16_96khz``, ``…_wav32_44khz`` (float), ``…_flac24_48khz``
(stereo), ``…_ogg_44khz``, ``…_mp3_44khz``: ``abs_rho`` and ``cross_leakage`` of that file, and ``spread_px``,
the largest distance of a tone's centroid from its centroid in the 44.1 kHz 16-bit WAV.

``files_render_*``: ``pairing``, ``abs_rho`` and ``cross_leakage`` of the squares' centre (x, y) against the
pitch and RMS level measured on the rendered file, ``abs_rho_min``, ``leakage_max``, ``pitch_range_octaves``
(highest minus lowest measured pitch), ``voiced_fraction`` and ``side_px`` / ``edge_px`` (the ranges drawn).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import InputError, ParameterError
from synth.sources import hz_to_midi, midi_to_hz
from training import metrics

__all__ = [
    "CliMain",
    "TONE_PITCH_MIDI",
    "TONE_RMS_DB",
    "TARGET_RATES_HZ",
    "OTHER_FILES",
    "SQUARE_SIDE_PX",
    "tone_set",
    "write_tone_file",
    "square_images",
    "squares_sines_file_checks",
    "run_command",
]

CliMain = Callable[[Sequence[str]], int]

TONE_PITCH_MIDI = (40.0, 84.0)
TONE_RMS_DB = (-35.0, -5.0)
TARGET_RATES_HZ = (8000, 22050, 44100, 48000)
# (name, sample rate, channels): wider than the targets in rate, sample format, channels and codec
OTHER_FILES = (
    ("wav16_16khz.wav", 16000, 1),
    ("wav16_96khz.wav", 96000, 1),
    ("wav32_44khz_float.wav", 44100, 1),
    ("flac24_48khz_stereo.flac", 48000, 2),
    ("ogg_44khz.ogg", 44100, 1),
    ("mp3_44khz.mp3", 44100, 1),
)
SQUARE_IMAGE_PX = 64
SQUARE_SIDE_PX = (4.0, 32.0)
SQUARE_EDGE_PX = (1.0, 4.0)  # width of the edge's linear ramp; 1 px is a hard edge, anti-aliased
FRAME_PX = 128  # visualize's default frame size
_TONE_S = 1.0
_SILENCE_S = 0.5
_IMAGE_S = 1.0
_IMAGE_TRIM_S = 0.25  # each rendered image's first and last quarter second hold the edges of its neighbours' frames


def tone_set(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pitch (MIDI), RMS level (dB) and start phase (radians) of ``n`` tones, each ``(n,)``.

    Pitches and levels are each evenly spaced over :data:`TONE_PITCH_MIDI` and :data:`TONE_RMS_DB`, ends
    included, every value used once; the levels are shuffled (seeded) into an order whose rank correlation
    with the pitches is zero (as near as integers allow). Unlike a pitch × level grid, no two tones share a
    pitch or a level: on a grid, ties turn any consistent bias smaller than one grid step into rank
    correlation (up to 0.12 of "leakage" on an 8 × 8 grid), so the metric would measure the grid.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 4:
        raise ParameterError(f"n={n!r}; expected an int >= 4")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    target = n * (n - 1) ** 2 / 4  # Σ i · order[i] when the ranks are uncorrelated
    positions = np.arange(n)
    for _ in range(100 * n):
        excess = float(positions @ order) - target
        if abs(excess) < 1:
            break
        # swapping positions i < j changes the sum by (j − i)(order[i] − order[j]): take the swap, among a random
        # few, that leaves the smallest excess
        i, j = np.sort(rng.integers(0, n, size=(2, 64)), axis=0)
        change = (j - i) * (order[i] - order[j])
        best = int(np.argmin(np.abs(excess + change)))
        if abs(excess + change[best]) < abs(excess):
            order[[i[best], j[best]]] = order[[j[best], i[best]]]
    pitch = np.linspace(*TONE_PITCH_MIDI, n)
    level = np.linspace(*TONE_RMS_DB, n)[order]
    return pitch, level, rng.uniform(0.0, 2 * np.pi, n)


def _tone_sequence(pitch_midi: np.ndarray, rms_db: np.ndarray, phase: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """Half a second of silence, one second per tone, half a second of silence: ``(n_samples,)`` float64."""
    n_tone = round(_TONE_S * sample_rate)
    t = np.arange(n_tone) / sample_rate
    amplitude = np.sqrt(2.0) * 10.0 ** (np.asarray(rms_db) / 20.0)  # a sine's RMS is its amplitude / √2
    tones = amplitude[:, None] * np.sin(2 * np.pi * midi_to_hz(np.asarray(pitch_midi))[:, None] * t + phase[:, None])
    silence = np.zeros(round(_SILENCE_S * sample_rate))
    return np.concatenate([silence, tones.ravel(), silence])


def write_tone_file(path: Path, pitch_midi: np.ndarray, rms_db: np.ndarray, phase: np.ndarray, *, sample_rate: int,
                    channels: int = 1) -> None:
    """Write the tones (see :func:`tone_set`) as one file; the format follows the suffix.

    ``.wav``: 16-bit PCM (rounded, no dither, as most programs write it), or 32-bit float when the name ends
    in ``_float.wav``; ``.flac``: 24-bit; ``.ogg`` / ``.mp3``: the encoders pedalboard ships, default quality.
    Stereo files hold the same signal in both channels.
    """
    from pedalboard.io import AudioFile
    from scipy.io import wavfile

    signal = np.tile(_tone_sequence(pitch_midi, rms_db, phase, sample_rate=sample_rate), (channels, 1))
    if path.suffix == ".wav":
        samples = signal.astype(np.float32) if path.stem.endswith("_float") else np.round(signal * 32767).astype(np.int16)
        wavfile.write(path, sample_rate, samples.T if channels > 1 else samples[0])
        return
    options = {"bit_depth": 24} if path.suffix == ".flac" else {}
    with AudioFile(str(path), "w", samplerate=sample_rate, num_channels=channels, **options) as handle:
        handle.write(signal.astype(np.float32))


def square_images(n: int, *, seed: int, size: int = SQUARE_IMAGE_PX) -> tuple[np.ndarray, np.ndarray]:
    """White squares on black, ``(n, size, size)`` uint8, and their ``(n, 4)`` centre x, centre y, side, edge (px).

    Sides are uniform over :data:`SQUARE_SIDE_PX` (scaled by ``size / 64``), edge ramps over
    :data:`SQUARE_EDGE_PX`; centres lie on a jittered ``k × k`` grid (``k = ceil(sqrt(n))``) over the positions
    where the whole square fits, in random order, at sub-pixel positions. Pixel values are the square's coverage
    of each pixel (a linear ramp ``edge`` px wide across each edge), quantised to 8 bits.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 4:
        raise ParameterError(f"n={n!r}; expected an int >= 4")
    rng = np.random.default_rng(seed)
    scale = size / SQUARE_IMAGE_PX
    side = rng.uniform(*SQUARE_SIDE_PX, n) * scale
    edge = rng.uniform(*SQUARE_EDGE_PX, n) * scale
    k = math.ceil(math.sqrt(n))
    cells = rng.permutation(k * k)[:n]
    unit = np.stack([(cells % k + rng.uniform(size=n)) / k, (cells // k + rng.uniform(size=n)) / k], axis=1)
    reach = side / 2 + edge / 2  # from the centre to where the ramp reaches 0
    centre = reach[:, None] + unit * (size - 2 * reach)[:, None]
    pixel = np.arange(size) + 0.5

    def profile(c: np.ndarray) -> np.ndarray:  # (n,) → (n, size)
        return np.clip((side[:, None] / 2 - np.abs(pixel[None, :] - c[:, None])) / edge[:, None] + 0.5, 0.0, 1.0)

    images = profile(centre[:, 1])[:, :, None] * profile(centre[:, 0])[:, None, :]
    return np.round(images * 255).astype(np.uint8), np.c_[centre, side, edge]


def run_command(cli_main: CliMain, argv: list[str]) -> None:
    """Run one ``imgsonic`` command quietly; InputError with its own message when it fails."""
    errors = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(errors):
        code = cli_main(argv)
    if code != 0:
        raise InputError(f"imgsonic {argv[0]} failed with code {code}: {errors.getvalue().strip()}")


def _visualized_centroids(cli_main: CliMain, audio: Path, model_args: list[str], n_tones: int) -> np.ndarray:
    """``imgsonic visualize`` one tone file; the centroid ``(x, y)`` in pixels of each tone's frame, ``(n, 2)``."""
    from PIL import Image

    frames = audio.with_name(audio.name.replace(".", "_") + "_frames")
    run_command(cli_main, ["visualize", str(audio), "-o", str(frames), "--fps", "1", "--window-s", "0.5",
                           "--size", str(FRAME_PX), *model_args])
    pixels = []
    for k in range(n_tones):  # frame k + 1 is the middle of tone k
        with Image.open(frames / f"frame_{k + 1:05d}.png") as image:
            pixels.append(np.asarray(image.convert("L"), dtype=np.float64) / 255.0)
    return metrics.image_centroid_px(np.stack(pixels))


def _spread_px(centroids: np.ndarray) -> np.ndarray:
    """``(files, n, 2)`` → ``(n,)``: each tone's largest distance from its mean centroid over the files."""
    return np.max(np.linalg.norm(centroids - centroids.mean(axis=0), axis=-1), axis=0)


def _visualize_rows(cli_main: CliMain, folder: Path, model_args: list[str], *, n: int, seed: int) -> dict[str, Any]:
    pitch, level, phase = tone_set(n, seed=seed)
    factors = np.c_[pitch, level]

    def measure(name: str, sample_rate: int, channels: int = 1) -> tuple[np.ndarray, dict[str, Any]]:
        path = folder / name
        write_tone_file(path, pitch, level, phase, sample_rate=sample_rate, channels=channels)
        centroids = _visualized_centroids(cli_main, path, model_args, len(pitch))
        return centroids, metrics.best_pairing(factors, centroids)

    at_rate = {rate: measure(f"tones_{rate}.wav", rate) for rate in TARGET_RATES_HZ}
    pairings = {tuple(match["pairing"]) for _, match in at_rate.values()}
    reference = at_rate[44100][0]
    others = {}
    for name, rate, channels in OTHER_FILES:
        centroids, match = measure(name, rate, channels)
        others[f"files_visualize_{Path(name).stem.removesuffix('_float').removesuffix('_stereo')}"] = {
            "abs_rho": match["abs_rho"], "cross_leakage": match["cross_leakage"],
            "spread_px": float(np.max(np.linalg.norm(centroids - reference, axis=-1)))}
    pairing = at_rate[TARGET_RATES_HZ[0]][1]["pairing"]
    return {
        "files_visualize_n_tones": len(pitch),
        "files_visualize_rates_hz": list(TARGET_RATES_HZ),
        "files_visualize_pairing": [f"{factor}→{'xy'[axis]}" for factor, axis in zip(("pitch", "loudness"), pairing)]
        if len(pairings) == 1 else "differs between rates",
        "files_visualize_abs_rho": [match["abs_rho"] for _, match in at_rate.values()],
        "files_visualize_cross_leakage": [match["cross_leakage"] for _, match in at_rate.values()],
        "files_visualize_abs_rho_min": min(min(match["abs_rho"]) for _, match in at_rate.values())
        if len(pairings) == 1 else 0.0,
        "files_visualize_leakage_max": max(max(match["cross_leakage"]) for _, match in at_rate.values()),
        "files_visualize_rate_spread_px": float(_spread_px(np.stack([c for c, _ in at_rate.values()])).max()),
        **others,
    }


def _render_rows(cli_main: CliMain, folder: Path, model_args: list[str], *, n: int, seed: int) -> dict[str, Any]:
    from PIL import Image

    from synth.audio_io import read_audio

    images, drawn = square_images(n, seed=seed)
    pictures = folder / "squares"
    pictures.mkdir()
    for index, pixels in enumerate(images):
        Image.fromarray(pixels).save(pictures / f"square_{index:04d}.png")
    out, log = folder / "squares.wav", folder / "squares.json"
    # y drives loudness: the model's own levels, not levelled by --loudness even
    run_command(cli_main, ["render", str(pictures), "-o", str(out), "--json", str(log), "--seconds-per-image",
                           str(_IMAGE_S), "--crossfade", "0", "--loudness", "raw", *model_args])
    audio = read_audio(out, sample_rate=None)[0]
    spans = json.loads(log.read_text())
    rate = spans["sample_rate"]
    segments = np.stack([
        audio[round((item["start_s"] + _IMAGE_TRIM_S) * rate) : round((item["start_s"] + _IMAGE_S - _IMAGE_TRIM_S) * rate)]
        for item in spans["images"]
    ])
    pitch = metrics.pitch_hz(segments, sample_rate=rate)
    voiced = np.isfinite(pitch)
    pitch_midi = np.where(voiced, hz_to_midi(np.where(voiced, pitch, 1.0)), 0.0)  # unvoiced: the lowest rank
    loudness = metrics.loudness_db(segments)
    match = metrics.best_pairing(drawn[:, :2], np.c_[pitch_midi, loudness])
    return {
        "files_render_n_squares": n,
        "files_render_side_px": [float(drawn[:, 2].min()), float(drawn[:, 2].max())],
        "files_render_edge_px": [float(drawn[:, 3].min()), float(drawn[:, 3].max())],
        "files_render_pairing": [f"{axis}→{('pitch', 'loudness')[j]}" for axis, j in zip("xy", match["pairing"])],
        "files_render_abs_rho": match["abs_rho"],
        "files_render_cross_leakage": match["cross_leakage"],
        "files_render_abs_rho_min": min(match["abs_rho"]),
        "files_render_leakage_max": max(match["cross_leakage"]),
        "files_render_voiced_fraction": float(voiced.mean()),
        "files_render_pitch_range_octaves": float(np.ptp(pitch_midi[voiced]) / 12.0) if voiced.any() else 0.0,
    }


def squares_sines_file_checks(cli_main: CliMain, *, model_args: Sequence[str], n_tones: int = 64,
                              n_squares: int = 64, seed: int = 0) -> dict[str, Any]:
    """The ``files_*`` metrics (see the module docstring), measured through ``cli_main``.

    Parameters
    ----------
    cli_main : runs ``imgsonic`` with a list of arguments and returns its exit code (``bridge.cli.main``).
    model_args : the models' arguments of ``visualize`` and ``render``: ``["--preset", NAME]``, or
        ``--image-vae``, ``--audio-vae`` and ``--mapper`` with their checkpoints.
    n_tones : tones in every file (one second each, :func:`tone_set`).
    n_squares : squares rendered (one second each).
    """
    model_args = list(model_args)
    with tempfile.TemporaryDirectory(prefix="imgsonic-eval-files-") as temporary:
        folder = Path(temporary)
        found = _visualize_rows(cli_main, folder, model_args, n=n_tones, seed=seed)
        found.update(_render_rows(cli_main, folder, model_args, n=n_squares, seed=seed + 1))
    return found
