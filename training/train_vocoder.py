"""Train the neural vocoder (:mod:`models.vocoder`) for one spectral config, on the CPU in minutes.

Run as ``imgsonic train vocoder [--preset NAME]`` (arguments: :mod:`bridge.cli.train`). Without
``--preset`` the vocoder is trained for ``SpectralConfig()`` (22.05 kHz, n_fft 1024, hop 256, 128 mels);
with it, for that preset's spectral config (``training.presets``).

The model predicts STFT magnitudes (phase comes from PGHI at run time, see :mod:`models.vocoder`). Before
the first step its skip path is set to the least-squares linear map from mel to levels, so training
starts from the best linear inverse instead of from noise. Training then has two phases:

1. regression against the true magnitudes of each segment, with no audio made: L1 between predicted and
   true levels (normalised dB, both floored at −100 dB or the config's floor: the log-magnitude part of
   the multi-resolution STFT distance), plus spectral convergence of the linear magnitudes and L1
   between the mel of the prediction and the input mel;
2. the last ``--reanalysis-steps`` steps: the same losses on what the listener gets, the prediction
   with PGHI phase turned into audio and analysed again.

No adversarial terms: they need far more steps than a CPU gives and mostly add perceptual crispness,
not lower spectral distances.

Data
----
* synth (``synth.sources``): sine tones, FM tones with ADSR envelopes and vibrato (alone or two at once),
  noise bursts. Training clips come from seed ``seed``; held-out clips from seed ``seed + HELD_OUT_SEED``.
* the recordings pyo ships (``pyo/examples/snds``, ``pyo/lib/snds``): the first 80 % of each file is for
  training, the last 20 % is held out.

Each step takes a random 0.5–1 s segment of each example with a random gain (the mels span
``db_floor``…``db_ceiling``, so the vocoder must see quiet sounds too). Training uses the project's loop
(``training.loop``): tqdm progress, periodic checkpoints, ``--resume``.

Output: ``<out>/vocoder.pt`` (a versioned checkpoint whose metadata holds the held-out metrics and the
command that reproduces it) and ``<out>/vocoder.resume``; ``--export PATH`` also copies the final
checkpoint to PATH (e.g. ``models/presets/vocoders/synth-16k.pt``).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio
from torch import Tensor

from models.checkpoint import load_checkpoint
from models.errors import InputError, ParameterError
from models.vocoder import Vocoder, VocoderConfig
from synth.audio_io import READ_FORMATS, read_audio
from synth.sources import render_fm, render_noise_bursts, render_sines, sample_fm_params, sample_sine_params
from synth.phase import pghi_phase
from synth.spectral import (
    SpectralConfig,
    amplitude_to_normalized_db,
    audio_to_magnitude,
    magnitude_to_mel,
    mel_filterbank,
    stft_to_audio,
)
from training.loop import LoopSettings, resolve_device, seed_everything, train_loop

__all__ = [
    "HELD_OUT_SEED",
    "recording_paths",
    "load_recordings",
    "render_synth",
    "build_pools",
    "target_levels",
    "vocoder_losses",
    "fit_skip_path",
    "train_vocoder",
    "run",
]

log = logging.getLogger(__name__)

HELD_OUT_SEED = 1_000_003  # added to the training seed for the held-out synth clips
HELD_OUT_FRACTION = 0.2  # the last 20 % of each recording
TARGET_FLOOR_DB = -100.0  # quieter bins are silence (the MR-STFT distance floors magnitudes at 1e-5 too)
CONVERGENCE_WEIGHT = 0.5
MEL_LOSS_WEIGHT = 4.0
SKIP_FIT_CLIPS = 384  # training clips the skip path is fitted on (~30 000 frames)
SYNTH_KINDS = ("sine", "fm", "noise")


# ---- data ---------------------------------------------------------------------------------------------


def recording_paths() -> list[Path]:
    """The audio files pyo ships (found through the installed package, without importing it), sorted."""
    spec = importlib.util.find_spec("pyo")
    if spec is None or spec.origin is None:
        raise InputError("pyo is not installed, so its recordings are not available; install pyo")
    root = Path(spec.origin).parent
    suffixes = {suffix.lower() for suffix in READ_FORMATS}
    paths = [
        path
        for folder in (root / "examples" / "snds", root / "lib" / "snds")
        for path in sorted(folder.glob("*"))
        if path.suffix.lower() in suffixes and path.is_file()
    ]
    if not paths:
        raise InputError(f"no recordings found under {root}/examples/snds or {root}/lib/snds")
    return paths


def load_recordings(*, config: SpectralConfig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{file name: (train part, held-out part)}``, mono float32 at the config's rate, peak-normalised.

    The held-out part is the last :data:`HELD_OUT_FRACTION` of each file.
    """
    recordings = {}
    for path in recording_paths():
        audio = read_audio(path, sample_rate=config.sample_rate, channels=1)[0]
        audio = audio / max(float(np.abs(audio).max()), 1e-6)
        split = int(round(len(audio) * (1.0 - HELD_OUT_FRACTION)))
        recordings[path.name] = (audio[:split], audio[split:])
    return recordings


