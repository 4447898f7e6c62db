"""``imgsonic eval --preset NAME``: the research's metrics for a trained preset, measured on rendered sound.

Every metric that involves sound is measured on the **rendered waveform**, never on the decoder's intent::

    held-out image ─► z_img ─► mapper ─► z_aud ─► decoded mel, tiled to RENDER_SECONDS
        ─► synth.phase.mel_to_audio(method) ─► audio ─► re-analysis (audio_to_mel / pitch / loudness / MFCC)

Only the *interior* of each rendered clip is analysed: whole decoder windows that lie at least
``n_fft / 2`` samples away from both ends, where the STFT's reflect padding and the phase reconstruction's
boundary would otherwise leak in. Re-analysed frame ``m`` lines up with decoded frame ``m``, so the audio
encoder sees whole tiles.

Metrics (keys of ``result["metrics"]``)
---------------------------------------
All presets
    ``image_recon_mse`` / ``audio_recon_mse``: mean squared error per pixel / per normalised log-mel value of
    each VAE's reconstruction (posterior mean) of held-out data; ``image_kl`` / ``audio_kl``: mean KL of the
    posterior to N(0, I) per item, nats; ``mapper_cycle_image`` / ``mapper_cycle_audio``: relative cycle
    error of the mapper, ``Σ|inverse(forward(z)) − z|² / Σ|z − mean z|²`` on held-out image latents (and the
    audio analogue on held-out sounds' latents: 0 is perfect, 1 is as large as the latents' spread);
    ``prior_distance``: sliced Wasserstein distance between mapped image latents and the audio VAE's latents
    of held-out sounds, next to ``prior_distance_floor``, the same distance between two halves of the audio
    latents (what sampling noise alone gives); ``distance_preservation``: Spearman ρ between the pairwise
    distances of the image latents and of the rendered sounds' log-mel features (time-averaged re-analysed
    normalised log-mel, one value per band) over ≥ 200 held-out images. With image descriptors in the latent
    (``default``), two rows without a target say where it is lost: ``distance_preservation_standardised``
    (each latent dim standardised over the set first) and ``distance_preservation_descriptors`` (the descriptor
    dims alone).
``squares-sines``
    Pitch (YIN, :func:`training.metrics.pitch_hz`) and loudness (RMS dBFS) measured from the rendered audio;
    ``factor_pairing`` (which image factor drives which), ``factor_abs_rho`` and ``cross_leakage`` from
    :func:`training.metrics.best_pairing`; ``voiced_fraction``, the share of clips with a detectable pitch
    (unvoiced clips count as pitch 0, the lowest rank).
``digits-fm``
    ``classifier_accuracy_real`` (an RBF SVM trained on the real training digits, tested on real test digits),
    ``accuracy_without_sound`` (test digit → image VAE → classifier) and ``accuracy_through_sound`` (test
    digit → rendered audio → ``audio_to_mel`` → audio encoder → inverse mapper → image decoder → classifier),
    and, to tell the rendering's losses from the models', ``accuracy_through_decoded_mel`` (the same chain
    with the decoded mel window fed straight back to the audio encoder, no audio in between);
    ``audio_precision_at_10`` of the audio latents encoded from the rendered audio, by digit class;
    ``listener_proxy`` (:func:`training.metrics.listener_proxy`) on MFCC statistics of the rendered audio.
``default``
    ``n_distinct_sounds`` among the first 200 distinct held-out images: two rendered sounds are *the same*
    when the RMS over mel bands of the difference of their log-mel features is below ``SAME_SOUND_DB``
    (1 dB, about the just-noticeable level difference); sounds linked by chains of "same" pairs count once.
    ``min_sound_distance_db`` is the smallest such difference. The wide rows (:mod:`training.wide_eval`, sets
    wider than the training data rendered by ``imgsonic render`` on files, under ``imgsonic eval``):
    ``texture_family_1nn`` (stripes / checkers / noise / dots from MFCC statistics), ``texture_descriptor_spearman``
    and ``photo_descriptor_spearman`` (image-descriptor distances against sound distances), ``loudness_spread_db``,
    ``loudness_below_loudest_db``, ``programme_lufs`` (and ``programme_lufs_error_db``, its distance from −18) with
    the default ``--loudness even``, and the same with ``_raw`` for the model's own levels.

The reverse direction (``reverse_*``): sound → image, as ``imgsonic visualize`` sees it
----------------------------------------------------------------------------------------------------------
Each sound is a rendered waveform, re-analysed with the preset's spectral config (interior frames only);
every window of ``window_frames`` at stride 1 is encoded (no alignment with the sound assumed, as for any
sound ``visualize`` reads), the posterior means averaged, mapped back (the mapper's inverse) and decoded:
one ``visualize`` frame spanning the clip.

``squares-sines``
    Sine tones (:func:`synth.sources.render_sines`, ``render_seconds`` long) on a ``k × k`` grid,
    ``k = floor(sqrt(n))``, at the cell centres of the sine data set's ranges (MIDI 38–86, −40…0 dB peak).
    Centroids (:func:`training.metrics.image_centroid_px`) of the visualised squares, enlarged to 64 px
    (``REVERSE_IMAGE_PX``, bilinear), against pitch and loudness by :func:`training.metrics.centroid_factor_match`:
    ``reverse_factor_pairing``, ``reverse_rho`` / ``reverse_abs_rho`` (``reverse_abs_rho_min``),
    ``reverse_cross_leakage``, and ``reverse_centroid_error_px``, the mean distance to the ground-truth
    centroid: each factor normalised over its range, and placed on its paired axis (in the direction the
    model chose) where the squares data set puts a square with that factor value. That placement
    (``reverse_centre_range_px``, the centres of factor 0 and 1 on x and y) is measured on the held-out
    squares, enlarged the same way, with the same centroid function: 11…53 px for 32 px squares.
``digits-fm``
    ``reverse_class_match``: the sounds rendered from held-out digits (the forward chain above), visualised,
    classified by the same classifier: the fraction that keep their digit. (``accuracy_through_sound`` is the
    same chain with windows aligned to the decoder's tiles.)
``default``
    ``reverse_distance_preservation``: Spearman ρ between the pairwise distances of the rendered sounds'
    log-mel features and of the images visualised from them (pixels): distinct sounds give distinct images.

Through files (``files_*``): squares-sines under ``imgsonic eval``
-------------------------------------------------------------------
What a user's files give, measured through the command itself (:mod:`training.eval_files`): tones written as
16-bit WAV files at 8, 22.05, 44.1 and 48 kHz (and at other rates, in other formats, in stereo) seen by
``imgsonic visualize``, their squares' centroids against the tones' pitch and RMS level, and whether a tone
gives the same frame at every rate; squares of side 4–32 px in 64 px PNG files, at random sub-pixel positions
and edge softness, played by ``imgsonic render``, the pitch and RMS level of the WAV against the squares'
centres.

Outputs go to ``-o DIR`` (default ``imgsonic-eval/<preset>``): ``metrics.json`` and four PNGs, each written
atomically: ``image_traversal.png`` (rows: image-latent axes; columns: that axis swept over the held-out
latents' 2nd–98th percentile, the others held at their median), ``audio_traversal.png`` (the same for the
audio latents, decoded mel windows), ``spectrogram_strip.png`` (held-out images above the re-analysed
spectrograms of their rendered sounds) and ``reverse.png`` (squares-sines: the visualised tones, pitch
rising to the right, rows labelled with their peak level in dB, loudest on top; the others: held-out images
above the images visualised from their rendered sounds).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from models.errors import ParameterError
from models.pipeline import SonificationModels
from synth.files import atomic_output
from synth.loudness import TARGET_LUFS
from synth.phase import METHODS, mel_to_audio
from synth.sources import SineParams, hz_to_midi, midi_to_hz, render_sines
from synth.spectral import SpectralConfig, audio_to_mel
from training import metrics, plots
from training.eval_files import CliMain, squares_sines_file_checks
from training.presets import PresetSpec, get_spec, preset_images, preset_sounds

__all__ = ["TARGETS", "RENDER_SECONDS", "SAME_SOUND_DB", "REVERSE_IMAGE_PX", "run", "evaluate_preset",
           "format_table"]

RENDER_SECONDS = 1.0
SAME_SOUND_DB = 1.0
MIN_ITEMS = 200
DEFAULT_N = 400
REVERSE_IMAGE_PX = 64
# The ranges training.datasets.make_sine_tones draws its tones from (synth.sources.sample_sine_params' defaults)
SINE_PITCH_MIDI = (38.0, 86.0)
SINE_PEAK_DB = (-40.0, 0.0)
_N_DISTINCT_IMAGES = 200
_TRAVERSAL_STEPS = 9
_STRIP_ITEMS = 8


@dataclass(frozen=True)
class Target:
    """A goal from the issue: ``metric`` compared by ``op`` (">=" or "<=") with ``value``."""

    metric: str
    op: str
    value: float
    through_files: bool = False  # measured through the imgsonic command on files: only when eval hands it in

    def check(self, measured: float) -> bool:
        return measured >= self.value if self.op == ">=" else measured <= self.value


TARGETS: dict[str, tuple[Target, ...]] = {
    "squares-sines": (
        Target("factor_abs_rho_min", ">=", 0.98),
        Target("cross_leakage_max", "<=", 0.1),
        Target("reverse_abs_rho_min", ">=", 0.98),
        Target("reverse_centroid_error_px", "<=", 2.0),
        # through the imgsonic command on files (training.eval_files), measured only when eval runs it
        Target("files_visualize_abs_rho_min", ">=", 0.98, through_files=True),
        Target("files_visualize_leakage_max", "<=", 0.1, through_files=True),
        Target("files_visualize_rate_spread_px", "<=", 1.0, through_files=True),
        Target("files_render_abs_rho_min", ">=", 0.98, through_files=True),
        Target("files_render_leakage_max", "<=", 0.1, through_files=True),
        Target("files_render_pitch_range_octaves", ">=", 3.0, through_files=True),
    ),
    "digits-fm": (
        Target("accuracy_through_sound", ">=", 0.96),
        Target("listener_proxy", ">=", 0.90),
        Target("audio_precision_at_10", ">=", 0.80),
        Target("reverse_class_match", ">=", 0.90),
    ),
    "default": (
        Target("distance_preservation", ">=", 0.5),
        Target("n_distinct_sounds", ">=", _N_DISTINCT_IMAGES),
        # the wide sets (training.wide_eval), rendered by imgsonic render on files
        Target("texture_family_1nn", ">=", 0.9, through_files=True),
        Target("texture_descriptor_spearman", ">=", 0.5, through_files=True),
        Target("photo_descriptor_spearman", ">=", 0.5, through_files=True),
        Target("loudness_spread_db", "<=", 8.0, through_files=True),
        Target("loudness_below_loudest_db", "<=", 20.0, through_files=True),
        Target("programme_lufs_error_db", "<=", 2.0, through_files=True),  # |integrated + 18|: within −16…−20 LUFS
    ),
}


# ---- the command line ----------------------------------------------------------------------------------


def run(args: argparse.Namespace, *, cli_main: CliMain | None = None) -> int:
    """Evaluate, print the table (or JSON) and return 0; 1 when a target is missed.

    ``cli_main`` (``bridge.cli.main``, given by ``imgsonic eval``) adds the ``files_*`` rows for squares-sines.
    Sound → image presets (or a TOML ``train s2i`` wrote) go to :mod:`training.evaluate_imagine`.
    """
    from models.imagination import is_imagine_preset
    from models.registry import is_preset_path

    if is_imagine_preset(args.preset):  # shipped, or a TOML train s2i wrote
        from training import evaluate_imagine

        return evaluate_imagine.run(args)
    default_out = Path(args.preset).expanduser().resolve().name if is_preset_path(args.preset) else args.preset
    out = Path(args.out) if args.out else Path("imgsonic-eval") / default_out
    result = evaluate_preset(args.preset, n=args.n, method=args.method, out_dir=out, cli_main=cli_main,
                             wide=not args.no_wide, wide_seed=getattr(args, "wide_seed", None))
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0 if result["all_targets_met"] else 1


# ---- evaluation ------------------------------------------------------------------------------------------


def _kl_per_item(mu: Tensor, logvar: Tensor) -> float:
    return float((0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(dim=1).mean())


def _relative_error(estimate: Tensor, reference: Tensor) -> float:
    spread = (reference - reference.mean(dim=0)).pow(2).sum()
    return float((estimate - reference).pow(2).sum() / spread.clamp_min(1e-12))


def _render_layout(models: SonificationModels, spectral: SpectralConfig, seconds: float) -> tuple[int, int]:
    """(frames to render, whole windows trimmed at each end) for clips of at least ``seconds``.

    At least one whole window is left between the trimmed ends, however short ``seconds`` is.
    """
    window = models.window_frames
    edge_frames = math.ceil(spectral.n_fft / 2 / spectral.hop_length)
    edge_windows = math.ceil(edge_frames / window)
    n_windows = max(2 * edge_windows + 1, math.ceil(seconds * spectral.frame_rate_hz / window))
    return n_windows * window, edge_windows


@dataclass
class _Rendered:
    """The rendered sounds of a batch of image latents, and their re-analysis (interior only)."""

    audio: Tensor  # (n, n_samples_interior)
    mel: Tensor  # (n, n_mels, n_frames_interior), whole windows
    features: np.ndarray  # (n, n_mels), time-averaged normalised log-mel


def _render(
    models: SonificationModels, z_img: Tensor, *, spectral: SpectralConfig, method: str, seconds: float
) -> _Rendered:
    n_frames, edge_windows = _render_layout(models, spectral, seconds)
    mel = models.decode_audio(models.image_to_audio_latent(z_img), n_frames_out=n_frames)
    audio = torch.cat([mel_to_audio(chunk, config=spectral, method=method) for chunk in mel.split(128)])
    reanalysed = audio_to_mel(audio, config=spectral)[..., :n_frames]
    first, last = edge_windows * models.window_frames, n_frames - edge_windows * models.window_frames
    interior_mel = reanalysed[..., first:last]
    interior_audio = audio[..., first * spectral.hop_length : last * spectral.hop_length]
    return _Rendered(interior_audio, interior_mel, interior_mel.mean(dim=-1).double().numpy())


def _count_distinct(features_db: np.ndarray, threshold_db: float) -> tuple[int, float]:
    """Groups of items linked by chains of RMS distances below ``threshold_db``, and the smallest distance."""
    n = len(features_db)
    difference = features_db[:, None, :] - features_db[None, :, :]
    distance = np.sqrt(np.mean(difference**2, axis=-1))
    np.fill_diagonal(distance, np.inf)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(distance < threshold_db)):
        parent[root(int(i))] = root(int(j))
    return len({root(i) for i in range(n)}), float(distance.min())


def _distinct_rows(images: Tensor, count: int) -> Tensor:
    """Indices of the first ``count`` images that differ from every earlier one in some pixel."""
    flat = images.flatten(1)
    keep: list[int] = []
    for index in range(len(flat)):
        if all(not torch.equal(flat[index], flat[k]) for k in keep):
            keep.append(index)
            if len(keep) == count:
                break
    return torch.tensor(keep)


def _digit_classifier(spec: PresetSpec):
    from sklearn.svm import SVC

    images, labels = preset_images(spec, split="train")
    return SVC(C=10.0, gamma="scale").fit(images.flatten(1).numpy(), labels.numpy())


def _traversal_values(latents: Tensor) -> tuple[Tensor, Tensor]:
    """(base latent (d,), sweep values (d, steps)): medians, and each axis's 2nd–98th percentile range."""
    base = latents.median(dim=0).values
    low, high = torch.quantile(latents, torch.tensor([0.02, 0.98]), dim=0)
    steps = torch.linspace(0.0, 1.0, _TRAVERSAL_STEPS)
    return base, low[:, None] + (high - low)[:, None] * steps[None, :]


