"""The latent timeline: image latents (and descriptors) placed in time, crossfaded, sampled at a control rate.

The timeline is a list of **events** — "at time ``t`` the image becomes this one" — each carrying named
vectors (``z_img``, ``z_aud``, ``descriptors``, …). From an event on, every vector glides from the value
the timeline had at that moment to the event's value over ``crossfade_s`` seconds (a raised-cosine
S-curve, so the glide starts and ends with zero slope); an event arriving mid-glide starts from wherever
the glide had got to. Before the first event the timeline holds the first event's value.

The offline renderer builds the events from a sequence (:meth:`LatentTimeline.from_sequence`: image ``i``
owns ``[i·s, (i+1)·s)`` and each crossfade is centred on the boundary); the live engine appends events as
images arrive (:meth:`LatentTimeline.add`) and samples the same function at its control rate, so both
paths produce the same latent trajectory for the same events.

Example
-------
>>> import numpy as np
>>> timeline = LatentTimeline.from_sequence({"z": np.array([[0.0], [1.0]])}, seconds_per_image=1.0, crossfade_s=0.5)
>>> timeline.duration_s
2.0
>>> timeline.sample(np.array([0.5, 1.0, 1.5]))["z"].ravel().round(6).tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping

import numpy as np

from bridge.control.limits import check_seconds
from models.errors import ParameterError

__all__ = ["LatentTimeline", "frame_times", "glide_fraction", "image_of_frames"]

_ONSET_SLACK_S = 1e-9  # a frame at an image's onset (up to float rounding) belongs to that image


def glide_fraction(elapsed_s: np.ndarray | float, fade_s: np.ndarray | float) -> np.ndarray:
    """How far a glide of ``fade_s`` seconds has got ``elapsed_s`` seconds after it began, 0 … 1.

    A raised-cosine S-curve (zero slope at both ends: no clicks); a glide of 0 s is a step at 0. Floats or
    arrays (broadcast). The one crossfade shape of the timeline, offline and live.

    >>> glide_fraction(np.array([0.0, 0.5, 1.0, 2.0]), 1.0).round(3).tolist()
    [0.0, 0.5, 1.0, 1.0]
    """
    fade_s = np.asarray(fade_s, dtype=np.float64)
    x = np.clip(np.asarray(elapsed_s, dtype=np.float64) / np.where(fade_s > 0, fade_s, 1.0), 0.0, 1.0)
    return np.where(fade_s > 0, 0.5 - 0.5 * np.cos(np.pi * x), np.asarray(elapsed_s) >= 0).astype(np.float64)


def frame_times(*, duration_s: float, frame_rate_hz: float) -> np.ndarray:
    """Times of the control frames ``m / frame_rate_hz`` for ``m < round(duration_s · frame_rate_hz)``."""
    n_frames = int(round(duration_s * frame_rate_hz))
    return np.arange(n_frames, dtype=np.float64) / frame_rate_hz


def image_of_frames(times_s: np.ndarray, onsets_s: np.ndarray) -> np.ndarray:
    """The image each frame belongs to: the last onset at or before its time (image 0 before the first).

    >>> image_of_frames(np.array([0.0, 0.5, 1.0, 1.5]), np.array([0.0, 1.0])).tolist()
    [0, 0, 1, 1]
    """
    thresholds = np.asarray(onsets_s, dtype=np.float64) - _ONSET_SLACK_S
    return np.maximum(np.searchsorted(thresholds, np.asarray(times_s, dtype=np.float64), side="right") - 1, 0)


class LatentTimeline:
    """Named vectors that change at event times and glide between values.

    Parameters
    ----------
    crossfade_s : float
        Glide time after each event, ≥ 0 (0 = switch instantly).
    """

    def __init__(self, *, crossfade_s: float = 0.0) -> None:
        self.crossfade_s = check_seconds("crossfade_s", crossfade_s, positive=False)
        self.event_times_s: list[float] = []
        self._fades_s: list[float] = []
        self._stacked: tuple | None = None
        self._targets: dict[str, list[np.ndarray]] = {}
        self._starts: dict[str, list[np.ndarray]] = {}
        self.duration_s: float | None = None

    @classmethod
    def from_sequence(
        cls,
        values: Mapping[str, np.ndarray],
        *,
        seconds_per_image: float,
        crossfade_s: float = 0.0,
    ) -> LatentTimeline:
        """A timeline for ``n`` images shown ``seconds_per_image`` each: ``duration_s = n · seconds_per_image``.

        ``values`` maps names to arrays ``(n, D)``. Image ``i`` is fully present in
        ``[i·s + c/2, (i+1)·s − c/2]``; the crossfade into it spans ``i·s ± c/2`` (``c = crossfade_s ≤ s``).
        """
        seconds_per_image = check_seconds("seconds_per_image", seconds_per_image, positive=True)
        crossfade_s = check_seconds("crossfade_s", crossfade_s, positive=False)
        if crossfade_s > seconds_per_image:
            raise ParameterError(
                f"crossfade_s={crossfade_s} is longer than seconds_per_image={seconds_per_image}; expected ≤ it"
            )
        arrays = {name: np.asarray(value, dtype=np.float64) for name, value in values.items()}
        counts = {array.shape[0] if array.ndim == 2 else -1 for array in arrays.values()}
        if len(counts) != 1 or min(counts) < 1:
            shapes = {name: array.shape for name, array in arrays.items()}
            raise ParameterError(f"values have shapes {shapes}; expected (n_images, D) each with the same n_images ≥ 1")
        n_images = counts.pop()
        timeline = cls(crossfade_s=crossfade_s)
        for index in range(n_images):
            time_s = 0.0 if index == 0 else index * seconds_per_image - crossfade_s / 2
            timeline.add(time_s, {name: array[index] for name, array in arrays.items()})
        timeline.duration_s = n_images * seconds_per_image
        return timeline

    @property
    def n_events(self) -> int:
        return len(self.event_times_s)

    def add(self, time_s: float, values: Mapping[str, np.ndarray], *, crossfade_s: float | None = None) -> None:
        """Append an event at ``time_s`` (not before the previous one) with a vector per name (same names each time).

        ``crossfade_s`` is this event's glide time (default: the timeline's).
        """
        time_s = check_seconds("time_s", time_s, positive=False)
        fade_s = self.crossfade_s if crossfade_s is None else check_seconds("crossfade_s", crossfade_s, positive=False)
        if self.event_times_s and time_s < self.event_times_s[-1]:
            raise ParameterError(f"event at {time_s} s comes before the previous one at {self.event_times_s[-1]} s")
        vectors = {name: np.asarray(value, dtype=np.float64).reshape(-1) for name, value in values.items()}
        first = not self.event_times_s
        if not first and set(vectors) != set(self._targets):
            raise ParameterError(f"event has values {sorted(vectors)}; the timeline carries {sorted(self._targets)}")
        for name, vector in vectors.items():
            if not np.isfinite(vector).all():
                raise ParameterError(f"event value {name!r} contains NaN or inf")
            if not first and vector.shape != self._targets[name][0].shape:
                raise ParameterError(f"{name!r} has {vector.size} dims; the timeline's has {self._targets[name][0].size}")
            start = vector if first else self._value_at(name, len(self.event_times_s) - 1, time_s)
            self._starts.setdefault(name, []).append(start)
            self._targets.setdefault(name, []).append(vector)
        self.event_times_s.append(time_s)
        self._fades_s.append(fade_s)
        self._stacked = None

    def _value_at(self, name: str, event: int, time_s: float) -> np.ndarray:
        alpha = float(glide_fraction(time_s - self.event_times_s[event], self._fades_s[event]))
        start, target = self._starts[name][event], self._targets[name][event]
        return start + alpha * (target - start)

    def forget_before(self, time_s: float) -> None:
        """Drop the events that no longer matter from ``time_s`` on (all but the latest one at or before it).

        A live voice calls this as time passes, so sampling costs the same after hours of images;
        afterwards the timeline must only be sampled at ``time_s`` or later.
        """
        n_old = int(np.searchsorted(np.asarray(self.event_times_s), time_s, side="right")) - 1
        if n_old <= 0:
            return
        del self.event_times_s[:n_old]
        del self._fades_s[:n_old]
        for values in (*self._starts.values(), *self._targets.values()):
            del values[:n_old]
        self._stacked = None

    def event_index(self, times_s: np.ndarray) -> np.ndarray:
        """Index of the latest event at or before each time (0 before the first event)."""
        index = np.searchsorted(np.asarray(self.event_times_s), np.asarray(times_s, dtype=np.float64), side="right") - 1
        return np.maximum(index, 0)

    def value_at(self, time_s: float) -> dict[str, np.ndarray]:
        """Every named vector at one time ``(D,)``: :meth:`sample` for a single time, without building arrays
        of the events (the live control path calls it every buffer)."""
        if not self.event_times_s:
            raise ParameterError("the timeline has no events yet")
        index = max(bisect.bisect_right(self.event_times_s, time_s) - 1, 0)
        alpha = 1.0 if time_s < self.event_times_s[0] else float(
            glide_fraction(time_s - self.event_times_s[index], self._fades_s[index]))
        return {name: self._starts[name][index] + alpha * (self._targets[name][index] - self._starts[name][index])
                for name in self._targets}

    def sample(self, times_s: np.ndarray) -> dict[str, np.ndarray]:
        """Every named vector at ``times_s`` ``(T,)``: a dict of arrays ``(T, D)``."""
        if not self.event_times_s:
            raise ParameterError("the timeline has no events yet")
        if self._stacked is None:  # the events as arrays, rebuilt only when they change (live: once per image)
            self._stacked = (np.asarray(self.event_times_s), np.asarray(self._fades_s),
                             {name: (np.stack(self._starts[name]), np.stack(self._targets[name])) for name in self._targets})
        event_times, fades, vectors = self._stacked
        times_s = np.asarray(times_s, dtype=np.float64).reshape(-1)
        index = np.maximum(np.searchsorted(event_times, times_s, side="right") - 1, 0)
        elapsed = np.maximum(times_s - event_times[index], 0.0)
        alpha = glide_fraction(elapsed, fades[index])[:, None]
        alpha[times_s < event_times[0]] = 1.0  # before the first event: hold its value
        result = {}
        for name, (starts, targets) in vectors.items():
            starts, targets = starts[index], targets[index]
            result[name] = starts + alpha * (targets - starts)
        return result
