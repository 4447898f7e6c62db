"""Neural vocoder vs phase reconstruction, all from the same mels: quality and speed in one run.

Usage: ``python -m benchmarks.vocoder [--preset NAME | --checkpoint PATH] [--json]``

All methods use the vocoder checkpoint's spectral config (by default the ``default`` preset's vocoder). Sounds (none seen in training): held-out synth clips (sine, FM with envelopes and vibrato, noise bursts;
the training script's held-out seed) and the held-out last 20 % of each recording pyo ships.

Methods: ``neural`` (the checkpoint's magnitudes with PGHI phase: what streams), ``neural+fgla`` (then
``FGLA_ITERATIONS`` fast Griffin-Lim iterations that re-fit the bands above the mel's floor), ``pghi+fgla`` (``synth.phase.mel_to_audio``'s
default), ``pghi`` (PGHI alone on the pseudo-inverse magnitude: what the neural magnitudes replace) and
``griffinlim-100`` (``torchaudio.transforms.GriffinLim``, 100 iterations, on the pseudo-inverse magnitude).

A last quality row, ``true mag+pghi``, is not a vocoder: PGHI phase on the true STFT magnitudes of each
clip (not its mel). It is the ceiling of every vocoder that predicts magnitudes and takes PGHI's phase, as
``neural`` does: a perfect magnitude model would score it.

Columns
-------
* ``mel_l1``: log-mel L1 between the input mel and the mel of the output, in normalised units (× 120 for dB
  with the default config's range);
* ``sc``, ``log_mag``: multi-resolution STFT distance to the true audio (``training.metrics``: spectral
  convergence and log-magnitude L1, FFT 512/1024/2048); ``mrstft`` is their sum;
* ``xRT wall``: × real time offline on ``--threads`` threads (10 s of audio, median of ``--repeats``);
  ``xRT cpu1``: the same from one thread's CPU time, which a busy shared machine does not inflate;
  ``xRT render``: × real time the way ``imgsonic render --workers N`` runs the vocoder on a long sequence
  (``--render-seconds`` of audio in its 15 s pieces, ``--workers`` pieces at once, one thread each; wall
  clock, median of 3): the other way to use two cores offline, and the one renders use;
* streaming cost per hop on one thread, pushing chunks of ``--chunk-frames`` frames (wall and CPU time);
* ``gpu xRT``: batched throughput on CUDA, when present.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np
import torch
import torchaudio
from threadpoolctl import threadpool_limits

from bridge.sonify.render import RenderSettings, vocode_in_pieces
from synth.phase import mel_to_audio, pghi_phase
from synth.spectral import (
    SpectralConfig,
    audio_to_magnitude,
    audio_to_mel,
    mel_to_magnitude,
    normalized_db_to_amplitude,
    stft_to_audio,
)
from synth.streaming import StreamingInverter
from synth.vocoder import FGLA_ITERATIONS, NeuralVocoder
from training.metrics import log_mel_l1, multi_resolution_stft_distance
from training.train_vocoder import (
    HELD_OUT_SEED,
    SYNTH_KINDS,
    load_recordings,
    render_synth,
)

METHODS = ("neural", "neural+fgla", "pghi+fgla", "pghi", "griffinlim-100")
CEILING = "true mag+pghi"  # quality only: PGHI on the clip's true magnitudes
NEURAL = ("neural", "neural+fgla")
QUALITY_TARGET = 0.7  # neural ≤ 0.7 × pghi+fgla on both distances (issue 5)


def held_out_sounds(*, config: SpectralConfig, n_per_kind: int, clip_s: float, seed: int = 0,
                    min_recording_s: float = 0.25) -> dict[str, list[np.ndarray]]:
    """``{"synth": [...], "recordings": [...]}`` of 1-D float32 clips at the config's rate.

    Recordings whose held-out part is shorter than ``min_recording_s`` are left out.
    """
    min_samples = max(int(min_recording_s * config.sample_rate), config.n_fft)
    n_samples = int(clip_s * config.sample_rate)
    synth = []
    for index, kind in enumerate(SYNTH_KINDS):
        # another seed than the training script's held-out pool, from the same held-out seed range
        clips = render_synth(kind, n_examples=n_per_kind, n_samples=n_samples, sample_rate=config.sample_rate,
                             band_hz=(config.f_min_hz, config.f_max_hz),
                             seed=seed * 10 + index + HELD_OUT_SEED + 7)
        synth += list(clips)
    # a few files are so short that their last 20 % is under a window long: too short to judge anything
    recordings = [held for _, held in load_recordings(config=config).values() if len(held) >= min_samples]
    return {"synth": synth, "recordings": recordings}


def make_methods(vocoder: NeuralVocoder, *, config: SpectralConfig) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    griffinlim = torchaudio.transforms.GriffinLim(n_fft=config.n_fft, hop_length=config.hop_length, power=1.0,
                                                  n_iter=100, momentum=0.99, length=None)

    def griffinlim_100(mel: torch.Tensor) -> torch.Tensor:
        magnitude = mel_to_magnitude(normalized_db_to_amplitude(mel, config=config), config=config)
        return griffinlim(magnitude)

    return {
        "neural": vocoder.vocode,
        "neural+fgla": lambda mel: vocoder.vocode(mel, n_iter=FGLA_ITERATIONS),
        "pghi+fgla": lambda mel: mel_to_audio(mel, config=config, method="pghi+fgla"),
        "pghi": lambda mel: mel_to_audio(mel, config=config, method="pghi"),
        "griffinlim-100": griffinlim_100,
    }


def true_magnitude_pghi(audio: torch.Tensor, *, config: SpectralConfig) -> torch.Tensor:
    """PGHI phase on the true STFT magnitudes of ``audio`` (1-D) → audio: the :data:`CEILING` row."""
    magnitude = audio_to_magnitude(audio, config=config)[None]
    return stft_to_audio(torch.polar(magnitude, pghi_phase(magnitude, config=config)), config=config)[0]


def quality(methods: dict[str, Callable], sounds: list[np.ndarray], *, config: SpectralConfig,
            ceiling: bool = False) -> dict[str, dict[str, float]]:
    """Mean ``mel_l1``, ``sc``, ``log_mag``, ``mrstft`` per method over ``sounds`` (and the :data:`CEILING`
    row last, with ``ceiling``)."""
    names = list(methods) + ([CEILING] if ceiling else [])
    sums = {name: {"mel_l1": 0.0, "sc": 0.0, "log_mag": 0.0} for name in names}
    for clip in sounds:
        audio = torch.from_numpy(np.ascontiguousarray(clip))
        mel = audio_to_mel(audio, config=config)
        n_frames = mel.shape[-1]
        for name in names:
            output = (true_magnitude_pghi(audio, config=config) if name == CEILING else methods[name](mel)).float().cpu()
            n = min(len(audio), output.shape[-1])
            sums[name]["mel_l1"] += float(log_mel_l1(mel, audio_to_mel(output, config=config)[..., :n_frames]))
            distance = multi_resolution_stft_distance(output[:n], audio[:n])
            sums[name]["sc"] += float(distance["spectral_convergence"])
            sums[name]["log_mag"] += float(distance["log_magnitude_l1"])
    result = {}
    for name, totals in sums.items():
        means = {key: value / len(sounds) for key, value in totals.items()}
        means["mrstft"] = means["sc"] + means["log_mag"]
        result[name] = means
    return result


def _median_seconds(function: Callable[[], Any], *, repeats: int, clock: Callable[[], float] = time.perf_counter) -> float:
    function()  # warm-up: caches, allocator, lazy initialisation
    times = []
    for _ in range(repeats):
        started = clock()
        function()
        times.append(clock() - started)
    return statistics.median(times)


def offline_speed(methods: dict[str, Callable], mel: torch.Tensor, *, seconds: float, threads: int,
                  repeats: int, clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """× real time of each method on ``mel`` (``seconds`` of audio) with ``threads`` torch threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return {name: seconds / _median_seconds(lambda m=method: m(mel), repeats=repeats, clock=clock)
                for name, method in methods.items()}
    finally:
        torch.set_num_threads(previous)


