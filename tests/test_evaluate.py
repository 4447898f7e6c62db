"""``imgsonic eval`` end to end on tiny, randomly initialised presets in a temporary registry."""

import functools
import json

import pytest
import torch

from bridge.cli import main
from models import registry
from models.audio_vae import AudioVAE, AudioVAEConfig
from models.errors import ParameterError
from models.image_vae import ImageVAE, ImageVAEConfig
from models.mapper import LatentMapper, LatentMapperConfig
from synth.sources import sample_sine_params
from training import evaluate
from training.evaluate import SINE_PEAK_DB, SINE_PITCH_MIDI, TARGETS, _count_distinct, evaluate_preset, format_table
from training.presets import PRESET_SPECS

COMMON_METRICS = {
    "image_recon_mse", "audio_recon_mse", "image_kl", "audio_kl", "mapper_cycle_image", "mapper_cycle_audio",
    "prior_distance", "prior_distance_floor", "distance_preservation",
}
PLOTS = {"image_traversal.png", "audio_traversal.png", "spectrogram_strip.png", "reverse.png", "metrics.json"}
REVERSE_METRICS = {
    "squares-sines": {"reverse_abs_rho_min", "reverse_centroid_error_px", "reverse_factor_pairing", "reverse_n_tones"},
    "digits-fm": {"reverse_class_match"},
    "default": {"reverse_distance_preservation"},
}


def _write_tiny_preset(folder, name):
    """Random models with the preset's sizes (so its data sets fit) but tiny widths."""
    spec = PRESET_SPECS[name]
    torch.manual_seed(0)
    image = spec.image_vae
    ImageVAE(ImageVAEConfig(image_size=image.image_size, channels=image.channels, latent_dim=image.latent_dim,
                            base_width=4, n_layers=image.n_layers, hidden_width=16)).save(folder / name / "image_vae.pt")
    audio = spec.audio_vae
    AudioVAE(AudioVAEConfig(n_mels=audio.n_mels, n_frames=audio.n_frames, latent_dim=audio.latent_dim,
                            hidden_width=16, n_hidden_layers=1, spectral=audio.spectral)).save(folder / name / "audio_vae.pt")
    LatentMapper(LatentMapperConfig(image.latent_dim, audio.latent_dim, hidden_width=8, depth=1)).save(
        folder / name / "mapper.pt")
    (folder / f"{name}.toml").write_text(
        "\n".join(f'{kind} = "{name}/{kind}.pt"' for kind in ("image_vae", "audio_vae", "mapper")) + "\n")


@pytest.fixture
def presets_dir(tmp_path, monkeypatch):
    folder = tmp_path / "presets"
    for name in TARGETS:
        _write_tiny_preset(folder, name)
    monkeypatch.setattr(registry, "PRESETS_DIR", folder)
    return folder


@pytest.mark.parametrize("name", list(TARGETS))
def test_eval_end_to_end_writes_metrics_and_plots(presets_dir, tmp_path, name):
    out = tmp_path / "out"
    result = evaluate_preset(name, n=200, out_dir=out, method="pghi", render_seconds=0.1)
    assert COMMON_METRICS | REVERSE_METRICS[name] <= set(result["metrics"])
    # the rows through files (files_*, default's wide rows) need the command line (imgsonic eval hands it in):
    # without it they are not measured, and their targets count as missed
    assert set(result["targets"]) == {target.metric for target in TARGETS[name] if not target.through_files}
    assert set(result["not_measured"]) == {target.metric for target in TARGETS[name] if target.through_files}
    if result["not_measured"]:
        assert not result["all_targets_met"]
        table = format_table(result)
        assert all(f"{metric}  " in table for metric in result["not_measured"]) and "not measured" in table
    for target in result["targets"].values():
        assert set(target) == {"op", "value", "measured", "passed"}
    assert {p.name for p in out.iterdir()} == PLOTS  # no temporary files left behind
    assert json.loads((out / "metrics.json").read_text())["metrics"] == result["metrics"]
    assert -1.0 <= result["metrics"]["distance_preservation"] <= 1.0
    assert result["n_images"] == 200


def test_cli_json_and_table(presets_dir, tmp_path, capsys, monkeypatch):
    # imgsonic eval also runs visualize and render on files (training.eval_files); a few tones and squares here
    monkeypatch.setattr(evaluate, "squares_sines_file_checks",
                        functools.partial(evaluate.squares_sines_file_checks, n_tones=4, n_squares=4))
    code = main(["eval", "--preset", "squares-sines", "--json", "-o", str(tmp_path / "o"), "--n", "200",
                 "--method", "pghi"])
    printed = json.loads(capsys.readouterr().out)
    assert code == (0 if printed["all_targets_met"] else 1)  # random models may miss the targets
    assert {"factor_abs_rho", "cross_leakage", "factor_pairing"} <= set(printed["metrics"])
    assert set(printed["targets"]) == {target.metric for target in TARGETS["squares-sines"]}
    assert printed["not_measured"] == {}
    assert printed["metrics"]["files_visualize_n_tones"] == 4 and printed["metrics"]["files_render_n_squares"] == 4
    assert printed["targets"]["factor_abs_rho_min"]["op"] == ">="
    table = format_table(printed)
    assert "factor_abs_rho_min" in table and ">= 0.98" in table and "wrote" in table


