"""``imgsonic live``: a pyo server, the neural voice, a patch reloaded on save, OSC and MIDI around them.

Ctrl-C (SIGINT) and SIGTERM stop a session at any moment — while models load, while playing, or in the
middle of an offline render (whose unfinished file is removed) — with ``imgsonic: interrupted`` and exit code
130 or 143; the session's temporary folders are removed first.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import time
from pathlib import Path

from bridge.cli.arguments import SAMPLE_RATE_HZ, TEMPO_BPM, Number, time_signature
from bridge.cli.signals import Interrupted, held_for_now
from bridge.control.tempo import GRIDS
from models.errors import ImgsonicError, ParameterError

__all__ = ["add_arguments", "run"]

log = logging.getLogger("imgsonic.live")

AUDIO_CHOICES = ("portaudio", "jack", "offline")  # bridge.live.AUDIO_DRIVERS (a test keeps them equal)
DURATION_S = Number(float, 0.0, 86400.0, unit="seconds", low_open=True)
BUFFER_SIZE = Number(int, 16, 8192, unit="samples")
OSC_PORT = Number(int, 0, 65535, unit="port")
VISUALIZE_FPS = Number(float, 0.1, 200.0, unit="frames per second")
IMAGE_MEGAPIXELS = Number(float, 0.0, 10000.0, unit="megapixels", low_open=True)
PATCH_TIMEOUT_S = Number(float, 0.1, 600.0, unit="seconds")
OSC_RATE = Number(float, 1.0, 1e6, unit="messages per second")
LEARNT_MAPPING = "imgsonic-mapping.toml"  # where /imgsonic/learn saves bindings when no --mapping was given
# Python hands the GIL to a waiting thread after this long; the default 5 ms is nearly a 5.8 ms audio buffer
SWITCH_INTERVAL_S = 0.0005


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--patch", metavar="FILE.py", help="a patch file defining patch(session); reloaded on save")
    parser.add_argument("--audio", choices=AUDIO_CHOICES, default="portaudio", help="default: portaudio")
    parser.add_argument("--duration", type=DURATION_S, metavar="S", help="with --audio offline: seconds to render")
    parser.add_argument("-o", "--output", metavar="FILE.wav", help="with --audio offline: the file to write")
    parser.add_argument("--images", action="append", metavar="DIR",
                        help="image folder OSC may load from (repeatable; the first is the voice's sequence)")
    parser.add_argument("--preset", default="default", help="preset name (default: default; see imgsonic info), or the "
                        "path of a preset folder or .toml file")
    parser.add_argument("--mapping", metavar="TOML", help="parameter mapping (default: the shipped one)")
    parser.add_argument("--fx", default="", metavar="SPEC", help="pedalboard effects on the neural voice")
    parser.add_argument("--vocoder", choices=("pghi", "neural"), default="pghi",
                        help="mel → audio for the neural voice: streaming PGHI, or the preset's neural vocoder "
                             "(default: pghi)")
    parser.add_argument("--sr", type=SAMPLE_RATE_HZ, default=44100, metavar="HZ", help="default: 44100")
    parser.add_argument("--buffer-size", type=BUFFER_SIZE, default=256, metavar="N", help="default: 256")
    parser.add_argument("--osc-host", default="127.0.0.1", help="address the OSC server binds (default: 127.0.0.1)")
    parser.add_argument("--osc-port", type=OSC_PORT, default=9000, metavar="N",
                        help="OSC control port (default: 9000; 0 = any)")
    parser.add_argument("--osc-out", metavar="HOST:PORT", help="send latents and parameters there")
    parser.add_argument("--midi-out", metavar="NAME",
                        help="MIDI output port for the mapping's notes (one per image) and CCs; a virtual port of "
                             "that name is created when none exists")
    parser.add_argument("--midi-in", metavar="NAME", help="MIDI input port whose CCs set parameters (and "
                        "/imgsonic/learn binds; learnt bindings are saved to --mapping, else ./" + LEARNT_MAPPING + ")")
    parser.add_argument("--melody", action="store_true", help="with --midi-out: play the preset's melody of the "
                        "current image instead of the mapping's notes, two bars per phrase on the --bpm clock")
    parser.add_argument("--bpm", type=TEMPO_BPM, metavar="BPM",
                        help="land image changes on the beats of this tempo (default: at once); with --melody, the "
                             "melody's tempo (default 120)")
    parser.add_argument("--time-signature", type=time_signature, default=(4, 4), metavar="N/D",
                        help="beats per bar / beat unit, with --bpm (default: 4/4)")
    parser.add_argument("--change-on", choices=GRIDS, default="beat",
                        help="with --bpm: image changes wait for the next beat or bar (default: beat)")
    parser.add_argument("--max-image-megapixels", type=IMAGE_MEGAPIXELS, default=200.0, metavar="MP",
                        help="larger image files are refused from their header (default: 200)")
    parser.add_argument("--patch-timeout", type=PATCH_TIMEOUT_S, default=5.0, metavar="S",
                        help="patch(session) is interrupted and reported after this long (default: 5)")
    parser.add_argument("--osc-rate", type=OSC_RATE, default=1000.0, metavar="N",
                        help="OSC messages handled per second at most; the excess is dropped and counted "
                             "(default: 1000; pings have their own budget)")
    parser.add_argument("--visualize", choices=("output", "input"),
                        help="turn the output (or the input: needs a duplex device) into image frames, sent as "
                             "/imgsonic/out/visual/z_img with --osc-out and written with --frames")
    parser.add_argument("--visualize-fps", type=VISUALIZE_FPS, default=10.0, metavar="F",
                        help="frames per second (default: 10)")
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


def _start_io(session, args) -> list:
    """OSC server, OSC out, MIDI in/out as the arguments ask; returns what must be stopped at the end."""
    from bridge.io.osc import OscControlServer, OscSender, parse_host_port
    from bridge.live.sinks import midi_sink, osc_sink

    stoppers = []
    osc = OscControlServer(session, host=args.osc_host, port=args.osc_port, allowed_folders=session.image_folders,
                           rate_per_s=args.osc_rate)
    osc.start()  # it logs where it listens
    stoppers.append(osc.stop)
    sender = None
    if args.osc_out:
        host, port = parse_host_port(args.osc_out)
        sender = OscSender(host=host, port=port)
        session.sinks.append(osc_sink(sender))
        print(f"OSC: sending latents and parameters to {host}:{port}")
    if args.visualize:
        from bridge.live.visual import LiveVisualizer

        models = None
        if args.visualize_preset:
            from bridge.sonify.imagine import ImaginationVisualModels
            from models.imagination import Imagination

            models = ImaginationVisualModels(Imagination.from_preset(args.visualize_preset))
        visual = LiveVisualizer(session, source=args.visualize, fps=args.visualize_fps, frames_dir=args.frames,
                                sender=sender, models=models)
        stoppers.append(visual.close)
    elif args.frames or args.visualize_preset:
        raise ParameterError("--frames and --visualize-preset go with --visualize output|input")
    if args.melody and not args.midi_out:
        raise ParameterError("--melody goes with --midi-out NAME (patches/06_melody.py plays melodies as sound)")
    if args.midi_out or args.midi_in:
        from bridge.control.midi_spec import MidiSpec
        from bridge.io.midi_live import (
            MidiControlIn,
            MidiOutSink,
            open_midi_input,
            open_midi_output,
        )

        spec = MidiSpec.from_mapping(session.mapping)
        if args.midi_out and args.melody:
            from bridge.live.melody_midi import MelodyMidiPlayer
            from models.melody_pipeline import MelodyModels

            player = MelodyMidiPlayer(open_midi_output(args.midi_out), voice=session.voice, bpm=args.bpm or 120.0,
                                      melody_models=MelodyModels.from_preset(session.preset))
            player.start()
            stoppers.append(player.stop)
        elif args.midi_out:
            sink = MidiOutSink(open_midi_output(args.midi_out), spec=spec)
            session.sinks.append(midi_sink(sink))
            stoppers.append(sink.all_notes_off)
        if args.midi_in:
            saved_to = Path(args.mapping or LEARNT_MAPPING)

            def save(bindings: dict[int, str]) -> None:
                from bridge.control.mapping import write_cc_in

                write_cc_in(saved_to, bindings)
                log.info("MIDI learn: saved cc_in to %s%s", saved_to,
                         "" if args.mapping else f" (start with --mapping {saved_to} to use it)")

            control = MidiControlIn(session, mapping=session.mapping, cc_map=spec.cc_in, on_learn=save)
            port = open_midi_input(args.midi_in, callback=control.handle)
            session.midi_in = control
            stoppers.append(port.close)
    return stoppers


class _Stopper:
    """The SIGINT and SIGTERM handler of a session: :func:`bridge.cli.signals.signals_as_interrupts`'s, except
    while pyo renders offline.

    Then the main thread is inside pyo's loop, which calls the engine's Python hooks: an exception raised there
    would be printed by pyo and the render would go on, so the handler stops the server instead (pyo ends the
    render at the next buffer) and the session raises :class:`~bridge.cli.signals.Interrupted` once pyo
    returns. Anywhere else it raises it at once; ``imgsonic``'s ``main`` prints the line and the exit code.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.rendering = None  # the offline server while it renders
        self._previous: dict = {}

    def __call__(self, signum: int, frame) -> None:
        if self.signum is not None:
            return  # already stopping: a second signal must not cut the clean-up short
        if held_for_now(signum, frame):
            return
        self.signum = signum
        if self.rendering is not None:
            self.rendering.stop()
            return
        raise Interrupted(signum)

    def stop_if_asked(self) -> None:
        """A server hook while pyo renders offline: a signal handled in the instant before the render began
        stopped a server that was not running yet, and pyo's start undid that; this stops it at the first
        buffer instead of after the whole duration."""
        if self.signum is not None and self.rendering is not None:
            self.rendering.stop()

    def __enter__(self) -> _Stopper:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)



