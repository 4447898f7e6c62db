"""Phase-reconstruction benchmark: our methods against torchaudio's and librosa's Griffin-Lim.

On the same 10-second signals — synthetic (FM with vibrato, a sum of sines, noise bursts) and recordings
that pyo ships (flute, drum loop, a voice, music) — every method reconstructs audio twice: from the true
STFT magnitude, and from the normalised log-mel (through the pseudo-inverse, as the models' output is).
For each it reports seconds and × real time (2 threads, median of ``--repeats``), spectral convergence
against the true magnitude, and mel consistency (mean |Δ| in dB between the input log-mel and the log-mel of
the reconstruction). Then the streaming inverter's per-hop cost on one thread, and, with CUDA, batched GPU
throughput.

Usage::

    python benchmarks/phase.py            # table
    python benchmarks/phase.py --json     # one JSON object
    python benchmarks/phase.py --n-mels 80 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchaudio
from threadpoolctl import threadpool_limits

from synth.audio_io import read_audio
from synth.phase import DEFAULT_N_ITER, magnitude_to_audio, mel_to_audio
from synth.sources import FMParams, SineParams, render_fm, render_noise_bursts, render_sines
from synth.spectral import (
    SpectralConfig,
    amplitude_to_normalized_db,
    audio_to_magnitude,
    audio_to_mel,
    magnitude_to_mel,
    mel_to_magnitude,
    normalized_db_to_amplitude,
)
from synth.streaming import StreamingInverter
from training.metrics import log_mel_l1, spectral_convergence

SECONDS = 10.0
RECORDINGS = {  # name → file in pyo's bundled sounds
    "flute": "flute.aif",
    "drum loop": "drumloop.wav",
    "voice": "ounkmaster.aif",
    "music": "baseballmajeur_m.aif",
}
DEFAULT = "pghi+fgla"
REFERENCE = "torchaudio GL-100"


def _pyo_sound(filename: str) -> Path:
    with contextlib.redirect_stdout(io.StringIO()):  # pyo announces its GUI toolkit on import
        import pyo
    for folder in ("lib/snds", "examples/snds"):
        path = Path(pyo.__file__).parent / folder / filename
        if path.exists():
            return path
    raise FileNotFoundError(f"pyo does not ship {filename}")


def make_signals(config: SpectralConfig, *, names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """The benchmark signals, each ``SECONDS`` long at the config's rate, peak-normalised to -1 dBFS."""
    sr, n = config.sample_rate, int(SECONDS * config.sample_rate)
    signals = {
        "FM + vibrato": render_fm(
            FMParams(f0_hz=196.0, ratio=2.0, index=2.5, peak_db=-6.0, vibrato_rate_hz=5.5, vibrato_depth_cents=40.0),
            sample_rate=sr,
            n_samples=n,
        )[0],
        "sum of sines": render_sines(
            SineParams(f0_hz=[110.0, 220.0, 277.2, 329.6, 440.0, 1318.5], peak_db=[-12, -9, -15, -15, -12, -24]),
            sample_rate=sr,
            n_samples=n,
        ).sum(axis=0),
        "noise bursts": render_noise_bursts(n_examples=1, seed=7, sample_rate=sr, n_samples=n, bursts_per_example=25)[0],
    }
    for name, filename in RECORDINGS.items():
        audio = read_audio(_pyo_sound(filename), sample_rate=sr, channels=1)[0]
        signals[name] = np.tile(audio, math.ceil(n / audio.size))[:n]
    out = {}
    for name, audio in signals.items():
        if names and name not in names:
            continue
        audio = torch.from_numpy(np.asarray(audio, dtype=np.float32))
        out[name] = audio * (10 ** (-1 / 20) / audio.abs().max())
    return out


def reconstruction_methods(config: SpectralConfig) -> dict[str, Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]]:
    """name → function(magnitude (K, T), mel (n_mels, T) or None) → audio.

    From the mel, our methods run :func:`synth.phase.mel_to_audio` (the estimated magnitude keeps being
    re-fitted to the mel); the other libraries take the same estimated magnitude and hold it fixed.
    """

    def ours(method: str, n_iter: int | None = None) -> Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]:
        def run(mag: torch.Tensor, mel: torch.Tensor | None) -> torch.Tensor:
            if mel is None:
                return magnitude_to_audio(mag, config=config, method=method, n_iter=n_iter)
            return mel_to_audio(mel, config=config, method=method, n_iter=n_iter)

        return run

    methods = {"pghi": ours("pghi"), DEFAULT: ours(DEFAULT), "ours GL-32": ours("griffinlim", 32)}
    for n_iter in (32, 100):
        transform = torchaudio.transforms.GriffinLim(
            n_fft=config.n_fft, hop_length=config.hop_length, n_iter=n_iter, power=1.0, momentum=0.99
        )
        methods[f"torchaudio GL-{n_iter}"] = lambda mag, mel, t=transform: t(mag)
    try:
        import librosa
    except ImportError:
        return methods
    methods["librosa GL-32"] = lambda mag, mel: torch.from_numpy(
        librosa.griffinlim(mag.numpy(), n_iter=32, hop_length=config.hop_length, n_fft=config.n_fft, momentum=0.99, random_state=0)
    )
    return methods


