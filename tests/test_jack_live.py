"""``imgsonic live`` under JACK (dummy driver) driven as a performer drives it, from other programs.

Marked ``live`` (``python -m pytest -m live``). Needs the Debian packages ``jackd2`` (jackd, jack_midi_dump,
jack_connect) and ``liblo-tools`` (oscsend, oscdump); skipped without them.

* A latent read from ``/imgsonic/out/z_img`` (oscdump) and sent back as ``/imgsonic/latent`` (oscsend) gives the
  image's own sound: the session's audio latent comes back equal (the decoder's only input), and rendering the
  latent as oscdump printed it equals rendering the image within ``LATENT_AUDIO_TOLERANCE`` of full scale.
* ``/imgsonic/ping 9103.0`` (a float, as Pd sends it) and ``/imgsonic/info`` are answered.
* ``--midi-out NAME`` creates a JACK MIDI port of that name; jack_midi_dump sees exactly one note-on per image.
* SIGINT / SIGTERM stop a real-time session with 130 / 143 and remove its temporary folder.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("jackd", "oscsend", "oscdump", "jack_midi_dump", "jack_connect", "jack_lsp")
# oscdump prints floats with six decimals: the latent comes back within 5e-7, its sound within this of full scale
# (PGHI's phase integration takes such differences to 3.4e-4 on a 3.5 peak with the default of issue 22's second
# round, to 1.06e-3 on a 1.2 peak with the third round's; a wrong latent differs by the sound's own size)
LATENT_AUDIO_TOLERANCE = 3e-3


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(predicate, timeout_s=60.0, what="a condition"):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _tools():
    """Skip before jackd starts (conftest's ``jackd`` fixture) when a tool these tests drive is missing."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: apt install jackd2 liblo-tools)")


class Dump:
    """oscdump on a port, its lines parsed: address → list of argument lists, in arrival order."""

    def __init__(self, port: int, path: Path) -> None:
        self.path = path
        self._file = open(path, "w")
        self.process = subprocess.Popen(["oscdump", "-L", str(port)], stdout=self._file, stderr=subprocess.STDOUT)

    def messages(self, address: str) -> list[list[str]]:
        found = []
        for line in self.path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1] == address:
                found.append(parts[3:])
        return found

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self._file.close()


def oscsend(port: int, address: str, types: str = "", *values) -> None:
    subprocess.run(["oscsend", "localhost", str(port), address, types, *map(str, values)], check=True,
                   capture_output=True)


