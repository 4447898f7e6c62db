"""Offline ``imgsonic render`` end to end: image files decoded → audio file written, × real time, per stage.

Usage: ``python -m benchmarks.render [--preset NAME] [--images 60] [--seconds-per-image 1] [--workers 2]
[--no-reuse-memory] [--json]``

The images are PNG files written to a temporary folder (``--image-size`` pixels square, colour noise
under smooth gradients, so PNG decoding does real work); the output is a 44.1 kHz WAV there too. The
models are the preset's, or — while no such preset is shipped — randomly initialised models with the
``default`` preset's architecture and spectral config, which cost the same time (the report says which).
Like ``imgsonic render``, the process first makes the C allocator reuse freed memory
(:func:`bridge.cli.process.reuse_freed_memory`; ``--no-reuse-memory`` keeps glibc's defaults).

Columns
-------
* ``xRT wall``: audio seconds ÷ wall seconds of one whole render (median of ``--repeats``, after a warm-up);
* ``xRT cpu``: the same from the process's CPU time, which other people's jobs on a shared machine do not
  inflate (CPU time of all threads: with ``--workers 2`` it is the cost on two idle cores, summed);
* per-stage seconds: image decode, encode (prepare + image VAE + mapper + descriptors), decode to mel
  (timeline + audio VAE + mapping), vocoder, resample, fx and level, write. The render streams, so the
  stages interleave: decode to mel and vocoder are summed over the worker threads (with 2 workers they can
  add up to more than the wall time); the others run in the main thread; resample includes parking the
  first pass's audio in the spill, write the second pass's writing and committing the file.

Target (issue 4): ≥ 100× real time with the default vocoder (``pghi+fgla``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bridge.cli.process import reuse_freed_memory
from bridge.cli.render import render_files
from bridge.sonify.bundle import ModelBundle, load_bundle
from bridge.sonify.render import VOCODERS, RenderSettings
from models.errors import ImgsonicError

TARGET_XRT = 100.0
STAGES = ("image decode", "encode", "decode to mel", "vocoder", "resample", "fx and level", "write")


def _models(preset: str) -> ModelBundle:
    try:
        return load_bundle(preset=preset)
    except ImgsonicError as error:
        from models.audio_vae import AudioVAE
        from models.image_vae import ImageVAE
        from models.mapper import LatentMapper
        from models.pipeline import SonificationModels
        from training.presets import PRESET_SPECS

        spec = PRESET_SPECS["default"]
        torch.manual_seed(0)
        models = SonificationModels(image_vae=ImageVAE(spec.image_vae), audio_vae=AudioVAE(spec.audio_vae),
                                    mapper=LatentMapper(spec.mapper))
        reason = " ".join(str(error).split())
        return ModelBundle(models, None, label=f"random weights, default preset's architecture ({reason})")


def _write_images(folder: Path, *, n_images: int, size: int) -> None:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    for index in range(n_images):
        gradient = np.stack([x, y, (x + y) / 2], axis=-1) * (index % 7 + 1) / 7
        pixels = np.clip(gradient + 0.15 * rng.random((size, size, 3)), 0, 1)
        Image.fromarray((pixels * 255).astype(np.uint8)).save(folder / f"frame{index}.png")


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    reused = reuse_freed_memory() if args.reuse_memory else False  # as imgsonic render does
    loaded = _models(args.preset)
    vocoders = args.vocoders or [v for v in VOCODERS if v != "neural" or loaded.vocoder_path]
    rows = []
    with tempfile.TemporaryDirectory(prefix="imgsonic-bench-") as temporary:
        folder = Path(temporary)
        (folder / "images").mkdir()
        _write_images(folder / "images", n_images=args.images, size=args.image_size)
        for vocoder in vocoders:
            settings = RenderSettings(seconds_per_image=args.seconds_per_image, crossfade_s=args.crossfade,
                                      vocoder=vocoder, sample_rate=44100, workers=args.workers)
            warm_up = RenderSettings(seconds_per_image=0.1, crossfade_s=0.0, vocoder=vocoder)
            render_files([folder / "images" / "frame0.png"], out_path=folder / "warm.wav", bundle=loaded,
                         settings=warm_up)
            walls, cpus, stages = [], [], {stage: [] for stage in STAGES}
            for _ in range(args.repeats):
                wall, cpu = time.perf_counter(), time.process_time()
                result = render_files([folder / "images"], out_path=folder / "out.wav", bundle=loaded,
                                      settings=settings)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
                for stage in STAGES:
                    stages[stage].append(result.timings_s.get(stage, 0.0))
            audio_s = result.duration_s
            wall_s, cpu_s = statistics.median(walls), statistics.median(cpus)
            rows.append({
                "vocoder": vocoder,
                "audio_s": audio_s,
                "wall_s": wall_s,
                "cpu_s": cpu_s,
                "xrt_wall": audio_s / wall_s,
                "xrt_cpu": audio_s / cpu_s,
                "stages_s": {stage: statistics.median(times) for stage, times in stages.items()},
            })
    return {
        "models": loaded.label,
        "images": args.images,
        "image_size": args.image_size,
        "seconds_per_image": args.seconds_per_image,
        "threads": args.threads,
        "workers": args.workers,
        "repeats": args.repeats,
        "freed_memory_reused": reused,
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "target_xrt": TARGET_XRT,
        "rows": rows,
    }


def format_table(report: dict[str, Any]) -> str:
    lines = [
        f"imgsonic render: {report['images']} PNGs of {report['image_size']}² px × {report['seconds_per_image']} s "
        f"→ 44.1 kHz WAV; {report['threads']} torch thread(s) per op, {report['workers']} worker(s); median of {report['repeats']}",
        f"models: {report['models']}",
        f"allocator: {'freed memory reused (as imgsonic render)' if report['freed_memory_reused'] else 'default'}",
        f"machine: {report['cpu_count']} cores, load average {report['load_average']}",
        "",
    ]
    header = ["vocoder", "audio s", "wall s", "xRT wall", "xRT cpu"] + list(STAGES)
    table = [header]
    for row in report["rows"]:
        table.append([row["vocoder"], f"{row['audio_s']:.1f}", f"{row['wall_s']:.2f}", f"{row['xrt_wall']:.0f}",
                      f"{row['xrt_cpu']:.0f}"] + [f"{row['stages_s'][stage]:.3f}" for stage in STAGES])
    widths = [max(len(line[column]) for line in table) for column in range(len(header))]
    for line in table:
        lines.append("  ".join(cell.rjust(width) for cell, width in zip(line, widths)))
    default = next((row for row in report["rows"] if row["vocoder"] == "pghi+fgla"), None)
    if default:
        verdict = "meets" if default["xrt_wall"] >= report["target_xrt"] else "misses"
        lines += ["", f"default vocoder pghi+fgla: {default['xrt_wall']:.0f}× real time wall "
                      f"({default['xrt_cpu']:.0f}× by CPU time) — {verdict} the {report['target_xrt']:.0f}× target"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.render", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", help="preset (default: default; random weights if missing)")
    parser.add_argument("--images", type=int, default=60, help="number of images (default 60)")
    parser.add_argument("--image-size", type=int, default=256, help="side of the PNGs in pixels (default 256)")
    parser.add_argument("--seconds-per-image", type=float, default=1.0, help="default 1.0")
    parser.add_argument("--crossfade", type=float, default=0.1, help="default 0.1 s")
    parser.add_argument("--vocoders", nargs="*", choices=VOCODERS,
                        help="default: all phase methods, plus neural when the preset has a vocoder")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per operation (default 1)")
    parser.add_argument("--workers", type=int, default=2,
                        help="images decoded and vocoder pieces rendered at once, as imgsonic render --workers (default 2)")
    parser.add_argument("--no-reuse-memory", dest="reuse_memory", action="store_false",
                        help="keep the C allocator's defaults (imgsonic render makes it reuse freed memory)")
    parser.add_argument("--repeats", type=int, default=3, help="timed renders per vocoder, median taken (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    report = run_benchmark(args)
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
