"""The melody path: tokens, the melody VAE, Essen ABC parsing, MIDI files, the pyo melody voice, the beat scheduler."""

import numpy as np
import pytest
import torch

from models.errors import CheckpointError, InputError, ParameterError
from models.melody_vae import HOLD, REST, MelodyVAE, MelodyVAEConfig, notes_to_tokens, tokens_to_notes
from training.melody_data import parse_abc_tune, transpose_phrases, tune_phrases
from training.melody_metrics import distinct_fraction, key_fit, nwj_lower_bound

SMALL = MelodyVAEConfig(latent_dim=4, embed_dim=8, conv_width=16, hidden_width=32)


def c_major_phrase():
    """Two bars: C D E F (quarters), G held a half, rest, C5 (a quarter)."""
    notes = [(0, 4, 60), (4, 8, 62), (8, 12, 64), (12, 16, 65), (16, 24, 67), (28, 32, 72)]
    return notes, notes_to_tokens(notes, n_steps=32, pitch_low=48, n_pitches=37)


# ---- tokens -----------------------------------------------------------------------------------------------


def test_notes_and_tokens_round_trip():
    notes, tokens = c_major_phrase()
    assert tokens_to_notes(tokens, pitch_low=48) == notes
    assert tokens[24] == REST and tokens[25] == HOLD and tokens[0] == 2 + 60 - 48


def test_a_phrase_that_starts_silent_says_so():
    tokens = notes_to_tokens([(3, 5, 60)], n_steps=8, pitch_low=60, n_pitches=12)
    assert tokens == [REST, HOLD, HOLD, 2, HOLD, REST, HOLD, HOLD]


@pytest.mark.parametrize("notes", [[(0, 4, 60), (2, 6, 62)], [(0, 40, 60)], [(0, 2, 90)]])
def test_bad_notes_are_refused(notes):
    with pytest.raises(ParameterError):
        notes_to_tokens(notes, n_steps=32, pitch_low=48, n_pitches=37)


# ---- the model ------------------------------------------------------------------------------------------------


def test_melody_vae_shapes_batches_and_greedy_relaxed_agree():
    torch.manual_seed(0)
    vae = MelodyVAE(SMALL).eval()
    z = torch.randn(5, 4)
    tokens = vae.decode(z)
    assert tokens.shape == (5, 32) and tokens.dtype == torch.long
    # the straight-through decoding without noise plays exactly the greedy melody, and passes gradients
    z.requires_grad_(True)
    relaxed = vae.decode_relaxed(z, noise=False)
    assert torch.equal(relaxed.argmax(-1), tokens)
    assert torch.allclose(relaxed.sum(-1), torch.ones(5, 32))
    relaxed[..., 5].sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    # one-hot and index inputs encode alike; item 0 of a batch equals the single item
    mu, _ = vae.encode(tokens)
    assert torch.allclose(vae.encode(torch.nn.functional.one_hot(tokens, SMALL.vocab_size).float())[0], mu)
    assert torch.allclose(vae.encode(tokens[:1])[0], mu[:1], atol=1e-6)
    # teacher forcing on the greedy tokens predicts them back
    assert torch.equal(vae.decode_logits(z.detach(), tokens).argmax(-1), tokens)


def test_melody_vae_checkpoint_round_trip(tmp_path):
    vae = MelodyVAE(SMALL).eval()
    path = vae.save(tmp_path / "melody.pt", metadata={"steps": 0})
    loaded = MelodyVAE.from_checkpoint(path)
    z = torch.randn(3, 4)
    assert torch.equal(loaded.decode(z), MelodyVAE(SMALL).eval().load_state_dict(loaded.state_dict()) and loaded.decode(z))
    with pytest.raises(CheckpointError):
        from models.image_vae import ImageVAE

        ImageVAE.from_checkpoint(path)


@pytest.mark.parametrize("bad", [torch.zeros(2, 31, dtype=torch.long), torch.full((2, 32), 99), torch.zeros(2, 32)])
def test_melody_vae_refuses_bad_phrases(bad):
    with pytest.raises(ParameterError):
        MelodyVAE(SMALL).encode(bad)


# ---- Essen ABC ------------------------------------------------------------------------------------------------


