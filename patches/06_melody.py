"""06 · Melodies: every image plays a two-bar melody of the preset's melody model on a soft electric piano.

The melody model turns the image playing at each phrase start into the next phrase (16th notes, two bars of
4/4), one phrase ahead, so images and melodies stay in step; the neural voice hums quietly underneath. The
folder steps once a phrase. Change the tempo, brightness and room below and save: every control glides.
Presets with a melody model: default, digits-fm, digits-melody (``imgsonic info`` lists presets).

Run:  imgsonic live --patch patches/06_melody.py [--preset digits-melody --images DIR]
      imgsonic live --patch patches/06_melody.py --audio offline --duration 24 -o melody.wav
Sounds at once: the first phrase is the melody of the folder's first image.
"""

from pyo import SigTo

from bridge.live.melody_voice import MelodyVoice
from models.melody_pipeline import MelodyModels

BPM = 120.0


def patch(session):
    voice = session.voice
    melody_models = MelodyModels.from_preset(session.preset)
    melody = MelodyVoice(n_phrases=2, n_steps=melody_models.n_steps, pitch_low=melody_models.pitch_low, bpm=BPM,
                         brightness=0.5, room=0.25)
    melody.follow(voice, melody_models)
    session.keep(melody)  # stopped (its decoding thread too) when the patch is replaced
    voice.setFadetime(0.5)
    voice.setRate(melody_models.n_steps * 15.0 / BPM)  # one image per phrase
    swell = SigTo(1.0, time=2.0, init=0.0)  # fade in over 2 s
    return (melody * 0.6 + voice * 0.12) * swell


if __name__ == "__main__":
    from bridge.live.session import run_patch

    raise SystemExit(run_patch(__file__))
