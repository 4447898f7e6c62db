"""Texture and colour descriptors of model-sized images, in torch: what an image VAE's latent may carry exactly.

A VAE trained to reconstruct pixels spends its few latent dims on mean colour and layout; a grating and a
noise field of the same colours land close together, and so do their sounds. These descriptors measure what
it loses, deterministically and for any image, so that :class:`models.image_vae.ImageVAE` (with
``n_descriptors`` > 0) can put them in its latent beside the learned dims.

From the luma's power spectrum (Hann-windowed, DC removed) with frequency ``r`` in cycles per image and angle
``θ``, weights ``p = P / ΣP`` (a faint white floor keeps flat images defined: they read as isotropic,
unstructured, mid-frequency):

====================  ============================================================================
``luma_mean``         mean luma (0.299 R + 0.587 G + 0.114 B), 0…1
``luma_std``          luma standard deviation (contrast), 0…0.5
``saturation``        mean of max(RGB) − min(RGB), 0…1
``red_green``         mean R − G, −1…1
``yellow_blue``       mean (R + G) / 2 − B, −1…1
``log_frequency``     Σ p · log2 r: the dominant spatial scale (1 = coarse … log2(S/2) = finest)
``frequency_spread``  √(Σ p · (log2 r − log_frequency)²): one scale (gratings) or many (noise, photos)
``orientation_cos``   Σ p · cos 2θ  } together: the dominant orientation (2θ) weighted by how strongly one
``orientation_sin``   Σ p · sin 2θ  } orientation dominates (1 for stripes, ≈ 0 for isotropic or checkers)
``fourfold_cos``      } Σ p · e^{4iθ} − (Σ p · e^{2iθ})²: two perpendicular orientations (checkers, grids)
``fourfold_sin``      } rather than one (≈ 0 for stripes and isotropic noise); its phase tells a grid along
                      the axes (dots: +1) from one along the diagonals (a checkerboard's harmonics: −1)
``periodicity``       share of the energy in sharp spectral peaks (bins over 8× their 7 × 7 neighbourhood's
                      mean): periodic patterns ≈ 0.5–1, random ones (noise of any grain, photos) ≈ 0–0.2
``autocorrelation``   the highest peak of the luma's (windowed) autocorrelation beyond its central lobe (where
                      the lobe's radial mean first falls below 0.1), 0…1: how far the image resembles a shifted
                      copy of itself. Near 1 for lattices of any period, including coarse ones whose spectral
                      peaks are too few to count; for photos, how coherent their large-scale structure is
====================  ============================================================================

Checkpoints made before ``autocorrelation`` was added hold the first 12 (``n_descriptors=12``); they load and
compute just those.

Example
-------
>>> x = torch.linspace(0, 1, 64)
>>> stripes = (0.5 + 0.5 * torch.sin(2 * torch.pi * 8 * x)).expand(1, 3, 64, 64)   # vertical stripes
>>> d = dict(zip(DESCRIPTOR_NAMES, image_descriptors(stripes)[0].tolist()))
>>> round(d["log_frequency"]), d["orientation_cos"] > 0.9, d["periodicity"] > 0.5
(3, True, True)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from models.errors import ParameterError

__all__ = ["DESCRIPTOR_NAMES", "DESCRIPTOR_GROUPS", "DESCRIPTOR_COUNTS", "image_descriptors", "group_weights"]

DESCRIPTOR_NAMES = ("luma_mean", "luma_std", "saturation", "red_green", "yellow_blue", "log_frequency",
                    "frequency_spread", "orientation_cos", "orientation_sin", "fourfold_cos", "fourfold_sin",
                    "periodicity", "autocorrelation")
DESCRIPTOR_COUNTS = (12, len(DESCRIPTOR_NAMES))  # how many of them a model may hold: 12 before autocorrelation
DESCRIPTOR_GROUPS = {  # what each descriptor tells; a distance that weighs the groups equally uses group_weights()
    "colour": ("luma_mean", "luma_std", "saturation", "red_green", "yellow_blue"),
    "scale": ("log_frequency", "frequency_spread"),
    "orientation": ("orientation_cos", "orientation_sin", "fourfold_cos", "fourfold_sin"),
    "periodicity": ("periodicity", "autocorrelation"),
}
_LUMA = (0.299, 0.587, 0.114)
_PEAK_WINDOW = 7
_PEAK_RATIO = 8.0
_FLOOR = 1e-6  # white floor per bin, relative to a full-scale image's energy: flat images stay defined


def group_weights(n: int = len(DESCRIPTOR_NAMES)) -> Tensor:
    """Per-descriptor weights ``(n,)`` of the first ``n`` descriptors, 1/√(group size among them): with standardised
    descriptors each group of :data:`DESCRIPTOR_GROUPS` then adds the same expected amount to a squared distance."""
    if n not in DESCRIPTOR_COUNTS:
        raise ParameterError(f"group_weights: n={n!r}; expected one of {DESCRIPTOR_COUNTS}")
    names = DESCRIPTOR_NAMES[:n]
    size = {name: sum(member in names for member in members)
            for members in DESCRIPTOR_GROUPS.values() for name in members}
    return torch.tensor([size[name] ** -0.5 for name in names])


def _frequency_grid(size: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """(radius in cycles per image, angle, mask of the bins used: 0 < r ≤ size / 2), each ``(size, size // 2 + 1)``."""
    fy = torch.fft.fftfreq(size, d=1.0 / size, device=device)
    fx = torch.fft.rfftfreq(size, d=1.0 / size, device=device)
    yy, xx = torch.meshgrid(fy, fx, indexing="ij")
    radius = torch.sqrt(xx**2 + yy**2)
    mask = (radius > 0) & (radius <= size / 2)
    return radius.clamp_min(1.0), torch.atan2(yy, xx), mask


def _peak_fraction(power: Tensor) -> Tensor:
    """Share of the (DC-free) power ``(B, S, S)`` in bins over ``_PEAK_RATIO`` × their neighbourhood's mean."""
    size = power.shape[-1]
    shifted = torch.fft.fftshift(power, dim=(-2, -1))[:, None]
    local = torch.nn.functional.avg_pool2d(shifted, _PEAK_WINDOW, stride=1, padding=_PEAK_WINDOW // 2,
                                           count_include_pad=False)[:, 0]
    shifted = shifted[:, 0]
    # the lowest frequencies (r < 2 cycles per image) cannot be told from a gradient or uneven lighting: left out
    centre = torch.arange(size, device=power.device) - size // 2
    judged = (centre[:, None] ** 2 + centre[None, :] ** 2) >= 4
    total = (shifted * judged).sum(dim=(1, 2))
    return (shifted * ((shifted > _PEAK_RATIO * local) & judged)).sum(dim=(1, 2)) / total


def _autocorrelation_peak(full_power: Tensor) -> Tensor:
    """The highest autocorrelation ``(B,)`` beyond the central lobe, from the (DC-free) power ``(B, S, S)``: lags
    from where the radial mean first falls below 0.1 (plus one) to S / 2."""
    size = full_power.shape[-1]
    correlation = torch.fft.ifft2(full_power).real
    correlation = correlation / correlation[:, :1, :1].clamp_min(1e-12)
    lags = torch.fft.fftfreq(size, d=1.0 / size, device=full_power.device)
    lag = torch.sqrt(lags[:, None] ** 2 + lags[None, :] ** 2)
    ring = lag.floor().long().clamp_max(size)  # (S, S): integer radius
    n_rings = size // 2
    inside = ring < n_rings
    sums = torch.zeros(len(correlation), n_rings, device=full_power.device, dtype=correlation.dtype)
    sums.index_add_(1, ring[inside], correlation[:, inside])
    counts = torch.bincount(ring[inside], minlength=n_rings).clamp_min(1).to(correlation)
    below = (sums / counts)[:, 1:] < 0.1  # rings 1 … S/2 − 1
    lobe = torch.where(below.any(dim=1), below.float().argmax(dim=1) + 1, torch.full_like(below[:, 0], size,
                                                                                          dtype=torch.long))
    outside = (lag[None] > lobe[:, None, None].to(lag) + 1) & (lag[None] < n_rings)
    peak = correlation.masked_fill(~outside, float("-inf")).amax(dim=(1, 2))
    return torch.where(outside.any(dim=(1, 2)), peak, torch.zeros_like(peak)).clamp_min(0.0)


def image_descriptors(images: Tensor) -> Tensor:
    """Images ``(B, C, S, S)`` in [0, 1] (C = 1 or 3) → descriptors ``(B, len(DESCRIPTOR_NAMES))``, float32.

    Grey images have zero chroma (saturation, red_green, yellow_blue). Differentiable, but meant as fixed
    features: no parameters.
    """
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3) \
            or images.shape[2] != images.shape[3] or images.shape[2] < 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ParameterError(f"images have shape {shape}; expected (B, 1 or 3, S, S) with S ≥ 4")
    x = images.float()
    if x.shape[1] == 3:
        weights = torch.tensor(_LUMA, device=x.device).view(1, 3, 1, 1)
        luma = (x * weights).sum(dim=1)
        red, green, blue = x[:, 0], x[:, 1], x[:, 2]
        saturation = (x.amax(dim=1) - x.amin(dim=1)).mean(dim=(1, 2))
        red_green = (red - green).mean(dim=(1, 2))
        yellow_blue = (0.5 * (red + green) - blue).mean(dim=(1, 2))
    else:
        luma = x[:, 0]
        saturation = red_green = yellow_blue = torch.zeros(len(x), device=x.device)
    size = x.shape[-1]
    luma_mean = luma.mean(dim=(1, 2))
    luma_std = luma.std(dim=(1, 2), correction=0)

    window = torch.hann_window(size, periodic=False, device=x.device)
    window_2d = window[:, None] * window[None, :]
    windowed_mean = (luma * window_2d).sum(dim=(1, 2)) / window_2d.sum()  # no DC left after windowing
    centred = (luma - windowed_mean[:, None, None]) * window_2d
    full_power = torch.fft.fft2(centred).abs().pow(2)  # (B, S, S)
    power = full_power[..., : size // 2 + 1]  # the rfft half plane
    radius, angle, mask = _frequency_grid(size, x.device)
    power = power[:, mask] + _FLOOR * size**2  # (B, n_bins)
    radius, angle = radius[mask], angle[mask]
    # the rfft holds half the plane: bins with fx = 0 (and fx = S/2) stand for themselves only, the others for
    # themselves and their mirror; weigh them so the half-plane sums equal full-plane sums
    weight = torch.where((angle.abs() - math.pi / 2).abs() < 1e-6, 1.0, 2.0).to(power)
    p = power * weight
    p = p / p.sum(dim=1, keepdim=True)

    log_r = torch.log2(radius)
    log_frequency = (p * log_r).sum(dim=1)
    frequency_spread = torch.sqrt((p * (log_r - log_frequency[:, None]) ** 2).sum(dim=1).clamp_min(0.0))
    orientation_cos = (p * torch.cos(2 * angle)).sum(dim=1)
    orientation_sin = (p * torch.sin(2 * angle)).sum(dim=1)
    # the 4θ moment less what one orientation alone gives (m4 = m2² for a single orientation): ≈ 0 for stripes
    m4_cos = (p * torch.cos(4 * angle)).sum(dim=1) - (orientation_cos**2 - orientation_sin**2)
    m4_sin = (p * torch.sin(4 * angle)).sum(dim=1) - 2 * orientation_cos * orientation_sin
    periodicity = _peak_fraction(full_power + _FLOOR * size**2)
    autocorrelation = _autocorrelation_peak(full_power)
    return torch.stack([luma_mean, luma_std, saturation, red_green, yellow_blue, log_frequency, frequency_spread,
                        orientation_cos, orientation_sin, m4_cos, m4_sin, periodicity, autocorrelation], dim=1)
