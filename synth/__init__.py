"""DSP: spectral analysis, phase reconstruction (offline and streaming), dataset synths, audio files and FX."""

# Names load on first use (PEP 562), so importing one synth module does not import them all (and torch).

from models.lazy import lazy_exports

_EXPORTS = {
    "SpectralConfig": "synth.spectral",
    "audio_to_mel": "synth.spectral",
    "audio_to_magnitude": "synth.spectral",
    "mel_to_audio": "synth.phase",
    "magnitude_to_audio": "synth.phase",
    "METHODS": "synth.phase",
    "StreamingInverter": "synth.streaming",
    "NeuralVocoder": "synth.vocoder",
    "SineParams": "synth.sources",
    "FMParams": "synth.sources",
    "render_sines": "synth.sources",
    "render_fm": "synth.sources",
    "render_noise_bursts": "synth.sources",
    "read_audio": "synth.audio_io",
    "read_audio_info": "synth.audio_io",
    "write_audio": "synth.audio_io",
    "EffectChain": "synth.effects",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
