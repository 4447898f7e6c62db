"""``imgsonic live``: one pyo server, a neural voice, a patch the performer edits, OSC and MIDI around it.

A :class:`LiveSession` owns the pieces and is the :class:`bridge.osc.LiveTarget` the OSC server drives::

    OSC in ─► LiveSession ─► NeuralVoice (bridge.voices) ─┐
    MIDI in ─┘      │                                      ├─► patch(session) ─► master bus ─► out / file
                    └─► sinks (OSC out, MIDI out) ◄── voice.controls (every control tick)

The master bus is ``InputFader`` (patch changes crossfade over 50 ms) → gain (``/imgsonic/gain``, smoothed)
→ a gentle limiter → hard clip at ±1. Patches are plain Python files defining ``patch(session)``, which
returns the pyo object(s) to play (see ``patches/``); a patch file is re-run when it is saved, and a patch that
fails to load is reported while the previous one keeps sounding. Sinks run in a control thread at
``control_rate_hz``; an exception in a sink is logged and counted, never stops the audio.

Audio drivers: ``portaudio`` (a sound card), ``jack`` (a running JACK server, e.g. ``jackd -d dummy``), and
``offline`` (renders ``--duration`` seconds to ``-o FILE.wav`` as fast as it can, written atomically). With no
device the session says what to do and exits non-zero; it never tries to open a missing device (pyo's
portaudio backend crashes the process when there is none).
"""

from __future__ import annotations

import logging
import math
import os
import runpy
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bridge.control.limits import GAIN_DB
from models.errors import ImgsonicError, InputError, ParameterError

__all__ = ["AUDIO_DRIVERS", "LiveSession", "boot_server", "no_device_message", "run_patch"]

log = logging.getLogger("imgsonic.live")

AUDIO_DRIVERS = ("portaudio", "jack", "offline")
PATCH_FADE_S = 0.05
LIVE_AHEAD_BUFFERS = 3  # decode-ahead queue on real devices: 17 ms of cushion at 256/44.1 kHz (benchmarks/live.py)


def no_device_message(driver: str) -> str:
    found = "no audio output device was found" if driver == "portaudio" else "no JACK server is running"
    return (f"{found}; render to a file instead with `imgsonic live --audio offline --duration S -o FILE.wav`, "
            f"or start JACK with the dummy driver (`jackd --no-realtime -d dummy &`) and use `--audio jack`")


def boot_server(*, audio: str, sample_rate: int = 44100, buffer_size: int = 256, channels: int = 2,
                duplex: bool = False):
    """A booted (not started) pyo server for ``audio`` in AUDIO_DRIVERS or ``"manual"`` (tests); ImgsonicError if none."""
    from synth.engine import count_audio_devices, pyo
    from synth.native_output import captured_native_stderr

    if audio not in (*AUDIO_DRIVERS, "manual"):
        raise ParameterError(f"audio driver {audio!r}; expected one of {', '.join(AUDIO_DRIVERS)}")
    if audio == "portaudio" and count_audio_devices() == 0:
        raise ImgsonicError(no_device_message("portaudio"))
    # JACK and ALSA print their connection attempts from C; the performer gets one line from us instead
    with captured_native_stderr() as booting:
        server = pyo.Server(sr=sample_rate, nchnls=channels, buffersize=buffer_size, duplex=int(duplex), audio=audio)
        server.setVerbosity(1)  # errors only: pyo's boot chatter is not for performers
        server.boot()
    if booting.text:
        log.debug("the %s driver said while booting: %s", audio, booting.text.strip())
    if not server.getIsBooted():
        raise ImgsonicError(no_device_message(audio))
    return server


def _demo_folder() -> Path:
    """The demo's pictures written to a temporary folder, for sessions started without ``--images``."""
    from PIL import Image

    from bridge.sources.demo import demo_images

    folder = Path(tempfile.mkdtemp(prefix="imgsonic-images-"))
    for index, item in enumerate(demo_images(), start=1):
        Image.fromarray(item.pixels).save(folder / f"{index:02d}-{Path(item.name).stem}.png")
    return folder