def run(args) -> int:
    with _Stopper() as stopper:
        return _run(args, stopper)


def _run(args, stopper: _Stopper) -> int:
    import torch

    from bridge.control.mapping import load_mapping
    from bridge.live.session import LIVE_AHEAD_BUFFERS, LiveSession, boot_server
    from synth.engine import server_hooks, settle_garbage_collector
    from synth.files import atomic_output

    torch.set_num_threads(1)  # ARCHITECTURE: two threads made a small decoder 6-20× slower with 120 ms spikes
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # the audio callback waits at most this long for the GIL
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
                              vocoder=args.vocoder, max_image_pixels=round(args.max_image_megapixels * 1e6),
                              patch_timeout_s=args.patch_timeout)
        if args.bpm is not None:
            session.voice.setTempo(args.bpm, "{}/{}".format(*args.time_signature), grid=args.change_on)
        if args.patch and not session.load_patch(args.patch):
            raise ImgsonicError(f"patch {args.patch!r} failed to load: {session.last_patch_error}")
        settle_garbage_collector()  # the models are loaded: no collector pauses in the audio callback from them
        stoppers = _start_io(session, args)
        if out_path is not None:
            with atomic_output(out_path) as temporary:  # pyo writes the temporary file by name
                server.recordOptions(dur=args.duration, filename=temporary.name, fileformat=0, sampletype=1)
                stopper.rendering = server
                hooks = server_hooks(server)
                hooks.add(stopper.stop_if_asked)
                try:
                    server.start()  # the offline server renders the whole duration before returning
                finally:
                    stopper.rendering = None
                    hooks.remove(stopper.stop_if_asked)
                if stopper.signum is not None:
                    raise Interrupted(stopper.signum)  # the file is unfinished: atomic_output removes it
            print(f"wrote {out_path}: {args.duration:g} s at {args.sr} Hz")
            return 0
        server.start()
        print("playing; edit the patch file to change it, Ctrl-C to stop")
        while True:
            time.sleep(0.5)
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