def test_abc_key_signature_accidentals_ties_and_octaves():
    tune = parse_abc_tune("X:7\nM: 2/4\nL: 1/8\nK: D\nF_B B c | c'2- c'C, |")
    pitches = [pitch for _, _, pitch in tune.notes]
    # F and C are sharp in D major; _B lasts to the bar line (the B after it stays flat); c' is C#6, C, is C#3
    assert pitches == [66, 70, 70, 73, 85, 49]
    assert tune.notes[4] == (8, 14, 85)  # c'2 tied to c' (a quarter and an eighth)
    assert tune.bar_starts == [0, 8, 16] and tune.n_steps == 16


def test_abc_off_the_16th_grid_is_refused():
    with pytest.raises(InputError):
        parse_abc_tune("X:1\nM: 4/4\nL: 1/32\nK: C\nC3 D |")


def test_phrases_start_on_bar_lines_after_a_pickup():
    # 4/4, a one-beat pick-up, then three full bars of quarters
    body = "G | " + " | ".join(["c d e f"] * 3) + " |"
    tune = parse_abc_tune(f"X:1\nM: 4/4\nL: 1/4\nK: C\n{body}")
    phrases = tune_phrases(tune, config=MelodyVAEConfig())
    assert len(phrases) == 2 and phrases[0][0] == (0, 4, 72)  # bars 1-2 and 2-3, never from the pick-up


def test_transposition_stays_inside_the_pitch_range():
    config = MelodyVAEConfig()
    top = notes_to_tokens([(0, 32, 48 + 36)], n_steps=32, pitch_low=48, n_pitches=37)
    low = notes_to_tokens([(0, 32, 48)], n_steps=32, pitch_low=48, n_pitches=37)
    shifted = transpose_phrases(torch.tensor([top, low]), torch.tensor([5, -5]), config=config)
    assert shifted[0, 0] == top[0] and shifted[1, 0] == low[0]  # no room either way: unchanged
    moved = transpose_phrases(torch.tensor([low]), torch.tensor([7]), config=config)
    assert moved[0, 0] == low[0] + 7 and moved[0, 1] == HOLD


# ---- metrics -------------------------------------------------------------------------------------------------


def test_key_fit_and_distinct():
    _, tokens = c_major_phrase()
    chromatic = notes_to_tokens([(i * 2, i * 2 + 2, 60 + i) for i in range(12)], n_steps=32, pitch_low=48,
                                n_pitches=37)
    assert key_fit([tokens], pitch_low=48)["in_key_ratio"] == 1.0
    assert key_fit([chromatic], pitch_low=48)["in_key_ratio"] == pytest.approx(7 / 12)
    assert distinct_fraction([tokens, tokens, chromatic]) == pytest.approx(2 / 3)


def test_nwj_bound_sees_dependence_and_not_independence():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(700, 4))
    dependent = nwj_lower_bound(x[:500], x[:500, :2] + 0.05 * rng.normal(size=(500, 2)), x[500:],
                                x[500:, :2] + 0.05 * rng.normal(size=(200, 2)), steps=250, batch_size=128)
    independent = nwj_lower_bound(x[:500], rng.normal(size=(500, 2)), x[500:], rng.normal(size=(200, 2)),
                                  steps=250, batch_size=128)
    assert dependent["mi_nats"] > 2.0
    assert independent["mi_nats"] < 0.3


# ---- presets and the melody pipeline ---------------------------------------------------------------------------


def _tiny_melody_preset(folder, *, mapper: bool):
    """A preset folder whose image VAE (4-d) joins a tiny melody VAE directly (4-d) or through a mapper (3 → 4)."""
    from models.image_vae import ImageVAE, ImageVAEConfig
    from models.mapper import LatentMapper, LatentMapperConfig

    (folder / "tiny").mkdir(parents=True)
    melody = MelodyVAE(SMALL)
    melody_path = melody.save(folder / "tiny" / "melody.pt")
    from models.checkpoint import load_checkpoint

    digest = load_checkpoint(melody_path, kind="melody_vae")["sha256"]
    image = ImageVAE(ImageVAEConfig(image_size=8, latent_dim=3 if mapper else 4, base_width=4, n_layers=1, hidden_width=8))
    image.save(folder / "tiny" / "image_vae.pt", metadata={} if mapper else {"melody_vae_sha256": digest})
    lines = ['image_vae = "tiny/image_vae.pt"', 'audio_vae = "tiny/image_vae.pt"', 'mapper = "tiny/image_vae.pt"',
             'melody_vae = "tiny/melody.pt"']
    if mapper:
        LatentMapper(LatentMapperConfig(image_latent_dim=3, audio_latent_dim=4)).save(folder / "tiny" / "mm.pt")
        lines.append('melody_mapper = "tiny/mm.pt"')
    (folder / "tiny.toml").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("mapper", [False, True])
