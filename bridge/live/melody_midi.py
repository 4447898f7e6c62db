"""Live melodies to a MIDI port on the beat: the voice's current image's phrase, every two bars.

The minimal wiring for ``imgsonic live --melody --midi-out NAME``: a thread that polls a
:class:`bridge.control.phrases.PhraseScheduler` every millisecond and sends what is due to the port, queueing
the melody of the voice's current image at each phrase boundary.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bridge.control.phrases import PhraseScheduler

__all__ = ["MelodyMidiPlayer"]

log = logging.getLogger("imgsonic.melody")


class MelodyMidiPlayer:
    """Plays a voice's melodies to a MIDI port on the beat, in a thread of its own.

    ``voice`` has ``controls.z_img`` (a :class:`bridge.live.voices.NeuralVoice`); ``melody_models`` are the
    :class:`models.melody_pipeline.MelodyModels` of its image VAE. A phrase boundary (every two bars) queues the
    melody of the image playing then. Port errors are logged, never raised. ``clock`` is for tests.
    """

    def __init__(self, port, *, voice, melody_models, bpm: float = 120.0, channel: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._port, self._voice, self._melody = port, voice, melody_models
        self._clock = clock
        self.scheduler = PhraseScheduler(bpm=bpm, n_steps=melody_models.n_steps, pitch_low=melody_models.pitch_low,
                                         start_s=clock() + 0.05, channel=channel)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._queued_for = -1
        self.sent = self.errors = 0

    def tick(self) -> None:
        """Queue the next phrase when due and send what is due now (the thread calls this every millisecond)."""
        now = self._clock()
        phrase = int(self.scheduler.step_at(now + 0.1) // self.scheduler.n_steps)  # 100 ms ahead of the boundary
        if phrase != self._queued_for:
            self._queued_for = phrase
            self.scheduler.queue(self._current_melody())
        for message in self.scheduler.due(now):
            self._send(message)

    def _current_melody(self) -> list[int]:
        import numpy as np
        import torch

        z_img = torch.as_tensor(np.asarray(self._voice.controls.z_img, dtype=np.float32))[None]
        with torch.inference_mode():
            return self._melody.latents_to_tokens(z_img)[0].tolist()

    def _send(self, message) -> None:
        try:
            self._port.send(message)
            self.sent += 1
        except Exception as error:  # noqa: BLE001 — a broken port must not stop the session
            self.errors += 1
            log.error("melody MIDI out: %s", error)

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(0.001):
                try:
                    self.tick()
                except Exception as error:  # noqa: BLE001 — keep the clock running
                    self.errors += 1
                    log.error("melody: %s", error)

        self._thread = threading.Thread(target=loop, name="imgsonic-melody-midi", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        for message in self.scheduler.all_notes_off():
            self._send(message)
