"""04 · OSC morph: glide between two images' sounds with ``/imgsonic/morph <a> <b> <t>``.

Before any message arrives the patch morphs slowly back and forth between the first two images of the
session's folder (a 20 s cycle); as soon as a ``/imgsonic/morph`` message arrives it stops sweeping and
follows the messages (e.g. a fader in a DAW or TouchOSC sending t from 0 to 1). Echo adds space.

Run:  imgsonic live --patch patches/04_osc_morph.py --images DIR --osc-port 9000
Try:  oscsend localhost 9000 /imgsonic/morph ssf a.png b.png 0.3
"""

import math
import time

from pyo import Delay, Pattern

from bridge.sources.images import expand_inputs, read_image


def patch(session):
    voice = session.voice
    paths = expand_inputs([session.image_folders[0]])[:2]
    a, b = read_image(paths[0]), read_image(paths[-1])
    start = time.monotonic()

    def sweep():
        if time.monotonic() - session.last_morph_s < 5.0:
            return  # OSC is in charge
        t = 0.5 - 0.5 * math.cos(2 * math.pi * (time.monotonic() - start) / 20.0)
        voice.morph(a, b, t, fadetime=0.2)

    sweep()
    session.keep(Pattern(sweep, time=0.2).play())  # stopped when this patch is replaced
    return Delay(voice, delay=[0.25, 0.375], feedback=0.3, mul=0.5) + voice * 0.5


if __name__ == "__main__":
    from bridge.live.session import run_patch

    raise SystemExit(run_patch(__file__))
