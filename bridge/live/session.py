"""``imgsonic live``: one pyo server, a neural voice, a patch the performer edits, OSC and MIDI around it.

A :class:`LiveSession` owns the pieces and is the :class:`bridge.io.osc.LiveTarget` the OSC server drives::

    OSC in ─► LiveSession ─► ImageLoader (bridge.live.image_loader: files → pixels, off the control thread)
    MIDI in ─┘      │                 └─► NeuralVoice (bridge.live.voices) ─┐
                    │                                                       ├─► patch(session) ─► master bus ─► out
                    └─► sinks (OSC out, MIDI out) ◄── voice.controls (every control tick)

The voice and the master bus both fade in from silence over ``FADE_IN_S`` (the voice so that a patch's delay
line or reverb gets no click from its first sample). The master bus is ``InputFader`` (patch changes
crossfade over 50 ms) → gain (``/imgsonic/gain``, smoothed) → a limiter with 1 ms of look-ahead → hard clip
at ±1.
Patches are plain Python files defining ``patch(session)``, which returns the pyo object(s) to play (see
``patches/``); a patch file is re-run when it is saved, and a patch that fails to load is reported while the
previous one keeps sounding. Each run of a patch file happens in a thread of its own with a watchdog: one
that raises, calls ``sys.exit()`` or does not return within ``patch_timeout_s`` (it is then interrupted) is
reported on one line, and the control thread goes on. Sinks run in the control thread at
``control_rate_hz``; an exception in a sink is logged and counted, never stops the audio.

Audio drivers: ``portaudio`` (a sound card), ``jack`` (a running JACK server, e.g. ``jackd -d dummy``), and
``offline`` (renders ``--duration`` seconds to ``-o FILE.wav`` as fast as it can, written atomically). With no
device the session says what to do and exits non-zero; it never tries to open a missing device (pyo's
portaudio backend crashes the process when there is none).
"""

from __future__ import annotations

import ctypes
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
from typing import Any

import numpy as np

from bridge.control.limits import GAIN_DB
from bridge.control.rate import LimitedLog
from bridge.live.image_loader import DEFAULT_MAX_PIXELS, ImageLoader
from models.errors import ImgsonicError, InputError, ParameterError

__all__ = ["AUDIO_DRIVERS", "LiveSession", "PatchTimeout", "boot_server", "no_device_message", "run_patch"]

log = logging.getLogger("imgsonic.live")

AUDIO_DRIVERS = ("portaudio", "jack", "offline")
PATCH_FADE_S = 0.05
FADE_IN_S = 0.05  # the session starts from silence: no step at the first sample
PATCH_TIMEOUT_S = 5.0
LIVE_AHEAD_BUFFERS = 3  # decode-ahead queue on real devices: 17 ms of cushion at 256/44.1 kHz (benchmarks/live.py)
# pyo's Compress with lookahead=0 reads its delay line one whole buffer (25 ms) back; 1 ms is a real look-ahead
LIMITER_LOOKAHEAD_MS = 1.0


class PatchTimeout(BaseException):
    """Raised inside a patch's thread by the watchdog when ``patch()`` has run too long (not an Exception,
    so a patch's own ``except Exception`` does not swallow it)."""


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
    try:
        for index, item in enumerate(demo_images(), start=1):
            Image.fromarray(item.pixels).save(folder / f"{index:02d}-{Path(item.name).stem}.png")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