def render_synth(kind: str, *, n_examples: int, n_samples: int, sample_rate: int, seed: int,
                 band_hz: tuple[float, float] | None = None) -> np.ndarray:
    """``n_examples`` synth clips ``(n_examples, n_samples)`` float32 of one kind (see :data:`SYNTH_KINDS`).

    ``fm`` clips have ADSR envelopes and vibrato; half of them are two FM tones at once. With ``band_hz``
    (the mel's ``f_min_hz, f_max_hz``) the tones' fundamentals stay inside that band.
    """
    rng = np.random.default_rng(seed)

    def midi(hz: float) -> float:
        return 69.0 + 12.0 * math.log2(max(hz, 1.0) / 440.0)

    low_midi, top_midi = 28.0, min(96.0, midi(sample_rate / 2) - 6.0)
    if band_hz is not None:  # the mel says nothing outside its band: keep the tones' pitches inside it
        low_midi, top_midi = max(low_midi, midi(band_hz[0])), min(top_midi, midi(band_hz[1]) - 1.0)
    if kind == "sine":
        params = sample_sine_params(n_examples=n_examples, seed=rng, pitch_midi_range=(low_midi, top_midi),
                                    peak_db_range=(-30.0, 0.0))
        return render_sines(params, sample_rate=sample_rate, n_samples=n_samples)
    if kind == "fm":
        duration_s = n_samples / sample_rate

        def tones() -> np.ndarray:
            params = sample_fm_params(
                n_examples=n_examples, seed=rng, pitch_midi_range=(low_midi, max(low_midi + 1.0, top_midi - 12.0)),
                ratio_range=(0.5, 4.0),
                index_range=(0.0, 6.0), peak_db_range=(-20.0, 0.0), attack_s_range=(0.0, 0.3 * duration_s),
                decay_s_range=(0.0, 0.3 * duration_s), sustain_level_range=(0.2, 1.0),
                release_s_range=(0.0, 0.3 * duration_s), vibrato_rate_hz_range=(3.0, 8.0),
                vibrato_depth_cents_range=(0.0, 60.0),
            )
            return render_fm(params, sample_rate=sample_rate, n_samples=n_samples)

        audio = tones()
        second = tones() * (rng.random(n_examples) < 0.5)[:, None]
        return (0.7 * (audio + second)).astype(np.float32)
    if kind == "noise":
        return render_noise_bursts(n_examples=n_examples, seed=rng, sample_rate=sample_rate, n_samples=n_samples,
                                   bursts_per_example=4, decay_s_range=(0.02, 0.5), peak_db_range=(-20.0, 0.0))
    raise ParameterError(f"synth kind {kind!r}; expected one of {', '.join(SYNTH_KINDS)}")


def shift_pitch(audio: np.ndarray, semitones: float) -> np.ndarray:
    """``audio`` played ``2 ** (semitones / 12)`` times as fast (resampled; pitch and tempo move together)."""
    ratio = 2.0 ** (semitones / 12.0)
    shifted = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
                                             orig_freq=int(round(1000 * ratio)), new_freq=1000)
    return shifted.numpy()


def _windows(audio: np.ndarray, *, n_samples: int, hop_samples: int) -> np.ndarray:
    """Overlapping windows ``(n, n_samples)`` of a 1-D signal; zero-padded when shorter than one window."""
    if len(audio) < n_samples:
        audio = np.pad(audio, (0, n_samples - len(audio)))
    starts = range(0, len(audio) - n_samples + 1, hop_samples)
    return np.stack([audio[start : start + n_samples] for start in starts])


