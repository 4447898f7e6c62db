"""``imgsonic info``: versions, the torch device, audio devices and the presets (each with its description and
where it lives)."""

from __future__ import annotations

import argparse
import platform
import shutil

from bridge.cli.process import installed_version

__all__ = ["add_arguments", "run"]

_REPORTED_DISTRIBUTIONS = ("torch", "torchaudio", "numpy", "pyo", "pedalboard", "mido", "python-osc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``info`` takes no arguments."""


def _torch_device() -> str:
    try:
        import torch
    except (ImportError, OSError) as error:
        return f"unknown: torch cannot be imported ({' '.join(str(error).split())})"
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def _audio_device() -> str:
    try:
        from synth.engine import count_audio_devices
    except (ImportError, OSError) as error:
        return f"unknown: pyo cannot be imported ({' '.join(str(error).split())})"
    n_devices = count_audio_devices()
    if n_devices == 0:
        return "no audio device (use --audio offline or jackd -d dummy)"
    return f"{n_devices} portaudio device(s)"


def _presets() -> list[tuple[str, str]]:
    """A row for the shipped presets, then one per preset: its one-line description and where it lives."""
    from models.errors import ImgsonicError
    from models.registry import PRESETS_DIR, available_presets, load_preset

    names = available_presets()
    if not names:
        return [("presets", f"none (no .toml files in {PRESETS_DIR})")]
    rows = [("presets", f"{len(names)} in {PRESETS_DIR} (or --preset PATH: a folder from imgsonic train all --out)")]
    for name in names:
        try:
            preset = load_preset(name)
            rows.append((f"  {name}", f"{preset.description or '(no description)'} [{preset.location}]"))
        except ImgsonicError as error:  # a broken preset is reported, not fatal for info
            rows.append((f"  {name}", f"unusable: {' '.join(str(error).split())}"))
    return rows


def _imagine_presets() -> list[tuple[str, str]]:
    """The same for the sound → image presets (imgsonic imagine)."""
    from models.errors import ImgsonicError
    from models.imagination import IMAGINE_PRESETS_DIR, available_imagine_presets, load_imagine_preset

    names = available_imagine_presets()
    rows = [("imagine presets", f"{len(names)} in {IMAGINE_PRESETS_DIR}" if names else "none")]
    for name in names:
        try:
            preset = load_imagine_preset(name)
            rows.append((f"  {name}", f"{preset.description or '(no description)'} "
                                      f"[{IMAGINE_PRESETS_DIR / (name + '.toml')}]"))
        except ImgsonicError as error:
            rows.append((f"  {name}", f"unusable: {' '.join(str(error).split())}"))
    return rows


def run(args: argparse.Namespace) -> int:
    rows = [("imgsonic", installed_version("imgsonic") or "not installed (run pip install .)")]
    rows += [("python", platform.python_version())]
    rows += [(name, installed_version(name) or "not installed") for name in _REPORTED_DISTRIBUTIONS]
    rows += [
        ("torch device", _torch_device()),
        ("audio device", _audio_device()),
        ("jackd", shutil.which("jackd") or "not on PATH (Debian: apt install jackd2)"),
    ]
    rows += _presets() + _imagine_presets()
    width = max(len(key) for key, _ in rows) + 1
    for key, value in rows:
        print(f"{key + ':':<{width}} {value}")
    return 0
