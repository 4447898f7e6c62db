"""Latent stream: timeline length, held values, crossfades centred on boundaries, live events mid-glide."""

import numpy as np
import pytest

from bridge.control.timeline import LatentTimeline, frame_times, glide_fraction
from models.errors import ParameterError


@pytest.fixture
def values():
    return {"z": np.array([[0.0, 10.0], [1.0, 20.0], [-1.0, 0.0]]), "d": np.array([[0.1], [0.5], [0.9]])}


def test_duration_is_images_times_seconds(values):
    stream = LatentTimeline.from_sequence(values, seconds_per_image=0.75, crossfade_s=0.2)
    assert stream.duration_s == pytest.approx(3 * 0.75)
    assert len(frame_times(duration_s=stream.duration_s, frame_rate_hz=100)) == 225


def test_each_image_holds_outside_the_crossfades(values):
    stream = LatentTimeline.from_sequence(values, seconds_per_image=1.0, crossfade_s=0.4)
    held = stream.sample(np.array([0.0, 0.5, 0.79, 1.21, 1.5, 1.79, 2.21, 2.99]))
    np.testing.assert_allclose(held["z"], values["z"][[0, 0, 0, 1, 1, 1, 2, 2]])
    np.testing.assert_allclose(held["d"], values["d"][[0, 0, 0, 1, 1, 1, 2, 2]])


def test_crossfade_is_a_blend_centred_on_the_boundary(values):
    stream = LatentTimeline.from_sequence(values, seconds_per_image=1.0, crossfade_s=0.4)
    times = np.linspace(0.8, 1.2, 41)
    z = stream.sample(times)["z"]
    a, b = values["z"][0], values["z"][1]
    np.testing.assert_allclose(z[20], (a + b) / 2)  # the boundary is the midpoint
    weights = (z[:, 0] - a[0]) / (b[0] - a[0])
    np.testing.assert_allclose(z, a + weights[:, None] * (b - a), atol=1e-12)  # a blend of the two
    assert np.all(np.diff(weights) >= 0) and weights[0] == pytest.approx(0) and weights[-1] == pytest.approx(1)


def test_zero_crossfade_switches_at_the_boundary(values):
    stream = LatentTimeline.from_sequence(values, seconds_per_image=1.0, crossfade_s=0.0)
    z = stream.sample(np.array([0.999, 1.0]))["z"]
    np.testing.assert_allclose(z, values["z"][:2])


def test_event_mid_glide_starts_where_the_glide_was():
    stream = LatentTimeline(crossfade_s=1.0)
    stream.add(0.0, {"z": [0.0]})
    stream.add(1.0, {"z": [1.0]})
    stream.add(1.5, {"z": [-1.0]})  # arrives halfway through the glide to 1.0
    before, at, after = stream.sample(np.array([1.5 - 1e-9, 1.5, 2.5]))["z"][:, 0]
    assert before == pytest.approx(at, abs=1e-6) and at == pytest.approx(0.5)
    assert after == pytest.approx(-1.0)


def test_bad_timelines_are_refused(values):
    with pytest.raises(ParameterError, match="crossfade_s"):
        LatentTimeline.from_sequence(values, seconds_per_image=0.5, crossfade_s=0.6)
    with pytest.raises(ParameterError, match="seconds_per_image"):
        LatentTimeline.from_sequence(values, seconds_per_image=0.0)
    stream = LatentTimeline()
    stream.add(1.0, {"z": [0.0]})
    with pytest.raises(ParameterError, match="before the previous"):
        stream.add(0.5, {"z": [1.0]})
    with pytest.raises(ParameterError, match="NaN"):
        stream.add(2.0, {"z": [np.nan]})


def test_glide_fraction_shape_for_floats_and_arrays():
    np.testing.assert_allclose(glide_fraction(np.array([-1.0, 0.0, 0.5, 1.0, 2.0]), 1.0), [0, 0, 0.5, 1, 1])
    assert float(glide_fraction(0.25, 0.5)) == glide_fraction(np.array([0.25]), np.array([0.5]))[0] == pytest.approx(0.5)
    np.testing.assert_array_equal(glide_fraction(np.array([-0.1, 0.0, 3.0]), 0.0), [0, 1, 1])  # 0 s: a step at 0


def test_forget_before_keeps_the_values_from_that_time_on():
    stream = LatentTimeline(crossfade_s=0.5)
    for index in range(10):
        stream.add(float(index), {"z": np.array([float(index), -float(index)])})
    times = np.linspace(6.2, 12.0, 50)
    before = stream.sample(times)["z"]
    stream.forget_before(6.2)
    assert stream.n_events == 4  # the event at 6 s (still gliding) and those after it
    np.testing.assert_array_equal(stream.sample(times)["z"], before)
    stream.forget_before(0.0)  # nothing older: no change
    assert stream.n_events == 4


def test_each_event_can_have_its_own_crossfade():
    stream = LatentTimeline(crossfade_s=0.0)
    stream.add(0.0, {"z": np.array([0.0])})
    stream.add(1.0, {"z": np.array([1.0])}, crossfade_s=2.0)
    stream.add(5.0, {"z": np.array([3.0])})
    values = stream.sample(np.array([1.0, 2.0, 3.0, 4.9, 5.0]))["z"].ravel()
    np.testing.assert_allclose(values, [0.0, 0.5, 1.0, 1.0, 3.0])


def test_value_at_equals_sample_at_one_time(rng):
    stream = LatentTimeline(crossfade_s=0.3)
    for index in range(6):
        stream.add(index * 0.5, {"z": rng.standard_normal(3), "w": rng.standard_normal(2)},
                   crossfade_s=[0.3, 0.0, 0.7][index % 3])
    for time_s in [-1.0, 0.0, 0.1, 0.55, 1.0, 1.2, 2.49, 3.0, 9.0]:
        sampled = stream.sample(np.array([time_s]))
        single = stream.value_at(time_s)
        for name in ("z", "w"):
            np.testing.assert_allclose(single[name], sampled[name][0], rtol=1e-12, atol=1e-12)
