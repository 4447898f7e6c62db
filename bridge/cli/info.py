"""``imgsonic info``: versions, the torch device, audio devices and the presets."""

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


def _presets() -> str:
    from models.registry import PRESETS_DIR, available_presets

    names = available_presets()
    return ", ".join(names) if names else f"none (no .toml files in {PRESETS_DIR})"


def _imagine_presets() -> str:
    from models.imagination import available_imagine_presets

    return ", ".join(available_imagine_presets()) or "none"


def run(args: argparse.Namespace) -> int:
    rows = [("imgsonic", installed_version("imgsonic") or "not installed (run pip install .)")]
    rows += [("python", platform.python_version())]
    rows += [(name, installed_version(name) or "not installed") for name in _REPORTED_DISTRIBUTIONS]
    rows += [
        ("torch device", _torch_device()),
        ("audio device", _audio_device()),
        ("jackd", shutil.which("jackd") or "not on PATH (Debian: apt install jackd2)"),
        ("presets", _presets()),
        ("imagine presets", _imagine_presets()),
    ]
    width = max(len(key) for key, _ in rows) + 1
    for key, value in rows:
        print(f"{key + ':':<{width}} {value}")
    return 0
