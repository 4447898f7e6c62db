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

import argparse
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
    import pyo

    if audio not in (*AUDIO_DRIVERS, "manual"):
        raise ParameterError(f"audio driver {audio!r}; expected one of {', '.join(AUDIO_DRIVERS)}")
    if audio == "portaudio" and pyo.pa_count_devices() == 0:
        raise ImgsonicError(no_device_message("portaudio"))
    server = pyo.Server(sr=sample_rate, nchnls=channels, buffersize=buffer_size, duplex=int(duplex), audio=audio)
    server.setVerbosity(1)  # errors only: pyo's boot chatter is not for performers
    server.boot()
    if not server.getIsBooted():
        raise ImgsonicError(no_device_message(audio))
    return server


def _demo_folder() -> Path:
    """The demo's pictures written to a temporary folder, for sessions started without ``--images``."""
    from PIL import Image

    from bridge.demo import demo_images

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
        import pyo

        from bridge.voices import NeuralVoice

        self.server = server
        self._own_folder = None if image_folders else _demo_folder()  # removed again by close()
        folders = [Path(folder) for folder in image_folders] if image_folders else [self._own_folder]
        for folder in folders:
            if not folder.is_dir():
                raise InputError(f"image folder {str(folder)!r} is not a folder")
        self.image_folders = folders
        self.voice = NeuralVoice(preset, images=folders[0], mapping=mapping, fx=fx, ahead=ahead, fadetime=0.5,
                                 vocoder=vocoder)
        self.mapping = self.voice.stream.mapping
        self.image_latent_dim = self.voice.stream.models.image_latent_dim
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
        if isinstance(gain_db, bool) or not isinstance(gain_db, (int, float)) or math.isnan(gain_db):
            raise ParameterError(f"gain {gain_db!r} dB; expected a number")
        self._gain.value = 10 ** (min(max(float(gain_db), -80.0), 12.0) / 20)

    def morph(self, a: np.ndarray, b: np.ndarray, t: float) -> None:
        self.last_morph_s = time.monotonic()
        self.voice.morph(a, b, t)

    # ---- patches ---------------------------------------------------------------------------------

    def load_patch(self, path: str | os.PathLike) -> bool:
        """Run a patch file's ``patch(session)`` and play what it returns; False (and the old patch goes on) on error."""
        import pyo

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
        self.voice.close()
        if self._own_folder is not None:
            shutil.rmtree(self._own_folder, ignore_errors=True)


# ---- sinks ---------------------------------------------------------------------------------------


def osc_sink(sender):
    """A sink sending the latents and parameters to an :class:`bridge.osc.OscSender`."""

    def send(controls) -> None:
        sender.send_image_latent(controls.z_img)
        sender.send_audio_latent(controls.z_aud)
        sender.send_params(controls.params)

    return send


def midi_sink(midi_out, voice):
    """A sink playing the mapping's notes and CCs on a :class:`bridge.midi_live.MidiOutSink`.

    Each new image restarts the note (as ``imgsonic render --midi`` does), even on the same pitch.
    """
    seen = [voice.stream.image_changes]

    def send(controls) -> None:
        changes = voice.stream.image_changes
        midi_out.send(controls.positions, onset=changes != seen[0])
        seen[0] = changes

    return send


# ---- imgsonic live -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--patch", metavar="FILE.py", help="a patch file defining patch(session); reloaded on save")
    parser.add_argument("--audio", choices=AUDIO_DRIVERS, default="portaudio", help="default: portaudio")
    parser.add_argument("--duration", type=float, metavar="S", help="with --audio offline: seconds to render")
    parser.add_argument("-o", "--output", metavar="FILE.wav", help="with --audio offline: the file to write")
    parser.add_argument("--images", action="append", metavar="DIR",
                        help="image folder OSC may load from (repeatable; the first is the voice's sequence)")
    parser.add_argument("--preset", default="default", help="default: default")
    parser.add_argument("--mapping", metavar="TOML", help="parameter mapping (default: the shipped one)")
    parser.add_argument("--fx", default="", metavar="SPEC", help="pedalboard effects on the neural voice")
    parser.add_argument("--vocoder", choices=("pghi", "neural"), default="pghi",
                        help="mel → audio for the neural voice: streaming PGHI, or the preset's neural vocoder "
                             "(default: pghi)")
    parser.add_argument("--sr", type=int, default=44100, metavar="HZ", help="default: 44100")
    parser.add_argument("--buffer-size", type=int, default=256, metavar="N", help="default: 256")
    parser.add_argument("--osc-host", default="127.0.0.1", help="address the OSC server binds (default: 127.0.0.1)")
    parser.add_argument("--osc-port", type=int, default=9000, metavar="N", help="OSC control port (default: 9000; 0 = any)")
    parser.add_argument("--osc-out", metavar="HOST:PORT", help="send latents and parameters there")
    parser.add_argument("--midi-out", metavar="NAME", help="MIDI output port for the mapping's notes and CCs")
    parser.add_argument("--midi-in", metavar="NAME", help="MIDI input port whose CCs set parameters")
    parser.add_argument("--visualize", choices=("output", "input"),
                        help="turn the output (or the input: needs a duplex device) into image frames, sent as "
                             "/imgsonic/out/visual/z_img with --osc-out and written with --frames")
    parser.add_argument("--visualize-fps", type=float, default=10.0, metavar="F", help="frames per second (default: 10)")
    parser.add_argument("--frames", metavar="DIR", help="with --visualize: write frame_00000.png … there")
    parser.add_argument("--visualize-preset", metavar="NAME", help="with --visualize: see the sound through this "
                        "sound → image preset (imgsonic imagine's, e.g. spoken-digits) instead of the voice's models")


