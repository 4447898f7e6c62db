"""Every numeric flag of every ``imgsonic`` command is checked at parse time, and ``--help`` imports nothing heavy."""

import argparse
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.cli import build_parser, main
from bridge.cli.arguments import Number

ROOT = Path(__file__).resolve().parents[1]

# The least each command needs besides the flag under test (nothing is run: out-of-range values stop at parsing).
REQUIRED = {
    ("info",): [],
    ("train", "image-vae"): ["--preset", "default"],
    ("train", "audio-vae"): ["--preset", "default"],
    ("train", "mapper"): ["--preset", "default"],
    ("train", "all"): ["--preset", "default"],
    ("train", "melody-mapper"): ["--preset", "default"],
    ("train", "melody-vae"): [],
    ("train", "vocoder"): [],
    ("eval",): ["--preset", "default"],
    ("render",): ["in.png", "-o", "out.wav"],
    ("visualize",): ["in.wav", "-o", "out.png"],
    ("demo",): [],
    ("live",): [],
    ("imagine",): ["in.wav", "-o", "out.png"],
    ("train", "s2i"): [],
    ("train", "multimodal"): [],
}
BAD_LOOKING = ("0", "-1", "nan", "inf", "1e300")


def _subparsers(parser: argparse.ArgumentParser):
    return [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]


def _commands(parser, path=()):
    """(command path, its parser) for every leaf command."""
    children = _subparsers(parser)
    if not children:
        yield path, parser
        return
    for name, child in children[0].choices.items():
        yield from _commands(child, (*path, name))


def _numeric_flags():
    for path, parser in _commands(build_parser()):
        for action in parser._actions:
            if isinstance(action.type, Number):
                yield path, action


def test_every_command_is_covered_by_the_walk():
    assert {path for path, _ in _commands(build_parser())} == set(REQUIRED)


def test_no_flag_is_a_bare_int_or_float():
    bare = [(path, action.option_strings) for path, parser in _commands(build_parser()) for action in parser._actions
            if action.type in (int, float)]
    assert bare == []
    assert len(list(_numeric_flags())) >= 30


def _inside(number: Number, text: str) -> bool:
    value = float(text)
    if not math.isfinite(value) or value > number.high or (number.kind is int and not text.lstrip("-").isdigit()):
        return False
    return value > number.low if number.low_open else value >= number.low


@pytest.mark.parametrize("value", BAD_LOOKING)
def test_each_numeric_flag_refuses_out_of_range_values_in_one_line(value, capsys):
    refused = accepted = 0
    for path, action in _numeric_flags():
        flag = action.option_strings[-1]
        argv = [*path, *REQUIRED[path], f"{flag}={value}"]
        if _inside(action.type, value):
            args = build_parser(argv).parse_args(argv)
            assert getattr(args, action.dest) == action.type(value)
            accepted += 1
            continue
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith(f"imgsonic: error: argument {flag}: '{value}' is not "), err
        refused += 1
    assert refused > 0
    if value in ("nan", "inf", "1e300"):
        assert accepted == 0


def test_range_message_says_what_is_accepted():
    with pytest.raises(argparse.ArgumentTypeError, match=r"'0' is not a number of seconds in 0.05 … 3600"):
        Number(float, 0.05, 3600, unit="seconds")("0")
    with pytest.raises(argparse.ArgumentTypeError, match=r"'1.5' is not an integer in 1 … 8"):
        Number(int, 1, 8)("1.5")
    assert Number(float, 0, 1, low_open=True).describe() == "a number > 0 and ≤ 1"


def test_crossfade_longer_than_the_image_is_one_line(capsys):
    assert main(["render", "in.png", "-o", "out.wav", "--seconds-per-image", "0.5", "--crossfade", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imgsonic: error: ") and err.count("\n") == 1 and "crossfade" in err


def test_cli_copies_of_runtime_choices_match():
    from bridge.cli import eval as eval_cli
    from bridge.cli import live as live_cli
    from bridge.cli import render as render_cli
    from bridge.live.session import AUDIO_DRIVERS
    from bridge.sonify.render import VOCODERS
    from synth.phase import METHODS

    assert render_cli.VOCODER_CHOICES == VOCODERS
    assert eval_cli.METHOD_CHOICES == METHODS
    assert live_cli.AUDIO_CHOICES == AUDIO_DRIVERS
    from bridge.cli import train as train_cli
    from training.s2i_discriminator import STABILISERS
    from training.train_s2i import DEFAULT_OUT

    assert train_cli.STABILISERS == STABILISERS and train_cli.DEFAULT_IMAGINE_OUT == DEFAULT_OUT



_HEAVY = ("torch", "numpy", "pyo", "PIL")


@pytest.mark.parametrize("argv", [["--version"], ["--help"], *[[*path, "--help"] for path in REQUIRED]])
def test_help_and_version_import_nothing_heavy(argv):
    code = (f"import sys\nfrom bridge.cli import main\ncode = main({argv!r})\n"
            f"print(sorted(m for m in {_HEAVY!r} if m in sys.modules), code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.splitlines()[-1] == "[] 0"


def test_errors_import_without_torch():
    code = "import sys\nfrom models.errors import ImgsonicError\nfrom models import ParameterError\nprint('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "False"


def test_importing_pyo_through_the_engine_prints_nothing():
    done = subprocess.run([sys.executable, "-c", "import synth.engine"], capture_output=True, text=True, cwd=ROOT,
                          check=True)
    assert done.stdout == ""


@pytest.mark.parametrize("value", ["4/3", "0/4", "waltz"])
def test_a_bad_time_signature_is_one_line(value, capsys):
    assert main(["live", "--bpm", "120", "--time-signature", value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("imgsonic: error: argument --time-signature: time signature")
