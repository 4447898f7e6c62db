"""The live session on pyo's manual server: patches (load, reload on save, broken edits), sinks, OSC, the CLI."""

import os
import subprocess
import sys
import time
from pathlib import Path

import mido
import numpy as np
import pytest

pyo = pytest.importorskip("pyo")

from bridge.live.session import LiveSession, boot_server  # noqa: E402

PATCHES = sorted((Path(__file__).parent.parent / "patches").glob("0[1-5]_*.py"))
ROOT = Path(__file__).parent.parent


@pytest.fixture
def server():
    s = boot_server(audio="manual", sample_rate=44100, buffer_size=256, channels=2)
    s.start()
    yield s
    s.stop()
    s.shutdown()


@pytest.fixture
def session(server):
    live = LiveSession(server=server, preset="squares-sines", control_rate_hz=200.0)
    yield live
    live.close()


def play(server, obj, n_buffers):
    table = pyo.DataTable(size=n_buffers * server.getBufferSize())
    recorder = pyo.TableRec(obj, table).play()
    for _ in range(n_buffers):
        server.process()
    del recorder
    return np.asarray(table.getBuffer()).copy()


def write_patch(path: Path, body: str) -> None:
    path.write_text(body)
    stamp = time.time_ns() + 10**9 * (1 + len(body) % 7)
    os.utime(path, ns=(stamp, stamp))  # a new mtime even within the file system's time resolution


def test_the_session_sounds_before_any_message(server, session):
    out = play(server, session.output, 80)
    assert np.isfinite(out).all() and np.sqrt(np.mean(out**2)) > 1e-4