def _quality(audio: torch.Tensor, magnitude: torch.Tensor, mel: torch.Tensor, config: SpectralConfig) -> dict:
    n_frames = magnitude.shape[-1]
    audio = audio[..., : (n_frames - 1) * config.hop_length + 1]  # every method's output cut to the same span
    rebuilt_mag = audio_to_magnitude(audio, config=config)[..., :n_frames]
    rebuilt_mel = amplitude_to_normalized_db(magnitude_to_mel(rebuilt_mag, config=config), config=config)
    db_range = config.db_ceiling - config.db_floor
    return {
        "spectral_convergence": float(spectral_convergence(rebuilt_mag, magnitude)),
        "mel_l1_db": float(log_mel_l1(rebuilt_mel, mel)) * db_range,
    }


def run_offline(config: SpectralConfig, signals: dict[str, torch.Tensor], *, repeats: int) -> list[dict]:
    """Every method on every signal, from both sources; timed round-robin.

    The methods take turns within each repeat, so a burst of load from other processes on a shared
    machine slows all of them alike instead of one method's whole series. Wall-clock and process CPU
    time (all threads) are both recorded; medians over the repeats.
    """
    rows = []
    methods = reconstruction_methods(config)
    for signal_name, audio in signals.items():
        magnitude = audio_to_magnitude(audio, config=config)
        mel = audio_to_mel(audio, config=config)
        from_mel = mel_to_magnitude(normalized_db_to_amplitude(mel, config=config), config=config)
        cases = [
            (source, method_name, method, mag, given_mel)
            for source, mag, given_mel in (("magnitude", magnitude, None), ("mel", from_mel, mel))
            for method_name, method in methods.items()
        ]
        wall: dict[int, list[float]] = {i: [] for i in range(len(cases))}
        cpu: dict[int, list[float]] = {i: [] for i in range(len(cases))}
        outputs: dict[int, torch.Tensor] = {}
        for _ in range(repeats):
            for i, (_, _, method, mag, given_mel) in enumerate(cases):
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                outputs[i] = method(mag, given_mel)
                wall[i].append(time.perf_counter() - start_wall)
                cpu[i].append(time.process_time() - start_cpu)
        for i, (source, method_name, _, _, _) in enumerate(cases):
            seconds = statistics.median(wall[i])
            rows.append({
                "signal": signal_name,
                "source": source,
                "method": method_name,
                "seconds": seconds,
                "cpu_seconds": statistics.median(cpu[i]),
                "x_real_time": SECONDS / seconds,
                **_quality(outputs[i], magnitude, mel, config),
            })
            print(f"  {signal_name:13s} {source:9s} {method_name:18s} {seconds:7.3f}s", file=sys.stderr)
    return rows


def summarise(rows: list[dict]) -> dict:
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for source in ("magnitude", "mel"):
        summary[source] = {}
        for method in dict.fromkeys(r["method"] for r in rows):
            sel = [r for r in rows if r["source"] == source and r["method"] == method]
            summary[source][method] = {
                "seconds": statistics.mean(r["seconds"] for r in sel),
                "x_real_time": SECONDS * len(sel) / sum(r["seconds"] for r in sel),
                "cpu_seconds": statistics.mean(r["cpu_seconds"] for r in sel),
                "spectral_convergence": statistics.mean(r["spectral_convergence"] for r in sel),
                "mel_l1_db": statistics.mean(r["mel_l1_db"] for r in sel),
            }
    return summary


