"""Evaluation metrics: rank correlations, latent-space structure, a listener proxy and audio analysis.

Three groups, all pure functions of their arguments (seeded where random):

* **structure** — :func:`spearman`, :func:`best_pairing`, :func:`distance_preservation`,
  :func:`precision_at_k`, :func:`sliced_wasserstein`, :func:`listener_proxy`: numpy arrays in, floats
  (or a dict of floats) out;
* **images seen from sounds** — :func:`image_centroid_px`, :func:`centroid_factor_match`: where a blob sits
  in an image, and how well sound factors place it;
* **audio descriptors** — :func:`pitch_hz` (YIN), :func:`loudness_db`, :func:`mfcc_stats`: waveforms
  ``(..., n_samples)`` in, one value (or vector) per waveform out;
* **spectral distances** — :func:`spectral_convergence`, :func:`log_mel_l1`,
  :func:`multi_resolution_stft_distance`: torch tensors ``(..., F, T)`` or waveforms in, one value per
  item (a tensor of the batch shape) out. The phase and vocoder benchmarks use these too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torchaudio

from models.errors import ParameterError

__all__ = [
    "spearman",
    "best_pairing",
    "distance_preservation",
    "precision_at_k",
    "sliced_wasserstein",
    "listener_proxy",
    "image_centroid_px",
    "centroid_factor_match",
    "pitch_hz",
    "loudness_db",
    "mfcc_stats",
    "spectral_convergence",
    "log_mel_l1",
    "multi_resolution_stft_distance",
]

_EPS = 1e-12


def _as_matrix(x: Any, *, name: str) -> np.ndarray:
    """``x`` as a finite float64 array ``(n, d)``; a 1-D input becomes one column."""
    array = np.asarray(x, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0:
        raise ParameterError(f"{name} has shape {array.shape}; expected (n_items, n_features) with n_items ≥ 1")
    if not np.isfinite(array).all():
        raise ParameterError(f"{name} contains NaN or inf values")
    return array


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of a 1-D array, ties given their average rank."""
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    # each run of equal values shares the mean of the positions it spans
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    average = (starts + ends - 1) / 2.0
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


# ---- structure ------------------------------------------------------------------------------------


