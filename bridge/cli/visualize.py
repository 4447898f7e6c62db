"""``imgsonic visualize``: a sound file → images over time (a PNG sheet, an animated GIF or a folder of PNGs)."""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.cli.arguments import THREADS, Number, add_model_arguments
from models.errors import InputError, ParameterError

if TYPE_CHECKING:
    import numpy as np

    from models.pipeline import SonificationModels

__all__ = ["add_arguments", "run", "visualize_file", "VisualizeResult"]

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
    parser.add_argument("--allow-truncated", action="store_true",
                        help="read a WAV/AIFF file cut short (its header claims more than it holds) up to where it "
                             "ends, instead of refusing it")
    add_model_arguments(parser, vocoder=False)


@dataclass
class VisualizeResult:
    """What :func:`visualize_file` made: ``times_s`` ``(n,)``, ``z_img`` ``(n, Di)``, ``z_aud`` ``(n, Da)``."""

    out_path: Path
    kind: str  # "png", "gif" or "folder"
    duration_s: float
    times_s: np.ndarray
    z_aud: np.ndarray
    z_img: np.ndarray
    seconds: float


def visualize_file(
    audio_path: str | os.PathLike,
    *,
    out_path: str | os.PathLike,
    models: SonificationModels,
    fps: float = 10.0,
    size_px: int = 128,
    window_s: float | None = None,
    columns: int = 10,
    allow_truncated: bool = False,
    progress: bool = False,
) -> VisualizeResult:
    """``imgsonic visualize``: analyse ``audio_path`` and write ``out_path`` (.png sheet, .gif, or a folder).

    Any format :func:`synth.audio_io.read_audio` reads, any length (read and analysed in one-second blocks).
    The output is checked before the analysis starts and written atomically at the end.

    Raises
    ------
    InputError : the audio file is missing, not audio, corrupt, empty, truncated (unless ``allow_truncated``),
        or holds NaN/inf samples.
    ParameterError : a bad output path or option, or more frames than a .png/.gif holds.
    OutputError : the output cannot be written (full disk, no permission, read-only folder).
    """
    import numpy as np

    from bridge.io.frames import (
        check_frame_count,
        output_kind,
        write_folder,
        write_image_file,
    )
    from bridge.sonify.reverse import (
        READ_BLOCK_S,
        Frame,
        StreamingVisualizer,
        image_to_pixels,
    )
    from synth.audio_io import read_audio_blocks, read_audio_info

    started = time.perf_counter()
    audio_path, out_path = Path(audio_path), Path(out_path)
    kind = output_kind(out_path)
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ParameterError(f"columns={columns!r}; expected an int ≥ 1")
    image_to_pixels(np.zeros((1, 1, 1), dtype=np.float32), size_px=size_px)  # checks size_px before the work
    info = read_audio_info(audio_path, allow_truncated=allow_truncated)
    if info.n_samples == 0:
        raise InputError(f"audio file {str(audio_path)!r} contains no samples; expected audio with at least one sample")
    expected_frames = max(1, math.ceil(info.duration_s * fps - 1e-9))
    analyser = StreamingVisualizer(models, sample_rate=info.sample_rate, fps=fps, window_s=window_s)
    check_frame_count(kind, expected_frames, duration_s=info.duration_s, fps=analyser.fps)

    from tqdm import tqdm

    bar = tqdm(total=expected_frames, desc="visualize", unit="frame", disable=None if progress else True)
    frames_kept: list[Frame] = []
    n_samples = 0

    def analysed() -> Iterator[Frame]:
        nonlocal n_samples
        for block, _ in read_audio_blocks(audio_path, block_s=READ_BLOCK_S, allow_truncated=allow_truncated):
            n_samples += len(block)
            for frame in analyser.push(block):
                bar.update(1)
                yield frame
        if n_samples == 0:
            raise InputError(f"audio file {str(audio_path)!r} contains no samples; expected audio with at least one sample")
        for frame in analyser.finish():
            bar.update(1)
            yield frame

    def pixels_of(frames: Iterator[Frame]) -> Iterator[tuple[int, np.ndarray]]:
        for frame in frames:
            frames_kept.append(Frame(frame.index, frame.time_s, frame.z_aud, frame.z_img, image=np.zeros(0)))
            yield frame.index, image_to_pixels(frame.image, size_px=size_px)

    try:
        if kind == "folder":
            write_folder(out_path, pixels_of(analysed()))
        else:
            pixels = [p for _, p in pixels_of(analysed())]
            write_image_file(out_path, kind, pixels, [f.time_s for f in frames_kept], fps=analyser.fps, columns=columns)
    finally:
        bar.close()
    return VisualizeResult(
        out_path=out_path,
        kind=kind,
        duration_s=n_samples / info.sample_rate,
        times_s=np.array([f.time_s for f in frames_kept]),
        z_aud=np.stack([f.z_aud for f in frames_kept]),
        z_img=np.stack([f.z_img for f in frames_kept]),
        seconds=time.perf_counter() - started,
    )



def run(args: argparse.Namespace) -> int:
    from bridge.cli.process import reuse_freed_memory, set_threads
    from bridge.sonify.bundle import load_bundle

    set_threads(args.threads)
    reuse_freed_memory()
    bundle = load_bundle(preset=args.preset, image_vae=args.image_vae, audio_vae=args.audio_vae, mapper=args.mapper)
    result = visualize_file(args.audio, out_path=args.output, models=bundle.models, fps=args.fps, size_px=args.size,
                            window_s=args.window_s, columns=args.columns, allow_truncated=args.allow_truncated,
                            progress=True)
    what = {"png": "a sheet of", "gif": "a GIF of", "folder": "a folder of"}[result.kind]
    n_frames = len(result.times_s)
    print(f"wrote {args.output}: {what} {n_frames} frame{'' if n_frames == 1 else 's'} for {result.duration_s:.2f} s "
          f"of audio with {bundle.label} ({result.duration_s / max(result.seconds, 1e-9):.3g}× real time)")
    return 0