def _check_offline_args(args) -> Path | None:
    if args.audio != "offline":
        if args.duration is not None or args.output:
            raise ParameterError("--duration and -o go with --audio offline")
        return None
    if args.duration is None or not (math.isfinite(args.duration) and args.duration > 0) or not args.output:
        raise ParameterError("--audio offline needs --duration S (> 0) and -o FILE.wav")
    out = Path(args.output)
    if out.suffix.lower() != ".wav":
        raise ParameterError(f"output {args.output!r}: expected a file ending in .wav")
    if not out.parent.is_dir():
        raise ParameterError(f"output {args.output!r}: folder {str(out.parent)!r} does not exist")
    return out


def _start_io(session: LiveSession, args) -> list:
    """OSC server, OSC out, MIDI in/out as the arguments ask; returns what must be stopped at the end."""
    from bridge.osc import OscControlServer, OscSender, parse_host_port

    stoppers = []
    osc = OscControlServer(session, host=args.osc_host, port=args.osc_port, allowed_folders=session.image_folders)
    osc.start()  # it logs where it listens
    stoppers.append(osc.stop)
    sender = None
    if args.osc_out:
        host, port = parse_host_port(args.osc_out)
        sender = OscSender(host=host, port=port)
        session.sinks.append(osc_sink(sender))
        print(f"OSC: sending latents and parameters to {host}:{port}")
    if args.visualize:
        from bridge.live_visual import LiveVisualizer

        models = None
        if args.visualize_preset:
            from bridge.imagine_live import ImaginationVisualModels
            from models.imagination import Imagination

            models = ImaginationVisualModels(Imagination.from_preset(args.visualize_preset))
        visual = LiveVisualizer(session, source=args.visualize, fps=args.visualize_fps, frames_dir=args.frames,
                                sender=sender, models=models)
        stoppers.append(visual.close)
    elif args.frames or args.visualize_preset:
        raise ParameterError("--frames and --visualize-preset go with --visualize output|input")
    if args.midi_out or args.midi_in:
        from bridge.midi import MidiSpec
        from bridge.midi_live import MidiControlIn, MidiOutSink, open_midi_input, open_midi_output

        spec = MidiSpec.from_mapping(session.mapping)
        if args.midi_out:
            sink = MidiOutSink(open_midi_output(args.midi_out), spec=spec)
            session.sinks.append(midi_sink(sink, session.voice))
            stoppers.append(sink.all_notes_off)
        if args.midi_in:
            control = MidiControlIn(session, mapping=session.mapping, cc_map=spec.cc_in)
            port = open_midi_input(args.midi_in, callback=control.handle)
            stoppers.append(port.close)
    return stoppers


def run(args) -> int:
    import torch

    from bridge.mapping import load_mapping
    from synth.files import atomic_output

    torch.set_num_threads(1)  # ARCHITECTURE: two threads made a small decoder 6-20× slower with 120 ms spikes
    # a performer sees what the session does (images, patch reloads, refused messages) as one line each
    logging.basicConfig(level=logging.INFO, format="imgsonic: %(message)s")
    out_path = _check_offline_args(args)
    mapping = load_mapping(args.mapping)
    server = boot_server(audio=args.audio, sample_rate=args.sr, buffer_size=args.buffer_size,
                         duplex=args.visualize == "input")
    session = None
    stoppers: list = []
    try:
        session = LiveSession(server=server, image_folders=args.images, preset=args.preset, mapping=mapping,
                              fx=args.fx, ahead=0 if args.audio == "offline" else LIVE_AHEAD_BUFFERS,
                              vocoder=args.vocoder)
        if args.patch and not session.load_patch(args.patch):
            raise ImgsonicError(f"patch {args.patch!r} failed to load: {session.last_patch_error}")
        stoppers = _start_io(session, args)
        if out_path is not None:
            with atomic_output(out_path) as temporary:  # pyo writes the temporary file by name
                server.recordOptions(dur=args.duration, filename=temporary.name, fileformat=0, sampletype=1)
                server.start()  # the offline server renders the whole duration before returning
            print(f"wrote {out_path}: {args.duration:g} s at {args.sr} Hz")
            return 0
        server.start()
        print("playing; edit the patch file to change it, Ctrl-C to stop")
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        for stop in stoppers:
            try:
                stop()
            except Exception as error:  # noqa: BLE001 — shutting down: report and go on
                log.error("while stopping: %r", error)
        if session is not None:
            session.close()
        server.stop()
        server.shutdown()


def run_patch(path: str | os.PathLike, argv: Sequence[str] | None = None) -> int:
    """Run a patch file as ``imgsonic live --patch path [argv...]`` (for ``python patches/NN_name.py``)."""
    from bridge.cli import main

    return main(["live", "--patch", str(path), *(argv if argv is not None else __import__("sys").argv[1:])])
