"""The object reader behind the scenes generator's auxiliary loss: it learns to count what measure_objects counts."""

import pytest
import torch

from models.errors import ParameterError
from training.av_scenes import make_scenes, measure_objects
from training.object_reader import ObjectReader, object_targets, train_object_reader


def test_targets_are_what_measure_objects_reads_scaled():
    scenes = make_scenes(12, split="train", image_size=32, sample_rate=8000, seed=5)
    targets = object_targets(scenes.images)
    measured = measure_objects(scenes.images)
    assert torch.allclose(targets[:, 0] * 4, torch.from_numpy(measured[:, 0]).float())
    assert torch.allclose(targets[:, 1] * 16, torch.from_numpy(measured[:, 1]).float())


@pytest.mark.slow
def test_reader_counts_held_out_pictures_far_above_chance():  # ~20 s of CPU
    torch.manual_seed(0)
    scenes = make_scenes(200, split="train", image_size=32, sample_rate=8000, seed=6, kinds=("ball",))
    reader, record = train_object_reader(scenes.images, object_targets(scenes.images), steps=200)
    assert record["count_accuracy"] > 0.5  # 1–4 objects: a constant guess is right about a quarter of the time
    assert not any(p.requires_grad for p in reader.parameters())


def test_reader_refuses_too_few_pictures_and_tiny_images():
    with pytest.raises(ParameterError, match="at least 20"):
        train_object_reader(torch.zeros(5, 1, 32, 32), torch.zeros(5, 2), steps=1)
    with pytest.raises(ParameterError, match="image_size"):
        ObjectReader(image_size=4, channels=1)


def test_refreshing_teaches_the_reader_that_faint_smudges_are_not_objects():
    """Pictures at 40 % brightness hold nothing that measure_objects counts (its threshold is half); a reader
    trained on real pictures alone reads objects in them, and the refresher's steps on them bring its count
    down while it reads the real pictures as well as before."""
    from training.object_reader import ReaderRefresher

    torch.manual_seed(0)
    scenes = make_scenes(60, split="train", image_size=32, sample_rate=8000, seed=7, kinds=("ball",))
    targets = object_targets(scenes.images)
    reader, _ = train_object_reader(scenes.images, targets, steps=60)
    faint = scenes.images * 0.4
    assert float(object_targets(faint)[:, 0].abs().max()) == 0.0
    with torch.no_grad():
        before = float(reader(faint)[:, 0].mean())
        real_before = float((reader(scenes.images)[:, 0] - targets[:, 0]).abs().mean())
    refresher = ReaderRefresher(reader, every=1, steps=4, lr=2e-3)
    for _ in range(10):
        refresher.refresh(scenes.images[:32], targets[:32], faint[:32])
    assert not any(p.requires_grad for p in reader.parameters())
    with torch.no_grad():
        after = reader(faint)[:, 0].mean()
        real_error = (reader(scenes.images)[:, 0] - targets[:, 0]).abs().mean()
    assert before > 0.2 and float(after) < 0.5 * before
    assert float(real_error) < real_before + 0.05  # and it reads the real pictures as well as before
    with pytest.raises(ParameterError, match="every"):
        ReaderRefresher(reader, every=0)


def test_encoder_object_head_learns_the_paired_pictures_count(tmp_path):
    """Stage 1 of ``train s2i --preset scenes``: the object head, trained on the paired pictures' measures, reads
    the count of held-out scenes from their sound alone; without the object weight there is no head at all."""
    import dataclasses

    from training import metrics
    from training.paired_data import scene_data
    from training.train_s2i import S2I_SPECS, clips_spec, train_autoencoder

    spec = S2I_SPECS["scenes"]
    assert spec.encoder_object_weight > 0 and clips_spec("mine").encoder_object_weight == 0
    train, test = scene_data("train", n_scenes=480, seed=3), scene_data("test", n_scenes=120, seed=4)
    model, record = train_autoencoder(spec, train, out_dir=tmp_path / "with", steps=300, device="cpu", progress=False)
    with torch.inference_mode():
        read = model.read_objects(model.encode(test.mels))[:, 0].numpy()
    assert metrics.spearman(read, test.factors[:, 2].numpy()) > 0.6  # an untrained head reads about 0
    assert record["final_logs"]["acc"] > 0.5  # the kind head, beside it (4 kinds)
    without, _ = train_autoencoder(dataclasses.replace(spec, encoder_object_weight=0.0), train, out_dir=tmp_path / "without",
                                   steps=1, device="cpu", progress=False)
    assert without.object_head is None
