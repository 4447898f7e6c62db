"""Training objectives: VAE evidence bound, FactorVAE total correlation, and the mapper's losses.

All losses are means over the batch, so their size does not depend on the batch size.

Example
-------
>>> import torch
>>> z = torch.randn(256, 2)
>>> float(sliced_wasserstein(z, z, n_projections=16, generator=torch.Generator().manual_seed(0)))
0.0
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.errors import ParameterError

__all__ = [
    "kl_divergence",
    "vae_loss",
    "permute_dims",
    "TCDiscriminator",
    "tc_estimate",
    "discriminator_loss",
    "factor_loss",
    "pooled_level_loss",
    "LatentStats",
    "locality_loss",
    "distance_loss",
    "log_distance_loss",
    "spread_loss",
    "sound_features",
    "FileCepstra",
    "sliced_wasserstein",
    "ramp",
]


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) ‖ N(0, I)) summed over latent dims, mean over the batch; ``(B, D)`` in."""
    return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(dim=1).mean()


def vae_loss(logits: Tensor, target: Tensor, mu: Tensor, logvar: Tensor, *, beta: float) -> tuple[Tensor, Tensor, Tensor]:
    """β-VAE loss: Bernoulli reconstruction (BCE on the decoder's logits, summed per example) + β · KL.

    ``logits`` and ``target`` share any shape ``(B, ...)``, ``target`` in [0, 1]. Returns
    ``(loss, reconstruction, kl)``, each a scalar.
    """
    reconstruction = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1).mean()
    kl = kl_divergence(mu, logvar)
    return reconstruction + beta * kl, reconstruction, kl


