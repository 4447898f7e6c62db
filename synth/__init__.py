"""DSP: spectral analysis, phase reconstruction (offline and streaming), dataset synths, audio files and FX."""

from synth.phase import METHODS, magnitude_to_audio, mel_to_audio
from synth.spectral import SpectralConfig, audio_to_magnitude, audio_to_mel
from synth.streaming import StreamingInverter

__all__ = [
    "SpectralConfig",
    "audio_to_mel",
    "audio_to_magnitude",
    "mel_to_audio",
    "magnitude_to_audio",
    "METHODS",
    "StreamingInverter",
]
