"""DSP: spectral analysis, phase reconstruction (offline and streaming), dataset synths, audio files and FX."""

from synth.audio_io import read_audio, read_audio_info, write_audio
from synth.effects import EffectChain
from synth.phase import METHODS, magnitude_to_audio, mel_to_audio
from synth.sources import FMParams, SineParams, render_fm, render_noise_bursts, render_sines
from synth.spectral import SpectralConfig, audio_to_magnitude, audio_to_mel
from synth.streaming import StreamingInverter
from synth.vocoder import NeuralVocoder

__all__ = [
    "SpectralConfig",
    "audio_to_mel",
    "audio_to_magnitude",
    "mel_to_audio",
    "magnitude_to_audio",
    "METHODS",
    "StreamingInverter",
    "NeuralVocoder",
    "SineParams",
    "FMParams",
    "render_sines",
    "render_fm",
    "render_noise_bursts",
    "read_audio",
    "read_audio_info",
    "write_audio",
    "EffectChain",
]
