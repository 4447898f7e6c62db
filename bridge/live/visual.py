"""Seeing the live sound: the session's output (or input) audio → image frames, OSC latents and PNG files.

:class:`LiveVisualizer` taps a pyo signal with ``TableFill`` into a one-buffer ``DataTable``; a server hook
(which runs before the graph computes the next buffer) copies the last buffer out, so every sample is
analysed exactly once. An analysis thread feeds the blocks to :class:`bridge.sonify.reverse.StreamingVisualizer`
(the same analysis as ``imgsonic visualize``) and hands each frame to the sinks: ``/imgsonic/out/visual/z_img``
over OSC, numbered PNG files (each written atomically), and a short history in :attr:`frames`. Nothing here
runs in the audio callback except the copy.

Example
-------
>>> visual = LiveVisualizer(session, source="output", fps=10, frames_dir="frames/")   # doctest: +SKIP
>>> visual.frames[-1].z_img                                                         # doctest: +SKIP
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np

from models.errors import ParameterError

__all__ = ["LiveVisualizer", "SOURCES"]

log = logging.getLogger("imgsonic.live")

SOURCES = ("output", "input")


class LiveVisualizer:
    """Frames of what the session plays (``source="output"``) or hears (``"input"``, needs a duplex server).

    Parameters
    ----------
    session : bridge.live.LiveSession
    source : "output" or "input"
    fps : frames per second (≥ 10 is measured in ``benchmarks/live.py``'s companion numbers in the README)
    frames_dir : folder for ``frame_00000.png`` … (None: no files)
    size_px : side of the written PNGs
    sender : an :class:`bridge.osc.OscSender` for ``/imgsonic/out/visual/z_img`` (None: no OSC)
    models : what turns sound into images (None: the session voice's models, run backwards); e.g. a sound → image
        preset through :class:`bridge.imagine_live.ImaginationVisualModels`
    """

    def __init__(self, session, *, source: str = "output", fps: float = 10.0, frames_dir: str | os.PathLike | None = None,
                 size_px: int = 128, sender=None, models=None) -> None:
        from bridge.sonify.reverse import StreamingVisualizer
        from synth.engine import pyo, server_hooks

        if source not in SOURCES:
            raise ParameterError(f"visualize source {source!r}; expected one of {', '.join(SOURCES)}")
        self.frames_dir = Path(frames_dir) if frames_dir is not None else None
        if self.frames_dir is not None and not self.frames_dir.is_dir():
            raise ParameterError(f"frames folder {str(self.frames_dir)!r} does not exist")
        server = session.server
        models = session.voice.renderer.models if models is None else models
        self._analyser = StreamingVisualizer(models, sample_rate=int(server.getSamplingRate()), fps=fps)
        self._size_px = size_px
        self._sender = sender
        signal = session.output if source == "output" else pyo.Input(chnl=0)
        self._table = pyo.DataTable(size=server.getBufferSize())
        self._view = np.asarray(self._table.getBuffer())
        self._fill = pyo.TableFill(pyo.Mix(signal, voices=1), self._table)
        self._blocks: collections.deque = collections.deque()  # offline servers outrun the analysis: keep all
        self._skip_first = True  # before the first buffer the table holds no audio yet
        self.frames: collections.deque = collections.deque(maxlen=256)
        self.errors = 0
        self.frames_emitted = 0
        self.analysis_s = 0.0
        self._running = True
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="imgsonic-visualize", daemon=True)
        self._thread.start()
        server_hooks(self._table).add(self._capture)

    def _capture(self) -> None:
        if self._skip_first:
            self._skip_first = False
            return
        self._blocks.append(self._view.copy())
        self._wake.set()

    def _loop(self) -> None:
        while self._running or self._blocks:
            self._wake.wait(timeout=0.1)
            self._wake.clear()
            if not self._blocks:
                continue
            blocks = [self._blocks.popleft() for _ in range(len(self._blocks))]
            try:
                start = time.perf_counter()
                frames = self._analyser.push(np.concatenate(blocks))
                self.analysis_s += time.perf_counter() - start
                for frame in frames:
                    self._emit(frame)
            except Exception as error:  # noqa: BLE001 — the analysis never stops the session
                self.errors += 1
                if self.errors % 100 == 1:
                    log.error("visualizer failed (%d so far): %r", self.errors, error)

    def _emit(self, frame) -> None:
        self.frames_emitted += 1
        self.frames.append(frame)
        if self._sender is not None:
            self._sender.send_visual_latent(frame.z_img)
        if self.frames_dir is not None:
            from PIL import Image

            from bridge.sonify.reverse import image_to_pixels
            from synth.files import atomic_output

            pixels = image_to_pixels(frame.image, size_px=self._size_px)
            with atomic_output(self.frames_dir / f"frame_{frame.index:05d}.png") as handle:
                Image.fromarray(pixels).save(handle, format="PNG")

    def close(self) -> None:
        from synth.engine import server_hooks

        server_hooks(self._table).remove(self._capture)
        self._running = False  # the thread analyses what is queued, then ends
        self._wake.set()
        self._thread.join(timeout=60.0)
        self._fill.stop()
