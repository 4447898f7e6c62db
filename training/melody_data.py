"""Melody training data: the Essen folk songs in music21's corpus, parsed here, cut into phrases of 16th steps.

The Essen collection's licence permits non-commercial redistribution only, so nothing derived from it is
committed: the phrases are made at training time from the ABC files music21 ships
(``pip install music21``). The files use a small part of ABC — note letters with ``^ = _`` accidentals and
``, '`` octave marks, integer lengths in units of ``L:``, rests ``z``, bar lines ``|`` and ties ``-``, one
``M:``/``L:``/``K:`` header per tune — which :func:`parse_abc_tune` reads; tunes that use anything else, or
whose notes leave the 16th-note grid, are skipped and counted.

A *phrase* is ``n_steps`` 16th steps (tokens of :mod:`models.melody_vae`) starting on a bar line, taken from
tunes whose bars are half, once or twice ``steps_per_bar`` (2/4, 4/4, 2/2, 4/2), so the phrase's bars fall on
4/4 bars. A note tied over the phrase's start begins again there. Tunes are split into train and
test by their number, so no tune has phrases on both sides.

Example
-------
>>> tune = parse_abc_tune("X:1\\nM: 2/4\\nL: 1/8\\nK: G\\nGA | B2 z2 |")
>>> tune.notes[:2], tune.bar_starts
([(0, 2, 67), (2, 4, 69)], [0, 4, 12])
"""

from __future__ import annotations

import importlib.util
import re
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from models.errors import InputError, ParameterError
from models.melody_vae import MelodyVAEConfig, notes_to_tokens

__all__ = ["corpus_statistics", "Tune", "parse_abc_tune", "essen_folder", "load_essen_tunes", "tune_phrases", "make_melody_phrases",
           "transpose_phrases", "notes_per_bar"]

_LETTER_SEMITONES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SHARP_ORDER = "FCGDAEB"
# key → sharps (> 0) or flats (< 0); "H" is German for B, "Es" for E flat
_KEY_FIFTHS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "H": 5, "F#": 6, "C#": 7, "F": -1, "Bb": -2, "Eb": -3,
               "Es": -3, "Ab": -4, "Db": -5, "Gb": -6, "Cb": -7, "Am": 0, "Em": 1, "Bm": 2, "F#m": 3, "C#m": 4,
               "Dm": -1, "Gm": -2, "Cm": -3, "Fm": -4, "Bbm": -5}
_TOKEN = re.compile(r"(?P<bar>\|)|(?P<acc>[_=^]*)(?P<letter>[A-Ga-gz])(?P<octave>[,']*)(?P<length>\d*)(?P<tie>-?)|(?P<space>\s+)")
_TEST_FRACTION = 0.05


@dataclass(frozen=True)
class Tune:
    """One parsed tune: notes ``[(start_step, end_step, midi_pitch)]`` in 16th steps, bar-line steps, meter."""

    number: str
    meter: str
    notes: list[tuple[int, int, int]]
    bar_starts: list[int]
    n_steps: int


def _key_signature(key: str) -> dict[str, int]:
    fifths = _KEY_FIFTHS.get(key.strip())
    if fifths is None:
        raise InputError(f"unknown key {key!r}")
    letters = _SHARP_ORDER[:fifths] if fifths > 0 else _SHARP_ORDER[::-1][: -fifths]
    return {letter: (1 if fifths > 0 else -1) for letter in letters}