def test_cli_rejects_bad_arguments(presets_dir, capsys):
    assert main(["eval", "--preset", "squares-sines", "--n", "10"]) == 2
    assert "argument --n: '10' is not a whole number of items in 200" in capsys.readouterr().err
    assert main(["eval", "--preset", "nonexistent"]) == 2
    with pytest.raises(ParameterError, match="unknown preset 'nonexistent'; available presets"):
        evaluate_preset("nonexistent")
    with pytest.raises(ParameterError, match="no evaluation defined for preset 'other'"):
        (presets_dir / "other.toml").write_text((presets_dir / "default.toml").read_text())
        evaluate_preset(str(presets_dir / "other.toml"))


def test_count_distinct_links_chains():
    import numpy as np

    features = np.array([[0.0], [0.6], [1.2], [5.0]])  # 0–1–2 chained below 1 dB, 3 apart
    assert _count_distinct(features, 1.0) == (2, pytest.approx(0.6))


def test_reverse_squares_sines_metrics_are_in_range(presets_dir, tmp_path):
    metrics = evaluate_preset("squares-sines", n=200, method="pghi", render_seconds=0.1)["metrics"]
    assert metrics["reverse_n_tones"] == 14 * 14  # the largest square grid within n
    assert all(0.0 <= rho <= 1.0 for rho in metrics["reverse_abs_rho"])
    assert sorted(metrics["reverse_factor_pairing"]) in (["loudness→x", "pitch→y"], ["loudness→y", "pitch→x"])
    assert 0.0 <= metrics["reverse_centroid_error_px"] < 64 * 2**0.5
    # the centre range is measured on the held-out squares, enlarged to 64 px: their centres lie m px from either
    # edge, m = the smallest half-side plus the widest edge (training.datasets.make_squares)
    spec = PRESET_SPECS["squares-sines"]
    margin = (spec.square_side_range[0] * spec.image_vae.image_size / 2 + spec.square_edge_range_px[1]) * 64 / 32
    for start, stop in metrics["reverse_centre_range_px"]:
        assert start == pytest.approx(margin, abs=0.15) and stop == pytest.approx(64 - margin, abs=0.15)


def test_sine_grid_ranges_are_the_data_sets():
    import inspect

    defaults = inspect.signature(sample_sine_params).parameters
    assert SINE_PITCH_MIDI == defaults["pitch_midi_range"].default
    assert SINE_PEAK_DB == defaults["peak_db_range"].default


@pytest.mark.slow
def test_wide_rows_render_files_through_the_cli(presets_dir, tmp_path):
    """The wide sets on small sizes: files written in several modes, rendered by ``imgsonic render`` on their
    folder (in this process: the temporary registry's ``default``), every row in range; levelled, the tiny
    model's images land within 1 dB of one another and the file within 1 LU of −18 LUFS (pyloudnorm on the WAV)."""
    from training.wide_eval import _held_out_photo_paths, evaluate_wide

    rows = evaluate_wide(main, preset="default", method="pghi", keep_dir=tmp_path / "wide", n_per_family=3,
                         n_photos=1, n_scenes=3, n_varied=10)
    n_photos = len(_held_out_photo_paths()[:1])  # 0 where scikit-image and matplotlib are not installed
    assert rows["n_texture_images"] == 12 and rows["n_photo_images"] == 6 * n_photos + 3
    assert 0.0 <= rows["texture_family_1nn"] <= 1.0
    assert -1.0 <= rows["texture_descriptor_spearman"] <= 1.0 and -1.0 <= rows["photo_descriptor_spearman"] <= 1.0
    assert abs(rows["programme_lufs"] + 18.0) < 1.0 and rows["loudness_spread_db"] < 1.0
    assert len(list((tmp_path / "wide" / "texture").glob("0*"))) == 12  # the files, kept to look at


def test_the_wide_sets_drawn_from_another_seed_differ():
    import numpy as np

    from training.wide_eval import photo_set, texture_set

    own, other = texture_set(n_per_family=2), texture_set(n_per_family=2, seed=12345)
    assert [item.group for item in own] == [item.group for item in other]  # the same kinds, four families
    assert not any(a.pixels.shape == b.pixels.shape and np.allclose(a.pixels, b.pixels) for a, b in zip(own, other))
    assert texture_set(n_per_family=2, seed=12345)[0].pixels.tobytes() == other[0].pixels.tobytes()  # repeatable
    scenes = photo_set(n_scenes=2, n_photos=0, seed=12346)
    assert [item.group for item in scenes] == ["scene", "scene"]
