"""Spoken digits from Debian's ``espeak-ng``, paired by class with scikit-learn's handwritten digits.

The classic spoken-digit ↔ MNIST setup, made here without downloads: ``espeak-ng`` speaks the ten digit
names ("zero" … "nine") in any of its voice variants (101 on Debian: ``espeak-ng --voices=variant``) at any
speed (words per minute) and pitch (0–99). Clips are generated at training time into a cache folder
(``<cache>/spoken-digits/<voice>/<digit>_<speed>_<pitch>.wav``, espeak's own 22.05 kHz 16-bit wav) and never
committed; a cached clip is reused.

Held out for testing: a fixed fifth of the voices (:func:`split_voices`), and speeds and pitches drawn from
wider, continuous ranges than the training grid (:data:`TRAIN_SPEEDS_WPM`, :data:`TRAIN_PITCHES` against
:data:`TEST_SPEED_RANGE_WPM`, :data:`TEST_PITCH_RANGE`), so a test clip never repeats a training voice or a
training speed/pitch pair.

A clip becomes one 1-second window: the word (the span above ``-40 dB`` of the clip's peak) is placed at a
random offset inside the second (at the centre when ``jitter`` is off; a word longer than 1 s is cut to its
middle second), scaled to a random level, and analysed into a normalised log-mel ``(n_mels, n_frames)``.

Example
-------
>>> clips = spoken_digit_clips("test", clips_per_digit=1)                    # doctest: +SKIP
>>> mels, labels = clips_to_windows(clips, config=SPEECH_SPECTRAL, seed=0)   # doctest: +SKIP
>>> tuple(mels.shape)                                                         # doctest: +SKIP
(200, 32, 32)
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from models.errors import InputError, ParameterError
from synth.spectral import SpectralConfig, audio_to_mel

__all__ = [
    "DIGIT_WORDS",
    "SPEECH_SPECTRAL",
    "WINDOW_FRAMES",
    "TRAIN_SPEEDS_WPM",
    "TRAIN_PITCHES",
    "TEST_SPEED_RANGE_WPM",
    "TEST_PITCH_RANGE",
    "SpokenClip",
    "default_cache_dir",
    "espeak_voices",
    "split_voices",
    "spoken_digit_clips",
    "read_clip",
    "place_in_window",
    "clips_to_windows",
    "audio_to_window_mel",
]

log = logging.getLogger(__name__)

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ESPEAK_RATE_HZ = 22050
# 16 kHz speech, 32 mel bands; hop 500 makes 1 s exactly 32 frames (frame k centred on sample 500·k). A 64 × 64
# window made the autoencoder 5× slower to train here for no gain a digit needs.
SPEECH_SPECTRAL = SpectralConfig(sample_rate=16000, n_fft=1024, hop_length=500, n_mels=32, f_min_hz=50.0,
                                 f_max_hz=8000.0, db_floor=-80.0, db_ceiling=20.0)
WINDOW_FRAMES = 32
WINDOW_SECONDS = 1.0
TRAIN_SPEEDS_WPM = (130, 155, 180, 205)
TRAIN_PITCHES = (20, 40, 60, 80)
TEST_SPEED_RANGE_WPM = (110.0, 230.0)
TEST_PITCH_RANGE = (5.0, 95.0)
TRAIN_LEVEL_DB = (-24.0, 0.0)
_TEST_VOICE_FRACTION = 0.2
_VOICE_SPLIT_SEED = 0
_WORD_THRESHOLD_DB = -40.0


@dataclass(frozen=True)
class SpokenClip:
    """One spoken digit: the class, how espeak spoke it, and its cached wav file."""

    digit: int
    voice: str
    speed_wpm: int
    pitch: int
    path: Path


def default_cache_dir() -> Path:
    """``$IMGSONIC_CACHE``, else ``$XDG_CACHE_HOME/imgsonic``, else ``~/.cache/imgsonic``."""
    if os.environ.get("IMGSONIC_CACHE"):
        return Path(os.environ["IMGSONIC_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "imgsonic"


def _espeak() -> str:
    program = shutil.which("espeak-ng")
    if program is None:
        raise InputError("espeak-ng is not installed; it speaks the digit data set (Debian: apt-get install espeak-ng)")
    return program


def espeak_voices() -> list[str]:
    """espeak-ng's voice variants (``!v/NAME`` files) usable as ``-v en+NAME``, sorted; names with spaces are left out."""
    listing = subprocess.run([_espeak(), "--voices=variant"], capture_output=True, text=True, check=True).stdout
    names = set()
    for line in listing.splitlines()[1:]:
        fields = line.split()
        files = [field for field in fields if field.startswith("!v/")]
        if files:
            names.add(files[0][3:])
    if not names:
        raise InputError("espeak-ng lists no voice variants; is espeak-ng-data installed?")
    return sorted(names)