@pytest.mark.parametrize("patch", PATCHES, ids=[path.stem for path in PATCHES])
def test_every_shipped_patch_loads_and_sounds_at_once(server, session, patch):
    assert session.load_patch(patch), session.last_patch_error
    out = play(server, session.output, round(2.0 * 44100 / 256))
    assert np.isfinite(out).all()
    assert np.sqrt(np.mean(out[out.size // 2 :] ** 2)) > 1e-4
    assert np.abs(out).max() <= 1.0


def test_a_patch_reloads_on_save_and_a_broken_edit_keeps_the_old_sound(server, session, tmp_path):
    patch = tmp_path / "live_patch.py"
    write_patch(patch, "from pyo import Sine\n\ndef patch(session):\n    return Sine(freq=440, mul=0.3)\n")
    assert session.load_patch(patch)
    play(server, session.output, 40)
    write_patch(patch, "from pyo import Sine\n\ndef patch(session):\n    return Sine(freq=660, mul=0.3)\n")
    assert session.check_patch()
    out = play(server, session.output, 80)[-8192:]
    assert abs(np.argmax(np.abs(np.fft.rfft(out * np.hanning(out.size)))) * 44100 / out.size - 660) < 10
    for broken in ("def patch(session):\n    return 1 / 0\n", "def patch(session:\n", "x = 1\n",
                   "def patch(session):\n    return 'not a pyo object'\n"):
        write_patch(patch, broken)
        assert not session.check_patch()
        assert session.last_patch_error
        out = play(server, session.output, 40)[-8192:]
        assert abs(np.argmax(np.abs(np.fft.rfft(out * np.hanning(out.size)))) * 44100 / out.size - 660) < 10
    assert session.patch_errors == 4


def test_a_failing_sink_never_stops_the_session(server, session):
    received = []
    session.sinks.append(lambda controls: 1 / 0)
    session.sinks.append(received.append)
    session.feed_sinks()
    out = play(server, session.output, 20)
    assert session.sink_errors >= 1 and received
    assert set(received[0].params) == set(session.mapping.names)
    assert np.sqrt(np.mean(out**2)) > 1e-4


def test_gain_is_clamped_and_nan_refused(server, session):
    session.set_gain(-200.0)
    quiet = play(server, session.output, 100)[-4096:]
    assert np.abs(quiet).max() < 2e-4 * 1.5  # −80 dB floor: not silenced to zero, not louder
    with pytest.raises(Exception):
        session.set_gain(float("nan"))


def test_osc_messages_reach_the_voice(server, session, tmp_path):
    from PIL import Image
    from pythonosc.udp_client import SimpleUDPClient

    from bridge.io.osc import OscControlServer

    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(tmp_path / "white.png")
    osc = OscControlServer(session, port=0, allowed_folders=[tmp_path])
    osc.start()
    try:
        client = SimpleUDPClient("127.0.0.1", osc.port)
        events_before = session.voice.renderer.timeline.n_events + len(session.voice.renderer._events)
        client.send_message("/imgsonic/image", ["white.png", 0.0])
        client.send_message("/imgsonic/image", ["../../etc/passwd"])
        deadline = time.monotonic() + 10
        while osc.counters.acted < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert session.loader.wait_idle()  # the image is read and encoded in the loader's thread
        assert session.voice.renderer.timeline.n_events + len(session.voice.renderer._events) > events_before
        play(server, session.output, 10)
    finally:
        osc.stop()


def _cli(*args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


def test_live_offline_renders_a_file_atomically(tmp_path):
    out = tmp_path / "live.wav"
    result = _cli("live", "--audio", "offline", "--duration", "1.5", "-o", str(out), "--osc-port", "0",
                  "--preset", "squares-sines", "--patch", str(PATCHES[1]))
    assert result.returncode == 0, result.stderr[-2000:]
    from pedalboard.io import AudioFile

    with AudioFile(str(out)) as handle:
        assert handle.samplerate == 44100 and abs(handle.frames - 1.5 * 44100) < 512
        audio = handle.read(handle.frames)
    assert np.sqrt(np.mean(audio**2)) > 1e-4
    assert [path.name for path in tmp_path.iterdir()] == ["live.wav"]  # no temporary file left


@pytest.mark.skipif(pyo.pa_count_devices() > 0, reason="this machine has a sound card")
def test_live_without_a_device_says_what_to_do():
    result = _cli("live", "--osc-port", "0", timeout=120)
    assert result.returncode == 2
    assert "--audio offline --duration S -o FILE.wav" in result.stderr and "jackd" in result.stderr


@pytest.mark.parametrize("args", [["--audio", "offline"], ["--audio", "offline", "--duration", "1", "-o", "x.mp3"],
                                  ["--duration", "2"]])
def test_live_bad_arguments_are_one_line_errors(args):
    result = _cli("live", "--osc-port", "0", *args, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("imgsonic: error:")


def test_the_visualizer_turns_the_output_into_frames(server, session, tmp_path):
    from bridge.live.visual import LiveVisualizer

    visual = LiveVisualizer(session, fps=10.0, frames_dir=tmp_path, size_px=32)
    play(server, session.output, round(2.0 * 44100 / 256))
    visual.close()  # analyses what is queued first
    assert 15 <= visual.frames_emitted <= 20  # 2 s at 10 fps, less the analysis window's latency
    assert visual.errors == 0
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files[0] == "frame_00000.png" and len(files) == visual.frames_emitted
    assert all(np.isfinite(frame.z_img).all() for frame in visual.frames)


def test_live_offline_with_the_visualizer_writes_frames(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    result = _cli("live", "--audio", "offline", "--duration", "2", "-o", str(tmp_path / "out.wav"), "--osc-port", "0",
                  "--preset", "squares-sines", "--visualize", "output", "--frames", str(frames))
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list(frames.glob("frame_*.png"))) >= 15


def test_the_midi_sink_starts_a_note_for_each_new_image(server, session):
    import mido

    from bridge.control.midi_spec import MidiSpec
    from bridge.io.midi_live import MidiOutSink
    from bridge.live.sinks import midi_sink

    sent = []

    class Collect(mido.ports.BaseOutput):
        def _send(self, message):
            sent.append(message)

    sink = midi_sink(MidiOutSink(Collect(), spec=MidiSpec.from_mapping(session.mapping)))
    play(server, session.output, 5)
    sink(session.voice.controls)
    sink(session.voice.controls)
    notes_on = sum(message.type == "note_on" and message.velocity > 0 for message in sent)
    assert notes_on == 1  # one note while the image holds
    pixels = np.full((32, 32), 200, np.uint8)
    session.set_image(pixels, fadetime=0.0)
    play(server, session.output, 100)  # heard once the decoder's lead (~200 ms for squares-sines) has played
    sink(session.voice.controls)
    assert sum(message.type == "note_on" and message.velocity > 0 for message in sent) == 2


def test_the_melody_patch_sounds_at_once_and_follows_the_images(server):
    live = LiveSession(server=server, preset="digits-melody", control_rate_hz=200.0)
    try:
        assert live.load_patch(ROOT / "patches" / "06_melody.py"), live.last_patch_error
        out = play(server, live.output, round(3.0 * 44100 / 256))
        assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
        assert np.sqrt(np.mean(out[out.size // 2 :] ** 2)) > 1e-3
    finally:
        live.close()


def test_the_demo_sequence_plays_exactly_one_note_per_image(server):
    """The demo's eight pictures, 0.5 s apart with the session's 0.5 s glides, the sink fed every buffer (the
    glides sweep the pitch through several scale notes: before, 22 note-ons came out for 9 s of images)."""
    from bridge.control.midi_spec import MidiSpec
    from bridge.io.midi_live import MidiOutSink
    from bridge.live.sinks import midi_sink

    session = LiveSession(server=server, preset="default")
    try:
        port = mido.ports.EchoPort()
        sink = midi_sink(MidiOutSink(port, spec=MidiSpec.from_mapping(session.mapping)))
        buffers_per_image = round(0.5 * 44100 / 256)
        for index in range(8):
            if index:
                session.voice.next()
            for _ in range(buffers_per_image):
                server.process()
                sink(session.voice.controls)
        for _ in range(buffers_per_image):  # the last glide's middle is heard
            server.process()
            sink(session.voice.controls)
        messages = list(port.iter_pending())
    finally:
        session.close()
    notes = [m.note for m in messages if m.type == "note_on"]
    assert len(notes) == 8
    assert sum(m.type == "note_off" for m in messages) == 7  # each note ends when the next image's starts
    pitch = session.mapping["pitch"]
    assert all(int(round(69 + 12 * np.log2(pitch.low / 440))) <= note <= int(round(69 + 12 * np.log2(pitch.high / 440)))
               for note in notes)  # the mapped pitch's notes (110…880 Hz: 45…81), not a scale's positions


def _peak_hz(out):
    return np.argmax(np.abs(np.fft.rfft(out * np.hanning(out.size)))) * 44100 / out.size


def test_a_patch_that_hangs_or_exits_is_interrupted_and_reported_and_the_old_sound_goes_on(server, session, tmp_path):
    import threading

    session.patch_timeout_s = 1.0
    patch = tmp_path / "live_patch.py"
    write_patch(patch, "from pyo import Sine\n\ndef patch(session):\n    return Sine(freq=660, mul=0.3)\n")
    assert session.load_patch(patch)
    bad = {"def patch(session):\n    while True:\n        pass\n": "did not return within 1 s",
           "import sys\n\ndef patch(session):\n    sys.exit(3)\n": "sys.exit(3)",
           "raise SystemExit\n": "sys.exit(None)",
           "def patch(session):\n    try:\n        while True:\n            pass\n    except Exception:\n"
           "        pass\n": "did not return within 1 s"}  # a patch's own except Exception cannot swallow it
    for body, reason in bad.items():
        write_patch(patch, body)
        started = time.monotonic()
        assert not session.check_patch()
        assert time.monotonic() - started < 3.0 and reason in session.last_patch_error
        assert abs(_peak_hz(play(server, session.output, 60)[-8192:]) - 660) < 10
    time.sleep(0.5)
    assert not [thread for thread in threading.enumerate() if thread.name == "imgsonic-patch"]  # none left spinning
    assert session._threads[0].is_alive()


def test_the_control_thread_interrupts_a_hanging_reload_and_keeps_feeding_the_sinks(server, session, tmp_path):
    session.patch_timeout_s = 0.5
    patch = tmp_path / "live_patch.py"
    write_patch(patch, "from pyo import Sine\n\ndef patch(session):\n    return Sine(freq=660, mul=0.3)\n")
    assert session.load_patch(patch)
    fed = []
    session.sinks.append(fed.append)
    write_patch(patch, "def patch(session):\n    while True:\n        pass\n")
    deadline = time.monotonic() + 10
    while session.patch_errors == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    count = len(fed)
    time.sleep(0.5)
    assert len(fed) > count + 5  # 200 Hz control rate: the sinks never waited for the patch
    assert "did not return" in session.last_patch_error and session._threads[0].is_alive()
    write_patch(patch, "from pyo import Sine\n\ndef patch(session):\n    return Sine(freq=440, mul=0.3)\n")
    deadline = time.monotonic() + 10
    while abs(_peak_hz(play(server, session.output, 60)[-8192:]) - 440) > 10:  # the next save loads again
        assert time.monotonic() < deadline


def test_image_changes_land_on_the_beat(server, session):
    """120 bpm: the middle of each glide — where the image is heard, and its MIDI note starts — is on a beat."""
    session.voice.setTempo(120.0, "4/4", grid="beat")
    rng = np.random.default_rng(3)
    heard_s, seen = [], session.voice.controls.onsets
    for _ in range(4):
        for _ in range(int(rng.integers(20, 120))):
            server.process()
        session.voice.setImage(np.full((32, 32), int(rng.integers(0, 255)), np.uint8), fadetime=0.2)
        for _ in range(round(1.2 * 44100 / 256)):  # the next beat the decoder has not passed: < 0.5 s + its lead
            server.process()
            if session.voice.controls.onsets != seen:
                seen = session.voice.controls.onsets
                heard_s.append(session.voice.renderer.played_s)
    assert len(heard_s) == 4
    frame_s = 1 / session.voice.renderer.frame_rate_hz
    beats = np.array(heard_s) / 0.5
    # heard within one mel frame and one buffer of a beat (the glide starts on a frame)
    assert np.all(np.abs(beats - np.round(beats)) * 0.5 <= frame_s + 256 / 44100)


def test_learn_over_osc_binds_the_next_cc_and_saves_it_to_the_mapping_file(server, session, tmp_path):
    from pythonosc.udp_client import SimpleUDPClient

    from bridge.control.mapping import load_mapping, write_cc_in
    from bridge.control.midi_spec import MidiSpec
    from bridge.io.midi_live import MidiControlIn
    from bridge.io.osc import OscControlServer

    saved = tmp_path / "mine.toml"
    session.midi_in = MidiControlIn(session, mapping=session.mapping, on_learn=lambda b: write_cc_in(saved, b))
    osc = OscControlServer(session, port=0)
    osc.start()
    try:
        SimpleUDPClient("127.0.0.1", osc.port).send_message("/imgsonic/learn", ["cutoff_hz"])
        deadline = time.monotonic() + 10
        while session.midi_in.learning != "cutoff_hz":
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        osc.stop()
    session.midi_in.handle(mido.Message("control_change", control=21, value=127))
    assert MidiSpec.from_mapping(load_mapping(saved)).cc_in == {21: "cutoff_hz"}
    play(server, session.output, 5)
    assert session.voice.controls.params["cutoff_hz"] == session.mapping["cutoff_hz"].high


def test_info_and_learn_without_midi_in(server, session):
    described = session.describe()
    assert described["latent_low"] == session.latent_range.low.tolist() and len(described["latent_high"]) == 2
    assert described["params"] == list(session.mapping.names)
    with pytest.raises(Exception, match="--midi-in"):
        session.learn("pitch")


def _run_until(args, line, *, signum, tmp_path, after_s=0.5):
    """Start ``imgsonic live`` with TMPDIR in tmp_path, wait for ``line`` on stderr (None: for nothing), then
    ``after_s`` seconds, and send ``signum``."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(temp)}
    process = subprocess.Popen([sys.executable, "-m", "bridge", "live", *args], stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    seen = []
    try:
        if line is not None:
            for text in process.stderr:
                seen.append(text)
                if line in text:
                    break
        time.sleep(after_s)
        process.send_signal(signum)
        _, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, "".join(seen) + rest, temp


@pytest.mark.parametrize("signame, code, line, after_s", [
    ("SIGINT", 130, "OSC control on", 0.5),  # mid-render: pyo's offline loop is running
    pytest.param("SIGTERM", 143, "OSC control on", 0.5, marks=pytest.mark.slow),
    # "OSC control on" is logged just before the output file is made: the signal lands as it is made
    pytest.param("SIGINT", 130, "OSC control on", 0.0, marks=pytest.mark.slow),
    pytest.param("SIGINT", 130, None, 0.4, marks=pytest.mark.slow),  # while torch imports and the models load
])
def test_a_signal_stops_an_offline_session_cleanly(tmp_path, signame, code, line, after_s):
    import signal

    out = tmp_path / "long.wav"
    returncode, stderr, temp = _run_until(
        ["--audio", "offline", "--duration", "600", "-o", str(out), "--osc-port", "0", "--preset", "squares-sines"],
        line, signum=getattr(signal, signame), tmp_path=tmp_path, after_s=after_s)
    assert returncode == code, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == "imgsonic: interrupted" and "Traceback" not in stderr
    if line is None:
        assert "OSC control on" not in stderr  # it stopped before the session was up
    assert not out.exists() and sorted(path.name for path in tmp_path.iterdir()) == ["tmp"]  # no partial file
    assert list(temp.iterdir()) == []  # no imgsonic-images-* folder left


def test_a_signal_handled_just_before_the_offline_render_starts_still_stops_it(tmp_path):
    # the handler stops the server when the signal lands in pyo's start() before its loop runs; pyo's start
    # then undid that stop and rendered the whole duration (10 h here: 10 minutes on this machine) before
    # exiting; the session's server hook stops it at the first buffer
    out = tmp_path / "long.wav"
    script = (
        "import signal, sys, pyo\n"
        "start = pyo.Server.start\n"
        "def signalled_start(self, *args, **kwargs):\n"
        "    signal.raise_signal(signal.SIGINT)  # handled here, before the render loop\n"
        "    return start(self, *args, **kwargs)\n"
        "pyo.Server.start = signalled_start\n"
        "from bridge.cli import main\n"
        f"sys.exit(main(['live', '--audio', 'offline', '--duration', '36000', '-o', {str(out)!r}, '--osc-port', '0',"
        " '--preset', 'squares-sines']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # a timeout here: the render went on
    assert done.returncode == 130, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == "imgsonic: interrupted"
    assert list(tmp_path.iterdir()) == []


def test_an_initial_patch_that_exits_is_a_clear_error(tmp_path):
    patch = tmp_path / "exits.py"
    patch.write_text("import sys\nsys.exit(0)\n")
    out = tmp_path / "out.wav"
    result = _cli("live", "--audio", "offline", "--duration", "1", "-o", str(out), "--osc-port", "0",
                  "--preset", "squares-sines", "--patch", str(patch))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("imgsonic: error: patch") and "sys.exit(0)" in last and not out.exists()
