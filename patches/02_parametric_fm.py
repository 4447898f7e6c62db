"""02 · Parametric FM: an FM synth whose pitch, index, loudness, cutoff and pan follow the mapped latents.

The neural voice is not heard; it only turns images into control streams (``voice.params``, from the
mapping file, see bridge/control/mappings/default.toml). Send images by OSC (``/imgsonic/image <path>``) or let the
folder step every 3 s. A slow chorus widens it.

Run:  imgsonic live --patch patches/02_parametric_fm.py
"""

from pyo import Chorus

from bridge.live.voices import ParametricVoice


def patch(session):
    voice = session.voice
    voice.setRate(3.0)
    fm = ParametricVoice(voice, ratio=1.5, mul=0.4)
    return Chorus(fm, depth=1.5, feedback=0.2, bal=0.4)


if __name__ == "__main__":
    from bridge.live.session import run_patch

    raise SystemExit(run_patch(__file__))