@dataclass
class Pools:
    """Fixed-length clips ``(n, n_samples)`` to cut segments from; ``sources`` names each row's origin."""

    train: Tensor
    held_out: Tensor
    held_out_sources: list[str]
    description: str


def build_pools(*, config: SpectralConfig, seed: int, n_synth: int, clip_s: float = 1.25,
                recording_hop_s: float = 0.1, recording_shifts: tuple[float, ...] = ()) -> Pools:
    """Training and held-out clips: synth of each kind plus windows of the recordings.

    ``n_synth`` training clips per synth kind (held out: 1/32 as many, at least 4); recordings are cut
    into ``clip_s`` windows every ``recording_hop_s`` (train part; smaller gives the recordings more weight
    against the synth clips) or every ``clip_s`` (held-out part). ``recording_shifts`` (semitones) add
    copies of each training part played faster or slower (pitch and tempo shifted together, by
    resampling): more instruments' worth of spectra from the same few files. Held-out parts are never shifted.
    """
    n_samples = int(round(clip_s * config.sample_rate))
    synth = dict(n_samples=n_samples, sample_rate=config.sample_rate, band_hz=(config.f_min_hz, config.f_max_hz))
    train, held_out, sources = [], [], []
    for index, kind in enumerate(SYNTH_KINDS):
        train.append(render_synth(kind, n_examples=n_synth, seed=seed * 10 + index, **synth))
        n_held = max(4, n_synth // 32)
        held_out.append(render_synth(kind, n_examples=n_held, seed=seed * 10 + index + HELD_OUT_SEED, **synth))
        sources += [kind] * n_held
    recordings = load_recordings(config=config)
    for name, (train_part, held_part) in recordings.items():
        hop_samples = max(1, int(recording_hop_s * config.sample_rate))
        for part in [train_part] + [shift_pitch(train_part, semitones) for semitones in recording_shifts]:
            if len(part) >= n_samples:
                train.append(_windows(part, n_samples=n_samples, hop_samples=hop_samples))
        windows = _windows(held_part, n_samples=n_samples, hop_samples=n_samples)
        held_out.append(windows)
        sources += [f"recording:{name}"] * len(windows)
    n_recording_windows = sum(len(block) for block in train[len(SYNTH_KINDS):])
    description = (
        f"synth ({', '.join(SYNTH_KINDS)}; {n_synth} clips of {clip_s} s each, seed {seed}) + "
        f"{n_recording_windows} windows of the first {1 - HELD_OUT_FRACTION:.0%} of pyo's {len(recordings)} "
        f"recordings ({', '.join(recordings)})"
        + (f", also shifted by {', '.join(f'{s:+g}' for s in recording_shifts)} semitones" if recording_shifts else "")
        + f"; held out: synth seed +{HELD_OUT_SEED}, last "
        f"{HELD_OUT_FRACTION:.0%} of each recording"
    )
    return Pools(
        train=torch.from_numpy(np.concatenate(train).astype(np.float32)),
        held_out=torch.from_numpy(np.concatenate(held_out).astype(np.float32)),
        held_out_sources=sources,
        description=description,
    )


# ---- losses -------------------------------------------------------------------------------------------


def _mel_of(magnitude: Tensor, *, config: SpectralConfig) -> Tensor:
    """Normalised log-mel of STFT magnitudes (as :func:`synth.spectral.audio_to_mel` after its STFT)."""
    return amplitude_to_normalized_db(magnitude_to_mel(magnitude, config=config), config=config)


def target_levels(magnitude: Tensor, *, config: SpectralConfig) -> Tensor:
    """True STFT magnitudes → the levels the vocoder should predict (normalised dB, floored at
    :data:`TARGET_FLOOR_DB` or the config's floor, whichever is lower)."""
    floor_db = min(config.db_floor, TARGET_FLOOR_DB)
    db = 20.0 * torch.log10(magnitude.clamp_min(10.0 ** (floor_db / 20.0)))
    return (db - config.db_floor) / (config.db_ceiling - config.db_floor)


def vocoder_losses(model: Vocoder, audio: Tensor, *, config: SpectralConfig, reanalyse: bool = False) -> dict[str, Tensor]:
    """Predict the magnitudes of ``audio`` ``(B, n_samples)`` from its mel and compare:
    ``total``, ``level_l1``, ``sc``, ``mel_l1``.

    With ``reanalyse`` the comparison is on what the listener gets: the prediction is given PGHI phase
    (computed from it, held constant for the gradient), turned into audio, and analysed again. PGHI's
    phase is not exactly consistent with any magnitude, so the analysed magnitudes differ from the
    predicted ones (by ≈1–2 dB of mel); this teaches the model magnitudes that come out right.
    """
    magnitude = audio_to_magnitude(audio, config=config)
    mel = _mel_of(magnitude, config=config)
    magnitude_hat = model(mel)
    if reanalyse:
        phase = pghi_phase(magnitude_hat.detach(), config=config)
        audio_hat = stft_to_audio(torch.polar(magnitude_hat, phase), config=config, n_samples=audio.shape[-1])
        magnitude_hat = audio_to_magnitude(audio_hat, config=config)
    level_l1 = (target_levels(magnitude_hat, config=config) - target_levels(magnitude, config=config)).abs().mean()
    # over the whole batch, not per item: a near-silent segment would otherwise dominate the loss
    convergence = torch.linalg.vector_norm(magnitude_hat - magnitude) / torch.linalg.vector_norm(magnitude).clamp_min(1e-8)
    mel_hat = _mel_of(magnitude_hat, config=config)
    mel_l1 = (mel_hat - mel).abs().mean()
    return {
        "total": level_l1 + CONVERGENCE_WEIGHT * convergence + MEL_LOSS_WEIGHT * mel_l1,
        "level_l1": level_l1,
        "sc": convergence,
        "mel_l1": mel_l1,
    }


@torch.no_grad()
def fit_skip_path(model: Vocoder, audio: Tensor, *, config: SpectralConfig, ridge: float = 1e-3) -> float:
    """Set the model's skip path to the least-squares map from a frame's mel to its target levels.

    ``audio`` ``(B, n_samples)`` supplies the frames. Returns the fit's mean absolute level error (the
    starting point the backbone improves on).
    """
    magnitude = audio_to_magnitude(audio, config=config)
    mel = _mel_of(magnitude, config=config)
    x = mel.transpose(1, 2).reshape(-1, config.n_mels).double()
    y = target_levels(magnitude, config=config).transpose(1, 2).reshape(-1, config.n_freqs).double()
    x1 = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    gram = x1.T @ x1 + ridge * len(x1) * torch.eye(x1.shape[1], dtype=x.dtype)
    solution = torch.linalg.solve(gram, x1.T @ y)  # (n_mels + 1, n_freqs)
    model.skip.weight.copy_(solution[:-1].T)
    model.skip.bias.copy_(solution[-1])
    return float((x1 @ solution - y).abs().mean())


def _segments(audio: Tensor, *, config: SpectralConfig, generator: torch.Generator,
              min_s: float = 0.5, max_s: float = 1.0) -> Tensor:
    """Random ``min_s``–``max_s`` segments (one length per batch, whole frames) with a random gain.

    Gain is uniform in dB between −30 and +6 dB relative to the clip, then lowered where the peak would
    pass full scale.
    """
    hop = config.hop_length
    min_frames = max(1, int(min_s * config.sample_rate / hop))
    max_frames = min(int(max_s * config.sample_rate / hop), audio.shape[-1] // hop)
    n_samples = hop * int(torch.randint(min_frames, max(min_frames, max_frames) + 1, (1,), generator=generator))
    n_samples = min(n_samples, audio.shape[-1])
    starts = torch.randint(0, audio.shape[-1] - n_samples + 1, (audio.shape[0],), generator=generator)
    segments = torch.stack([row[start : start + n_samples] for row, start in zip(audio, starts.tolist())])
    gain_db = torch.rand(audio.shape[0], 1, generator=generator) * 36.0 - 30.0
    segments = segments * 10.0 ** (gain_db / 20.0)
    peak = segments.abs().amax(dim=-1, keepdim=True)
    return segments / peak.clamp_min(0.99) * 0.99 if bool((peak > 0.99).any()) else segments


@torch.no_grad()
def evaluate(model: Vocoder, held_out: Tensor, *, config: SpectralConfig, batch_size: int = 8) -> dict[str, float]:
    """Held-out losses of the audio the model makes (magnitudes with PGHI phase, analysed again), averaged
    over the clips (in eval mode; the model's mode is restored)."""
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    for start in range(0, len(held_out), batch_size):
        batch = held_out[start : start + batch_size]
        for name, value in vocoder_losses(model, batch, config=config, reanalyse=True).items():
            totals[name] = totals.get(name, 0.0) + float(value) * len(batch)
    model.train(was_training)
    return {name: total / len(held_out) for name, total in totals.items()}


# ---- training -----------------------------------------------------------------------------------------


class _Objective:
    """The vocoder's objective for ``training.loop.train_loop`` (cosine learning rate after a warm-up)."""

    def __init__(self, model: Vocoder, *, config: SpectralConfig, pools: Pools, lr: float, steps: int,
                 reanalysis_steps: int, out_dir: Path, metadata: dict) -> None:
        self.modules = {"vocoder": model}
        self.optimizers = {"vocoder": torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.8, 0.99))}
        self.config, self.pools, self.lr, self.steps = config, pools, lr, steps
        self.reanalysis_steps = reanalysis_steps
        self.out_dir, self.metadata = out_dir, metadata
        self.started = time.perf_counter()
        self.metrics: dict[str, float] = {}

    def _lr_at(self, step: int) -> float:
        warmup = min(200, self.steps // 10 + 1)
        if step <= warmup:
            return self.lr * step / warmup
        progress = (step - warmup) / max(1, self.steps - warmup)
        return self.lr * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))

    def losses(self, step: int, batch: dict[str, Tensor], generator: torch.Generator):
        for group in self.optimizers["vocoder"].param_groups:
            group["lr"] = self._lr_at(step)
        audio = _segments(batch["audio"], config=self.config, generator=generator)
        reanalyse = step > self.steps - self.reanalysis_steps
        losses = vocoder_losses(self.modules["vocoder"], audio, config=self.config, reanalyse=reanalyse)
        return {"vocoder": losses["total"]}, {name: float(value.detach()) for name, value in losses.items()}

    def save(self, step: int) -> None:
        model = self.modules["vocoder"]
        self.metrics = evaluate(model, self.pools.held_out, config=self.config)
        metadata = dict(self.metadata, steps=step, held_out_metrics=self.metrics,
                        seconds=round(time.perf_counter() - self.started, 1))
        model.save(self.out_dir / "vocoder.pt", metadata=metadata)
        log.info("step %d: held-out %s", step, self.metrics)


