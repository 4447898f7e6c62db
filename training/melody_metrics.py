"""Metrics of melodies: key fit, note density, distinctness, a mutual-information lower bound, audio features.

Pure functions of arrays (seeded where random). Tokens are those of :mod:`models.melody_vae`.

* :func:`key_fit` — the share of a phrase's notes inside its best-fitting diatonic key;
* :func:`distinct_fraction` — distinct token rows per row;
* :func:`nwj_lower_bound` — a lower bound on I(X; Y) in nats from a critic trained on other pairs (NWJ, the
  *f*-divergence bound MINE builds on);
* :func:`step_features` and :func:`transcribe` — what the rendered audio says, 16th step by 16th step: pitch
  (YIN) and level, and the tokens a listener would write down from them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from models.errors import ParameterError
from models.melody_vae import HOLD, REST, tokens_to_notes
from training.metrics import pitch_hz

__all__ = ["MAJOR_SCALE", "key_fit", "distinct_fraction", "nwj_lower_bound", "step_features", "transcribe"]

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)


def key_fit(tokens: Any, *, pitch_low: int) -> dict[str, float]:
    """How diatonic phrases are: per phrase, the share of notes in the best of the 12 major keys (natural minor
    keys hold the same notes), and over all phrases the note-weighted share.

    Returns ``{"in_key_ratio": notes in their phrase's best key / all notes, "phrases_all_in_key": share of
    phrases with every note in one key}``. Phrases without notes are left out.

    Example
    -------
    >>> key_fit([[2, 1, 4, 1, 6, 1, 7, 1]], pitch_low=60)["in_key_ratio"]   # C D E F: all in C major
    1.0
    """
    rows = np.asarray(tokens)
    if rows.ndim != 2:
        raise ParameterError(f"tokens have shape {rows.shape}; expected (n_phrases, n_steps)")
    masks = np.zeros((12, 12), dtype=bool)
    for key in range(12):
        masks[key, [(key + step) % 12 for step in MAJOR_SCALE]] = True
    in_key = total = all_in = counted = 0
    for row in rows:
        classes = [pitch % 12 for _, _, pitch in tokens_to_notes(row, pitch_low=pitch_low)]
        if not classes:
            continue
        histogram = np.bincount(classes, minlength=12)
        best = int((masks * histogram).sum(axis=1).max())
        in_key += best
        total += len(classes)
        all_in += best == len(classes)
        counted += 1
    if counted == 0:
        return {"in_key_ratio": math.nan, "phrases_all_in_key": math.nan}
    return {"in_key_ratio": in_key / total, "phrases_all_in_key": all_in / counted}


def distinct_fraction(tokens: Any) -> float:
    """Distinct rows of ``tokens`` ``(n, n_steps)`` divided by ``n``."""
    rows = np.asarray(tokens)
    if rows.ndim != 2 or len(rows) == 0:
        raise ParameterError(f"tokens have shape {rows.shape}; expected (n ≥ 1, n_steps)")
    return len({row.tobytes() for row in rows}) / len(rows)


class _Critic(nn.Module):
    """Separable critic ``T(x, y) = c · tanh(f(x)·g(y) / c)``: bounded, so the NWJ estimate stays finite."""

    def __init__(self, x_dim: int, y_dim: int, width: int = 128, features: int = 32, bound: float = 12.0) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Linear(x_dim, width), nn.SiLU(), nn.Linear(width, features))
        self.g = nn.Sequential(nn.Linear(y_dim, width), nn.SiLU(), nn.Linear(width, features))
        self.bound = bound

    def scores(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """All pairs: ``(n_x, n_y)`` critic values."""
        return self.bound * torch.tanh(self.f(x) @ self.g(y).T / self.bound)


def _nwj(scores: torch.Tensor) -> torch.Tensor:
    """NWJ bound from an ``(n, n)`` score matrix whose diagonal holds the joint pairs: E_p[T] − E_q[e^(T−1)]."""
    n = len(scores)
    joint = scores.diagonal().mean()
    off = ~torch.eye(n, dtype=torch.bool, device=scores.device)
    return joint - torch.exp(scores[off] - 1.0).mean()


def nwj_lower_bound(x_train: Any, y_train: Any, x_test: Any, y_test: Any, *, steps: int = 1500, batch_size: int = 256,
                    lr: float = 1e-3, seed: int = 0) -> dict[str, float]:
    """A lower bound on the mutual information I(X; Y), in nats (Nguyen–Wainwright–Jordan; MINE's f-form).

    A critic ``T(x, y)`` is trained to maximise ``E_p(x,y)[T] − E_p(x)p(y)[e^(T−1)]`` on the training pairs
    (other pairings of the batch are the product of marginals); the same expression on the held-out pairs is
    the reported bound. Any critic gives a valid lower bound in expectation, so the held-out value is not
    inflated by fitting; a weak critic only makes it loose. Inputs are standardised with the training pairs'
    mean and spread.

    Parameters
    ----------
    x_train, y_train : ``(n, dx)`` and ``(n, dy)`` paired samples. x_test, y_test : held-out pairs.

    Returns ``{"mi_nats": held-out bound, "mi_train_nats": bound on the training pairs}``.
    """
    arrays = [np.asarray(a, dtype=np.float32).reshape(len(a), -1) for a in (x_train, y_train, x_test, y_test)]
    if len(arrays[0]) != len(arrays[1]) or len(arrays[2]) != len(arrays[3]) or min(len(arrays[0]), len(arrays[2])) < 2:
        raise ParameterError("nwj_lower_bound needs paired training and test samples, at least 2 of each")
    mean_x, std_x = arrays[0].mean(0), arrays[0].std(0) + 1e-6
    mean_y, std_y = arrays[1].mean(0), arrays[1].std(0) + 1e-6
    x_train, x_test = (torch.from_numpy((a - mean_x) / std_x) for a in (arrays[0], arrays[2]))
    y_train, y_test = (torch.from_numpy((a - mean_y) / std_y) for a in (arrays[1], arrays[3]))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    critic = _Critic(x_train.shape[1], y_train.shape[1])
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr)
    for _ in range(steps):
        rows = torch.randperm(len(x_train), generator=generator)[:batch_size]
        loss = -_nwj(critic.scores(x_train[rows], y_train[rows]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return {"mi_nats": float(_nwj(critic.scores(x_test, y_test))),
                "mi_train_nats": float(_nwj(critic.scores(x_train, y_train)))}


def step_features(audio: Any, *, sample_rate: int, n_phrases: int, n_steps: int, step_s: float) -> dict[str, np.ndarray]:
    """Pitch and level of each 16th step of a rendered piece of ``n_phrases`` phrases.

    Each step's middle half is analysed: pitch by YIN (:func:`training.metrics.pitch_hz`, MIDI numbers, NaN where
    unpitched or silent) and RMS level in dB; ``attack_db`` is the rise from the end of the step before to the
    step's first 20 ms (a note starting here rises; a held note decays).

    Returns arrays ``(n_phrases, n_steps)``: ``pitch_midi``, ``level_db``, ``attack_db``.
    """
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    step = step_s * sample_rate
    n_total = n_phrases * n_steps
    if len(audio) < round(n_total * step):
        raise ParameterError(f"audio has {len(audio)} samples; {n_phrases} phrases of {n_steps} steps need "
                             f"{round(n_total * step)}")
    starts = np.round(np.arange(n_total) * step).astype(int)
    quarter = int(step / 4)
    middles = np.stack([audio[s + quarter : s + 3 * quarter] for s in starts])
    frame = 1 << int(math.log2(max(256, len(middles[0]) // 2)))
    pitch = pitch_hz(middles, sample_rate=sample_rate, f_min_hz=100.0, f_max_hz=1200.0, frame_length=frame,
                     hop_length=frame // 4, silence_db=30.0)
    pitch_midi = 69.0 + 12.0 * np.log2(pitch / 440.0)
    level_db = 10 * np.log10(np.mean(middles**2, axis=1) + 1e-12)
    window = max(1, int(0.02 * sample_rate))
    head = np.stack([audio[s : s + window] for s in starts])
    tail = np.stack([audio[max(0, s - window) : s] if s >= window else np.zeros(window) for s in starts])
    attack_db = 10 * np.log10(np.mean(head**2, axis=1) + 1e-12) - 10 * np.log10(np.mean(tail**2, axis=1) + 1e-12)
    shape = (n_phrases, n_steps)
    return {"pitch_midi": pitch_midi.reshape(shape), "level_db": level_db.reshape(shape),
            "attack_db": attack_db.reshape(shape)}


def transcribe(features: dict[str, np.ndarray], *, pitch_low: int, n_pitches: int, silence_db: float = -45.0,
               release_db: float = -18.0, attack_db: float = 3.0) -> np.ndarray:
    """Tokens ``(n_phrases, n_steps)`` a listener would write from :func:`step_features`.

    A step is silent when unpitched, below ``silence_db`` (relative to the piece's loudest step) or more than
    ``release_db`` below the level its note started at (a reverb tail after the note ended). A sounding step
    starts a note when its level jumps by ``attack_db`` (after silence, or a repeated note) or when its pitch
    differs from the step before by a semitone or more; otherwise it holds. Pitches are rounded to semitones and folded into the
    vocabulary's range.
    """
    pitch, level, attack = features["pitch_midi"], features["level_db"], features["attack_db"]
    loudest = np.nanmax(level)
    tokens = np.full(pitch.shape, HOLD, dtype=np.int64)
    previous = None  # pitch of the sounding note, None in silence: carried across phrases, which form one piece
    onset_level = -np.inf
    for row in range(pitch.shape[0]):
        for column in range(pitch.shape[1]):
            value, here = pitch[row, column], level[row, column]
            note = int(round(value)) if np.isfinite(value) else None
            attacked = attack[row, column] > attack_db
            new_note = note is not None and (attacked if previous is None else note != previous or attacked)
            sounding = note is not None and here > loudest + silence_db and (new_note or here > onset_level + release_db)
            if not sounding:
                tokens[row, column] = REST if previous is not None or column == 0 else HOLD
                previous = None
                continue
            if new_note or column == 0:  # a note held into a phrase starts again in its tokens
                onset_level = here if new_note else onset_level
                folded = note if pitch_low <= note < pitch_low + n_pitches else pitch_low + (note - pitch_low) % 12
                tokens[row, column] = 2 + folded - pitch_low
            previous = note
    return tokens