class LiveSession:
    """The live engine on a booted pyo server.

    Parameters
    ----------
    server : pyo.Server (booted)
    image_folders : folders OSC may load images from; the first is also the voice's image sequence.
        None: the demo pictures, written to a temporary folder.
    preset, mapping, fx, ahead, vocoder : passed to :class:`bridge.voices.NeuralVoice`.
    gain_db : starting master gain.
    control_rate_hz : how often sinks (OSC out, MIDI out) are fed.
    """

    def __init__(
        self,
        *,
        server,
        image_folders: Sequence[str | os.PathLike] | None = None,
        preset: str = "default",
        mapping=None,
        fx: str = "",
        ahead: int = 0,
        gain_db: float = 0.0,
        control_rate_hz: float = 30.0,
        vocoder: str = "pghi",
    ) -> None:
        from bridge.live.voices import NeuralVoice
        from synth.engine import pyo

        self.server = server
        self._own_folder = None if image_folders else _demo_folder()  # removed again by close()
        folders = [Path(folder) for folder in image_folders] if image_folders else [self._own_folder]
        for folder in folders:
            if not folder.is_dir():
                raise InputError(f"image folder {str(folder)!r} is not a folder")
        self.image_folders = folders
        self.preset = preset
        self.voice = NeuralVoice(preset, images=folders[0], mapping=mapping, fx=fx, ahead=ahead, fadetime=0.5,
                                 vocoder=vocoder)
        self.mapping = self.voice.renderer.mapping
        self.image_latent_dim = self.voice.renderer.models.image_latent_dim
        self.sinks: list = []
        self.sink_errors = 0
        self.patch_errors = 0
        self.last_patch_error: str | None = None
        self.last_morph_s = -math.inf  # monotonic time of the last OSC/MIDI morph (patches may yield to it)
        self._gain = pyo.SigTo(10 ** (gain_db / 20), time=0.05, init=10 ** (gain_db / 20))
        channels = server.getNchnls()
        self._default_sound = pyo.Sig(self.voice, mul=0.5)
        self._bus_input = pyo.InputFader(self._default_sound.mix(channels))
        self._limiter = pyo.Compress(self._bus_input * self._gain, thresh=-3, ratio=8, risetime=0.002,
                                     falltime=0.1, lookahead=0.0, knee=0.5)
        self.output = pyo.Clip(self._limiter, min=-1.0, max=1.0).out()
        self._patch_objects = None
        self._kept: list = []  # objects the loading patch asked to keep (session.keep); stopped with it
        self._retired: list = []
        self.patch_path: Path | None = None
        self._patch_mtime: int | None = None
        self._running = True
        self._control_period_s = 1.0 / control_rate_hz
        self._threads = [threading.Thread(target=self._control_loop, name="imgsonic-control", daemon=True)]
        for thread in self._threads:
            thread.start()

    # ---- LiveTarget (OSC, MIDI) ------------------------------------------------------------------

    def set_image(self, pixels: np.ndarray, *, fadetime: float, name: str = "image") -> None:
        self.voice.setImage(pixels, fadetime=fadetime)
        log.info("image %s (fade %.2f s)", name, fadetime)

    def set_latent(self, values: np.ndarray, *, fadetime: float) -> None:
        self.voice.setLatent(values, fadetime=fadetime)

    def set_param(self, name: str, value: float | None) -> None:
        self.voice.setParam(name, value)

    def set_gain(self, gain_db: float) -> None:
        """Master gain in dB (clamped to :data:`bridge.control.limits.GAIN_DB`; NaN is an error)."""
        if isinstance(gain_db, bool) or not isinstance(gain_db, (int, float)) or math.isnan(gain_db):
            raise ParameterError(f"gain {gain_db!r} dB; expected a number")
        self._gain.value = 10 ** (GAIN_DB.clamp(float(gain_db))[0] / 20)

    def morph(self, a: np.ndarray, b: np.ndarray, t: float) -> None:
        self.last_morph_s = time.monotonic()
        self.voice.morph(a, b, t)

    # ---- patches ---------------------------------------------------------------------------------

    def load_patch(self, path: str | os.PathLike) -> bool:
        """Run a patch file's ``patch(session)`` and play what it returns; False (and the old patch goes on) on error."""
        from synth.engine import pyo

        path = Path(path)
        self._kept = []
        try:
            self._patch_mtime = path.stat().st_mtime_ns
            namespace = runpy.run_path(str(path), run_name="imgsonic_patch")
            build = namespace.get("patch")
            if not callable(build):
                raise ImgsonicError(f"patch {str(path)!r} defines no function patch(session)")
            sound = build(self)
            if isinstance(sound, (list, tuple)):
                sound = pyo.Mix(list(sound), voices=self.server.getNchnls())
            if not isinstance(sound, pyo.PyoObject):
                raise ImgsonicError(f"patch(session) returned {type(sound).__name__}; expected a pyo object or a list of them")
        except Exception as error:  # noqa: BLE001 — a broken patch is reported; the sound goes on
            self.patch_errors += 1
            self.last_patch_error = f"{type(error).__name__}: {error}"
            log.error("patch %s not loaded, the previous one keeps playing: %s", path, self.last_patch_error)
            for obj in self._kept:
                obj.stop()
            return False
        self.patch_path = path
        self._bus_input.setInput(sound.mix(self.server.getNchnls()), fadetime=PATCH_FADE_S)
        if self._patch_objects is not None:
            self._retired.append((time.monotonic() + 4 * PATCH_FADE_S, self._patch_objects))
        self._patch_objects = (sound, namespace, self._kept)
        log.info("patch %s playing", path)
        return True

    def check_patch(self) -> bool:
        """Reload the patch if its file changed since it was loaded; True when a new version now plays."""
        if self.patch_path is None:
            return False
        try:
            mtime = self.patch_path.stat().st_mtime_ns
        except OSError:
            return False
        if mtime == self._patch_mtime:
            return False
        return self.load_patch(self.patch_path)

    def keep(self, *objects):
        """Keep pyo objects (a ``Pattern``, a ``TrigFunc``…) alive while the patch that made them plays.

        Call it from ``patch(session)``; they are stopped when the patch is replaced. Returns the first one.
        """
        self._kept.extend(objects)
        return objects[0] if objects else None

    # ---- control thread --------------------------------------------------------------------------

    def feed_sinks(self) -> None:
        """Send the voice's current controls to every sink; a failing sink is logged and counted."""
        controls = self.voice.controls
        for sink in self.sinks:
            try:
                sink(controls)
            except Exception as error:  # noqa: BLE001 — a sink never stops the session
                self.sink_errors += 1
                if self.sink_errors % 100 == 1:
                    log.error("sink %r failed (%d so far): %r", sink, self.sink_errors, error)

    def _control_loop(self) -> None:
        next_patch_check = 0.0
        while self._running:
            self.feed_sinks()
            now = time.monotonic()
            if now >= next_patch_check:
                next_patch_check = now + 0.25
                self.check_patch()
                while self._retired and self._retired[0][0] < now:
                    sound, _, kept = self._retired.pop(0)[1]
                    for obj in (sound, *kept):
                        obj.stop()
            time.sleep(self._control_period_s)

    def close(self) -> None:
        self._running = False
        for thread in self._threads:
            thread.join(timeout=2.0)
        for obj in self._patch_objects[2] if self._patch_objects is not None else []:
            obj.stop()  # what the patch kept (a melody voice's decoding thread) ends before the server
        self.voice.close()
        if self._own_folder is not None:
            shutil.rmtree(self._own_folder, ignore_errors=True)


def run_patch(path: str | os.PathLike, argv: Sequence[str] | None = None) -> int:
    """Run a patch file as ``imgsonic live --patch path [argv...]`` (for ``python patches/NN_name.py``)."""
    from bridge.cli import main

    return main(["live", "--patch", str(path), *(argv if argv is not None else __import__("sys").argv[1:])])