@pytest.fixture
def session(jackd, tmp_path):
    """``imgsonic live --audio jack`` with two demo pictures, OSC out to an oscdump, MIDI out to a new port."""
    from PIL import Image

    from bridge.sources.demo import demo_images

    images = tmp_path / "images"
    images.mkdir()
    for name, item in zip(("a.png", "b.png", "c.png"), demo_images()[1:4]):
        Image.fromarray(item.pixels).save(images / name)
    temp = tmp_path / "tmp"
    temp.mkdir()
    osc_port, out_port = _free_port(), _free_port()
    dump = Dump(out_port, tmp_path / "dump.txt")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(temp),
           "MIDO_BACKEND": "mido.backends.rtmidi/UNIX_JACK"}
    log = open(tmp_path / "live.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge", "live", "--audio", "jack", "--images", str(images), "--osc-port",
         str(osc_port), "--osc-out", f"127.0.0.1:{out_port}", "--midi-out", "imgsonic test"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        _wait(lambda: "playing" in (tmp_path / "live.log").read_text() or process.poll() is not None, 180,
              "the session")
        assert process.poll() is None, (tmp_path / "live.log").read_text()[-2000:]
        yield {"process": process, "osc": osc_port, "out": out_port, "dump": dump, "temp": temp,
               "log": tmp_path / "live.log", "images": images}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        dump.close()
        log.close()


def _settled(dump: Dump, address: str, *, since: int, stable: int = 10) -> list[float]:
    """The values of ``address`` once ``stable`` messages in a row after message ``since`` are equal."""
    def done():
        values = dump.messages(address)[since:]
        return len(values) >= stable and all(v == values[-1] for v in values[-stable:])

    _wait(done, 30, f"{address} to settle")
    return [float(v) for v in dump.messages(address)[-1]]


def test_a_latent_read_from_osc_out_sent_back_gives_the_images_sound(session):
    dump, osc = session["dump"], session["osc"]
    oscsend(osc, "/imgsonic/image", "sf", "b.png", 0.0)
    z_img = _settled(dump, "/imgsonic/out/z_img", since=len(dump.messages("/imgsonic/out/z_img")) + 30)
    z_aud = _settled(dump, "/imgsonic/out/z_aud", since=len(dump.messages("/imgsonic/out/z_aud")))
    oscsend(osc, "/imgsonic/image", "sf", "c.png", 0.0)  # somewhere else first
    _wait(lambda: [float(v) for v in dump.messages("/imgsonic/out/z_img")[-1]] != z_img, 30, "the other image")
    oscsend(osc, "/imgsonic/latent", "f" * len(z_img), *z_img)
    back = _settled(dump, "/imgsonic/out/z_img", since=len(dump.messages("/imgsonic/out/z_img")) + 30)
    back_aud = _settled(dump, "/imgsonic/out/z_aud", since=len(dump.messages("/imgsonic/out/z_aud")))
    assert np.abs(np.array(back) - z_img).max() <= 1e-5  # not clamped: the preset's range holds real latents
    assert np.abs(np.array(back_aud) - z_aud).max() <= 1e-4  # the decoder's input: the same sound
    # a latent beyond the old ±4 clamp but inside the preset's range (learned dims at unit spread: about ±6)
    far = list(z_img)
    far[0] = 5.0
    oscsend(osc, "/imgsonic/latent", "f" * len(far), *far)
    assert np.abs(np.array(_settled(dump, "/imgsonic/out/z_img", since=len(dump.messages("/imgsonic/out/z_img")) + 30))
                  - far).max() <= 1e-5
    oscsend(osc, "/imgsonic/latent", "f" * len(z_img), *z_img)
    _settled(dump, "/imgsonic/out/z_img", since=len(dump.messages("/imgsonic/out/z_img")) + 30)

    # the sound of that latent, as oscdump printed it, against the image's own (the session's renderer)
    from PIL import Image

    from bridge.sonify.bundle import load_bundle
    from bridge.sonify.voice import VoiceRenderer

    bundle = load_bundle(preset="default")
    pixels = np.asarray(Image.open(session["images"] / "b.png"))
    voices = [VoiceRenderer(models=bundle.models, sample_rate=44100, latent_range=bundle.latent_range())
              for _ in range(2)]
    voices[0].set_image(pixels, fadetime_s=0.0)
    voices[1].set_latent(np.array(z_img), fadetime_s=0.0)
    image_audio, latent_audio = (np.concatenate([voice.render(256) for _ in range(400)]) for voice in voices)
    assert np.abs(image_audio).max() > 0.05
    assert np.abs(image_audio - latent_audio).max() <= LATENT_AUDIO_TOLERANCE


def test_ping_as_a_float_and_info_are_answered(session):
    dump, osc, out = session["dump"], session["osc"], session["out"]
    oscsend(osc, "/imgsonic/ping", "f", float(out))  # Pd: [send /imgsonic/ping 9103( sends a float
    oscsend(osc, "/imgsonic/info", "d", float(out))
    _wait(lambda: dump.messages("/imgsonic/pong") and dump.messages("/imgsonic/info/end"), 30, "the replies")
    pong = dump.messages("/imgsonic/pong")[-1]
    assert len(pong) == 7 and all(value.isdigit() for value in pong)
    low, high = (np.array(dump.messages(f"/imgsonic/info/latent_{end}")[-1], float) for end in ("low", "high"))
    from bridge.sonify.bundle import load_bundle

    config = load_bundle(preset="default").models.image_vae.config
    n_learned = config.latent_dim - config.n_descriptors  # the descriptor dims are image statistics in 0…1
    assert low.shape == high.shape == (config.latent_dim,) and np.all(low < high)
    assert np.all(low[:n_learned] < -4) and np.all(high[:n_learned] > 4)  # mean ± 6σ of real latents (σ ≈ 1)


def test_midi_out_creates_a_jack_port_with_one_note_per_image(session, tmp_path):
    ports = subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout.splitlines()
    midi_port = next((port for port in ports if port.endswith("imgsonic test")), None)
    assert midi_port, ports
    with open(tmp_path / "midi.txt", "w") as out:
        monitor = subprocess.Popen(["jack_midi_dump"], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: any("midi-monitor" in port for port in
                          subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout.splitlines()), 10,
              "jack_midi_dump")
        monitor_port = next(port for port in subprocess.run(["jack_lsp"], capture_output=True, text=True)
                            .stdout.splitlines() if "midi-monitor" in port)
        subprocess.run(["jack_connect", midi_port, monitor_port], check=True)
        time.sleep(0.5)
        for name in ("a.png", "b.png", "c.png", "a.png"):
            oscsend(session["osc"], "/imgsonic/image", "sf", name, 0.5)
            time.sleep(1.0)
        time.sleep(1.0)
    finally:
        monitor.terminate()
        monitor.wait(timeout=10)
    # jack_midi_dump prints each event's bytes in hex: note-on on channel 1 is 0x90 with a velocity > 0
    note_ons = [line for line in (tmp_path / "midi.txt").read_text().splitlines()
                if re.search(r"\b90 [0-9a-f]{2} (?!00)[0-9a-f]{2}\b", line)]
    assert len(note_ons) == 4, (tmp_path / "midi.txt").read_text()[-2000:]


@pytest.mark.parametrize("signame, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_stops_the_real_time_session_cleanly(session, signame, code):
    process = session["process"]
    process.send_signal(getattr(signal, signame))
    assert process.wait(timeout=30) == code
    log = session["log"].read_text()
    assert "imgsonic: interrupted" in log and "Traceback" not in log
    assert list(session["temp"].iterdir()) == []