def train_vocoder(
    *,
    spectral: SpectralConfig,
    out_dir: str | Path,
    steps: int,
    reanalysis_steps: int = 0,
    batch_size: int = 16,
    lr: float = 1e-3,
    model_config: VocoderConfig | None = None,
    n_synth: int = 512,
    recording_hop_s: float = 0.1,
    recording_shifts: tuple[float, ...] = (),
    seed: int = 0,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
    checkpoint_every: int = 250,
    command: str = "",
) -> tuple[Path, dict[str, float]]:
    """Train a vocoder for ``spectral`` and write ``<out_dir>/vocoder.pt``; returns its path and held-out metrics.

    ``model_config`` defaults to ``VocoderConfig()`` sized for ``spectral``; its ``n_mels``, ``n_fft``,
    ``hop_length`` and ``spectral`` are always taken from ``spectral``.
    """
    out_dir = Path(out_dir)
    base = model_config or VocoderConfig()
    config = VocoderConfig(**{**vars(base), "n_mels": spectral.n_mels, "n_fft": spectral.n_fft,
                              "hop_length": spectral.hop_length, "spectral": spectral.to_dict()})
    started = time.perf_counter()
    pools = build_pools(config=spectral, seed=seed, n_synth=n_synth, recording_hop_s=recording_hop_s,
                        recording_shifts=recording_shifts)
    data_seconds = time.perf_counter() - started
    seed_everything(seed)
    model = Vocoder(config)
    model.filterbank.copy_(mel_filterbank(config=spectral))
    sample = pools.train[torch.randperm(len(pools.train), generator=torch.Generator().manual_seed(seed))[:SKIP_FIT_CLIPS]]
    skip_error = fit_skip_path(model, sample, config=spectral)
    model = model.to(resolve_device(device))
    metadata = {
        "data": pools.description,
        "batch_size": batch_size,
        "lr": lr,
        "losses": f"target-level L1 (normalised dB, floored at {min(spectral.db_floor, TARGET_FLOOR_DB):g} dB) "
                  f"+ {CONVERGENCE_WEIGHT} × spectral convergence + {MEL_LOSS_WEIGHT} × normalised log-mel L1; "
                  f"skip path fitted by least squares first (level L1 {skip_error:.4f}); the last {reanalysis_steps} "
                  f"steps compare the PGHI-phased output analysed again",
        "parameters": sum(p.numel() for p in model.parameters()),
        "command": command,
    }
    objective = _Objective(model, config=spectral, pools=pools, lr=lr, steps=steps, reanalysis_steps=reanalysis_steps,
                           out_dir=out_dir, metadata=metadata)
    settings = LoopSettings(name="vocoder", steps=steps, batch_size=batch_size, out_dir=out_dir, seed=seed,
                            device=device, checkpoint_every=checkpoint_every, resume=resume, progress=progress,
                            grad_clip=1.0)
    result = train_loop(objective, {"audio": pools.train}, settings)
    print(f"vocoder: {result.steps} steps in {result.seconds:.0f} s (+{data_seconds:.0f} s data); "
          f"held-out {objective.metrics}")
    return out_dir / "vocoder.pt", objective.metrics


