"""Shipped presets: a name that resolves to an image VAE + audio VAE + mapper (+ vocoder).

Each preset is one TOML file ``models/presets/<name>.toml`` whose checkpoint paths are relative
to that folder (see ``models/presets/README.md`` for the format). This module reads only the
TOML and checks the files exist; loading the checkpoints is the models' job.

A preset can also be given by path, wherever a name is accepted (``--preset runs/mine``): this module is the
one place that resolves it (:func:`find_preset_file`, also for the sound → image presets of
:mod:`models.imagination`). A path is anything that contains a path separator, ends in ``.toml``, starts with
``.`` or ``~``, or is not a shipped name but exists. It may be a preset TOML file, a folder holding exactly
one (what ``imgsonic train all --out DIR`` writes), or a folder holding ``image_vae.pt``, ``audio_vae.pt``
and ``mapper.pt`` (the preset is then named after the folder).

Example
-------
>>> from models.registry import available_presets, load_preset
>>> for name in available_presets():
...     preset = load_preset(name)
...     print(preset.name, preset.mapper)
"""

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from models.errors import CheckpointError, ParameterError

__all__ = ["Preset", "PRESETS_DIR", "available_presets", "load_preset", "is_preset_path", "find_preset_file"]

# A module attribute, not a constant baked into the functions, so tests can point it elsewhere.
PRESETS_DIR = Path(__file__).parent / "presets"

_CHECKPOINT_KEYS = ("image_vae", "audio_vae", "mapper")
_OPTIONAL_CHECKPOINT_KEYS = ("vocoder", "melody_vae", "melody_mapper")
_TEXT_KEYS = ("description", "train_command")
_KNOWN_KEYS = frozenset(_CHECKPOINT_KEYS + _OPTIONAL_CHECKPOINT_KEYS + _TEXT_KEYS)


@dataclass(frozen=True)
class Preset:
    """A named set of checkpoints; every path is absolute and exists.

    ``train_command`` is how the preset's author says to reproduce the checkpoints, or None. ``melody_vae`` is
    the melody model the preset's images play (see :mod:`models.melody_pipeline`), ``melody_mapper`` the
    mapper from the image latent to its latent (None: the image VAE was trained through it, SynVAE-style).
    """

    name: str
    description: str
    image_vae: Path
    audio_vae: Path
    mapper: Path
    vocoder: Path | None
    train_command: str | None = None
    melody_vae: Path | None = None
    melody_mapper: Path | None = None
    location: Path | None = None


def available_presets() -> list[str]:
    """Names of the presets in ``PRESETS_DIR``, sorted; empty when none are shipped."""
    if not PRESETS_DIR.is_dir():
        return []
    return sorted(path.stem for path in PRESETS_DIR.glob("*.toml"))


def is_preset_path(name: str) -> bool:
    """True when ``name`` is to be read as a path rather than a shipped preset's name (see the module doc)."""
    name = str(name)
    if any(separator in name for separator in ("/", os.sep)) or name.endswith(".toml") or name[:1] in (".", "~"):
        return True
    return name not in available_presets() and Path(name).exists()


def find_preset_file(path: str | os.PathLike) -> Path | None:
    """The preset TOML that a preset path names: the file itself, or the one ``.toml`` in a folder; None for a
    folder without one (a folder of checkpoints). ParameterError when the path does not exist, is another kind
    of file, or is a folder with several preset files."""
    path = Path(path).expanduser()
    if path.is_file():
        if path.suffix != ".toml":
            raise ParameterError(f"preset path {str(path)!r} is a file but not a .toml preset file")
        return path
    if not path.is_dir():
        raise ParameterError(f"preset path {str(path)!r} does not exist; give a preset name "
                             f"({', '.join(available_presets()) or 'none shipped'}), a preset folder or a .toml file")
    tomls = sorted(path.glob("*.toml"))
    if len(tomls) > 1:
        raise ParameterError(f"preset folder {str(path)!r} holds {len(tomls)} preset files "
                             f"({', '.join(t.name for t in tomls)}); give one of them")
    return tomls[0] if tomls else None


def load_preset(name: str | os.PathLike) -> Preset:
    """Read the preset ``name`` (a shipped name or a path, see the module doc) and check its checkpoints exist.

    Raises
    ------
    ParameterError
        ``name`` is neither one of :func:`available_presets` nor a path to a preset.
    CheckpointError
        The TOML is malformed, has an unknown or missing key, or names a checkpoint file that
        does not exist (the message says how to reproduce it when the preset tells).
    """
    name = str(name)
    if is_preset_path(name):
        return _load_path(Path(name).expanduser())
    available = available_presets()
    if name not in available:
        choices = ", ".join(available) if available else f"none (no .toml files in {PRESETS_DIR})"
        raise ParameterError(f"unknown preset {name!r}; available presets: {choices}, or a path to a preset "
                             "folder or .toml file")
    return _read_toml(PRESETS_DIR / f"{name}.toml")


def _load_path(path: Path) -> Preset:
    """A preset TOML file, a folder with exactly one, or a folder with the three checkpoints."""
    toml_path = find_preset_file(path)
    if toml_path is not None:
        return _read_toml(toml_path)
    checkpoints = {key: path / f"{key}.pt" for key in _CHECKPOINT_KEYS}
    missing = [str(p) for p in checkpoints.values() if not p.is_file()]
    if missing:
        raise ParameterError(f"preset folder {str(path)!r} has no .toml preset file and lacks {', '.join(missing)}")
    return Preset(name=path.resolve().name, description=f"checkpoints in {path}", vocoder=None, location=path,
                  **checkpoints)


def _read_toml(toml_path: Path) -> Preset:
    """Parse and check one preset file; checkpoint paths are relative to its folder."""
    name = toml_path.stem
    try:
        table = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise CheckpointError(f"preset file {toml_path} is not valid TOML: {error}") from error

    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise CheckpointError(
            f"preset file {toml_path} has unknown key {unknown[0]!r}; "
            f"known keys: {', '.join(sorted(_KNOWN_KEYS))}"
        )
    if "melody_mapper" in table and "melody_vae" not in table:
        raise CheckpointError(f"preset file {toml_path} has melody_mapper but no melody_vae for it to map to")
    missing_keys = [key for key in _CHECKPOINT_KEYS if key not in table]
    if missing_keys:
        raise CheckpointError(f"preset file {toml_path} lacks required key {missing_keys[0]!r}")
    for key, value in table.items():
        if not isinstance(value, str):
            raise CheckpointError(
                f"preset file {toml_path}: {key} = {value!r} must be a string"
            )

    paths = {
        key: toml_path.parent / table[key]
        for key in _CHECKPOINT_KEYS + _OPTIONAL_CHECKPOINT_KEYS
        if key in table
    }
    train_command = table.get("train_command")
    missing_files = [str(path) for path in paths.values() if not path.is_file()]
    if missing_files:
        how = (
            f"reproduce it with: {train_command}"
            if train_command
            else f"{toml_path} gives no train_command to reproduce it"
        )
        raise CheckpointError(
            f"preset {name!r} is missing checkpoint {', '.join(missing_files)}; {how}"
        )

    return Preset(
        name=name,
        description=table.get("description", ""),
        image_vae=paths["image_vae"],
        audio_vae=paths["audio_vae"],
        mapper=paths["mapper"],
        vocoder=paths.get("vocoder"),
        train_command=train_command,
        melody_vae=paths.get("melody_vae"),
        melody_mapper=paths.get("melody_mapper"),
        location=toml_path,
    )
