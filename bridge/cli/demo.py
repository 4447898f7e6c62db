"""``imgsonic demo``: the bundled example images with a preset → demo.wav, demo.mid and demo.png."""

from __future__ import annotations

import argparse
import time

from bridge.cli.arguments import THREADS
from bridge.cli.render import VOCODER_CHOICES

__all__ = ["add_arguments", "run"]

DEFAULT_OUTPUT_DIR = "imgsonic-demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output-dir", default=DEFAULT_OUTPUT_DIR, metavar="DIR",
                        help=f"where to write demo.wav, demo.mid and demo.png (default: ./{DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--preset", default="default", help="preset to render with (default: default)")
    parser.add_argument("--vocoder", choices=VOCODER_CHOICES, default="pghi+fgla", help="default: pghi+fgla")
    parser.add_argument("--threads", type=THREADS, default=1, metavar="N", help="torch threads (default: 1)")


def run(args: argparse.Namespace) -> int:
    from bridge.cli.process import reuse_freed_memory, set_threads
    from bridge.demo import demo_images, run_demo

    set_threads(args.threads)
    reuse_freed_memory()
    clock = time.perf_counter()
    paths = run_demo(out_dir=args.output_dir, preset=args.preset, vocoder=args.vocoder)
    print(f"rendered {len(demo_images())} example images with preset {args.preset!r} "
          f"in {time.perf_counter() - clock:.1f} s:")
    for kind, path in paths.items():
        print(f"  {kind}: {path.resolve()}")
    return 0
