"""01 · Neural drone: the session's image folder, one picture every 12 s, long glides, deep reverb.

Run:  imgsonic live --patch patches/01_neural_drone.py [--images DIR] [--audio offline --duration 30 -o drone.wav]
Edit and save while it plays: the session reloads this file (a broken edit is reported; the sound goes on).
Sounds at once: the voice starts on the folder's first image.
"""

from pyo import SigTo, STRev


def patch(session):
    voice = session.voice
    voice.setFadetime(6.0)  # glide over 6 s ...
    voice.setRate(12.0)  # ... to the next image every 12 s
    swell = SigTo(0.8, time=4.0, init=0.0)  # fade in over 4 s
    return STRev(voice * swell, inpos=0.5, revtime=4.0, cutoff=6000, bal=0.45, roomSize=1.5)


if __name__ == "__main__":
    from bridge.live.session import run_patch

    raise SystemExit(run_patch(__file__))
