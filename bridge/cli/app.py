"""The ``imgsonic`` command: one parser, one module per subcommand, errors as one line.

Each subcommand lives in its own module of this package, which defines ``add_arguments(parser)`` (standard
library only, so ``--help`` is instant) and ``run(args) -> int`` (which imports torch, pyo and the rest when
it runs). Only the subcommand named on the command line has its arguments declared, so ``imgsonic --version``
and ``imgsonic render --help`` import nothing heavy.

Adding a subcommand: write ``bridge/cli/<name>.py`` with those two functions and append one
:class:`Subcommand` to :data:`SUBCOMMANDS`. Raise :class:`models.errors.ImgsonicError` subclasses for user
errors: :func:`main` prints them as one line and returns 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from bridge.cli.arguments import OneLineParser
from bridge.cli.process import installed_version
from bridge.cli.signals import exit_code, signals_as_interrupts
from models.errors import ImgsonicError

__all__ = ["Subcommand", "SUBCOMMANDS", "build_parser", "main"]


@dataclass(frozen=True)
class Subcommand:
    """``imgsonic <name>``: its one-line help and the module holding ``add_arguments`` and ``run``."""

    name: str
    help: str
    module: str


SUBCOMMANDS: list[Subcommand] = [
    Subcommand("info", "print versions, the torch device, audio devices and presets", "bridge.cli.info"),
    Subcommand("train", "train a preset's image VAE, audio VAE, mapper, all three, or a neural vocoder",
               "bridge.cli.train"),
    Subcommand("eval", "measure a preset on held-out data, through rendered sound; print a table, write plots",
               "bridge.cli.eval"),
    Subcommand("render", "render images (files, folders, globs, videos) to a sound file, with optional MIDI and JSON",
               "bridge.cli.render"),
    Subcommand("visualize", "turn a sound file into images over time: a PNG sheet, an animated GIF or a folder of "
               "PNG frames", "bridge.cli.visualize"),
    Subcommand("demo", "render the bundled example images with the default preset to demo.wav, demo.mid and demo.png",
               "bridge.cli.demo"),
    Subcommand("live", "play live through pyo: a neural voice, a patch reloaded on save, OSC and MIDI control",
               "bridge.cli.live"),
    Subcommand("imagine", "see a sound as images learnt from paired examples (Sound-to-Imagination): PNG sheet, GIF "
               "or folder", "bridge.cli.imagine"),
]


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is one), or None."""
    names = {subcommand.name for subcommand in SUBCOMMANDS}
    return next((word for word in argv if word in names), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the subcommand it names gets its arguments (the others stay empty)."""
    parser = OneLineParser(prog="imgsonic", description="Turn images into sound through learned latent spaces.")
    version = installed_version("imgsonic") or "(version unknown: not installed; run pip install .)"
    parser.add_argument("--version", action="version", version=f"imgsonic {version}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = None if argv is None else _chosen_command(argv)
    for subcommand in SUBCOMMANDS:
        subparser = commands.add_parser(subcommand.name, help=subcommand.help, description=subcommand.help)
        subparser.set_defaults(module=subcommand.module)
        if argv is None or subcommand.name == chosen:
            importlib.import_module(subcommand.module).add_arguments(subparser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``imgsonic`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    User errors (``ImgsonicError``) print one line ``imgsonic: error: <message>`` on stderr and return 2,
    like usage errors. SIGINT (Ctrl-C) and SIGTERM print ``imgsonic: interrupted`` and return 130 and 143
    (:mod:`bridge.cli.signals`), after every temporary file has been removed.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else 0
    try:
        with signals_as_interrupts():
            return importlib.import_module(args.module).run(args)
    except ImgsonicError as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"imgsonic: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        print("imgsonic: interrupted", file=sys.stderr)
        return exit_code(interrupt)
