"""The live engine under load, in real time: xruns and OSC reply times on JACK's dummy driver.

Usage: ``python benchmarks/live_stress.py [--seconds 10] [--repeats 3] [--flood-rate 3000] [--json]``

Needs ``jackd`` (Debian: jackd2). It starts ``jackd --no-realtime -d dummy -r 44100 -p 256`` (unless
``--jackd running``), then ``imgsonic live --audio jack`` as a user would, with an image folder holding a
169-megapixel PNG (13000 × 13000, a compressible gradient) and a small picture (first in the folder: the
voice starts on it), and runs phases of ``--seconds`` each, interleaved ``--repeats`` times:

* ``idle``: nothing but the probe pings;
* ``image``: one ``/imgsonic/image`` message naming the 169-megapixel file at the phase's start;
* ``flood``: ``--flood-rate`` OSC messages a second for the whole phase, a mix of ``/imgsonic/latent``
  (random values), ``/imgsonic/param``, ``/imgsonic/image`` and ``/imgsonic/morph`` of the small picture,
  unknown addresses and garbage datagrams.

**Xruns** are counted from jackd's own log: each ``JackEngine::XRun`` line is a cycle in which the
session's JACK client did not finish in time (what a listener hears as a dropout). **OSC reply time**: a
probe sends ``/imgsonic/ping`` every 20 ms from its own socket and waits for the ``/imgsonic/pong`` (a
reply missing after 1 s counts as 1000 ms). Figures per phase: xruns per 10 s, the median phase's xruns
minus the median idle phase's (the target: ≤ 5), and the slowest reply (target: ≤ 50 ms).

On a shared machine the idle baseline itself moves with the other processes' load: compare the phases of
one run, which are interleaved for that reason. ``--priority N`` renices jackd and the session to ``N``
(root only for N < 0), which shows what the engine does when the scheduler does not stall it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RATE = 44100
BUFFER = 256
PING_PERIOD_S = 0.02
PING_TIMEOUT_S = 1.0
TARGET_EXTRA_XRUNS = 5
TARGET_REPLY_MS = 50.0


def osc_message(address: str, *args) -> bytes:
    from pythonosc.osc_message_builder import OscMessageBuilder

    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def write_images(folder: Path) -> None:
    """A 169-megapixel gradient PNG (about 0.5 MB on disk) and a small noise picture."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    side = 13000
    ramp = (np.arange(side, dtype=np.uint32) * 255 // side).astype(np.uint8)
    pixels = np.empty((side, side, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = ramp[:, None], ramp[None, :], 128
    Image.fromarray(pixels).save(folder / "huge.png", compress_level=6)
    del pixels
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(folder / "a.png")


class Pinger(threading.Thread):
    """Pings the session every PING_PERIOD_S and records (send time, reply time in ms)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.replies: list[tuple[float, float]] = []
        self.running = True
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(PING_TIMEOUT_S)
        self.ping = osc_message("/imgsonic/ping")

    def round_trip_ms(self) -> float:
        sent = time.perf_counter()
        self.socket.sendto(self.ping, ("127.0.0.1", self.port))
        while True:
            try:
                data = self.socket.recv(65536)
            except TimeoutError:
                return PING_TIMEOUT_S * 1e3
            if data.startswith(b"/imgsonic/pong"):
                return (time.perf_counter() - sent) * 1e3

    def drain(self) -> None:
        self.socket.setblocking(False)
        try:
            while True:
                self.socket.recv(65536)
        except BlockingIOError:
            pass
        self.socket.settimeout(PING_TIMEOUT_S)

    def run(self) -> None:
        while self.running:
            start = time.perf_counter()
            self.replies.append((start, self.round_trip_ms()))
            self.drain()  # a late pong must not answer the next ping
            time.sleep(max(0.0, PING_PERIOD_S - (time.perf_counter() - start)))


def flood(port: int, *, rate: float, seconds: float, latent_dim: int) -> int:
    """Send ``rate`` mixed messages a second for ``seconds``; returns how many were sent."""
    rng = np.random.default_rng(1)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    kinds = [
        lambda: osc_message("/imgsonic/latent", *[float(v) for v in rng.normal(0, 3, latent_dim)]),
        lambda: osc_message("/imgsonic/param", "cutoff_hz", float(rng.uniform(200, 8000))),
        lambda: osc_message("/imgsonic/image", "a.png", 0.1),
        lambda: osc_message("/imgsonic/morph", "a.png", "a.png", float(rng.random())),
        lambda: osc_message("/imgsonic/nothing", 1),
        lambda: rng.bytes(64),
    ]
    datagrams = [kinds[index % len(kinds)]() for index in range(600)]
    sent, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            try:
                sender.sendto(datagrams[sent % len(datagrams)], ("127.0.0.1", port))
            except OSError:
                pass
            sent += 1
        time.sleep(0.001)
    return sent


def xrun_count(log_path: Path) -> int:
    return log_path.read_text(errors="replace").count("XRun")


def start_jackd(log_path: Path, *, realtime: bool) -> subprocess.Popen:
    mode = ["-R", "-P", "70"] if realtime else ["--no-realtime"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(["jackd", *mode, "-d", "dummy", "-r", str(RATE), "-p", str(BUFFER)],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    time.sleep(2.0)
    if process.poll() is not None:
        raise SystemExit(f"jackd did not start: {log_path.read_text()[-400:]}")
    return process


def wait_for_pong(pinger: Pinger, timeout_s: float, session: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if session.poll() is not None:
            raise SystemExit(f"imgsonic live exited with {session.returncode}")
        if pinger.round_trip_ms() < PING_TIMEOUT_S * 1e3:
            return
    raise SystemExit("imgsonic live did not answer /imgsonic/ping")


def run(args) -> dict:
    if shutil.which("jackd") is None and args.jackd == "start":
        raise SystemExit("jackd is not installed (Debian: apt install jackd2)")
    work = Path(tempfile.mkdtemp(prefix="imgsonic-stress-"))
    processes: list[subprocess.Popen] = []
    try:
        images = work / "images"
        images.mkdir()
        write_images(images)
        jack_log = work / "jackd.log"
        if args.jackd == "start":
            processes.append(start_jackd(jack_log, realtime=args.realtime))
        else:
            jack_log = Path(args.jackd_log)
        port = args.osc_port
        with open(work / "live.log", "w") as live_log:
            session = subprocess.Popen(
                [sys.executable, "-m", "bridge", "live", "--audio", "jack", "--images", str(images), "--osc-port",
                 str(port), "--buffer-size", str(BUFFER), "--sr", str(RATE), *args.live_args],
                stdout=live_log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        processes.append(session)
        if args.priority is not None:
            for process in processes:
                subprocess.run(["renice", "-n", str(args.priority), "-g", str(process.pid)], check=False,
                               capture_output=True)
        pinger = Pinger(port)
        wait_for_pong(pinger, 180.0, session)
        time.sleep(args.settle)
        pinger.start()
        huge = osc_message("/imgsonic/image", "huge.png", 0.5)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        phases = []
        for _ in range(args.repeats):
            for name in args.phases:
                xruns_before = xrun_count(jack_log)
                start = time.perf_counter()
                sent = 0
                if name == "image":
                    client.sendto(huge, ("127.0.0.1", port))
                    sent = 1
                    time.sleep(args.seconds)
                elif name == "flood":
                    sent = flood(port, rate=args.flood_rate, seconds=args.seconds, latent_dim=args.latent_dim)
                else:
                    time.sleep(args.seconds)
                end = time.perf_counter()
                time.sleep(0.3)  # the pings of the phase's last moments come back
                xruns = xrun_count(jack_log) - xruns_before
                replies = np.array([ms for at, ms in list(pinger.replies) if start <= at < end] or [np.nan])
                phases.append({"phase": name, "seconds": end - start, "sent": sent,
                               "xruns_per_10s": xruns * 10.0 / (end - start),
                               "reply_ms_median": float(np.nanmedian(replies)),
                               "reply_ms_p99": float(np.nanpercentile(replies, 99)),
                               "reply_ms_max": float(np.nanmax(replies)), "pings": int(replies.size),
                               "pings_lost": int((replies >= PING_TIMEOUT_S * 1e3).sum())})
                if session.poll() is not None:
                    raise SystemExit(f"imgsonic live exited with {session.returncode} during {name}")
        pinger.running = False
        pinger.join(timeout=2)
        session.send_signal(signal.SIGINT)
        try:
            exit_code = session.wait(timeout=30)
        except subprocess.TimeoutExpired:
            exit_code = None
        log_text = (work / "live.log").read_text(errors="replace")
        return {"phases": phases, "exit_code": exit_code, "load_average": os.getloadavg(),
                "live_log_tail": log_text[-1500:], "live_log_lines": log_text.count("\n")}
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


def summary(result: dict) -> dict:
    by_phase: dict[str, list[dict]] = {}
    for phase in result["phases"]:
        by_phase.setdefault(phase["phase"], []).append(phase)
    idle = float(np.median([p["xruns_per_10s"] for p in by_phase.get("idle", [])] or [0.0]))
    rows = {}
    for name, phases in by_phase.items():
        xruns = [p["xruns_per_10s"] for p in phases]
        rows[name] = {"xruns_per_10s": [round(x, 1) for x in xruns], "median": float(np.median(xruns)),
                      "extra_over_idle": float(np.median(xruns)) - idle,
                      "reply_ms_max": max(p["reply_ms_max"] for p in phases),
                      "reply_ms_p99": max(p["reply_ms_p99"] for p in phases),
                      "pings_lost": sum(p["pings_lost"] for p in phases)}
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase (default: 10)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the phases (default: 3)")
    parser.add_argument("--phases", nargs="+", default=["idle", "image", "idle", "flood"],
                        choices=["idle", "image", "flood"], help="one round (default: idle image idle flood)")
    parser.add_argument("--flood-rate", type=float, default=3000.0, help="messages a second (default: 3000)")
    parser.add_argument("--latent-dim", type=int, default=16, help="values per /imgsonic/latent (default: 16)")
    parser.add_argument("--osc-port", type=int, default=9317)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the first pong (default: 5)")
    parser.add_argument("--realtime", action="store_true",
                        help="jackd -R -P 70 instead of --no-realtime: JACK's threads (and the session's JACK "
                             "client thread) scheduled SCHED_FIFO, so the machine's other load cannot stall them")
    parser.add_argument("--priority", type=int, help="renice jackd and the session to this niceness")
    parser.add_argument("--jackd", choices=["start", "running"], default="start")
    parser.add_argument("--jackd-log", help="with --jackd running: the log jackd writes")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("live_args", nargs=argparse.REMAINDER, help="after --: more imgsonic live arguments")
    args = parser.parse_args(argv)
    args.live_args = [arg for arg in args.live_args if arg != "--"]
    result = run(args)
    rows = summary(result)
    if args.json:
        print(json.dumps({"summary": rows, **result}, indent=2))
        return 0
    mode = "realtime" if args.realtime else "no-realtime"
    print(f"imgsonic live on jackd dummy ({mode}), {RATE} Hz, {BUFFER}-sample buffers; phases of {args.seconds:g} s × "
          f"{args.repeats}; load average at the end {result['load_average'][0]:.1f}; exit code on SIGINT "
          f"{result['exit_code']}; {result['live_log_lines']} log lines")
    for name, row in rows.items():
        verdict = ""
        if name != "idle":
            ok = row["extra_over_idle"] <= TARGET_EXTRA_XRUNS and row["reply_ms_max"] <= TARGET_REPLY_MS
            verdict = f"  extra over idle {row['extra_over_idle']:+.1f} → {'PASS' if ok else 'FAIL'}"
        print(f"  {name:<6} xruns per 10 s {row['xruns_per_10s']} (median {row['median']:.1f}); OSC reply max "
              f"{row['reply_ms_max']:.1f} ms, p99 {row['reply_ms_p99']:.1f} ms, lost {row['pings_lost']}{verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
