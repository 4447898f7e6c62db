"""``imgsonic render --loudness even|mapped|raw`` on the demo pictures, measured on the written WAV.

Usage: ``python -m benchmarks.loudness [--preset NAME] [--seconds-per-image 1] [--sr 16000] [--fx SPEC]``

The eight demo pictures (``bridge.sources.demo``) are written as PNG files, rendered by the ``imgsonic`` command
in a subprocess (as a user would) once per mode, and each WAV is measured with pyloudnorm directly (not with
the render's own meter): every image on its solo span (its slot from the ``--json`` log, less half the
crossfade at inner boundaries), the file's integrated loudness, and its true peak (4× oversampled with scipy).

Columns: per-image spread (10th–90th percentile, dB), quietest image below the loudest (dB), integrated
loudness (LUFS) and true peak (dBTP). Targets (issue 22): ``even`` spread ≤ 8 dB, quietest ≤ 20 dB below the
loudest, −16…−20 LUFS, true peak ≤ −1 dBTP.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

MODES = (("even", []), ("mapped", ["--loudness-feature", "brightness", "--loudness-range", "12"]), ("raw", []))


def measure(wav: Path, log: Path) -> tuple[np.ndarray, float, float, dict]:
    """pyloudnorm on a rendered WAV (independent of the render's own meter): each image's solo span (its slot less
    half the crossfade at inner boundaries, from the ``--json`` log) ``(n,)`` LUFS, the file's integrated loudness
    (LUFS), its true peak (dBTP, 4× oversampled with scipy), and the log."""
    import pyloudnorm
    from scipy.signal import resample_poly

    from synth.audio_io import read_audio

    audio = read_audio(wav, sample_rate=None)[0].astype(np.float64)
    entries = json.loads(log.read_text())
    rate, crossfade, images = entries["sample_rate"], entries["settings"]["crossfade_s"], entries["images"]
    per_image = []
    for index, entry in enumerate(images):
        start = entry["start_s"] + (crossfade / 2 if index > 0 else 0.0)
        end = entry["end_s"] - (crossfade / 2 if index < len(images) - 1 else 0.0)
        clip = audio[round(start * rate) : round(end * rate)]
        per_image.append(pyloudnorm.Meter(rate, block_size=min(0.4, len(clip) / rate)).integrated_loudness(clip))
    true_peak_db = 20 * math.log10(np.abs(resample_poly(audio, 4, 1)).max())
    return np.array(per_image), float(pyloudnorm.Meter(rate).integrated_loudness(audio)), true_peak_db, entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--seconds-per-image", default="1")
    parser.add_argument("--sr", default="16000")
    parser.add_argument("--fx", default="")
    args = parser.parse_args(argv)

    from PIL import Image

    from bridge.sources.demo import demo_images

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "pictures"
        folder.mkdir()
        for index, item in enumerate(demo_images()):
            Image.fromarray(item.pixels).save(folder / f"{index}.png")
        print(f"preset {args.preset}, {len(list(folder.iterdir()))} demo pictures, {args.seconds_per_image} s each, "
              f"{args.sr} Hz{', fx ' + args.fx if args.fx else ''}; measured on the WAV with pyloudnorm")
        print(f"{'--loudness':<10} {'spread p10-p90':>15} {'quietest below':>15} {'integrated':>11} {'true peak':>10}")
        for mode, extra in MODES:
            wav, log = Path(scratch) / f"{mode}.wav", Path(scratch) / f"{mode}.json"
            command = [sys.executable, "-m", "bridge", "render", str(folder), "-o", str(wav), "--json", str(log),
                       "--seconds-per-image", args.seconds_per_image, "--sr", args.sr, "--preset", args.preset,
                       "--loudness", mode, *extra, *(["--fx", args.fx] if args.fx else [])]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            per_image, integrated, true_peak_db, _ = measure(wav, log)
            spread = np.percentile(per_image, 90) - np.percentile(per_image, 10)
            print(f"{mode:<10} {spread:>12.2f} dB {np.ptp(per_image):>12.2f} dB "
                  f"{integrated:>6.1f} LUFS {true_peak_db:>5.1f} dBTP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