def split_voices(voices: list[str]) -> tuple[list[str], list[str]]:
    """(training voices, held-out voices): a fixed fifth of ``voices`` is held out, the same on every call."""
    order = np.random.default_rng(_VOICE_SPLIT_SEED).permutation(len(voices))
    n_test = max(1, round(_TEST_VOICE_FRACTION * len(voices)))
    held_out = sorted(voices[i] for i in order[:n_test])
    return sorted(set(voices) - set(held_out)), held_out


def _speak(clip: SpokenClip) -> None:
    clip.path.parent.mkdir(parents=True, exist_ok=True)
    temporary = clip.path.with_name(f".{clip.path.name}.{os.getpid()}.tmp")
    command = [_espeak(), "-v", f"en+{clip.voice}", "-s", str(clip.speed_wpm), "-p", str(clip.pitch), "-w",
               str(temporary), DIGIT_WORDS[clip.digit]]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        os.replace(temporary, clip.path)
    finally:
        temporary.unlink(missing_ok=True)


def spoken_digit_clips(
    split: str, *, clips_per_digit: int, cache_dir: str | os.PathLike | None = None, seed: int = 0, workers: int = 4
) -> list[SpokenClip]:
    """The clips of ``split`` ("train" or "test"), spoken into the cache where missing.

    Each voice of the split says each digit ``clips_per_digit`` times, at (speed, pitch) pairs drawn with
    ``seed``: for "train" from the grid ``TRAIN_SPEEDS_WPM × TRAIN_PITCHES``, for "test" uniformly from the
    wider continuous ranges (rounded; a pair that falls on the training grid is moved off it by one).
    """
    if split not in ("train", "test"):
        raise ParameterError(f"split={split!r}; expected 'train' or 'test'")
    if isinstance(clips_per_digit, bool) or not isinstance(clips_per_digit, int) or clips_per_digit < 1:
        raise ParameterError(f"clips_per_digit={clips_per_digit!r}; expected an int >= 1")
    train_voices, test_voices = split_voices(espeak_voices())
    voices = train_voices if split == "train" else test_voices
    folder = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "spoken-digits"
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    clips = []
    for voice in voices:
        for digit in range(10):
            for _ in range(clips_per_digit):
                if split == "train":
                    speed, pitch = int(rng.choice(TRAIN_SPEEDS_WPM)), int(rng.choice(TRAIN_PITCHES))
                else:
                    speed = int(round(rng.uniform(*TEST_SPEED_RANGE_WPM)))
                    pitch = int(round(rng.uniform(*TEST_PITCH_RANGE)))
                    if speed in TRAIN_SPEEDS_WPM and pitch in TRAIN_PITCHES:
                        pitch += 1
                path = folder / voice / f"{digit}_{speed}_{pitch}.wav"
                clips.append(SpokenClip(digit=digit, voice=voice, speed_wpm=speed, pitch=pitch, path=path))
    missing = list({clip.path: clip for clip in clips if not clip.path.is_file()}.values())
    if missing:
        log.info("speaking %d digit clips into %s", len(missing), folder)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_speak, missing))
    return clips