def _traverse(base: Tensor, values: Tensor) -> Tensor:
    """Latents ``(d·steps, d)``: row ``i·steps + s`` is ``base`` with axis ``i`` set to ``values[i, s]``."""
    n_dims, n_steps = values.shape
    z = base.repeat(n_dims * n_steps, 1)
    for axis in range(n_dims):
        z[axis * n_steps : (axis + 1) * n_steps, axis] = values[axis]
    return z


def _write_plots(
    models: SonificationModels, out_dir: Path, *, z_img: Tensor, z_aud: Tensor, images: Tensor, rendered: _Rendered
) -> list[str]:
    base, values = _traversal_values(z_img)
    decoded = models.decode_images(_traverse(base, values)).unflatten(0, values.shape)
    scale = max(1, 48 // models.image_size)
    labels_img = [f"z{i}" for i in range(len(values))]
    image_png = plots.save_png(plots.image_grid(decoded.numpy(), scale=scale, row_labels=labels_img),
                               out_dir / "image_traversal.png")

    base, values = _traversal_values(z_aud)
    n_frames = max(models.window_frames, 8) if models.window_frames > 1 else 1
    mels = models.decode_audio(_traverse(base, values), n_frames_out=n_frames).unflatten(0, values.shape)
    labels_aud = [f"a{i}" for i in range(len(values))]
    audio_png = plots.save_png(plots.mel_grid(mels.numpy(), row_labels=labels_aud), out_dir / "audio_traversal.png")

    chosen = torch.linspace(0, len(images) - 1, min(_STRIP_ITEMS, len(images))).round().long()  # spread out
    strip_png = plots.save_png(plots.spectrogram_strip(images[chosen].numpy(), rendered.mel[chosen].numpy()),
                               out_dir / "spectrogram_strip.png")
    return [str(image_png), str(audio_png), str(strip_png)]


def _write_json(result: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, text=True) as stream:
        stream.write(json.dumps(result, indent=2) + "\n")
    return path


def evaluate_preset(
    name: str,
    *,
    n: int = DEFAULT_N,
    method: str = "pghi+fgla",
    out_dir: str | os.PathLike | None = None,
    render_seconds: float = RENDER_SECONDS,
    cli_main: CliMain | None = None,
    wide: bool = True,
    wide_seed: int | None = None,
) -> dict[str, Any]:
    """Evaluate preset ``name`` (a shipped name or a path to a preset trained as one of them) on held-out data;
    return (and, with ``out_dir``, write) the result.

    With ``cli_main`` (a function that runs ``imgsonic`` with a list of arguments, e.g. ``bridge.cli.main``),
    squares-sines also gets the ``files_*`` rows: :func:`training.eval_files.squares_sines_file_checks`, the
    pair through ``imgsonic visualize`` and ``render`` on files; default gets the wide rows of
    :func:`training.wide_eval.evaluate_wide` unless ``wide`` is False (their files are kept in ``out_dir/wide``;
    ``wide_seed`` draws other sets than the evaluation's own).
    A target whose metric was not measured is listed in ``not_measured`` and counts as missed.

    The checkpoints come from the registry (:func:`models.registry.load_preset`); the data sets from
    :data:`training.presets.PRESET_SPECS` (test split), built at the sizes the checkpoints were trained at.
    ``n`` held-out images and sounds are used (digits: at most the 359 of their test split). Each sound is
    rendered for about ``render_seconds`` (shorter clips make a quicker, noisier check).

    Returns
    -------
    dict with ``preset``, ``method``, ``n_images``, ``n_sounds``, ``render_seconds``, ``metrics`` (see the
    module docstring), ``targets`` (per target: ``op``, ``value``, ``measured``, ``passed``),
    ``not_measured`` (targets whose metric was not measured: ``op``, ``value``), ``all_targets_met``, ``plots`` (paths, when written) and ``seconds``.
    """
    from models.registry import load_preset

    started = time.perf_counter()
    entry = load_preset(name)  # a shipped name or a path (a preset trained with --out): judged as its spec's name
    if entry.name not in TARGETS:
        raise ParameterError(f"no evaluation defined for preset {entry.name!r}; evaluable presets: "
                             f"{', '.join(TARGETS)} (or a path to a preset trained as one of them)")
    if isinstance(n, bool) or not isinstance(n, int) or n < MIN_ITEMS:
        raise ParameterError(f"n={n!r}; expected an int >= {MIN_ITEMS} (distance preservation needs that many)")
    if method not in METHODS:
        raise ParameterError(f"method={method!r}; accepted: {', '.join(METHODS)}")
    path_given, name = str(name), entry.name
    models = SonificationModels.from_paths(image_vae=entry.image_vae, audio_vae=entry.audio_vae, mapper=entry.mapper)
    spectral = SpectralConfig.from_dict(models.spectral_config)
    spec = dataclasses.replace(
        get_spec(name), spectral=spectral, image_vae=models.image_vae.config, audio_vae=models.audio_vae.config
    )
    images, image_targets = preset_images(spec, split="test", n=n)
    images = images[:n]
    image_targets = None if image_targets is None else image_targets[:n]
    sounds, _ = preset_sounds(spec, split="test", n=n)
    if len(images) < MIN_ITEMS:
        raise ParameterError(f"preset {name!r} has {len(images)} held-out images; the evaluation needs {MIN_ITEMS}")

    found: dict[str, Any] = {}
    with torch.inference_mode():
        mu_img, logvar_img = models.image_vae.encode(images)
        mu_aud, logvar_aud = models.audio_vae.encode(sounds)
        found["image_recon_mse"] = float((models.decode_images(mu_img) - images).pow(2).mean())
        found["audio_recon_mse"] = float((models.audio_vae.decode(mu_aud) - sounds).pow(2).mean())
        found["image_kl"] = _kl_per_item(mu_img, logvar_img)
        found["audio_kl"] = _kl_per_item(mu_aud, logvar_aud)
        z_aud = models.image_to_audio_latent(mu_img)
        found["mapper_cycle_image"] = _relative_error(models.audio_to_image_latent(z_aud), mu_img)
        found["mapper_cycle_audio"] = _relative_error(
            models.image_to_audio_latent(models.audio_to_image_latent(mu_aud)), mu_aud
        )
        found["prior_distance"] = metrics.sliced_wasserstein(z_aud.numpy(), mu_aud.numpy())
        half = len(mu_aud) // 2
        found["prior_distance_floor"] = metrics.sliced_wasserstein(mu_aud[:half].numpy(), mu_aud[half:].numpy())

        rendered = _render(models, mu_img, spectral=spectral, method=method, seconds=render_seconds)
        found["distance_preservation"] = metrics.distance_preservation(mu_img.numpy(), rendered.features)
        n_descriptors = models.image_vae.config.n_descriptors
        if n_descriptors:  # the learned dims' scale (image β) decides how much of each latent distance they make
            latents = mu_img.numpy()
            standardised = (latents - latents.mean(0)) / (latents.std(0) + 1e-9)
            found["distance_preservation_standardised"] = metrics.distance_preservation(standardised, rendered.features)
            found["distance_preservation_descriptors"] = metrics.distance_preservation(
                latents[:, -n_descriptors:], rendered.features)

        if name == "squares-sines":
            found.update(_squares_sines(rendered, image_targets.numpy(), spectral=spectral))
            reverse, reverse_grid = _squares_sines_reverse(models, images, image_targets, n=n, spectral=spectral,
                                                           seconds=render_seconds)
            if cli_main is not None:
                reverse.update(squares_sines_file_checks(cli_main, model_args=["--preset", path_given]))
        elif name == "digits-fm":
            found.update(_digits_fm(models, spec, rendered, images, image_targets.numpy(), mu_img, spectral=spectral))
            reverse, reverse_grid = _digits_fm_reverse(models, spec, rendered, images, image_targets.numpy())
        else:
            keep = _distinct_rows(images, _N_DISTINCT_IMAGES)
            db_range = spectral.db_ceiling - spectral.db_floor
            n_distinct, closest = _count_distinct(rendered.features[keep.numpy()] * db_range, SAME_SOUND_DB)
            found.update(n_distinct_sounds=n_distinct, n_distinct_images=len(keep), min_sound_distance_db=closest,
                         same_sound_threshold_db=SAME_SOUND_DB)
            reverse, reverse_grid = _default_reverse(models, rendered, images)
            if cli_main is not None and wide:
                from training.wide_eval import evaluate_wide

                found.update(evaluate_wide(cli_main, preset=path_given, method=method, seed=wide_seed,
                                           keep_dir=Path(out_dir) / "wide" if out_dir is not None else None))
                found["programme_lufs_error_db"] = abs(found["programme_lufs"] - TARGET_LUFS)
        found.update(reverse)

        plot_paths = []
        if out_dir is not None:
            plot_paths = _write_plots(models, Path(out_dir), z_img=mu_img, z_aud=mu_aud, images=images,
                                      rendered=rendered)
            picture = plots.image_grid(reverse_grid.images.numpy(), scale=max(1, 64 // models.image_size),
                                       row_labels=reverse_grid.row_labels)
            plot_paths.append(str(plots.save_png(picture, Path(out_dir) / "reverse.png")))

    targets = {
        target.metric: {
            "op": target.op,
            "value": target.value,
            "measured": found[target.metric],
            "passed": target.check(found[target.metric]),
        }
        for target in TARGETS[name]
        if target.metric in found
    }
    not_measured = {target.metric: {"op": target.op, "value": target.value}
                    for target in TARGETS[name] if target.metric not in found}
    result = {
        "preset": name if path_given == name else f"{name} ({path_given})",
        "method": method,
        "n_images": len(images),
        "n_sounds": len(sounds),
        "render_seconds": rendered.audio.shape[-1] / spectral.sample_rate,
        "metrics": found,
        "targets": targets,
        "not_measured": not_measured,
        "all_targets_met": all(t["passed"] for t in targets.values()) and not not_measured,
        "plots": plot_paths,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if out_dir is not None:
        result["plots"].append(str(_write_json(result, Path(out_dir) / "metrics.json")))
    return result


def _squares_sines(rendered: _Rendered, factors: np.ndarray, *, spectral: SpectralConfig) -> dict[str, Any]:
    pitch = metrics.pitch_hz(rendered.audio, sample_rate=spectral.sample_rate)
    voiced = np.isfinite(pitch)
    pitch_midi = np.where(voiced, hz_to_midi(np.where(voiced, pitch, 1.0)), 0.0)
    loudness = metrics.loudness_db(rendered.audio)
    pairing = metrics.best_pairing(factors, np.c_[pitch_midi, loudness])
    audio_names = ("pitch", "loudness")
    return {
        "factor_pairing": [f"{image}→{audio_names[j]}" for image, j in zip(("x", "y"), pairing["pairing"])],
        "factor_abs_rho": pairing["abs_rho"],
        "factor_abs_rho_min": min(pairing["abs_rho"]),
        "cross_leakage": pairing["cross_leakage"],
        "cross_leakage_max": max(pairing["cross_leakage"]),
        "voiced_fraction": float(voiced.mean()),
        "pitch_midi_range": [float(pitch_midi[voiced].min()), float(pitch_midi[voiced].max())] if voiced.any() else None,
        "loudness_db_range": [float(loudness.min()), float(loudness.max())],
    }


def _digits_fm(
    models: SonificationModels,
    spec: PresetSpec,
    rendered: _Rendered,
    images: Tensor,
    labels: np.ndarray,
    mu_img: Tensor,
    *,
    spectral: SpectralConfig,
) -> dict[str, Any]:
    classifier = _digit_classifier(spec)

    def accuracy(batch: Tensor) -> float:
        return float(np.mean(classifier.predict(batch.flatten(1).numpy()) == labels))

    z_aud_heard = models.encode_mel(rendered.mel)
    through_sound = models.decode_images(models.audio_to_image_latent(z_aud_heard))
    z_aud_intended = models.encode_mel(models.decode_audio(models.image_to_audio_latent(mu_img)))
    through_decoded_mel = models.decode_images(models.audio_to_image_latent(z_aud_intended))
    listener = metrics.listener_proxy(metrics.mfcc_stats(rendered.audio, sample_rate=spectral.sample_rate), labels,
                                      seed=0)
    return {
        "classifier_accuracy_real": accuracy(images),
        "accuracy_without_sound": accuracy(models.decode_images(mu_img)),
        "accuracy_through_decoded_mel": accuracy(through_decoded_mel),
        "accuracy_through_sound": accuracy(through_sound),
        "audio_precision_at_10": metrics.precision_at_k(z_aud_heard.numpy(), labels, k=10),
        "listener_proxy": listener["accuracy"],
        "listener_proxy_std": listener["accuracy_std"],
        "listener_proxy_classes": listener["classes"],
    }


# ---- the reverse direction: sound → image, as `imgsonic visualize` sees it ---------------------------------------


@dataclass
class _Grid:
    """Images ``(rows, cols, C, H, W)`` for ``reverse.png`` and a label per row."""

    images: Tensor
    row_labels: list[str]


def _visualized(models: SonificationModels, mel: Tensor) -> Tensor:
    """Images ``(n, C, H, W)`` seen from mels ``(n, n_mels, T ≥ W)`` as ``imgsonic visualize`` sees a steady sound.

    Every window of ``W`` frames at stride 1 (no alignment with the sound assumed) is encoded; the posterior
    means are averaged, mapped back and decoded: a visualize frame whose span covers the whole clip.
    """
    windows = mel.unfold(-1, models.window_frames, 1)  # (n, n_mels, n_windows, W)
    n, n_mels, n_windows, width = windows.shape
    mu, _ = models.audio_vae.encode(windows.permute(0, 2, 1, 3).reshape(n * n_windows, n_mels, width))
    z_aud = mu.reshape(n, n_windows, -1).mean(dim=1)
    return models.decode_images(models.audio_to_image_latent(z_aud))


def _upscaled(images: Tensor) -> Tensor:
    """Images ``(n, C, S, S)`` → ``(n, C, 64, 64)`` (bilinear), where reverse pixel errors are measured."""
    return torch.nn.functional.interpolate(images, size=REVERSE_IMAGE_PX, mode="bilinear", align_corners=False)


def _sine_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pitch (MIDI) and peak level (dB) of a ``k × k`` grid, ``k = floor(sqrt(n))``, cell centres of the training ranges."""
    side = math.isqrt(n)
    unit = (np.arange(side) + 0.5) / side
    pitch, level = np.meshgrid(SINE_PITCH_MIDI[0] + unit * np.ptp(SINE_PITCH_MIDI),
                               SINE_PEAK_DB[0] + unit * np.ptp(SINE_PEAK_DB), indexing="ij")
    return pitch.ravel(), level.ravel()


def _squares_sines_reverse(
    models: SonificationModels, images: Tensor, factors: Tensor, *, n: int, spectral: SpectralConfig, seconds: float
) -> tuple[dict[str, Any], _Grid]:
    """Sine tones on a pitch × level grid → visualised squares; the squares' centroids against the tones."""
    pitch, level = _sine_grid(n)
    edge = math.ceil(spectral.n_fft / 2 / spectral.hop_length)  # frames that see the reflect padding
    n_frames = max(2 * edge + models.window_frames, math.ceil(seconds * spectral.frame_rate_hz))
    audio = render_sines(SineParams(f0_hz=midi_to_hz(pitch), peak_db=level), sample_rate=spectral.sample_rate,
                         n_samples=(n_frames - 1) * spectral.hop_length)
    mel = audio_to_mel(torch.from_numpy(audio), config=spectral)[..., edge : n_frames - edge]
    seen = _visualized(models, mel)
    # where the squares data set puts a square for each factor value, measured on its own held-out images
    truth = metrics.image_centroid_px(_upscaled(images))
    centre_ranges = []
    for axis in range(2):
        slope, start = np.polyfit(factors[:, axis].double().numpy(), truth[:, axis], 1)
        centre_ranges.append((float(start), float(start + slope)))
    match = metrics.centroid_factor_match(np.c_[pitch, level], metrics.image_centroid_px(_upscaled(seen)),
                                          factor_ranges=[SINE_PITCH_MIDI, SINE_PEAK_DB], centre_ranges_px=centre_ranges)
    side = math.isqrt(n)
    chosen = np.linspace(0, side - 1, min(side, 8)).round().astype(int)
    grid = seen.unflatten(0, (side, side))[chosen][:, chosen].flip(1).transpose(0, 1)  # rows: loud → quiet
    labels = [f"{level_db:.0f}" for level_db in np.unique(level)[chosen][::-1]]  # dB: the label column is narrow
    return {
        "reverse_n_tones": len(pitch),
        "reverse_factor_pairing": [f"{factor}→{'xy'[axis]}" for factor, axis in zip(("pitch", "loudness"), match["pairing"])],
        "reverse_rho": match["rho"],
        "reverse_abs_rho": match["abs_rho"],
        "reverse_abs_rho_min": min(match["abs_rho"]),
        "reverse_cross_leakage": match["cross_leakage"],
        "reverse_centroid_error_px": match["mean_error_px"],
        "reverse_axis_error_px": match["axis_error_px"],
        "reverse_centre_range_px": [list(pair) for pair in centre_ranges],
    }, _Grid(grid, labels)


def _digits_fm_reverse(
    models: SonificationModels, spec: PresetSpec, rendered: _Rendered, images: Tensor, labels: np.ndarray
) -> tuple[dict[str, Any], _Grid]:
    """Sounds rendered from held-out digits → visualised → the digit classifier: does the class survive?"""
    seen = _visualized(models, rendered.mel)
    classifier = _digit_classifier(spec)
    match = float(np.mean(classifier.predict(seen.flatten(1).numpy()) == labels))
    return {"reverse_class_match": match}, _strip_pairs(images, seen)


def _default_reverse(models: SonificationModels, rendered: _Rendered, images: Tensor) -> tuple[dict[str, Any], _Grid]:
    """Distinct sounds give distinct images: pairwise sound-feature distances against visualised-image distances."""
    seen = _visualized(models, rendered.mel)
    preservation = metrics.distance_preservation(rendered.features, seen.flatten(1).numpy())
    return {"reverse_distance_preservation": preservation}, _strip_pairs(images, seen)


def _strip_pairs(images: Tensor, seen: Tensor) -> _Grid:
    """Two rows for the plot: held-out images, and the images visualised from their rendered sounds."""
    chosen = torch.linspace(0, len(images) - 1, min(_STRIP_ITEMS, len(images))).round().long()
    return _Grid(torch.stack([images[chosen], seen[chosen]]), ["image", "heard"])


# ---- the table -----------------------------------------------------------------------------------------------


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return " ".join(f"{key}={_format_value(v)}" for key, v in value.items())
    return str(value)


def format_table(result: dict[str, Any]) -> str:
    """The result as a plain-text table: metric, value, target and PASS/FAIL, then the plot paths."""
    rows = []
    for key, value in result["metrics"].items():
        target = result["targets"].get(key)
        goal = f"{target['op']} {target['value']:g}" if target else ""
        verdict = ("PASS" if target["passed"] else "FAIL") if target else ""
        rows.append((key, _format_value(value), goal, verdict))
    for key, target in result["not_measured"].items():  # skipped (--no-wide, or no command line to run them)
        rows.append((key, "not measured", f"{target['op']} {target['value']:g}", "FAIL"))
    width = [max(len(row[i]) for row in rows + [("metric", "value", "target", "")]) for i in range(4)]
    lines = [
        f"preset {result['preset']}: {result['n_images']} held-out images, {result['n_sounds']} sounds, "
        f"rendered with {result['method']} ({result['render_seconds']:.2f} s analysed per clip), "
        f"{result['seconds']:.1f} s",
        f"{'metric':<{width[0]}}  {'value':<{width[1]}}  target",
    ]
    lines += [f"{k:<{width[0]}}  {v:<{width[1]}}  {g:<{width[2]}}  {p}".rstrip() for k, v, g, p in rows]
    verdict = "all targets met" if result["all_targets_met"] else "some targets missed"
    lines.append(verdict)
    lines += [f"wrote {path}" for path in result["plots"]]
    return "\n".join(lines)
