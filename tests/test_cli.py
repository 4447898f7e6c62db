"""The imgsonic CLI (bridge/cli/) and the preset registry (models/registry.py)."""

import importlib.metadata
import types

import pytest

from bridge import cli
from bridge.cli import app
from models import registry
from models.errors import CheckpointError, ParameterError


@pytest.fixture
def presets_dir(tmp_path, monkeypatch):
    """An empty presets folder in tmp_path that the registry reads instead of models/presets."""
    monkeypatch.setattr(registry, "PRESETS_DIR", tmp_path)
    return tmp_path


def _write_preset(folder, name, body):
    (folder / f"{name}.toml").write_text(body, encoding="utf-8")


_COMPLETE_PRESET = """
description = "test preset"
image_vae = "p/image_vae.pt"
audio_vae = "p/audio_vae.pt"
mapper = "p/mapper.pt"
train_command = "imgsonic train --example"
"""


def test_version_prints_the_installed_version(capsys):
    try:
        expected = importlib.metadata.version("imgsonic")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("imgsonic is not installed in this environment (pip install .)")
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"imgsonic {expected}\n"


def test_info_reports_torch_device_and_presets(capsys):
    assert cli.main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    device_lines = [line for line in lines if line.startswith("torch device:")]
    assert len(device_lines) == 1
    assert device_lines[0].split(":", 1)[1].strip().startswith(("cpu (", "cuda ("))
    assert any(line.startswith("presets:") for line in lines)


def test_info_lists_presets_by_name(presets_dir, capsys):
    _write_preset(presets_dir, "beta", _COMPLETE_PRESET)
    _write_preset(presets_dir, "alpha", _COMPLETE_PRESET)
    (presets_dir / "p").mkdir(exist_ok=True)
    for kind in ("image_vae", "audio_vae", "mapper"):
        (presets_dir / "p" / f"{kind}.pt").write_bytes(b"")
    assert cli.main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("presets:"))
    assert lines[start].split(":", 1)[1].strip().startswith("2 in ")
    # one line per preset, in order: its name, description and where it lives
    assert [line.split(":")[0].strip() for line in lines[start + 1 : start + 3]] == ["alpha", "beta"]
    assert "test preset" in lines[start + 1] and str(presets_dir / "alpha.toml") in lines[start + 1]


def test_unknown_preset_lists_the_available_ones(presets_dir):
    _write_preset(presets_dir, "alpha", _COMPLETE_PRESET)
    _write_preset(presets_dir, "beta", _COMPLETE_PRESET)
    with pytest.raises(ParameterError, match="'gamma'.*alpha, beta"):
        registry.load_preset("gamma")


def test_preset_with_unknown_key_names_the_key(presets_dir):
    _write_preset(presets_dir, "typo", _COMPLETE_PRESET + 'vocodr = "p/vocoder.pt"\n')
    with pytest.raises(CheckpointError, match="'vocodr'"):
        registry.load_preset("typo")


def test_missing_checkpoint_names_the_path_and_how_to_reproduce_it(presets_dir):
    _write_preset(presets_dir, "untrained", _COMPLETE_PRESET)
    with pytest.raises(CheckpointError) as raised:
        registry.load_preset("untrained")
    message = str(raised.value)
    assert str(presets_dir / "p" / "mapper.pt") in message
    assert "imgsonic train --example" in message


def test_complete_preset_resolves_paths_against_the_presets_folder(presets_dir):
    _write_preset(presets_dir, "complete", _COMPLETE_PRESET)
    (presets_dir / "p").mkdir()
    for file_name in ("image_vae.pt", "audio_vae.pt", "mapper.pt"):
        (presets_dir / "p" / file_name).write_bytes(b"")
    preset = registry.load_preset("complete")
    assert preset.name == "complete"
    assert preset.description == "test preset"
    assert preset.mapper == presets_dir / "p" / "mapper.pt"
    assert preset.vocoder is None
    assert registry.available_presets() == ["complete"]


def _add_failing_subcommand(monkeypatch, exception):
    def run(args):
        raise exception

    module = types.ModuleType("imgsonic_test_fail")
    module.add_arguments = lambda parser: None
    module.run = run
    monkeypatch.setitem(__import__("sys").modules, module.__name__, module)
    failing = cli.Subcommand(name="fail", help="always fails", module=module.__name__)
    monkeypatch.setattr(app, "SUBCOMMANDS", [*app.SUBCOMMANDS, failing])


def test_imgsonic_error_becomes_one_stderr_line_and_exit_code_2(monkeypatch, capsys):
    _add_failing_subcommand(monkeypatch, ParameterError("gain_db=99 is above 24\nsecond line"))
    assert cli.main(["fail"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "imgsonic: error: gain_db=99 is above 24 second line\n"


def test_keyboard_interrupt_exits_130_with_one_line(monkeypatch, capsys):
    _add_failing_subcommand(monkeypatch, KeyboardInterrupt())
    assert cli.main(["fail"]) == 130
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_usage_error_is_one_line_and_returns_2(capsys):
    assert cli.main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err
    assert err.startswith("imgsonic: error: ") and err.count("\n") == 1


def test_train_routes_the_vocoder_to_its_own_options(capsys):
    # the vocoder's parser accepts --batch-size (the preset models' does not) and refuses --steps 0
    assert cli.main(["train", "vocoder", "--batch-size", "4", "--steps", "0"]) == 2
    assert "argument --steps: '0'" in capsys.readouterr().err
    assert cli.main(["train", "mapper", "--batch-size", "4", "--preset", "default"]) == 2
    assert "unrecognized arguments: --batch-size 4" in capsys.readouterr().err