def run_streaming(config: SpectralConfig, audio: torch.Tensor, *, frames_per_push: int = 1) -> dict:
    """Per-hop cost of the streaming inverter on one thread — torch's and BLAS's both, as in the live path."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    mel = audio_to_mel(audio, config=config).numpy()
    inverter = StreamingInverter(config=config)
    wall, cpu = [], []
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, mel.shape[-1] - frames_per_push + 1, frames_per_push):
            block = mel[:, start : start + frames_per_push]
            t_wall, t_cpu = time.perf_counter(), time.thread_time()
            inverter.push(block)
            wall.append((time.perf_counter() - t_wall) * 1e3 / frames_per_push)
            cpu.append((time.thread_time() - t_cpu) * 1e3 / frames_per_push)
    torch.set_num_threads(previous)
    return {
        "frames_per_push": frames_per_push,
        "hop_ms": 1e3 * config.hop_length / config.sample_rate,
        "median_ms": float(np.median(wall)),
        "p99_ms": float(np.percentile(wall, 99)),
        "cpu_median_ms": float(np.median(cpu)),
        "cpu_p99_ms": float(np.percentile(cpu, 99)),
        # the inverter's own delay plus the frames a caller collects before each push
        "latency_ms": 1e3 * (inverter.latency_samples + (frames_per_push - 1) * config.hop_length) / config.sample_rate,
    }


def run_gpu(config: SpectralConfig, audio: torch.Tensor, *, batch: int = 64) -> dict | None:
    if not torch.cuda.is_available():
        return None
    mel = audio_to_mel(audio, config=config).cuda().expand(batch, -1, -1).contiguous()
    mel_to_audio(mel[:2], config=config)  # warm-up (cuFFT plans)
    torch.cuda.synchronize()
    start = time.perf_counter()
    mel_to_audio(mel, config=config)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"device": torch.cuda.get_device_name(0), "batch": batch, "seconds": seconds,
            "x_real_time": batch * SECONDS / seconds}


def _print_table(result: dict) -> None:
    cfg = result["config"]
    print(f"\nPhase reconstruction — {SECONDS:.0f} s signals, {cfg['sample_rate']} Hz, n_fft {cfg['n_fft']}, "
          f"hop {cfg['hop_length']}, {cfg['n_mels']} mels; {result['threads']} threads, median of {result['repeats']}; "
          f"load average at start {result['load_average']:.2f}; default = PGHI + {DEFAULT_N_ITER[DEFAULT]} "
          f"mel-consistent fast Griffin-Lim iterations")
    for source in ("magnitude", "mel"):
        print(f"\nfrom the {'true STFT magnitude' if source == 'magnitude' else 'log-mel (pseudo-inverse)'} — mean over signals")
        print(f"{'method':20s} {'× real time':>12s} {'CPU s / 10 s':>13s} {'spectral conv.':>15s} {'mel L1 (dB)':>12s}")
        for method, s in result["summary"][source].items():
            print(f"{method:20s} {s['x_real_time']:12.1f} {s['cpu_seconds']:13.3f} {s['spectral_convergence']:15.3f} "
                  f"{s['mel_l1_db']:12.2f}")
    print("\nper signal, from the log-mel: spectral convergence / mel L1 dB")
    methods = list(result["summary"]["mel"])
    print(f"{'signal':14s}" + "".join(f"{m:>20s}" for m in methods))
    for signal in dict.fromkeys(r["signal"] for r in result["rows"]):
        cells = {r["method"]: r for r in result["rows"] if r["signal"] == signal and r["source"] == "mel"}
        print(f"{signal:14s}" + "".join(
            f"{cells[m]['spectral_convergence']:>11.3f} /{cells[m]['mel_l1_db']:>6.2f}" for m in methods))
    print()
    for s in result["streaming"]:
        print(f"streaming inverter (1 thread, {s['frames_per_push']} frame(s) per push): per hop median {s['median_ms']:.3f} ms, "
              f"p99 {s['p99_ms']:.3f} ms (CPU time {s['cpu_median_ms']:.3f} / {s['cpu_p99_ms']:.3f} ms); hop is "
              f"{s['hop_ms']:.1f} ms; latency {s['latency_ms']:.1f} ms")
    if result["gpu"]:
        g = result["gpu"]
        print(f"GPU ({g['device']}): batch {g['batch']} × {SECONDS:.0f} s in {g['seconds']:.3f} s = {g['x_real_time']:.0f}× real time")
    t = result["targets"]
    print(f"\ntargets: default ({DEFAULT}) from mel — mel L1 {t['default_mel_l1_db']:.2f} dB vs {REFERENCE} "
          f"{t['reference_mel_l1_db']:.2f} dB: {'PASS' if t['quality_pass'] else 'FAIL'}; speed "
          f"{t['speedup_vs_reference']:.1f}× {REFERENCE} (need ≥ 3): {'PASS' if t['speed_pass'] else 'FAIL'}; "
          "streaming median ≤ 0.5 ms and p99 ≤ 1 ms, by frames per push: "
          + ", ".join(f"{n}: {'PASS' if ok else 'FAIL'}" for n, ok in t["streaming_pass"].items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-mels", type=int, default=SpectralConfig().n_mels)
    parser.add_argument("--signals", nargs="*", help="only these signals (names as in the table)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    config = SpectralConfig(n_mels=args.n_mels)
    load_average = os.getloadavg()[0]
    signals = make_signals(config, names=args.signals)
    rows = run_offline(config, signals, repeats=args.repeats)
    summary = summarise(rows)
    streaming = [run_streaming(config, next(iter(signals.values())), frames_per_push=n) for n in (1, 2, 4)]
    mel_summary = summary["mel"]
    targets = {
        "default_mel_l1_db": mel_summary[DEFAULT]["mel_l1_db"],
        "reference_mel_l1_db": mel_summary[REFERENCE]["mel_l1_db"],
        "quality_pass": mel_summary[DEFAULT]["mel_l1_db"] <= mel_summary[REFERENCE]["mel_l1_db"],
        "speedup_vs_reference": mel_summary[DEFAULT]["x_real_time"] / mel_summary[REFERENCE]["x_real_time"],
        "streaming_pass": {str(s["frames_per_push"]): s["median_ms"] <= 0.5 and s["p99_ms"] <= 1.0 for s in streaming},
    }
    targets["speed_pass"] = targets["speedup_vs_reference"] >= 3.0
    result = {
        "config": config.to_dict(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "threads": args.threads,
        "repeats": args.repeats,
        "load_average": load_average,
        "rows": rows,
        "summary": summary,
        "streaming": streaming,
        "gpu": run_gpu(config, next(iter(signals.values()))),
        "targets": targets,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
