"""The ``imgsonic`` command line: :func:`main` and the subcommands, one module each."""

from bridge.cli.app import SUBCOMMANDS, Subcommand, build_parser, main

__all__ = ["main", "build_parser", "Subcommand", "SUBCOMMANDS"]