def test_melody_models_from_a_preset(tmp_path, monkeypatch, mapper):
    from models import registry
    from models.melody_pipeline import MelodyModels

    _tiny_melody_preset(tmp_path, mapper=mapper)
    monkeypatch.setattr(registry, "PRESETS_DIR", tmp_path)
    melody = MelodyModels.from_preset("tiny")
    images = torch.rand(3, 1, 8, 8)
    tokens = melody.images_to_tokens(images)
    assert tokens.shape == (3, 32) and (melody.mapper is not None) == mapper
    assert melody.tokens_to_images(tokens).shape == (3, 1, 8, 8)
    assert torch.equal(melody.images_to_tokens(images[:1]), tokens[:1])


def test_a_synvae_image_vae_refuses_another_melody_model(tmp_path, monkeypatch):
    from models import registry
    from models.melody_pipeline import MelodyModels

    _tiny_melody_preset(tmp_path, mapper=False)
    MelodyVAE(SMALL).save(tmp_path / "tiny" / "melody.pt", metadata={"another": True})  # same shape, other weights
    monkeypatch.setattr(registry, "PRESETS_DIR", tmp_path)
    with pytest.raises(CheckpointError, match="another melody VAE"):
        MelodyModels.from_preset("tiny")


def test_registry_melody_keys(tmp_path, monkeypatch):
    from models import registry

    _tiny_melody_preset(tmp_path, mapper=True)
    monkeypatch.setattr(registry, "PRESETS_DIR", tmp_path)
    preset = registry.load_preset("tiny")
    assert preset.melody_vae.name == "melody.pt" and preset.melody_mapper.name == "mm.pt"
    text = (tmp_path / "tiny.toml").read_text().replace('melody_vae = "tiny/melody.pt"\n', "")
    (tmp_path / "tiny.toml").write_text(text)
    with pytest.raises(CheckpointError, match="melody_mapper but no melody_vae"):
        registry.load_preset("tiny")


def test_shipped_melody_presets_load():
    from models.melody_pipeline import MelodyModels
    from models.registry import available_presets, load_preset

    with_melody = [name for name in available_presets() if load_preset(name).melody_vae is not None]
    assert {"digits-melody", "default"} <= set(with_melody)
    for name in with_melody:
        melody = MelodyModels.from_preset(name)
        size, channels = melody.image_vae.config.image_size, melody.image_vae.config.channels
        assert melody.images_to_tokens(torch.rand(2, channels, size, size)).shape == (2, 32)


# ---- training smoke tests ------------------------------------------------------------------------------------------


def test_melody_vae_and_synvae_train_a_step(tmp_path):
    from training.presets import get_spec
    from training.train_melody_vae import train_melody_vae
    from training.train_synvae import SynVAESettings, train_synvae

    phrases = torch.tensor([c_major_phrase()[1]] * 8)
    config = MelodyVAEConfig(latent_dim=16, embed_dim=8, conv_width=16, hidden_width=32)
    path, metrics = train_melody_vae(out_dir=tmp_path, steps=2, progress=False, config=config, phrases=phrases,
                                     test_phrases=phrases, command="test")
    assert 0.0 <= metrics["greedy_token_accuracy"] <= 1.0 and MelodyVAE.from_checkpoint(path).config == config
    images = torch.rand(16, 1, 16, 16)
    image_path, synvae = train_synvae(get_spec("digits-melody"), out_dir=tmp_path, steps=2, progress=False,
                                      images=images, melody_vae=path, settings=SynVAESettings(batch_size=4))
    assert np.isfinite(synvae["bce_through_melody"])
    from models.melody_pipeline import MelodyModels

    MelodyModels.from_paths(image_vae=image_path, melody_vae=path)  # the digest it recorded matches


def test_a_melody_mapper_refuses_a_retrained_image_vae(tmp_path, monkeypatch):
    from models import registry
    from models.mapper import LatentMapper, LatentMapperConfig
    from models.melody_pipeline import MelodyModels

    _tiny_melody_preset(tmp_path, mapper=True)
    LatentMapper(LatentMapperConfig(image_latent_dim=3, audio_latent_dim=4)).save(
        tmp_path / "tiny" / "mm.pt", metadata={"image_vae_sha256": "0" * 64})  # trained for another image VAE
    monkeypatch.setattr(registry, "PRESETS_DIR", tmp_path)
    with pytest.raises(CheckpointError, match="retrain it"):
        MelodyModels.from_preset("tiny")