def read_clip(clip: SpokenClip, *, sample_rate: int) -> np.ndarray:
    """The clip's samples ``(n,)`` float32 at ``sample_rate``."""
    with wave.open(str(clip.path), "rb") as handle:
        if handle.getsampwidth() != 2 or handle.getnchannels() != 1:
            raise InputError(f"{clip.path} is not espeak's mono 16-bit wav; delete it to have it spoken again")
        rate = handle.getframerate()
        samples = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    if rate == sample_rate:
        return samples
    from math import gcd

    from scipy.signal import resample_poly  # 40× faster than synth.resample's exact kernel for whole clips

    common = gcd(rate, sample_rate)
    return resample_poly(samples, sample_rate // common, rate // common).astype(np.float32)


def _word_span(audio: np.ndarray, *, sample_rate: int) -> tuple[int, int]:
    """[start, stop) of the samples whose 10 ms RMS lies within ``_WORD_THRESHOLD_DB`` of the loudest."""
    hop = max(1, sample_rate // 100)
    n_blocks = max(1, len(audio) // hop)
    blocks = audio[: n_blocks * hop].reshape(n_blocks, hop) if len(audio) >= hop else audio[None, :]
    level = 10 * np.log10(np.mean(blocks.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(level >= level.max() + _WORD_THRESHOLD_DB)
    return int(loud[0] * hop), int(min(len(audio), (loud[-1] + 1) * hop))


def place_in_window(audio: np.ndarray, *, sample_rate: int, rng: np.random.Generator | None) -> np.ndarray:
    """The word of ``audio`` inside one second of silence: at a random offset (``rng``) or centred (None)."""
    n_window = round(WINDOW_SECONDS * sample_rate)
    start, stop = _word_span(audio, sample_rate=sample_rate)
    word = audio[start:stop]
    if len(word) > n_window:
        cut = (len(word) - n_window) // 2
        word = word[cut : cut + n_window]
    room = n_window - len(word)
    offset = room // 2 if rng is None else int(rng.integers(0, room + 1))
    window = np.zeros(n_window, dtype=np.float32)
    window[offset : offset + len(word)] = word
    return window


def audio_to_window_mel(audio: np.ndarray | Tensor, *, config: SpectralConfig) -> Tensor:
    """Seconds of audio ``(B, sample_rate)`` → normalised log-mels ``(B, n_mels, WINDOW_FRAMES)``."""
    mel = audio_to_mel(torch.as_tensor(np.asarray(audio, dtype=np.float32)), config=config)
    return mel[..., :WINDOW_FRAMES].contiguous()


def clips_to_windows(
    clips: list[SpokenClip], *, config: SpectralConfig, seed: int | None, copies: int = 1,
    level_db: tuple[float, float] = TRAIN_LEVEL_DB,
) -> tuple[Tensor, Tensor]:
    """Mel windows ``(len(clips)·copies, n_mels, WINDOW_FRAMES)`` and digit labels.

    With a ``seed`` every copy places the word at a random offset and scales the clip's peak to a level drawn
    from ``level_db``; with ``seed=None`` (one copy) the word is centred and keeps espeak's level.
    """
    rng = None if seed is None else np.random.default_rng(seed)
    windows, labels = [], []
    for clip in clips:
        audio = read_clip(clip, sample_rate=config.sample_rate)
        peak = float(np.abs(audio).max()) or 1.0
        for _ in range(copies if rng is not None else 1):
            window = place_in_window(audio, sample_rate=config.sample_rate, rng=rng)
            if rng is not None:
                window *= 10 ** (rng.uniform(*level_db) / 20) / peak
            windows.append(window)
            labels.append(clip.digit)
    mels = torch.cat([audio_to_window_mel(np.stack(windows[i : i + 512]), config=config)
                      for i in range(0, len(windows), 512)])
    return mels, torch.tensor(labels, dtype=torch.long)
