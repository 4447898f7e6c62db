"""``imgsonic eval``: measure a preset on held-out data, through rendered sound (:mod:`training.evaluate`)."""

from __future__ import annotations

import argparse

from bridge.cli.arguments import TEMPO_BPM, Number

__all__ = ["add_arguments", "run"]

METHOD_CHOICES = ("pghi+fgla", "pghi", "griffinlim")  # synth.phase.METHODS (a test keeps them equal)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", required=True, help="preset to evaluate (default, digits-fm, squares-sines, "
                        "digits-melody, spoken-digits), or the path of one trained with imgsonic train --out")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("-o", "--out", metavar="DIR",
                        help="folder for metrics.json and the PNG plots (default imgsonic-eval/PRESET)")
    parser.add_argument("--n", type=Number(int, 200, 100_000, unit="items"), default=400,
                        help="held-out images and sounds (default 400, at least 200; digits have at most 359)")
    parser.add_argument("--method", default="pghi+fgla", choices=METHOD_CHOICES,
                        help="phase reconstruction used to render (default pghi+fgla)")
    parser.add_argument("--bpm", type=TEMPO_BPM, default=120.0,
                        help="melody presets: tempo of the MIDI and audio (default 120)")
    parser.add_argument("--wide-seed", type=Number(int, 0, 2**31 - 1, unit="seed"), default=None, metavar="SEED",
                        help="default preset: draw the wide sets from SEED instead of the evaluation's own "
                             "(other textures, crops, scenes and colours of the same kinds)")
    parser.add_argument("--no-wide", action="store_true", help="default preset: skip the wide sets (textures, "
                        "held-out photos, loudness; a few minutes of imgsonic render runs); their targets count as missed")


def run(args: argparse.Namespace) -> int:
    """Melody presets are measured on MIDI files and pyo audio (:mod:`bridge.cli.eval_melody`), the others on
    rendered sound (:mod:`training.evaluate`)."""
    from bridge.cli import eval_melody
    from bridge.cli.app import main
    from training import evaluate

    if args.preset in eval_melody.MELODY_TARGETS:
        return eval_melody.run(args)

    # with this command line itself, so squares-sines is also run through visualize and render on files
    return evaluate.run(args, cli_main=main)
