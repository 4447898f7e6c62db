"""05 · imgsonic in your own pyo script: a NeuralVoice is just another pyo object on the server you booted.

No imgsonic CLI, no second server: boot pyo as usual, add a voice, route it through pyo effects, and let its
latent streams drive other pyo objects. Here a Sine's tremolo rate follows the first image-latent dimension
and the voice crossfades to another picture every 4 s.

Run:  python patches/05_own_pyo_script.py            (plays on the sound card for 30 s)
      python patches/05_own_pyo_script.py out.wav    (no sound card: renders 30 s to out.wav)
"""

import itertools
import sys

from pyo import Freeverb, Metro, Server, Sine, TrigFunc, pa_count_devices

from bridge.live.voices import NeuralVoice
from bridge.sources.demo import demo_images

offline = len(sys.argv) > 1 or pa_count_devices() == 0
s = Server(audio="offline" if offline else "portaudio", nchnls=2).boot()
if offline:
    s.recordOptions(dur=30, filename=sys.argv[1] if len(sys.argv) > 1 else "own_pyo_script.wav")

pictures = [item.pixels for item in demo_images()]
v = NeuralVoice(preset="default", mul=0.3)                   # behaves like any pyo object
lfo = Sine(freq=v.latent[0] * 4 + 4.5, mul=0.4, add=0.6)     # latent dims as control streams
rev = Freeverb(v * lfo, size=0.8, bal=0.35).mix(2).out()


order = itertools.cycle([*range(1, len(pictures)), 0])


def next_picture():
    v.setImage(pictures[next(order)], fadetime=2.0)          # crossfades to the new image's sound


metro = Metro(time=4).play()
step = TrigFunc(metro, next_picture)

s.start()
if not offline:
    import time

    time.sleep(30)
    s.stop()