def _command(args: argparse.Namespace) -> str:
    parts = ["imgsonic train vocoder"]
    if args.preset:
        parts.append(f"--preset {args.preset}")
    parts += [f"--steps {args.steps}", f"--reanalysis-steps {args.reanalysis_steps}",
              f"--batch-size {args.batch_size}", f"--lr {args.lr:g}", f"--dim {args.dim}",
              f"--intermediate-dim {args.intermediate_dim}", f"--n-blocks {args.n_blocks}",
              f"--n-synth {args.n_synth}", f"--recording-hop {args.recording_hop:g}", f"--seed {args.seed}",
              f"--threads {args.threads}"]
    if args.recording_shifts:
        parts.append("--recording-shifts=" + ",".join(f"{s:g}" for s in args.recording_shifts))  # "=": may start with "-"
    if args.resume:
        parts.append("--resume")
    if args.export:
        parts.append(f"--export {args.export}")
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Train what ``args`` asks for; returns the exit code (errors are raised as ImgsonicError)."""
    from training.presets import get_spec

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if args.reanalysis_steps > args.steps:
        raise ParameterError(f"--reanalysis-steps={args.reanalysis_steps}; expected 0 … --steps={args.steps}")
    defaults = VocoderConfig()
    for name in ("dim", "intermediate_dim", "n_blocks"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(defaults, name))
    torch.set_num_threads(args.threads)
    spectral = get_spec(args.preset).spectral if args.preset else SpectralConfig()
    out_dir = Path(args.out) / (args.preset or "spectral-default")
    command = _command(args)
    if args.resume and (out_dir / "vocoder.pt").is_file():
        # a resumed run is reproduced by the commands of every part, in order
        previous = load_checkpoint(out_dir / "vocoder.pt", kind="vocoder")["metadata"].get("command", "")
        command = f"{previous} && {command}" if previous else command
    path, _ = train_vocoder(
        spectral=spectral, out_dir=out_dir, steps=args.steps, reanalysis_steps=args.reanalysis_steps,
        batch_size=args.batch_size, lr=args.lr,
        model_config=VocoderConfig(dim=args.dim, intermediate_dim=args.intermediate_dim, n_blocks=args.n_blocks),
        n_synth=args.n_synth, recording_hop_s=args.recording_hop, recording_shifts=args.recording_shifts, seed=args.seed, device=args.device, resume=args.resume,
        progress=not args.no_progress, checkpoint_every=args.checkpoint_every, command=command,
    )
    if args.export:
        export = Path(args.export)
        export.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, export)
        print(f"vocoder: exported {export}")
    return 0