def parse_abc_tune(text: str) -> Tune:
    """One Essen ABC tune (header and body) → :class:`Tune`; InputError when it is outside the subset read here.

    Accidentals last to the end of the bar for that letter and octave (ABC's rule); the key signature applies
    otherwise. Ties join notes of the same pitch.
    """
    header: dict[str, str] = {}
    body = []
    for line in text.splitlines():
        if re.match(r"^[A-Za-z]:", line):
            header.setdefault(line[0], line[2:].strip())
        elif line.strip():
            body.append(line)
    for key in ("M", "L", "K"):
        if key not in header:
            raise InputError(f"tune {header.get('X', '?')} has no {key}: line")
    try:
        unit = Fraction(header["L"]) * 16  # 16th steps per length unit
    except (ValueError, ZeroDivisionError) as error:
        raise InputError(f"tune {header.get('X', '?')}: L: {header['L']!r} is not a fraction") from error
    signature = _key_signature(header["K"])
    music = " ".join(body)

    notes: list[tuple[int, int, int]] = []
    bar_starts = [0]
    position = Fraction(0)
    bar_accidentals: dict[tuple[str, int], int] = {}
    tied = False
    index = 0
    while index < len(music):
        match = _TOKEN.match(music, index)
        if match is None:
            raise InputError(f"tune {header.get('X', '?')}: cannot read {music[index:index + 10]!r}")
        index = match.end()
        if match["space"]:
            continue
        if match["bar"]:
            bar_accidentals.clear()
            if position != bar_starts[-1]:
                bar_starts.append(int(position) if position.denominator == 1 else -1)
            continue
        length = int(match["length"]) if match["length"] else 1
        duration = length * unit
        start = position
        position += duration
        if start.denominator != 1 or position.denominator != 1:
            raise InputError(f"tune {header.get('X', '?')} leaves the 16th-note grid")
        letter = match["letter"]
        if letter == "z":
            tied = False
            continue
        octave = 5 if letter.islower() else 4  # C4 = MIDI 60, c = 72
        octave += match["octave"].count("'") - match["octave"].count(",")
        name = letter.upper()
        accidental = match["acc"]
        if accidental:
            shift = {"^": 1, "_": -1, "=": 0}[accidental[0]] * (len(accidental) if accidental[0] != "=" else 0)
            bar_accidentals[(name, octave)] = shift
        shift = bar_accidentals.get((name, octave), signature.get(name, 0))
        pitch = 12 * (octave + 1) + _LETTER_SEMITONES[name] + shift
        if tied and notes and notes[-1][2] == pitch and notes[-1][1] == int(start):
            notes[-1] = (notes[-1][0], int(position), pitch)
        else:
            notes.append((int(start), int(position), pitch))
        tied = bool(match["tie"])
    if not notes:
        raise InputError(f"tune {header.get('X', '?')} has no notes")
    if -1 in bar_starts:
        raise InputError(f"tune {header.get('X', '?')} has a bar line off the 16th-note grid")
    return Tune(number=header.get("X", "?"), meter=header["M"], notes=notes, bar_starts=bar_starts,
                n_steps=int(position))


def essen_folder() -> Path:
    """The folder of Essen ABC files inside the installed music21; InputError saying how to get it otherwise."""
    spec = importlib.util.find_spec("music21")
    if spec is None or spec.origin is None:
        raise InputError("the melody data are the Essen folk songs in music21's corpus: pip install music21")
    folder = Path(spec.origin).parent / "corpus" / "essenFolksong"
    if not folder.is_dir():
        raise InputError(f"music21 is installed but has no Essen corpus at {folder}")
    return folder


def load_essen_tunes(folder: str | Path | None = None) -> tuple[list[Tune], int]:
    """Every tune of every ``*.abc`` file in ``folder`` (default :func:`essen_folder`) and how many were skipped."""
    folder = Path(folder) if folder is not None else essen_folder()
    tunes, skipped = [], 0
    for path in sorted(folder.glob("*.abc")):
        text = path.read_text(encoding="latin-1")
        for chunk in re.split(r"\n(?=X:)", text):
            if not chunk.strip().startswith("X:"):
                continue
            try:
                tune = parse_abc_tune(chunk)
            except InputError:
                skipped += 1
                continue
            tunes.append(Tune(number=f"{path.stem}:{tune.number}", meter=tune.meter, notes=tune.notes,
                              bar_starts=tune.bar_starts, n_steps=tune.n_steps))
    if not tunes:
        raise InputError(f"no readable tunes in {folder}")
    return tunes, skipped


def _bar_steps(meter: str) -> int | None:
    try:
        value = Fraction(meter.strip())
    except (ValueError, ZeroDivisionError):
        return None
    steps = value * 16
    return int(steps) if steps.denominator == 1 else None