class _PatchRun:
    """One run of a patch file — ``runpy`` and ``patch(session)`` — in a thread of its own."""

    def __init__(self, path: Path, session: LiveSession) -> None:
        self.path = path
        self.started_s = time.monotonic()
        self.result: tuple[Any, dict] | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, args=(session,), name="imgsonic-patch", daemon=True)
        self._thread.start()

    def _run(self, session: LiveSession) -> None:
        try:
            namespace = runpy.run_path(str(self.path), run_name="imgsonic_patch")
            build = namespace.get("patch")
            if not callable(build):
                raise ImgsonicError(f"patch {str(self.path)!r} defines no function patch(session)")
            self.result = (build(session), namespace)
        except PatchTimeout:
            pass  # the watchdog has reported it
        except SystemExit as exit_:
            self.error = (f"it called sys.exit({exit_.code!r}); a patch file defines patch(session) and returns "
                          "what to play, it does not run a program")
        except Exception as error:  # noqa: BLE001 — a broken patch is reported; the sound goes on
            self.error = f"{type(error).__name__}: {error}"

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return self.done

    def abandon(self, timeout_s: float) -> None:
        """Interrupt the patch's Python code with :class:`PatchTimeout` (a call into C finishes first)."""
        self.error = f"patch(session) did not return within {timeout_s:g} s; it was interrupted"
        if self._thread.ident is not None and self._thread.is_alive():
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread.ident),
                                                       ctypes.py_object(PatchTimeout))


