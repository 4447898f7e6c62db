"""Clicks in what a live session records: its start, and a patch that morphs and echoes (04_osc_morph).

Usage: ``python benchmarks/live_clicks.py [--seconds 8] [--json]``

Each case runs ``imgsonic live --audio offline --duration S -o FILE.wav`` as a user would (the demo pictures,
no OSC), then reads the file back:

* **start**: the first sample's level, and the level 25 ms in (the old session started mid-waveform, one
  buffer late, at 0.09–0.19 of full scale);
* **click prominence**: the signal's energy above 6 kHz (8th-order Butterworth high-pass) in 10 ms windows;
  the loudest window divided by the 99th percentile of all windows. A click is a burst of broadband energy far
  above anything the sound itself does (≫ 1); a sound without clicks stays near 1 (its own busiest moments).
  ``at_echoes`` is the same ratio at the sound's start and 0.25, 0.5 and 0.75 s later — where patch 04's
  delay line (0.25 s, feedback 0.3) repeats whatever the voice started with;
* **morph ticks**: :func:`bridge.sonify.render.boundary_jump_ratio` (largest sample step within 5 ms of a
  boundary ÷ the 99.9th-percentile step elsewhere) on the grid of patch 04's 0.2 s morph steps, at the worst
  phase of that grid: ≲ 1 means the steps are no sharper than the sound.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CASES = {"session": [], "04_osc_morph": ["--patch", str(ROOT / "patches" / "04_osc_morph.py")]}


def render(args: list[str], seconds: float, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "bridge", "live", "--audio", "offline", "--duration", str(seconds),
                           "-o", str(out), "--osc-port", "0", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"imgsonic live failed: {done.stderr[-1000:]}")


def measure(path: Path) -> dict:
    import soundfile
    from scipy.signal import butter, sosfilt

    from bridge.sonify.render import boundary_jump_ratio

    audio, rate = soundfile.read(path)
    audio = audio[:, 0] if audio.ndim > 1 else audio
    high = sosfilt(butter(8, 6000, "high", fs=rate, output="sos"), audio)
    width = round(0.01 * rate)
    energy = (high[: high.size // width * width].reshape(-1, width) ** 2).mean(1)
    reference = float(np.percentile(energy, 99))
    start = int(np.flatnonzero(np.abs(audio) > 1e-4)[0]) if np.any(np.abs(audio) > 1e-4) else 0
    echoes = [start / rate + 0.25 * k for k in range(4)]
    at_echoes = [float(energy[max(0, int(t / 0.01) - 1): int(t / 0.01) + 2].max() / reference) for t in echoes]
    body = audio[rate:]  # after the first second: the morph's steady state
    ticks = max(boundary_jump_ratio(body, boundaries_s=list(np.arange(phase, body.size / rate, 0.2)),
                                    sample_rate=rate, window_s=0.005) for phase in np.arange(0.0, 0.2, 0.005))
    return {"first_sample": float(abs(audio[0])), "level_at_25ms": float(np.abs(audio[round(0.024 * rate):
                                                                                       round(0.026 * rate)]).max()),
            "sound_starts_ms": 1e3 * start / rate, "click_prominence": float(energy.max() / reference),
            "at_echoes": [round(v, 1) for v in at_echoes], "morph_tick_ratio": float(ticks)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, extra in CASES.items():
            out = Path(folder) / f"{name}.wav"
            render(extra, args.seconds, out)
            results[name] = measure(out)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for name, row in results.items():
        print(f"{name:<13} first sample {row['first_sample']:.4f}, at 25 ms {row['level_at_25ms']:.3f} (sound from "
              f"{row['sound_starts_ms']:.1f} ms); click prominence {row['click_prominence']:.1f} (at the start and its "
              f"echoes {row['at_echoes']}); morph tick ratio {row['morph_tick_ratio']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