def permute_dims(z: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Shuffle each latent dim independently across the batch: samples of the product of the marginals.

    ``(B, D)`` in and out (FactorVAE's trick: the discriminator tells ``z`` from ``permute_dims(z)``).
    """
    if z.ndim != 2:
        raise ParameterError(f"z has shape {tuple(z.shape)}; expected (B, D)")
    batch, dims = z.shape
    order = torch.argsort(torch.rand(batch, dims, generator=generator, device="cpu"), dim=0).to(z.device)
    return torch.gather(z, 0, order)


class TCDiscriminator(nn.Module):
    """MLP that tells joint latents from permuted ones; logit > 0 means "joint". ``(B, D)`` → ``(B,)``."""

    def __init__(self, latent_dim: int, *, hidden_width: int = 256, depth: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden_width), nn.LeakyReLU(0.2)]
            width = hidden_width
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).squeeze(1)


def tc_estimate(discriminator: nn.Module, z: Tensor) -> Tensor:
    """Total-correlation estimate: mean discriminator logit on joint samples (density-ratio trick)."""
    return discriminator(z).mean()


def discriminator_loss(discriminator: nn.Module, z: Tensor, z_permuted: Tensor) -> Tensor:
    """Binary cross-entropy: ``z`` labelled joint (1), ``z_permuted`` labelled product of marginals (0).

    Pass detached latents so this loss trains only the discriminator.
    """
    joint = discriminator(z)
    product = discriminator(z_permuted)
    return 0.5 * (
        F.binary_cross_entropy_with_logits(joint, torch.ones_like(joint))
        + F.binary_cross_entropy_with_logits(product, torch.zeros_like(product))
    )


def factor_loss(mu: Tensor, factors: Tensor) -> Tensor:
    """Weak supervision: latent dim ``k`` ≈ factor ``k`` for the first ``F`` dims, squared error summed over them.

    ``mu`` ``(B, D)``; ``factors`` ``(B, F)`` with ``F ≤ D``, standardised (zero mean, unit spread) so they sit on
    the prior's scale.
    """
    if factors.ndim != 2 or mu.ndim != 2 or factors.shape[0] != mu.shape[0] or factors.shape[1] > mu.shape[1]:
        raise ParameterError(f"factors have shape {tuple(factors.shape)}; expected (B, F ≤ D) for mu {tuple(mu.shape)}")
    return (mu[:, : factors.shape[1]] - factors).pow(2).sum(1).mean()


def pooled_level_loss(decoded: Tensor, target: Tensor, *, db_floor: float, db_ceiling: float,
                      pool_bands: int = 9) -> Tensor:
    """Squared dB error of band-pooled power, weighted by the target's pooled power: ``(B, n_mels, n_frames)``
    normalised log-mel windows in [0, 1] → a scalar.

    Power is summed over ``pool_bands`` neighbouring bands (odd), so a peak blurred over a few bands still
    counts at its full level, while power moved far away does not; weighting by the target band's power makes the
    loud bands (what the rendered loudness follows) dominate, which a per-value reconstruction loss does not.
    """
    if pool_bands < 1 or pool_bands % 2 == 0:
        raise ParameterError(f"pool_bands={pool_bands}; expected an odd int ≥ 1")
    if decoded.shape != target.shape or decoded.ndim != 3:
        raise ParameterError(f"shapes {tuple(decoded.shape)} and {tuple(target.shape)}; expected equal (B, n_mels, n_frames)")
    to_log = math.log(10.0) / 10.0

    def pooled_db(mel: Tensor) -> Tensor:
        level_db = db_floor + mel * (db_ceiling - db_floor)  # (B, n_mels, n_frames)
        windows = F.pad(level_db.transpose(1, 2), (pool_bands // 2, pool_bands // 2), value=db_floor)
        return torch.logsumexp(windows.unfold(2, pool_bands, 1) * to_log, dim=-1) / to_log  # (B, n_frames, n_mels)

    decoded_db, target_db = pooled_db(decoded), pooled_db(target)
    # weights from the unpooled target: pooled windows centred near its peak count, windows that merely touch it
    # do not (else a peak one band off would be punished at the far window edges)
    target_level_db = db_floor + target.transpose(1, 2) * (db_ceiling - db_floor)
    weights = torch.softmax(target_level_db.flatten(1) * to_log, dim=1)
    return (weights * (decoded_db - target_db).flatten(1).pow(2)).sum(1).mean()


class LatentStats(nn.Module):
    """Per-dim mean and spread of a latent data set, to compare latents of two models on one scale.

    ``std`` is clamped to ``min_std`` so collapsed (unused) dims do not blow up small differences.
    """

    def __init__(self, latents: Tensor, *, min_std: float = 0.05) -> None:
        super().__init__()
        self.register_buffer("mean", latents.mean(0))
        self.register_buffer("std", latents.std(0).clamp_min(min_std))

    def normalize(self, z: Tensor) -> Tensor:
        return (z - self.mean) / self.std


def locality_loss(source: Tensor, mapped: Tensor) -> Tensor:
    """Per-axis locality: mapped ≈ source, dim by dim; both normalised ``(B, D)`` of equal D."""
    if source.shape != mapped.shape:
        raise ParameterError(
            f"per-axis locality needs equal latent sizes; got {tuple(source.shape)} and {tuple(mapped.shape)} "
            "(use distance_loss when they differ)"
        )
    return (mapped - source).pow(2).sum(1).mean()


def distance_loss(source: Tensor, mapped: Tensor) -> Tensor:
    """Pairwise-distance preservation: within-batch distances of ``mapped`` ≈ those of ``source``, each divided by
    its own mean (so only the shape of the geometry counts). ``(B, D1)`` and ``(B, D2)`` normalised latents."""
    d_source = torch.cdist(source, source)
    d_mapped = torch.cdist(mapped, mapped)
    d_source = d_source / d_source.mean().clamp_min(1e-8)
    d_mapped = d_mapped / d_mapped.mean().clamp_min(1e-8)
    return (d_mapped - d_source).pow(2).mean()


def sound_features(mel: Tensor, *, n_coefficients: int = 20) -> Tensor:
    """What a listener (and the evaluation's MFCC statistics) compares between decoded sounds: mel windows
    ``(B, n_mels, W)`` (normalised log-mel) → ``(B, 2 · n_coefficients)``: the mean over time and the standard
    deviation over time of each cepstral coefficient (orthonormal DCT-II over the bands, as MFCCs are), each
    standardised over the batch as the evaluation standardises over its set."""
    n_mels = mel.shape[-2]
    bands = torch.arange(n_mels, dtype=mel.dtype, device=mel.device)
    k = torch.arange(n_coefficients, dtype=mel.dtype, device=mel.device)[:, None]
    dct = torch.cos(torch.pi / n_mels * (bands[None, :] + 0.5) * k) * math.sqrt(2.0 / n_mels)
    dct[0] /= math.sqrt(2.0)
    cepstra = torch.einsum("kn,bnw->bkw", dct, mel)
    spread = cepstra.std(dim=-1, correction=0) if mel.shape[-1] > 1 else torch.zeros_like(cepstra[..., 0])
    features = torch.cat([cepstra.mean(dim=-1), spread], dim=-1)
    return (features - features.mean(dim=0)) / features.std(dim=0).clamp_min(1e-3)


class FileCepstra:
    """MFCC statistics of the file a decoded mel becomes, computed from the mel: ``(B, n_mels, W)`` normalised
    log-mels of ``spectral`` (a model's :class:`synth.spectral.SpectralConfig`) → ``(B, 2 · n_coefficients)``, the
    mean and the standard deviation over time of each coefficient, standardised over the batch.

    :func:`sound_features` takes cepstra over the model's own bands. A file's generic MFCCs (torchaudio's, as
    the evaluation and most tools take them) see other bands: a power mel of ``n_mels`` HTK bands from 0 Hz to
    the file's Nyquist frequency, where a 16 kHz model's sound fills only the bands below 8 kHz, in dB with a
    floor ``top_db`` below the loudest band. This carries each band's power onto those bands (linear
    interpolation of the power density between the model's band centres, nothing above its top band), levels
    each window to unit mean power (as rendering levels each image), floors and takes the orthonormal DCT-II.
    The distances between these track those between the rendered files' MFCC statistics more closely (Spearman
    0.89 on textures and 0.80 on photos for ``default``, against 0.73 and 0.66 for :func:`sound_features`).
    The standard deviations over time track them less closely (0.72–0.86: the model's frames are not the
    file's, and phase reconstruction adds its own movement): ``spread_weight`` scales them after
    standardising, so a distance weighs them less than the means.
    """

    def __init__(self, spectral: dict, *, file_rate: int = 44100, n_fft: int = 2048, n_mels: int = 64,
                 n_coefficients: int = 20, top_db: float = 80.0, spread_weight: float = 1.0) -> None:
        import torchaudio

        from synth.spectral import SpectralConfig, mel_band_centers_hz

        config = SpectralConfig.from_dict(spectral) if isinstance(spectral, dict) else spectral
        centres = mel_band_centers_hz(config=config)
        freqs = torch.linspace(0.0, file_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
        upper = torch.searchsorted(centres, freqs).clamp(1, len(centres) - 1)
        t = ((freqs - centres[upper - 1]) / (centres[upper] - centres[upper - 1])).clamp(0.0, 1.0)
        spread = torch.zeros(len(freqs), len(centres), dtype=torch.float64)  # (file bins, model bands)
        rows = torch.arange(len(freqs))
        spread[rows, upper - 1] = 1.0 - t
        spread[rows, upper] += t
        spread[freqs > config.f_max_hz] = 0.0
        bands = torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, 0.0, file_rate / 2, n_mels, file_rate,
                                                      norm=None, mel_scale="htk").double()  # (file bins, n_mels)
        self.transfer = (bands.T @ spread).float()  # (file bands, model bands), on power
        self.dct = torchaudio.functional.create_dct(n_coefficients, n_mels, "ortho").float()  # (n_mels, n_coeffs)
        self.db_floor, self.db_range = config.db_floor, config.db_ceiling - config.db_floor
        self.top_db = top_db
        self.spread_weight = spread_weight

    def __call__(self, mel: Tensor) -> Tensor:
        transfer, dct = self.transfer.to(mel.device), self.dct.to(mel.device)
        power = torch.pow(10.0, (self.db_floor + mel * self.db_range) / 10.0)  # the mel holds amplitudes in dB
        power = torch.einsum("fm,bmw->bfw", transfer, power)
        power = power / power.sum(dim=1, keepdim=True).mean(dim=2, keepdim=True).clamp_min(1e-20)
        db = 10.0 * torch.log10(power.clamp_min(1e-10))
        db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - self.top_db)
        cepstra = torch.einsum("bfw,fk->bkw", db, dct)
        spread = cepstra.std(dim=-1, correction=0) if mel.shape[-1] > 1 else torch.zeros_like(cepstra[..., 0])
        features = torch.cat([cepstra.mean(dim=-1), spread], dim=-1)
        features = (features - features.mean(dim=0)) / features.std(dim=0).clamp_min(1e-3)
        return torch.cat([features[:, : dct.shape[1]], self.spread_weight * features[:, dct.shape[1] :]], dim=1)


def log_distance_loss(source: Tensor, mapped: Tensor, *, eps: float = 1e-4) -> Tensor:
    """Pairwise-distance preservation in ratios: within-batch log distances of ``mapped`` ≈ those of ``source``,
    each centred on its own mean (so a global scale does not count). ``(B, D1)`` and ``(B, D2)`` normalised latents.

    Unlike :func:`distance_loss`, a pair that is 10× closer than average must stay 10× closer: near neighbours
    can not be squeezed together, so distinct inputs keep distinct outputs.
    """
    if len(source) < 2 or len(source) != len(mapped):
        raise ParameterError(f"need two equal batches of ≥ 2 points; got {len(source)} and {len(mapped)}")
    pairs = torch.triu_indices(len(source), len(source), offset=1, device=source.device)

    def log_distances(z: Tensor) -> Tensor:
        squared = (z[pairs[0]] - z[pairs[1]]).pow(2).sum(1)
        logs = 0.5 * torch.log(squared + eps)
        return logs - logs.mean()

    return (log_distances(mapped) - log_distances(source)).pow(2).mean()


def spread_loss(mu: Tensor, mu_near: Tensor, x: Tensor, x_near: Tensor, *, eps: float = 1e-6,
                min_input_distance: float = 1e-3) -> Tensor:
    """Keeps near-identical inputs apart in the latent (one-sided, squared log shortfall).

    Each input ``x[i]`` and its near copy ``x_near[i]`` (see :func:`training.datasets.near_copies`) must lie at
    least as far apart in the latent, per unit of RMS input distance, as the batch's pairs ``x[i]``, ``x[j]``
    do on average (the mean log ratio, held fixed; pairs of identical inputs, closer than
    ``min_input_distance``, are left out of it). A VAE otherwise squeezes near-duplicates (neighbouring crops
    of one photo) far closer than their pixel distance warrants, and everything downstream (the mapper, the
    sound) inherits that. Copies that are already far enough apart cost nothing.

    ``mu``, ``mu_near`` ``(B, D)`` latent means; ``x``, ``x_near`` ``(B, ...)`` inputs; B ≥ 2. Returns a scalar
    (0 when the batch holds no two different inputs).
    """
    if len(x) < 2 or mu.shape != mu_near.shape or x.shape != x_near.shape or len(mu) != len(x):
        raise ParameterError(f"need B ≥ 2 inputs and copies of equal shapes; got mu {tuple(mu.shape)}, mu_near "
                             f"{tuple(mu_near.shape)}, x {tuple(x.shape)}, x_near {tuple(x_near.shape)}")
    flat, flat_near = x.detach().flatten(1), x_near.detach().flatten(1)
    scale = math.sqrt(flat.shape[1])
    pairs = torch.triu_indices(len(x), len(x), offset=1, device=x.device)
    # pairwise input distances through cdist (a matrix product), not by indexing rows: a batch of 64×64 RGB
    # images would otherwise copy ~500 pairs × 12k values per step
    input_distance = (torch.cdist(flat, flat) / scale)[pairs[0], pairs[1]]
    different = input_distance > min_input_distance
    if not bool(different.any()):
        return mu.sum() * 0.0

    def latent_distance(a: Tensor, b: Tensor) -> Tensor:
        return (a - b).pow(2).sum(1).add(eps**2).sqrt()

    pair_ratio = torch.log(latent_distance(mu[pairs[0]], mu[pairs[1]])) - torch.log(input_distance)
    typical = pair_ratio[different].mean()
    near_input = (flat - flat_near).pow(2).mean(1).add(eps**2).sqrt()
    near = torch.log(latent_distance(mu, mu_near)) - torch.log(near_input)
    return F.relu(typical.detach() - near).pow(2).mean()


def sliced_wasserstein(x: Tensor, y: Tensor, *, n_projections: int = 64, generator: torch.Generator | None = None) -> Tensor:
    """Sliced Wasserstein-2 distance (squared) between two point sets ``(B, D)`` of the same size.

    Projects both on random unit directions, sorts, and averages the squared differences: 0 for identical
    sets, and differentiable in both.
    """
    if x.ndim != 2 or x.shape != y.shape:
        raise ParameterError(f"point sets have shapes {tuple(x.shape)} and {tuple(y.shape)}; expected equal (B, D)")
    directions = torch.randn(x.shape[1], n_projections, generator=generator, device="cpu").to(x)
    directions = directions / directions.norm(dim=0, keepdim=True)
    x_sorted = (x @ directions).sort(dim=0).values
    y_sorted = (y @ directions).sort(dim=0).values
    return (x_sorted - y_sorted).pow(2).mean()


def ramp(progress: float, *, start: float, full: float) -> float:
    """0 before ``start``, 1 after ``full``, linear between (fractions of the run, 0–1)."""
    if progress <= start:
        return 0.0
    if progress >= full or full <= start:
        return 1.0
    return (progress - start) / (full - start)
