"""Cached constant tensors (windows, filterbanks) must stay usable by autograd after an inference-mode call."""

import torch

from synth.phase import mel_to_audio
from synth.spectral import SpectralConfig, audio_to_mel


def test_analysis_after_an_inference_mode_call_still_supports_autograd():
    cfg = SpectralConfig(n_fft=512, hop_length=128, n_mels=40, f_max_hz=8000.0)  # a config no other test caches
    with torch.inference_mode():
        mel_to_audio(audio_to_mel(torch.zeros(2000), config=cfg), config=cfg)
    audio = torch.randn(2000, requires_grad=True)
    audio_to_mel(audio, config=cfg).sum().backward()
    assert audio.grad is not None and torch.isfinite(audio.grad).all()