def tune_phrases(tune: Tune, *, config: MelodyVAEConfig) -> list[list[tuple[int, int, int]]]:
    """The tune's phrases: notes relative to each bar line from which ``n_steps`` of the tune follow.

    Only tunes whose bar is ``steps_per_bar``, half or twice it (2/4, 4/4 and 2/2, 4/2 for 16) are used: their
    bar lines fall on the phrase's bar lines. Phrases without two notes are dropped.
    """
    bar = _bar_steps(tune.meter)
    if bar is None or not (bar == config.steps_per_bar or bar in (config.steps_per_bar // 2, 2 * config.steps_per_bar)):
        return []
    phrases = []
    # the first bar may be a pick-up: phrases start on the bar lines of full bars
    first_full = tune.bar_starts[1] if len(tune.bar_starts) > 1 and tune.bar_starts[1] < bar else 0
    for start in tune.bar_starts:
        if start < first_full:
            continue
        end = start + config.n_steps
        if end > tune.n_steps:
            break
        inside = [(max(s, start) - start, min(e, end) - start, p) for s, e, p in tune.notes if s < end and e > start]
        if len(inside) >= 2:
            phrases.append(inside)
    return phrases


def _is_test(tune: Tune) -> bool:
    return zlib.crc32(tune.number.encode()) % 1000 < _TEST_FRACTION * 1000


def make_melody_phrases(*, config: MelodyVAEConfig, split: str, folder: str | Path | None = None) -> tuple[Tensor, dict]:
    """Phrases of the Essen tunes in ``split`` ("train" or "test") as tokens ``(n, n_steps)`` int64, and a summary.

    Phrases outside the vocabulary's pitch range are shifted by whole octaves into it, or dropped when they span
    more than it. Training transposes them at random (:func:`transpose_phrases`).
    """
    if split not in ("train", "test"):
        raise ParameterError(f"split={split!r}; expected 'train' or 'test'")
    tunes, skipped = load_essen_tunes(folder)
    chosen = [tune for tune in tunes if _is_test(tune) == (split == "test")]
    low, high = config.pitch_low, config.pitch_low + config.n_pitches - 1
    rows = []
    n_phrases = 0
    for tune in chosen:
        for notes in tune_phrases(tune, config=config):
            n_phrases += 1
            pitches = [p for _, _, p in notes]
            for shift in sorted(range(-36, 37, 12), key=abs):
                if low <= min(pitches) + shift and max(pitches) + shift <= high:
                    rows.append(notes_to_tokens([(s, e, p + shift) for s, e, p in notes], n_steps=config.n_steps,
                                                pitch_low=config.pitch_low, n_pitches=config.n_pitches))
                    break
    if not rows:
        raise InputError("no melody phrases fit the model's pitch range")
    summary = {"tunes": len(chosen), "tunes_skipped_unreadable": skipped, "phrases": len(rows),
               "phrases_out_of_range": n_phrases - len(rows)}
    return torch.tensor(rows, dtype=torch.long), summary


def transpose_phrases(tokens: Tensor, shifts: Tensor, *, config: MelodyVAEConfig) -> Tensor:
    """Shift the pitch tokens of phrases ``(B, n_steps)`` by ``shifts`` ``(B,)`` semitones, clamped per phrase.

    A phrase whose shifted pitches would leave the vocabulary keeps the largest shift towards ``shifts`` that fits.
    """
    pitch = tokens >= 2
    big = torch.iinfo(torch.long).max
    lowest = torch.where(pitch, tokens, big).min(dim=1).values - 2
    highest = torch.where(pitch, tokens, -1).max(dim=1).values - 2
    shifts = torch.clamp(shifts, -lowest, config.n_pitches - 1 - highest)
    return torch.where(pitch, tokens + shifts[:, None], tokens)


def notes_per_bar(tokens: np.ndarray | Tensor, *, steps_per_bar: int) -> np.ndarray:
    """Note onsets per bar of each phrase ``(n, n_steps)`` → ``(n,)`` floats."""
    tokens = np.asarray(tokens)
    return (tokens >= 2).sum(axis=1) / (tokens.shape[1] / steps_per_bar)


def corpus_statistics(tokens: Tensor, *, config: MelodyVAEConfig) -> dict[str, float]:
    """What the evaluation compares generated melodies with: held-out phrases' note density percentiles, key fit
    and distinct share (numbers only: the phrases themselves are never stored)."""
    from training.melody_metrics import distinct_fraction, key_fit

    density = notes_per_bar(tokens, steps_per_bar=config.steps_per_bar)
    return {"phrases": int(len(tokens)),
            "notes_per_bar_p10": float(np.percentile(density, 10)),
            "notes_per_bar_p50": float(np.percentile(density, 50)),
            "notes_per_bar_p90": float(np.percentile(density, 90)),
            **key_fit(np.asarray(tokens), pitch_low=config.pitch_low),
            "distinct_phrases": distinct_fraction(np.asarray(tokens))}
