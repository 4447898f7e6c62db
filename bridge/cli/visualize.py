"""``imgsonic visualize``: a sound file → images over time (a PNG sheet, an animated GIF or a folder of PNGs)."""

from __future__ import annotations

import argparse

from bridge.cli.arguments import THREADS, Number, add_model_arguments

__all__ = ["add_arguments", "run"]

# The ranges bridge.visualize checks again; here they are refused before anything loads.
FPS = Number(float, 0.1, 200.0, unit="frames per second")
SIZE_PX = Number(int, 8, 2048, unit="pixels")
WINDOW_S = Number(float, 0.0, 60.0, unit="seconds", low_open=True)
COLUMNS = Number(int, 1, 1000, unit="columns")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio", metavar="AUDIO", help="a sound file (wav, flac, ogg, mp3, aif, …), any length")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="OUT.png (a sheet of frames in time), OUT.gif (an animation) or a folder "
                             "(frame_00000.png, …); written atomically")
    parser.add_argument("--fps", type=FPS, default=10.0, metavar="F", help="frames per second of audio (default 10)")
    parser.add_argument("--size", type=SIZE_PX, default=128, metavar="PX",
                        help="side of each frame in pixels, bilinear from the model's size (default 128)")
    parser.add_argument("--window-s", type=WINDOW_S, metavar="S",
                        help="seconds of audio each frame averages (default 1/fps; at least one model window)")
    parser.add_argument("--columns", type=COLUMNS, default=10, metavar="N",
                        help="frames per row of a .png sheet (default 10)")
    parser.add_argument("--threads", type=THREADS, default=1, metavar="N", help="torch threads (default 1)")
    add_model_arguments(parser, vocoder=False)


def run(args: argparse.Namespace) -> int:
    from bridge.cli.process import reuse_freed_memory, set_threads
    from bridge.render import load_models
    from bridge.visualize import visualize_file

    set_threads(args.threads)
    reuse_freed_memory()
    loaded = load_models(preset=args.preset, image_vae=args.image_vae, audio_vae=args.audio_vae, mapper=args.mapper)
    result = visualize_file(args.audio, out_path=args.output, models=loaded.models, fps=args.fps, size_px=args.size,
                            window_s=args.window_s, columns=args.columns, progress=True)
    what = {"png": "a sheet of", "gif": "a GIF of", "folder": "a folder of"}[result.kind]
    n_frames = len(result.times_s)
    print(f"wrote {args.output}: {what} {n_frames} frame{'' if n_frames == 1 else 's'} for {result.duration_s:.2f} s "
          f"of audio with {loaded.label} ({result.duration_s / max(result.seconds, 1e-9):.3g}× real time)")
    return 0