def spearman(a: Any, b: Any) -> float:
    """Spearman rank correlation ρ ∈ [-1, 1] of two equally long 1-D samples.

    The Pearson correlation of the ranks, ties ranked by their average (as ``scipy.stats.spearmanr``).
    A constant sample has no order to agree with: the result is then 0.

    Example
    -------
    >>> spearman([1, 2, 3, 4], [10, 20, 25, 100])
    1.0
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or len(a) < 2:
        raise ParameterError(f"spearman needs two 1-D samples of equal length ≥ 2; got shapes {a.shape}, {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ParameterError("spearman got NaN or inf values")
    rank_a = _ranks(a) - (len(a) - 1) / 2.0
    rank_b = _ranks(b) - (len(b) - 1) / 2.0
    norm = math.sqrt(float(rank_a @ rank_a) * float(rank_b @ rank_b))
    if norm == 0.0:
        return 0.0
    return float(np.clip(rank_a @ rank_b / norm, -1.0, 1.0))


def best_pairing(image_factors: Any, audio_factors: Any) -> dict[str, Any]:
    """Match two image factors to two audio factors by the pairing with the larger summed |ρ|.

    Parameters
    ----------
    image_factors : ``(n, 2)``, e.g. a square's x and y.
    audio_factors : ``(n, 2)``, e.g. the pitch and loudness measured from the rendered sounds.

    Returns
    -------
    dict with
        ``pairing``: ``[j0, j1]``, the audio factor paired with image factor 0 and 1 (``[0, 1]`` or ``[1, 0]``);
        ``abs_rho``: ``[|ρ(img0, aud j0)|, |ρ(img1, aud j1)|]``;
        ``cross_leakage``: ``[|ρ(img0, aud j1)|, |ρ(img1, aud j0)|]`` — each image factor against the audio
        factor it is *not* paired with (0 when the factors are disentangled);
        ``rho``: the signed correlations of the pairs.

    Example
    -------
    >>> x = np.arange(10.0); y = np.array([3.0, 7, 1, 9, 0, 5, 8, 2, 6, 4])
    >>> best_pairing(np.c_[x, y], np.c_[y, -x])["pairing"]
    [1, 0]
    """
    image_factors = _as_matrix(image_factors, name="image_factors")
    audio_factors = _as_matrix(audio_factors, name="audio_factors")
    if image_factors.shape[1] != 2 or audio_factors.shape != image_factors.shape:
        raise ParameterError(
            f"best_pairing needs two (n, 2) arrays; got {image_factors.shape} and {audio_factors.shape}"
        )
    rho = np.array([[spearman(image_factors[:, i], audio_factors[:, j]) for j in range(2)] for i in range(2)])
    straight = abs(rho[0, 0]) + abs(rho[1, 1])
    swapped = abs(rho[0, 1]) + abs(rho[1, 0])
    pairing = [0, 1] if straight >= swapped else [1, 0]
    return {
        "pairing": pairing,
        "abs_rho": [abs(float(rho[i, pairing[i]])) for i in range(2)],
        "cross_leakage": [abs(float(rho[i, 1 - pairing[i]])) for i in range(2)],
        "rho": [float(rho[i, pairing[i]]) for i in range(2)],
    }


def _pairwise_distances(x: np.ndarray) -> np.ndarray:
    """Euclidean distances of all pairs ``i < j`` of the rows of ``x`` ``(n, d)`` → ``(n (n-1) / 2,)``."""
    squared = np.sum(x * x, axis=1)
    gram = squared[:, None] + squared[None, :] - 2.0 * (x @ x.T)
    upper = np.triu_indices(len(x), k=1)
    return np.sqrt(np.maximum(gram[upper], 0.0))


def distance_preservation(latents: Any, features: Any) -> float:
    """Spearman ρ between the pairwise Euclidean distances of two views of the same items.

    ``latents`` ``(n, d)`` and ``features`` ``(n, f)`` describe the same ``n`` items (e.g. image latents
    and the log-mel features of the sounds they became). ρ = 1 when every pair that is closer in one view
    is closer in the other; ≈ 0 when the views are unrelated. Use ``n ≥ 200`` for a stable estimate
    (≈ 20 000 pairs).

    Example
    -------
    >>> x = np.random.default_rng(0).normal(size=(50, 3))
    >>> distance_preservation(x, 2 * x + 1)
    1.0
    """
    latents = _as_matrix(latents, name="latents")
    features = _as_matrix(features, name="features")
    if len(latents) != len(features) or len(latents) < 3:
        raise ParameterError(
            f"distance_preservation needs the same n ≥ 3 items in both views; got {len(latents)} and {len(features)}"
        )
    return spearman(_pairwise_distances(latents), _pairwise_distances(features))


def precision_at_k(latents: Any, labels: Any, *, k: int = 10) -> float:
    """Mean fraction of each item's ``k`` nearest neighbours (Euclidean, itself excluded) sharing its label.

    ``latents`` ``(n, d)``, ``labels`` ``(n,)``; needs ``n > k``. 1 for perfectly clustered classes with
    more than ``k`` members each; about ``Σ p_c²`` (1/10 for ten balanced classes) for random latents.

    Example
    -------
    >>> z = np.repeat(np.eye(3) * 10, 12, axis=0); y = np.repeat(np.arange(3), 12)
    >>> precision_at_k(z, y, k=10)
    1.0
    """
    latents = _as_matrix(latents, name="latents")
    labels = np.asarray(labels)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ParameterError(f"k={k!r}; expected an int ≥ 1")
    if labels.shape != (len(latents),) or len(latents) <= k:
        raise ParameterError(
            f"precision_at_k needs labels of shape ({len(latents)},) and more than k={k} items; "
            f"got labels {labels.shape}"
        )
    squared = np.sum(latents * latents, axis=1)
    distances = squared[:, None] + squared[None, :] - 2.0 * (latents @ latents.T)
    np.fill_diagonal(distances, np.inf)
    neighbours = np.argpartition(distances, k - 1, axis=1)[:, :k]
    return float(np.mean(labels[neighbours] == labels[:, None]))


def sliced_wasserstein(a: Any, b: Any, *, n_projections: int = 256, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance between two point clouds ``(n, d)`` and ``(m, d)``.

    ``sqrt(mean over random unit directions θ of W2²(θ·a, θ·b))``; each 1-D W2 compares the two
    projected samples' quantile functions at ``max(n, m)`` evenly spaced levels. 0 for identical
    clouds; for ``b = a + v`` it is ``|v| / sqrt(d)`` on average over directions.

    Example
    -------
    >>> a = np.random.default_rng(0).normal(size=(500, 2))
    >>> round(sliced_wasserstein(a, a), 6)
    0.0
    """
    a = _as_matrix(a, name="a")
    b = _as_matrix(b, name="b")
    if a.shape[1] != b.shape[1]:
        raise ParameterError(f"sliced_wasserstein needs equal dimensions; got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(a.shape[1], n_projections))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    n_levels = max(len(a), len(b))
    quantiles_a = _quantile_function(a @ directions, n_levels)
    quantiles_b = _quantile_function(b @ directions, n_levels)
    return float(math.sqrt(np.mean((quantiles_a - quantiles_b) ** 2)))


def _quantile_function(samples: np.ndarray, n_levels: int) -> np.ndarray:
    """Columns of ``samples`` ``(n, p)`` at levels ``(i + 0.5) / n_levels`` → ``(n_levels, p)``.

    Sorted sample ``k`` sits at level ``(k + 0.5) / n``; levels in between interpolate linearly, levels
    beyond the ends take the extreme values.
    """
    ordered = np.sort(samples, axis=0)
    n = len(ordered)
    if n == n_levels:
        return ordered
    position = np.clip((np.arange(n_levels) + 0.5) / n_levels * n - 0.5, 0.0, n - 1.0)
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, n - 1)
    fraction = (position - below)[:, None]
    return (1.0 - fraction) * ordered[below] + fraction * ordered[above]