class LiveSession:
    """The live engine on a booted pyo server.

    Parameters
    ----------
    server : pyo.Server (booted)
    image_folders : folders OSC may load images from; the first is also the voice's image sequence.
        None: the demo pictures, written to a temporary folder.
    preset, mapping, fx, ahead, vocoder : passed to :class:`bridge.live.voices.NeuralVoice`.
    gain_db : starting master gain.
    control_rate_hz : how often sinks (OSC out, MIDI out) are fed.
    max_image_pixels : image files with more pixels are refused (from their header, before decoding).
    patch_timeout_s : how long ``patch(session)`` may run before it is interrupted and reported.
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
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
        patch_timeout_s: float = PATCH_TIMEOUT_S,
    ) -> None:
        from bridge.live.voices import NeuralVoice
        from bridge.sonify.bundle import load_bundle
        from synth.engine import pyo

        self.server = server
        self._own_folder = None if image_folders else _demo_folder()  # removed again by close()
        self.loader: ImageLoader | None = None
        self._threads: list[threading.Thread] = []
        try:
            folders = [Path(folder) for folder in image_folders] if image_folders else [self._own_folder]
            for folder in folders:
                if not folder.is_dir():
                    raise InputError(f"image folder {str(folder)!r} is not a folder")
            self.image_folders = folders
            self.bundle = load_bundle(preset=preset)
            # the models read image_size pixels (descriptors 64): four times that keeps resampling exact enough
            self.loader = ImageLoader(max_side=4 * max(self.bundle.models.image_size, 64), max_pixels=max_image_pixels)
            self.voice = NeuralVoice(images=folders[0], bundle=self.bundle, mapping=mapping, fx=fx, ahead=ahead,
                                     fadetime=0.5, vocoder=vocoder, reader=self.loader.read, fade_in_s=FADE_IN_S)
        except BaseException:
            self.close()
            raise
        self.preset = str(preset)
        self.mapping = self.voice.renderer.mapping
        self.image_latent_dim = self.voice.renderer.models.image_latent_dim
        self.latent_range = self.voice.renderer.latent_range
        self.midi_in = None  # a bridge.io.midi_live.MidiControlIn, when MIDI in is open (for /imgsonic/learn)
        self.mapping_path: Path | None = None  # where learnt MIDI bindings are saved
        self.sinks: list = []
        self.sink_errors = 0
        self.patch_errors = 0
        self.patch_timeout_s = float(patch_timeout_s)
        self.last_patch_error: str | None = None
        self.last_morph_s = -math.inf  # monotonic time of the last OSC/MIDI morph (patches may yield to it)
        self._log = LimitedLog(log, lines_per_s=5)  # one line per image is plenty; a flood is summarised
        self._gain = pyo.SigTo(10 ** (gain_db / 20), time=0.05, init=10 ** (gain_db / 20))
        self._fade_in = pyo.Linseg([(0.0, 0.0), (FADE_IN_S, 1.0)]).play()
        channels = server.getNchnls()
        self._default_sound = pyo.Sig(self.voice, mul=0.5)
        self._bus_input = pyo.InputFader(self._default_sound.mix(channels))
        self._limiter = pyo.Compress(self._bus_input * self._gain * self._fade_in, thresh=-3, ratio=8,
                                     risetime=0.002, falltime=0.1, lookahead=LIMITER_LOOKAHEAD_MS, knee=0.5)
        self.output = pyo.Clip(self._limiter, min=-1.0, max=1.0).out()
        self._patch_objects = None
        self._kept: list = []  # objects the loading patch asked to keep (session.keep); stopped with it
        self._retired: list = []
        self.patch_path: Path | None = None
        self._patch_mtime: int | None = None
        self._reloading: _PatchRun | None = None
        self._running = True
        self._control_period_s = 1.0 / control_rate_hz
        self._threads = [threading.Thread(target=self._control_loop, name="imgsonic-control", daemon=True)]
        for thread in self._threads:
            thread.start()

    # ---- LiveTarget (OSC, MIDI) ------------------------------------------------------------------

    def set_image(self, pixels: np.ndarray, *, fadetime: float, name: str = "image") -> None:
        self.voice.setImage(pixels, fadetime=fadetime)
        self._log(logging.INFO, "image %s (fade %.2f s)", name, fadetime)

    def image_file(self, path: Path, *, fadetime: float) -> None:
        """Queue an image file: read and encoded by the loader's thread, then glided to (returns at once)."""
        self.loader.submit([path], lambda pixels: self.set_image(pixels, fadetime=fadetime, name=str(path)),
                           what=f"image {str(path)!r}")

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

    def morph_files(self, a: Path, b: Path, t: float) -> None:
        """Queue a morph between two image files (read by the loader's thread; returns at once)."""
        self.last_morph_s = time.monotonic()
        self.loader.submit([a, b], lambda pixels_a, pixels_b: self.morph(pixels_a, pixels_b, t),
                           what=f"morph {str(a)!r} → {str(b)!r}")

    def learn(self, name: str) -> None:
        """Bind the next MIDI controller that moves to parameter ``name`` (``/imgsonic/learn``)."""
        if self.midi_in is None:
            raise ParameterError("MIDI learn needs a MIDI input; start imgsonic live with --midi-in NAME")
        self.midi_in.learn(name)

    def describe(self) -> dict[str, Any]:
        """What ``/imgsonic/info`` answers: name → value or list of values (one OSC message each)."""
        tempo = self.voice.tempo
        loader = self.loader
        return {
            "preset": self.preset,
            "image_latent_dim": self.image_latent_dim,
            "latent_low": [float(v) for v in self.latent_range.low],
            "latent_high": [float(v) for v in self.latent_range.high],
            "latent_range_source": self.latent_range.source,
            "params": list(self.mapping.names),
            "tempo": [float(tempo.bpm), tempo.time_signature] if tempo else [0.0, ""],
            "images": [loader.done, loader.failed, loader.superseded, loader.pending],
            "audio": [int(self.voice.stats.n_buffers), int(self.voice.stats.underruns),
                      int(self.voice.stats.source_errors)],
        }

    # ---- patches ---------------------------------------------------------------------------------

    def load_patch(self, path: str | os.PathLike) -> bool:
        """Run a patch file's ``patch(session)`` and play what it returns; False (and the old patch goes on) on error.

        Waits for it: at most ``patch_timeout_s``, after which the patch is interrupted and reported.
        """
        path = Path(path)
        try:
            self._patch_mtime = path.stat().st_mtime_ns
        except OSError as error:
            return self._patch_failed(path, f"the file cannot be read ({error.strerror or error})")
        run = self._start_patch(path)
        if not run.wait(self.patch_timeout_s):
            run.abandon(self.patch_timeout_s)
            run.wait(0.5)
        return self._finish_patch(run)

    def _start_patch(self, path: Path) -> _PatchRun:
        self._kept = []
        return _PatchRun(path, self)

    def _finish_patch(self, run: _PatchRun) -> bool:
        from synth.engine import pyo

        if run.error is None:
            sound, namespace = run.result
            try:
                if isinstance(sound, (list, tuple)):
                    sound = pyo.Mix(list(sound), voices=self.server.getNchnls())
                if not isinstance(sound, pyo.PyoObject):
                    raise ImgsonicError(f"patch(session) returned {type(sound).__name__}; "
                                        "expected a pyo object or a list of them")
            except Exception as error:  # noqa: BLE001 — a bad return value is the patch's error
                run.error = f"{type(error).__name__}: {error}"
        if run.error is not None:
            return self._patch_failed(run.path, run.error)
        self.patch_path = run.path
        self._bus_input.setInput(sound.mix(self.server.getNchnls()), fadetime=PATCH_FADE_S)
        if self._patch_objects is not None:
            self._retired.append((time.monotonic() + 4 * PATCH_FADE_S, self._patch_objects))
        self._patch_objects = (sound, namespace, self._kept)
        log.info("patch %s playing", run.path)
        return True

    def _patch_failed(self, path: Path, error: str) -> bool:
        self.patch_errors += 1
        self.last_patch_error = error
        if self.patch_path is None:
            self.patch_path = path  # a first patch that failed is still watched: saving a fix loads it
        log.error("patch %s not loaded, the previous one keeps playing: %s", path, error)
        for obj in self._kept:
            try:
                obj.stop()
            except Exception:  # noqa: BLE001 — something the broken patch kept that is not a pyo object
                pass
        return False

    def _patch_changed(self) -> bool:
        if self.patch_path is None:
            return False
        try:
            mtime = self.patch_path.stat().st_mtime_ns
        except OSError:
            return False
        if mtime == self._patch_mtime:
            return False
        self._patch_mtime = mtime
        return True

    def check_patch(self) -> bool:
        """Reload the patch if its file changed since it was loaded (waiting for it); True when a new version plays."""
        return self._patch_changed() and self.load_patch(self.patch_path)

    def _poll_patch(self) -> None:
        """The control thread's reload: start a run when the file changed, finish it when done, interrupt it
        when late — never waiting, so the sinks keep their rate while a patch loads."""
        run = self._reloading
        if run is None:
            if self._patch_changed():
                self._reloading = self._start_patch(self.patch_path)
            return
        if run.done:
            self._reloading = None
            self._finish_patch(run)
        elif time.monotonic() - run.started_s > self.patch_timeout_s and run.error is None:
            run.abandon(self.patch_timeout_s)
            log.error("patch %s: patch(session) did not return within %g s; interrupting it", run.path,
                      self.patch_timeout_s)

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
            try:
                self.feed_sinks()
                now = time.monotonic()
                if now >= next_patch_check:
                    next_patch_check = now + 0.25
                    self._poll_patch()
                    while self._retired and self._retired[0][0] < now:
                        sound, _, kept = self._retired.pop(0)[1]
                        for obj in (sound, *kept):
                            obj.stop()
            except Exception as error:  # noqa: BLE001 — the control thread outlives anything that fails in it
                log.error("control thread: %s: %s", type(error).__name__, error)
            time.sleep(self._control_period_s)

    def close(self) -> None:
        self._running = False
        for thread in self._threads:
            thread.join(timeout=2.0)
        for obj in self._patch_objects[2] if getattr(self, "_patch_objects", None) is not None else []:
            obj.stop()  # what the patch kept (a melody voice's decoding thread) ends before the server
        if getattr(self, "voice", None) is not None:
            self.voice.close()
        if self.loader is not None:
            self.loader.close()
        if self._own_folder is not None:
            shutil.rmtree(self._own_folder, ignore_errors=True)


def run_patch(path: str | os.PathLike, argv: Sequence[str] | None = None) -> int:
    """Run a patch file as ``imgsonic live --patch path [argv...]`` (for ``python patches/NN_name.py``)."""
    from bridge.cli import main

    return main(["live", "--patch", str(path), *(argv if argv is not None else __import__("sys").argv[1:])])
