"""The ``imgsonic`` command line: one argparse parser with subcommands.

Adding a subcommand: write ``_run_<name>(args) -> int`` and, if it takes arguments,
``_add_<name>_arguments(parser)`` (or put both in their own module and use ``_module_command``), then append one
``Subcommand`` to ``SUBCOMMANDS``. Import heavy modules (torch, pyo) inside ``run`` so
``imgsonic --version`` and ``--help`` stay fast. Raise ``ImgsonicError`` subclasses for user
errors: ``main`` prints them as one line.
"""

import argparse
import contextlib
import importlib
import importlib.metadata
import io
import os
import platform
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from models.errors import ImgsonicError

__all__ = ["Subcommand", "SUBCOMMANDS", "build_parser", "main"]


@dataclass(frozen=True)
class Subcommand:
    """One ``imgsonic <name>`` command: how to declare its arguments and how to run it."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# ---- imgsonic info ---------------------------------------------------------------------------

_REPORTED_DISTRIBUTIONS = ("torch", "torchaudio", "numpy", "pyo", "pedalboard", "mido", "python-osc")


def _torch_device() -> str:
    try:
        import torch
    except (ImportError, OSError) as error:
        return f"unknown: torch cannot be imported ({error})"
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


@contextlib.contextmanager
def _stderr_fd_silenced():
    """Send file descriptor 2 to /dev/null: ALSA writes its probing errors there from C."""
    sys.stderr.flush()
    saved_fd = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)


def _audio_device() -> str:
    # pyo prints a WxPython notice on import; it is noise for this report.
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import pyo
    except (ImportError, OSError) as error:
        return f"unknown: pyo cannot be imported ({error})"
    # Counting portaudio devices is safe; booting a portaudio server with none segfaults.
    with _stderr_fd_silenced():
        n_devices = pyo.pa_count_devices()
    if n_devices == 0:
        return "no audio device (use --audio offline or jackd -d dummy)"
    return f"{n_devices} portaudio device(s)"


def _presets() -> str:
    from models.registry import PRESETS_DIR, available_presets

    names = available_presets()
    return ", ".join(names) if names else f"none (no .toml files in {PRESETS_DIR})"


def _run_info(args: argparse.Namespace) -> int:
    rows = [("imgsonic", _installed_version("imgsonic") or "not installed (run pip install .)")]
    rows += [("python", platform.python_version())]
    rows += [(name, _installed_version(name) or "not installed") for name in _REPORTED_DISTRIBUTIONS]
    rows += [
        ("torch device", _torch_device()),
        ("audio device", _audio_device()),
        ("jackd", shutil.which("jackd") or "not on PATH (Debian: apt install jackd2)"),
        ("presets", _presets()),
        ("imagine presets", ", ".join(importlib.import_module("models.imagination").available_imagine_presets()) or "none"),
    ]
    width = max(len(key) for key, _ in rows) + 1
    for key, value in rows:
        print(f"{key + ':':<{width}} {value}")
    return 0


# ---- imgsonic train ----------------------------------------------------------------------------


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """One sub-parser per model: the vocoder takes other options than the three preset models."""
    from training import cli as train_cli
    from training import train_vocoder

    models = parser.add_subparsers(dest="model", required=True, metavar="MODEL")
    for name in train_cli.MODELS:
        what = "image VAE, audio VAE and mapper in order, then write the preset TOML" if name == "all" else name
        train_cli.add_arguments(models.add_parser(name, help=f"train the preset's {what}"), model=name)
    train_vocoder.add_arguments(
        models.add_parser("vocoder", help="train a neural vocoder for a preset's (or the default) spectral config")
    )
    from training import train_multimodal, train_s2i

    train_s2i.add_arguments(models.add_parser("s2i", help="train Sound-to-Imagination (sound → image) on spoken digits, "
                                                         "rendered scenes or your own clips (--clips DIR)"))
    train_multimodal.add_arguments(models.add_parser("multimodal", help="train the multimodal layers and feature GANs "
                                                                       "on an s2i preset's data"))


def _run_train(args: argparse.Namespace) -> int:
    if args.model == "s2i":
        from bridge.images import load_images  # the clip reader: training does not import the bridge
        from training import train_s2i

        return train_s2i.run(args, load_images=load_images)
    if args.model == "multimodal":
        from training import train_multimodal

        return train_multimodal.run(args)
    if args.model == "vocoder":
        from training import train_vocoder

        return train_vocoder.run(args)
    from training import cli as train_cli

    return train_cli.run(args)


# ---- the parser and entry point --------------------------------------------------------------

def _module_command(name: str, module: str, *, help: str) -> Subcommand:
    """A subcommand whose ``add_arguments(parser)`` and ``run(args)`` live in ``module``, imported only when used."""
    return Subcommand(
        name=name,
        help=help,
        run=lambda args: importlib.import_module(module).run(args),
        add_arguments=lambda parser: importlib.import_module(module).add_arguments(parser),
    )


SUBCOMMANDS: list[Subcommand] = [
    Subcommand(
        name="info",
        help="print versions, the torch device, audio devices and presets",
        run=_run_info,
    ),
    Subcommand(
        name="train",
        help="train a preset's image VAE, audio VAE, mapper, all three, or a neural vocoder",
        run=lambda args: _run_train(args),
        add_arguments=lambda parser: _add_train_arguments(parser),
    ),
    _module_command("eval", "training.evaluate",
                    help="measure a preset on held-out data, through rendered sound; print a table, write plots"),
    _module_command("render", "bridge.render",
                    help="render images (files, folders, globs, videos) to a sound file, with optional MIDI and JSON"),
    _module_command("visualize", "bridge.visualize",
                    help="turn a sound file into images over time: a PNG sheet, an animated GIF or a folder of PNG frames"),
    _module_command("imagine", "bridge.imagine",
                    help="see a sound as images learnt from paired examples (Sound-to-Imagination): PNG sheet, GIF or folder"),
    _module_command("demo", "bridge.demo",
                    help="render the bundled example images with the default preset to demo.wav, demo.mid and demo.png"),
    _module_command("live", "bridge.live",
                    help="play live through pyo: a neural voice, a patch reloaded on save, OSC and MIDI control"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgsonic", description="Turn images into sound through learned latent spaces."
    )
    version = _installed_version("imgsonic") or "(version unknown: not installed; run pip install .)"
    parser.add_argument("--version", action="version", version=f"imgsonic {version}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for subcommand in SUBCOMMANDS:
        subparser = commands.add_parser(subcommand.name, help=subcommand.help,
                                        description=subcommand.help)
        if subcommand.add_arguments is not None:
            subcommand.add_arguments(subparser)
        subparser.set_defaults(run=subcommand.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``imgsonic`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    User errors (``ImgsonicError``) print one line ``imgsonic: error: <message>`` on stderr
    and return 2, like argparse's own usage errors; Ctrl-C returns 130.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else 0
    try:
        return args.run(args)
    except ImgsonicError as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"imgsonic: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("imgsonic: interrupted", file=sys.stderr)
        return 130