def _most_distinct_classes(centroids: np.ndarray, n_classes: int) -> tuple[int, ...]:
    """Indices of the ``n_classes`` centroids whose closest pair is farthest apart (ties: larger sum)."""
    best, best_key = (), (-math.inf, -math.inf)
    for subset in itertools.combinations(range(len(centroids)), n_classes):
        gaps = [float(np.linalg.norm(centroids[i] - centroids[j])) for i, j in itertools.combinations(subset, 2)]
        key = (min(gaps), sum(gaps))
        if key > best_key:
            best, best_key = subset, key
    return best


def listener_proxy(
    audio_features: Any,
    labels: Any,
    *,
    n_classes: int = 3,
    n_examples: int = 4,
    n_trials: int = 20,
    n_repeats: int = 50,
    seed: int = 0,
) -> dict[str, Any]:
    """A machine stand-in for SynVAE's listening test: can a sound's class be told from a few examples?

    What it does, exactly:

    1. Standardise each feature (zero mean, unit variance over all items), so no feature dominates by its
       unit. Class centroids are taken over all items of each class; the ``n_classes`` classes whose
       *closest* pair of centroids is farthest apart are "the most distinct classes" (the human test, too,
       used the classes easiest to tell apart).
    2. One repetition = one simulated listener: for each chosen class, ``n_examples`` random items are
       "shown" as (sound, image) pairs; the listener remembers the centroid of each class's example
       sounds. Then ``n_trials`` trials: a class is drawn uniformly, then a random item of it that was not
       shown; the listener hears its sound and picks among ``n_classes`` images, one per chosen class,
       the one whose examples' centroid is nearest (Euclidean) to the sound's features. Images are taken
       to be recognised perfectly, so the choice depends on the sound alone.
    3. Accuracy is the fraction of correct trials, averaged over ``n_repeats`` listeners.

    Chance is ``1 / n_classes``; perfectly separable features give 1.

    Parameters
    ----------
    audio_features : ``(n, f)`` generic features of the rendered sounds (e.g. :func:`mfcc_stats`).
    labels : ``(n,)`` class of the image each sound came from; each chosen class needs more than
        ``n_examples`` items.

    Returns
    -------
    dict: ``accuracy`` (mean), ``accuracy_std`` (over repetitions), ``classes`` (the chosen labels).

    Example
    -------
    >>> y = np.repeat(np.arange(4), 30)
    >>> listener_proxy(np.eye(4)[y] * 5, y, seed=0)["accuracy"]
    1.0
    """
    features = _as_matrix(audio_features, name="audio_features")
    labels = np.asarray(labels)
    if labels.shape != (len(features),):
        raise ParameterError(f"labels has shape {labels.shape}; expected ({len(features)},)")
    for name, value in (("n_classes", n_classes), ("n_examples", n_examples), ("n_trials", n_trials),
                        ("n_repeats", n_repeats)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(f"{name}={value!r}; expected an int ≥ 1")
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < max(n_classes, 2):
        raise ParameterError(f"listener_proxy needs at least {max(n_classes, 2)} classes; labels have {len(classes)}")

    scale = features.std(axis=0)
    features = (features - features.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    centroids = np.stack([features[labels == c].mean(axis=0) for c in classes])
    chosen = [classes[i] for i in _most_distinct_classes(centroids, n_classes)]
    members = [np.flatnonzero(labels == c) for c in chosen]
    too_small = [c for c, m in zip(chosen, members) if len(m) <= n_examples]
    if too_small:
        raise ParameterError(
            f"class {too_small[0]!r} has too few items for {n_examples} examples plus test sounds"
        )

    rng = np.random.default_rng(seed)
    accuracies = []
    for _ in range(n_repeats):
        shown, unseen = [], []
        for items in members:
            order = rng.permutation(items)
            shown.append(features[order[:n_examples]].mean(axis=0))
            unseen.append(order[n_examples:])
        memory = np.stack(shown)
        truth = rng.integers(n_classes, size=n_trials)
        heard = np.array([rng.choice(unseen[c]) for c in truth])
        guesses = np.argmin(np.linalg.norm(features[heard][:, None, :] - memory[None], axis=2), axis=1)
        accuracies.append(np.mean(guesses == truth))
    return {
        "accuracy": float(np.mean(accuracies)),
        "accuracy_std": float(np.std(accuracies)),
        "classes": [c.item() if hasattr(c, "item") else c for c in chosen],
    }


# ---- images seen from sounds ------------------------------------------------------------------------


def image_centroid_px(images: Any, *, threshold: float = 0.5) -> np.ndarray:
    """Centre of the bright blob in each image, ``(x, y)`` in pixels from the top-left corner.

    Each image's pixels below ``threshold`` × its maximum are ignored and the rest are weighted by how far
    they rise above that level (so a faint background glow does not pull the centre towards the middle).
    Pixel ``(row r, column c)`` has its centre at ``(c + 0.5, r + 0.5)``. Channels are averaged. An image with
    no bright pixel (all equal, e.g. black) has no blob: its centroid is the image centre ``(W / 2, H / 2)``.

    Parameters
    ----------
    images : ``(n, C, H, W)`` or ``(n, H, W)``, numpy or torch, finite.
    threshold : fraction of each image's maximum, in [0, 1).

    Returns
    -------
    ``(n, 2)`` float64, columns x and y.

    Example
    -------
    >>> image = np.zeros((1, 8, 8)); image[0, 2, 5] = 1.0
    >>> image_centroid_px(image).tolist()
    [[5.5, 2.5]]
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().double().numpy()
    array = np.asarray(images, dtype=np.float64)
    if array.ndim == 4:
        array = array.mean(axis=1)
    if array.ndim != 3 or 0 in array.shape:
        raise ParameterError(f"images has shape {array.shape}; expected (n, C, H, W) or (n, H, W)")
    if not np.isfinite(array).all():
        raise ParameterError("images contain NaN or inf values")
    if not 0.0 <= threshold < 1.0:
        raise ParameterError(f"threshold={threshold!r}; expected a fraction in [0, 1)")
    low = array.min(axis=(1, 2), keepdims=True)
    level = low + threshold * (array.max(axis=(1, 2), keepdims=True) - low)
    weights = np.clip(array - level, 0.0, None)
    total = weights.sum(axis=(1, 2))
    height, width = array.shape[1:]
    rows, columns = np.arange(height) + 0.5, np.arange(width) + 0.5
    safe = np.where(total > 0, total, 1.0)
    x = np.where(total > 0, (weights.sum(axis=1) * columns).sum(axis=1) / safe, width / 2)
    y = np.where(total > 0, (weights.sum(axis=2) * rows).sum(axis=1) / safe, height / 2)
    return np.stack([x, y], axis=1)


def centroid_factor_match(
    factors: Any,
    centroids_px: Any,
    *,
    factor_ranges: Sequence[tuple[float, float]],
    centre_ranges_px: Sequence[tuple[float, float]],
) -> dict[str, Any]:
    """How well two sound factors place a blob: rank correlation and pixel error of the best pairing.

    The factors (e.g. a tone's pitch and loudness) are paired with the centroid axes (x, y) by
    :func:`best_pairing`. The *ground truth* centroid of an item puts each factor, normalised to
    ``u = (f − low) / (high − low)`` by its ``factor_ranges`` entry, onto its paired axis at
    ``start + u · (stop − start)`` from that axis's ``centre_ranges_px`` entry (the range of centres the
    image data set uses), running the other way (``u → 1 − u``) when the pair's ρ is negative: the model is
    free to choose the direction, not the scale.

    Parameters
    ----------
    factors : ``(n, 2)`` sound factors.  centroids_px : ``(n, 2)`` measured ``(x, y)`` (:func:`image_centroid_px`).
    factor_ranges : ``[(low, high)] × 2``, per factor.  centre_ranges_px : ``[(start, stop)] × 2``, for x and y.

    Returns
    -------
    dict with ``pairing`` (``[j0, j1]``: the axis each factor drives, 0 = x), ``abs_rho``, ``rho``,
    ``cross_leakage`` (as :func:`best_pairing`), ``mean_error_px`` (mean Euclidean distance between
    measured and true centroids), ``axis_error_px`` (mean absolute error along x and y) and ``truth_px``
    ``(n, 2)``.

    Example
    -------
    >>> pitch, level = (grid.ravel() for grid in np.meshgrid([40.0, 60.0, 80.0], [-40.0, -20.0, 0.0]))
    >>> x_px, y_px = 10 + 40 * (level + 40) / 40, 10 + 40 * (80 - pitch) / 40   # level → x, pitch → −y
    >>> match = centroid_factor_match(np.c_[pitch, level], np.c_[x_px, y_px], factor_ranges=[(40, 80), (-40, 0)],
    ...                               centre_ranges_px=[(10, 50), (10, 50)])
    >>> match["pairing"], match["rho"], round(match["mean_error_px"], 6)
    ([1, 0], [-1.0, 1.0], 0.0)
    """
    factors = _as_matrix(factors, name="factors")
    centroids = _as_matrix(centroids_px, name="centroids_px")
    if factors.shape[1] != 2 or centroids.shape != factors.shape:
        raise ParameterError(f"centroid_factor_match needs two (n, 2) arrays; got {factors.shape} and {centroids.shape}")
    for name, ranges in (("factor_ranges", factor_ranges), ("centre_ranges_px", centre_ranges_px)):
        if len(ranges) != 2 or any(len(pair) != 2 or not pair[1] != pair[0] for pair in ranges):
            raise ParameterError(f"{name}={list(ranges)!r}; expected two (start, stop) pairs with start ≠ stop")
    pairing = best_pairing(factors, centroids)
    truth = np.empty_like(centroids)
    for factor, axis in enumerate(pairing["pairing"]):
        low, high = factor_ranges[factor]
        unit = (factors[:, factor] - low) / (high - low)
        if pairing["rho"][factor] < 0:
            unit = 1.0 - unit
        start, stop = centre_ranges_px[axis]
        truth[:, axis] = start + unit * (stop - start)
    error = centroids - truth
    return {
        **pairing,
        "mean_error_px": float(np.mean(np.hypot(error[:, 0], error[:, 1]))),
        "axis_error_px": [float(v) for v in np.mean(np.abs(error), axis=0)],
        "truth_px": truth,
    }


# ---- audio descriptors ----------------------------------------------------------------------------


def _as_audio(audio: Any) -> np.ndarray:
    """Audio ``(..., n_samples)`` as a float64 numpy array (from numpy or torch)."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().double().numpy()
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 0 or audio.shape[-1] == 0:
        raise ParameterError(f"audio has shape {audio.shape}; expected (..., n_samples ≥ 1)")
    if not np.isfinite(audio).all():
        raise ParameterError("audio contains NaN or inf samples")
    return audio


def _yin_frames(frames: np.ndarray, *, lag_min: int, lag_max: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """YIN on frames ``(m, lag_max + window)`` → (period in samples, aperiodicity), each ``(m,)``."""
    n = frames.shape[-1]
    window = n - lag_max
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(frames, size)
    head = np.fft.rfft(frames[:, :window], size)
    # r[τ] = Σ_{j<window} x[j] x[j+τ], for τ = 0..lag_max
    correlation = np.fft.irfft(spectrum * np.conj(head), size)[:, : lag_max + 1]
    energy = np.cumsum(np.pad(frames * frames, ((0, 0), (1, 0))), axis=1)
    energy_at_lag = energy[:, window : window + lag_max + 1] - energy[:, : lag_max + 1]
    difference = np.maximum(energy[:, window : window + 1] + energy_at_lag - 2.0 * correlation, 0.0)
    # cumulative mean normalised difference d'(τ) = d(τ) τ / Σ_{1..τ} d
    lags = np.arange(1, lag_max + 1)
    normalised = np.ones_like(difference)
    normalised[:, 1:] = difference[:, 1:] * lags / np.maximum(np.cumsum(difference[:, 1:], axis=1), _EPS)

    search = normalised[:, lag_min : lag_max + 1]
    below = search < threshold
    # first dip below the threshold, then down to the bottom of that dip; else the global minimum
    first = np.where(below.any(axis=1), below.argmax(axis=1), search.argmin(axis=1))
    rows = np.arange(len(search))
    index = first.copy()
    for _ in range(search.shape[1]):
        step = (index + 1 < search.shape[1]) & (search[rows, np.minimum(index + 1, search.shape[1] - 1)] < search[rows, index])
        if not step.any():
            break
        index += step
    lag = index + lag_min
    # parabolic interpolation of d' around the chosen lag
    left = normalised[rows, np.maximum(lag - 1, 0)]
    centre = normalised[rows, lag]
    right = normalised[rows, np.minimum(lag + 1, lag_max)]
    curvature = left - 2.0 * centre + right
    shift = np.where(np.abs(curvature) > _EPS, 0.5 * (left - right) / np.where(curvature == 0, 1.0, curvature), 0.0)
    return lag + np.clip(shift, -0.5, 0.5), centre


def pitch_hz(
    audio: Any,
    *,
    sample_rate: int,
    f_min_hz: float = 40.0,
    f_max_hz: float = 2000.0,
    frame_length: int = 2048,
    hop_length: int = 512,
    threshold: float = 0.1,
    max_aperiodicity: float = 0.3,
    silence_db: float = 40.0,
) -> np.ndarray:
    """Fundamental frequency of each waveform: the median of per-frame YIN estimates, in Hz.

    YIN (de Cheveigné & Kawahara 2002): the cumulative mean normalised difference function of each frame
    of ``frame_length`` samples; the period is the first lag in ``[sample_rate / f_max_hz, sample_rate /
    f_min_hz]`` where it dips below ``threshold`` (the deepest point of that dip, refined by parabolic
    interpolation), or its minimum when it never does. Frames whose dip is above ``max_aperiodicity``
    (noise) or that are more than ``silence_db`` below the loudest frame are ignored; the median of the
    remaining frames is the answer, NaN when none remain (silence, noise). Audio shorter than one frame is
    zero-padded.

    Parameters
    ----------
    audio : ``(..., n_samples)``, numpy or torch.
    sample_rate : Hz.
    f_min_hz, f_max_hz : the pitch range searched, Hz.
    frame_length : samples per analysis frame; the longest period ``sample_rate / f_min_hz`` must be
        shorter (each frame compares ``frame_length − sample_rate / f_min_hz`` samples with their delays).
    hop_length : samples between frames.

    Returns
    -------
    ndarray of the batch shape ``(...)`` (a 0-d array for one waveform), float64, Hz or NaN.

    Example
    -------
    >>> t = np.arange(22050) / 22050
    >>> round(float(pitch_hz(np.sin(2 * np.pi * 440 * t), sample_rate=22050)))
    440
    """
    audio = _as_audio(audio)
    lag_min = int(math.floor(sample_rate / f_max_hz))
    lag_max = int(math.ceil(sample_rate / f_min_hz))
    if not 2 <= lag_min < lag_max < frame_length:
        raise ParameterError(
            f"f_min_hz={f_min_hz}, f_max_hz={f_max_hz} at sample_rate={sample_rate} need lags "
            f"{lag_min}..{lag_max} within 2..frame_length={frame_length}; raise frame_length or f_min_hz"
        )
    batch_shape = audio.shape[:-1]
    flat = audio.reshape(-1, audio.shape[-1])
    if flat.shape[-1] < frame_length:
        flat = np.pad(flat, ((0, 0), (0, frame_length - flat.shape[-1])))
    n_frames = 1 + (flat.shape[-1] - frame_length) // hop_length
    starts = np.arange(n_frames) * hop_length
    result = np.full(len(flat), np.nan)
    # chunks of waveforms keep the FFT buffers small for long batches
    chunk = max(1, 4096 // n_frames)
    for first in range(0, len(flat), chunk):
        block = flat[first : first + chunk]
        frames = block[:, starts[:, None] + np.arange(frame_length)].reshape(-1, frame_length)
        period, aperiodicity = _yin_frames(frames, lag_min=lag_min, lag_max=lag_max, threshold=threshold)
        period = period.reshape(len(block), n_frames)
        aperiodicity = aperiodicity.reshape(len(block), n_frames)
        power_db = 10.0 * np.log10(np.mean(frames * frames, axis=1) + _EPS).reshape(len(block), n_frames)
        voiced = (aperiodicity <= max_aperiodicity) & (power_db >= power_db.max(axis=1, keepdims=True) - silence_db)
        voiced &= power_db > -120.0
        for row in range(len(block)):
            if voiced[row].any():
                result[first + row] = sample_rate / np.median(period[row, voiced[row]])
    return result.reshape(batch_shape)


def loudness_db(audio: Any) -> np.ndarray:
    """RMS level of each waveform in dBFS: ``20 log10(rms)``, floored at −120 dB.

    A full-scale sine (peak 1) is −3.01 dBFS; a full-scale square wave 0 dBFS.

    Returns an array of the batch shape ``(...)``.

    Example
    -------
    >>> round(float(loudness_db(np.sin(np.linspace(0, 200 * np.pi, 8000, endpoint=False)))), 2)
    -3.01
    """
    audio = _as_audio(audio)
    rms = np.sqrt(np.mean(audio * audio, axis=-1))
    return 20.0 * np.log10(np.maximum(rms, 1e-6))


def mfcc_stats(audio: Any, *, sample_rate: int, n_mfcc: int = 20, n_fft: int = 1024, hop_length: int = 256) -> np.ndarray:
    """Mean and standard deviation over time of each MFCC: ``(..., n_samples)`` → ``(..., 2 · n_mfcc)``.

    torchaudio's MFCC (64 mel bands up to ``sample_rate / 2``, dB log, orthonormal DCT-II); the first
    ``n_mfcc`` values are the means, the next ``n_mfcc`` the standard deviations. Generic features, as a
    listener would hear timbre and level, independent of any model's spectral config.
    """
    audio = torch.as_tensor(_as_audio(audio), dtype=torch.float32)
    transform = torchaudio.transforms.MFCC(
        sample_rate=sample_rate,
        n_mfcc=n_mfcc,
        melkwargs={"n_fft": n_fft, "hop_length": hop_length, "n_mels": 64, "center": True},
    )
    with torch.no_grad():
        coefficients = transform(audio)  # (..., n_mfcc, n_frames)
    stats = torch.cat([coefficients.mean(dim=-1), coefficients.std(dim=-1, correction=0)], dim=-1)
    return stats.double().numpy()


# ---- spectral distances -----------------------------------------------------------------------------


def _check_pair(a: Any, b: Any, *, names: Sequence[str], min_ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape or a.ndim < min_ndim:
        raise ParameterError(
            f"{names[0]} and {names[1]} need equal shapes with at least {min_ndim} dims; "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return a.double(), b.double()


def spectral_convergence(est_mag: Any, ref_mag: Any) -> torch.Tensor:
    """``‖ref − est‖_F / ‖ref‖_F`` of magnitude spectrograms ``(..., n_freqs, n_frames)``, per item.

    0 for a perfect estimate; 1 for a silent one. Returns a float64 tensor of the batch shape ``(...)``.

    Example
    -------
    >>> ref = torch.ones(2, 5, 7)
    >>> spectral_convergence(0.5 * ref, ref)
    tensor([0.5000, 0.5000], dtype=torch.float64)
    """
    est, ref = _check_pair(est_mag, ref_mag, names=("est_mag", "ref_mag"), min_ndim=2)
    error = torch.linalg.vector_norm(ref - est, dim=(-2, -1))
    return error / torch.linalg.vector_norm(ref, dim=(-2, -1)).clamp_min(_EPS)


def log_mel_l1(mel_a: Any, mel_b: Any) -> torch.Tensor:
    """Mean absolute difference of two log-mel spectrograms ``(..., n_mels, n_frames)``, per item.

    In the inputs' unit: for normalised log-mels (:func:`synth.spectral.audio_to_mel`) multiply by the
    config's ``db_ceiling − db_floor`` to read it in dB. Returns a float64 tensor of the batch shape.
    """
    a, b = _check_pair(mel_a, mel_b, names=("mel_a", "mel_b"), min_ndim=2)
    return (a - b).abs().mean(dim=(-2, -1))


def multi_resolution_stft_distance(
    audio_a: Any,
    audio_b: Any,
    *,
    fft_sizes: Sequence[int] = (512, 1024, 2048),
) -> dict[str, torch.Tensor]:
    """Spectral convergence and log-magnitude L1 between two waveforms, averaged over STFT resolutions.

    For each FFT size: Hann window of that size, hop a quarter of it, centred frames; magnitudes floored at
    1e-5 before the natural log. ``audio_b`` is the reference. Waveforms ``(..., n_samples)`` must have
    equal shapes (trim them first).

    Returns
    -------
    ``{"spectral_convergence": (...), "log_magnitude_l1": (...)}``, float64 tensors of the batch shape.
    """
    a, b = _check_pair(audio_a, audio_b, names=("audio_a", "audio_b"), min_ndim=1)
    if not fft_sizes or any(isinstance(n, bool) or not isinstance(n, int) or n < 16 for n in fft_sizes):
        raise ParameterError(f"fft_sizes={tuple(fft_sizes)!r}; expected one or more ints ≥ 16")
    batch_shape = a.shape[:-1]
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    convergence, log_l1 = [], []
    for n_fft in fft_sizes:
        window = torch.hann_window(n_fft, dtype=torch.float64)
        pad = max(0, n_fft // 2 + 1 - a.shape[-1])  # reflect padding needs more than half a window
        mags = [
            torch.stft(torch.nn.functional.pad(x, (0, pad)), n_fft=n_fft, hop_length=n_fft // 4, window=window,
                       center=True, pad_mode="reflect", return_complex=True).abs()
            for x in (a, b)
        ]
        convergence.append(spectral_convergence(mags[0], mags[1]))
        log_l1.append((mags[0].clamp_min(1e-5).log() - mags[1].clamp_min(1e-5).log()).abs().mean(dim=(-2, -1)))
    return {
        "spectral_convergence": torch.stack(convergence).mean(dim=0).reshape(batch_shape),
        "log_magnitude_l1": torch.stack(log_l1).mean(dim=0).reshape(batch_shape),
    }