def render_speed(methods: dict[str, Callable], mel: torch.Tensor, *, seconds: float, workers: int,
                 config: SpectralConfig, repeats: int = 3) -> dict[str, float]:
    """× real time of each method on ``mel`` (``seconds`` of audio) as ``imgsonic render`` runs it: the
    render's pieces and overlap (:class:`bridge.render.RenderSettings`), ``workers`` at once, one torch
    thread each."""
    chunk_frames, overlap_frames = RenderSettings().piece_frames(config.sample_rate / config.hop_length)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {name: seconds / _median_seconds(
                    lambda m=method: vocode_in_pieces(m, mel, hop=config.hop_length, chunk_frames=chunk_frames,
                                                      overlap_frames=overlap_frames, workers=workers, progress=False),
                    repeats=repeats)
                for name, method in methods.items()}
    finally:
        torch.set_num_threads(previous)


def streaming_cost_ms(vocoder: NeuralVocoder, mel: torch.Tensor, *, chunk_frames: int, config: SpectralConfig,
                      clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Milliseconds per hop on one thread (one torch thread and one BLAS thread, as live runs them): the neural
    stream in chunks, and the PGHI streaming inverter."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        n_frames = mel.shape[-1]

        def neural() -> None:
            stream = vocoder.stream()
            for start in range(0, n_frames, chunk_frames):
                stream.push(mel[:, start : start + chunk_frames])
            stream.flush()

        def pghi() -> None:
            inverter = StreamingInverter(config=config)
            for start in range(0, n_frames, chunk_frames):
                inverter.push(mel[:, start : start + chunk_frames])
            inverter.flush()

        with threadpool_limits(limits=1, user_api="blas"):
            return {
                "neural": 1e3 * _median_seconds(neural, repeats=3, clock=clock) / n_frames,
                "pghi (StreamingInverter)": 1e3 * _median_seconds(pghi, repeats=3, clock=clock) / n_frames,
            }
    finally:
        torch.set_num_threads(previous)


def gpu_throughput(vocoder: NeuralVocoder, mel: torch.Tensor, *, seconds: float, batch_size: int = 64) -> float | None:
    """× real time of the whole neural vocoder with its model on CUDA, for a batch of ``batch_size`` mels
    (PGHI's recursion still runs on the CPU), or None without CUDA."""
    if not torch.cuda.is_available():
        return None
    vocoder.model.to("cuda")
    batch = mel.to("cuda")[None].expand(batch_size, -1, -1).contiguous()

    def run() -> None:
        vocoder.vocode(batch)
        torch.cuda.synchronize()

    elapsed = _median_seconds(run, repeats=5)
    vocoder.model.to("cpu")
    return batch_size * seconds / elapsed


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    if args.checkpoint:
        path = args.checkpoint
    else:
        from models.registry import load_preset

        path = load_preset(args.preset).vocoder
        if path is None:
            raise SystemExit(f"benchmarks.vocoder: preset {args.preset!r} has no vocoder; give --checkpoint PATH")
    vocoder = NeuralVocoder.from_checkpoint(path)
    config = vocoder.config  # every method runs on the mels the vocoder was trained for
    methods = make_methods(vocoder, config=config)
    torch.set_num_threads(args.threads)
    sounds = held_out_sounds(config=config, n_per_kind=args.n_per_kind, clip_s=args.clip_s)
    report: dict[str, Any] = {
        "checkpoint": str(path),
        "parameters": sum(p.numel() for p in vocoder.model.parameters()),
        "spectral": f"{config.sample_rate} Hz, n_fft {config.n_fft}, hop {config.hop_length}, {config.n_mels} mels",
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "quality": {group: quality(methods, clips, config=config, ceiling=True) for group, clips in sounds.items()},
        "n_sounds": {group: len(clips) for group, clips in sounds.items()},
    }
    ratios: dict[str, dict[str, dict[str, float]]] = {}
    for name in (*NEURAL, CEILING):
        ratios[name] = {group: {key: table[name][key] / table["pghi+fgla"][key] for key in ("mel_l1", "mrstft")}
                        for group, table in report["quality"].items()}
    report["over_pghi_fgla"] = ratios
    report["quality_target_met"] = {name: all(r <= QUALITY_TARGET for group in ratios[name].values()
                                              for r in group.values()) for name in NEURAL}

    rng = np.random.default_rng(0)
    long_audio = np.concatenate(sounds["synth"] + sounds["recordings"])
    n_samples = int(args.seconds * config.sample_rate)
    start = int(rng.integers(0, max(1, len(long_audio) - n_samples)))
    speed_mel = audio_to_mel(torch.from_numpy(np.resize(long_audio[start:], n_samples)), config=config)
    report["offline_xrt"] = offline_speed(methods, speed_mel, seconds=args.seconds, threads=args.threads,
                                          repeats=args.repeats)
    report["stream_ms_per_hop"] = streaming_cost_ms(vocoder, speed_mel, chunk_frames=args.chunk_frames, config=config)
    # On a shared machine wall clock also counts time spent waiting for a core; one thread's CPU time does not,
    # so it is what the code costs when it has a core to itself.
    report["offline_xrt_1thread_cpu_time"] = offline_speed(methods, speed_mel, seconds=args.seconds, threads=1,
                                                           repeats=args.repeats, clock=time.process_time)
    report["stream_ms_per_hop_cpu_time"] = streaming_cost_ms(vocoder, speed_mel, chunk_frames=args.chunk_frames,
                                                             config=config, clock=time.process_time)
    # last of the CPU runs: its worker threads must not share the cores with the timings above
    render_samples = int(args.render_seconds * config.sample_rate)
    render_mel = audio_to_mel(torch.from_numpy(np.resize(long_audio[start:], render_samples)), config=config)
    report["render_workers"] = args.workers
    report["render_xrt"] = render_speed(methods, render_mel, seconds=args.render_seconds, workers=args.workers,
                                        config=config)
    report["gpu_batched_xrt"] = gpu_throughput(vocoder, speed_mel, seconds=args.seconds)
    return report


def format_table(report: dict[str, Any]) -> str:
    lines = [f"checkpoint {report['checkpoint']} ({report['parameters']:,} parameters; {report['spectral']}); "
             f"load average at start {report['load_average']}"]
    header = (f"{'sounds':<16} {'method':<16} {'mel_l1':>8} {'sc':>7} {'log_mag':>8} {'mrstft':>8} "
              f"{'xRT wall':>9} {'xRT cpu1':>9} {'xRT render':>10}")
    lines += [header, "-" * len(header)]
    for group, table in report["quality"].items():
        for name, row in table.items():
            speeds = (f"{report['offline_xrt'][name]:>9.1f} {report['offline_xrt_1thread_cpu_time'][name]:>9.1f} "
                      f"{report['render_xrt'][name]:>10.1f}" if name in report["offline_xrt"] else f"{'-':>9} {'-':>9} {'-':>10}")
            lines.append(f"{group + ' (' + str(report['n_sounds'][group]) + ')':<16} {name:<16} {row['mel_l1']:>8.4f} "
                         f"{row['sc']:>7.3f} {row['log_mag']:>8.3f} {row['mrstft']:>8.3f} {speeds}")
    for name, by_group in report["over_pghi_fgla"].items():
        for group, ratio in by_group.items():
            target = f" (target ≤ {QUALITY_TARGET})" if name in NEURAL else " (the ceiling of magnitudes + PGHI phase)"
            lines.append(f"{name} / pghi+fgla on {group}: mel_l1 × {ratio['mel_l1']:.2f}, "
                         f"mrstft × {ratio['mrstft']:.2f}{target}")
    lines.append(f"xRT render: {report['render_workers']} workers × 1 thread on 15 s pieces, as imgsonic render runs it")
    for name, cost in report["stream_ms_per_hop"].items():
        cpu = report["stream_ms_per_hop_cpu_time"][name]
        lines.append(f"streaming {name}: {cost:.3f} ms per hop wall, {cpu:.3f} ms CPU time (1 thread)")
    gpu = report["gpu_batched_xrt"]
    lines.append("GPU batched: " + (f"{gpu:.0f}× real time" if gpu is not None else "no CUDA here"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.vocoder", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", help="benchmark this preset's vocoder (default: default)")
    parser.add_argument("--checkpoint", help="vocoder checkpoint (instead of a preset's)")
    parser.add_argument("--threads", type=int, default=2, help="threads for the offline runs (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method, median taken (default 5)")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio length for the speed runs (default 10)")
    parser.add_argument("--render-seconds", type=float, default=60.0,
                        help="audio length for the render-path speed run, in the render's 15 s pieces (default 60)")
    parser.add_argument("--workers", type=int, default=2,
                        help="pieces at once in the render-path speed run, one thread each (default 2)")
    parser.add_argument("--chunk-frames", type=int, default=8, help="frames per streaming push (default 8)")
    parser.add_argument("--n-per-kind", type=int, default=4, help="held-out synth clips per kind (default 4)")
    parser.add_argument("--clip-s", type=float, default=2.0, help="length of each synth clip (default 2 s)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    report = run_benchmark(args)
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
