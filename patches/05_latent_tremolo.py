"""05 · Latent tremolo: the voice is a pyo object like any other, and its latents are control streams.

A Sine's tremolo rate follows the first image-latent dimension (``voice.latent[0]``, a pyo ``SigTo``
updated every buffer), the voice steps to the next picture every 4 s with 2 s glides, and a reverb
widens it. The same objects work in a plain pyo script of your own, without the ``imgsonic`` command:
see "Use it from your own pyo script" in the README.

Run:  imgsonic live --patch patches/05_latent_tremolo.py [--images DIR]
"""

from pyo import Freeverb, Sine


def patch(session):
    voice = session.voice
    voice.setFadetime(2.0)
    voice.setRate(4.0)
    spread = session.latent_range.high[0] - session.latent_range.low[0]  # the preset's span of dimension 0
    tremolo = Sine(freq=(voice.latent[0] - session.latent_range.low[0]) * (8.0 / spread) + 1.0, mul=0.4, add=0.6)
    return Freeverb(voice * tremolo, size=0.8, bal=0.35)


if __name__ == "__main__":
    from bridge.live.session import run_patch

    raise SystemExit(run_patch(__file__))
