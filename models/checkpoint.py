"""The versioned, self-describing checkpoint format shared by every model.

A checkpoint is one ``torch.save``'d dict::

    {
        "format_version": 1,            # int; see SUPPORTED_FORMAT_VERSIONS
        "kind": "image_vae",            # which model it holds: image_vae, audio_vae, mapper, vocoder, ...
        "config": {...},                # the model's @dataclass config as plain types
        "state_dict": {name: Tensor},   # flat, CPU tensors, loaded with strict=True (weights as float16)
        "metadata": {...},              # training data, steps, metrics, seconds, command: plain types
        "sha256": "...",                # digest of all of the above, to catch corrupted or edited files
    }

"Plain types" are str, int, float, bool, None, lists/tuples of them and dicts with str keys, so a
checkpoint loads with ``torch.load(..., weights_only=True)`` and never unpickles arbitrary objects.
The digest catches accidental damage (a flipped byte inside a weight tensor still unpickles fine);
it is not a signature against someone who rewrites the file deliberately.

Weights are stored as float16, which halves the shipped presets (11 → 6.0 MB); models load them back into
float32 and compute in float32. Rounding a weight to float16 moves it by at most 2⁻¹¹ of itself. When the
shipped presets were converted, no ``imgsonic eval`` target figure moved by more than 0.32 % (digits-fm's
listener proxy, 0.939 → 0.942; the others ≤ 0.07 %). A weight outside float16's range stays float32, and
so does every buffer (mel filterbanks and other constants that are compared against their exact values).
A checkpoint saved from a loaded model is bit-identical to the one it was loaded from.

Each model class mixes in :class:`CheckpointMixin`, which gives it ``Model.from_checkpoint(path)`` and
``model.save(path, metadata=...)``; the model rebuilds itself from the config alone.

Loading checks before it builds: every size in the config must lie within its class's ``BOUNDS`` (an
edited ``hidden_width=3000000`` is refused in one short line, not after allocating gigabytes), and the
model is first built on torch's ``meta`` device (shapes only, no memory) to compare every tensor's name
and shape with the file's. Only a config whose model matches the weights in the file gets built, so a
loaded model is never larger than the file that holds it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import torch

from models.errors import CheckpointError, ParameterError

__all__ = [
    "FORMAT_VERSION",
    "SUPPORTED_FORMAT_VERSIONS",
    "save_checkpoint",
    "load_checkpoint",
    "config_to_dict",
    "config_from_dict",
    "check_positive_ints",
    "check_config_bounds",
    "check_state_shapes",
    "CheckpointMixin",
]

FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
_REQUIRED_KEYS = ("format_version", "kind", "config", "state_dict", "metadata", "sha256")


def _to_plain(value: Any, *, where: str) -> Any:
    """Return ``value`` as nested plain types (tuples become lists); ParameterError names what is not."""
    if value is None:
        return None
    for plain_type in (bool, int, float, str):  # bool first: it is an int subclass
        if isinstance(value, plain_type):
            return plain_type(value)  # numpy.float64 and enums would not load with weights_only=True
    if isinstance(value, (list, tuple)):
        return [_to_plain(item, where=f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        plain = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ParameterError(f"{where} has a non-str key {key!r}; checkpoint dicts need str keys")
            plain[key] = _to_plain(item, where=f"{where}[{key!r}]")
        return plain
    raise ParameterError(
        f"{where} is a {type(value).__name__} ({value!r:.60}); checkpoints hold only str, int, float, "
        "bool, None, lists and dicts (convert tensors and numpy scalars with float()/int()/.tolist())"
    )


def config_to_dict(config: Any) -> dict[str, Any]:
    """Return a ``@dataclass`` config (or a mapping) as a dict of plain types.

    Examples
    --------
    >>> from models.mapper import LatentMapperConfig
    >>> config_to_dict(LatentMapperConfig(image_latent_dim=4, audio_latent_dim=2))["audio_latent_dim"]
    2
    """
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = {field.name: getattr(config, field.name) for field in dataclasses.fields(config)}
    if not isinstance(config, Mapping):
        raise ParameterError(f"config is a {type(config).__name__}; expected a dataclass instance or a dict")
    return _to_plain(config, where="config")


def config_from_dict(config_class: type, data: Mapping[str, Any], *, source: str = "checkpoint") -> Any:
    """Build ``config_class`` from a plain dict, rejecting unknown and missing keys.

    Every problem is a :class:`CheckpointError` whose message starts with ``source`` (usually the
    checkpoint's path) and names the offending key.
    """
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{source}: config is a {type(data).__name__}, expected a dict")
    fields = dataclasses.fields(config_class)
    known = {field.name for field in fields}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CheckpointError(
            f"{source}: unknown config key(s) {', '.join(map(repr, unknown))} for {config_class.__name__}; "
            f"known keys: {', '.join(sorted(known))}"
        )
    required = {
        field.name
        for field in fields
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - set(data))
    if missing:
        raise CheckpointError(
            f"{source}: config key(s) {', '.join(map(repr, missing))} missing for {config_class.__name__}"
        )
    check_config_bounds(config_class, data, source=source)
    try:
        return config_class(**data)
    except ParameterError as error:
        raise CheckpointError(f"{source}: invalid {config_class.__name__}: {_shorten(str(error))}") from error


def _shorten(text: str, limit: int = 240) -> str:
    """``text`` on one line, cut to ``limit`` characters (an edited config can hold a 3000-digit number)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_config_bounds(config_class: type, data: Mapping[str, Any], *, source: str = "checkpoint") -> None:
    """Raise CheckpointError unless every field named in ``config_class.BOUNDS`` (``{name: (low, high)}``) that
    ``data`` gives is an int within ``low … high``. Runs before the config is built, so no check derived from a
    wild value (``2 ** n_layers``) ever runs, and the message stays one short line.
    """
    for name, (low, high) in getattr(config_class, "BOUNDS", {}).items():
        if name not in data:
            continue
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise CheckpointError(f"{source}: {config_class.__name__}.{name}={_shorten(repr(value), 40)} is out of "
                                  f"bounds; expected an int in {low} … {high}")


def check_state_shapes(model_class: type, config: Any, state_dict: Mapping[str, torch.Tensor], *,
                       source: str = "checkpoint") -> None:
    """Raise CheckpointError unless ``model_class(config)`` has exactly the tensors of ``state_dict``, by name
    and shape. The model is built on the ``meta`` device: nothing is allocated, whatever the config says.
    """
    with torch.device("meta"):
        skeleton = model_class(config)
    expected = {name: tuple(tensor.shape) for name, tensor in skeleton.state_dict().items()}
    given = {name: tuple(tensor.shape) for name, tensor in state_dict.items()}
    problems = [f"missing {name}" for name in expected if name not in given]
    problems += [f"unexpected {name}" for name in given if name not in expected]
    problems += [f"{name} is {list(given[name])} in the file, {list(shape)} for the config"
                 for name, shape in expected.items() if name in given and given[name] != shape]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(f"{source}: its weights do not fit {model_class.__name__} built from its config: "
                              f"{_shorten('; '.join(problems[:3]))}{more}")


def check_spectral_match(trained: Any, given: Any, *, model: str) -> None:
    """Raise CheckpointError unless two spectral configs (dataclasses or dicts) are equal.

    The message names ``model`` (e.g. "audio model") and lists every differing field with both values.
    """
    mine, theirs = config_to_dict(trained), config_to_dict(given)
    differing = [
        f"{key}: {model} {mine.get(key, '<missing>')!r}, given {theirs.get(key, '<missing>')!r}"
        for key in sorted(set(mine) | set(theirs))
        if mine.get(key, "<missing>") != theirs.get(key, "<missing>")
    ]
    if differing:
        raise CheckpointError(
            f"spectral config differs from the one the {model} was trained with: " + "; ".join(differing)
        )


def check_positive_ints(config: Any, *names: str) -> None:
    """Raise ParameterError unless each named field of ``config`` is an int ≥ 1 (bools are not ints here)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(f"{type(config).__name__}.{name}={value!r}; expected an int >= 1")


def _digest(content: Mapping[str, Any]) -> str:
    """sha256 over everything but the digest: plain parts as canonical JSON, tensors as raw bytes."""
    hasher = hashlib.sha256()
    header = {key: content[key] for key in ("format_version", "kind", "config", "metadata")}
    hasher.update(json.dumps(header, sort_keys=True).encode())
    for name in sorted(content["state_dict"]):
        tensor = content["state_dict"][name].detach().cpu().contiguous()
        hasher.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        hasher.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return hasher.hexdigest()


def _as_float16(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as float16 if it is a wider float whose values all fit float16's range, else unchanged."""
    if tensor.dtype not in (torch.float32, torch.float64) or tensor.numel() == 0:
        return tensor
    largest = float(tensor.abs().max())
    if not math.isfinite(largest) or largest > torch.finfo(torch.float16).max:
        return tensor
    return tensor.to(torch.float16)


def save_checkpoint(
    path: str | os.PathLike,
    *,
    kind: str,
    config: Any,
    state_dict: Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any] | None = None,
    float16: Iterable[str] = (),
) -> Path:
    """Write a checkpoint atomically and return its path.

    The file is written to a temporary file in the same folder and moved into place with
    ``os.replace``, so a crash or a full disk never leaves a partial checkpoint at ``path``.
    Missing parent folders are created.

    Parameters
    ----------
    path : destination file (``.pt`` by convention).
    kind : what the checkpoint holds, e.g. ``"image_vae"``, ``"audio_vae"``, ``"mapper"``, ``"vocoder"``.
    config : the model's ``@dataclass`` config (or an equivalent dict of plain types).
    state_dict : flat mapping of parameter/buffer names to tensors; stored on the CPU.
    metadata : training description (data, steps, metrics, seconds, command) as plain types.
    float16 : names of floating-point tensors to store as float16 (the model's weights); one whose
        values do not all fit float16's range is stored as it is.

    Examples
    --------
    >>> import tempfile, torch
    >>> folder = tempfile.mkdtemp()
    >>> path = save_checkpoint(f"{folder}/m.pt", kind="demo", config={"width": 2},
    ...                        state_dict={"w": torch.zeros(2)}, metadata={"steps": 0})
    >>> load_checkpoint(path, kind="demo")["config"]
    {'width': 2}
    """
    if not isinstance(kind, str) or not kind:
        raise ParameterError(f"kind={kind!r}; expected a non-empty str such as 'image_vae'")
    if not isinstance(state_dict, Mapping):
        raise ParameterError(f"state_dict is a {type(state_dict).__name__}; expected a dict of tensors")
    tensors = {}
    for name, tensor in state_dict.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise ParameterError(
                f"state_dict entry {name!r} is a {type(tensor).__name__}; expected str names and tensors"
            )
        tensors[name] = tensor.detach().cpu()
    for name in float16:
        if name not in tensors:
            raise ParameterError(f"float16 names {name!r}, which is not in the state_dict")
        tensors[name] = _as_float16(tensors[name])
    content = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": config_to_dict(config),
        "state_dict": tensors,
        "metadata": _to_plain({} if metadata is None else metadata, where="metadata"),
    }
    content["sha256"] = _digest(content)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of our own rather than tempfile's, whose files are private (0600) instead of following umask.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as handle:
            torch.save(content, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, *, kind: str | None) -> dict[str, Any]:
    """Load and validate a checkpoint written by :func:`save_checkpoint`.

    Loads with ``torch.load(path, map_location="cpu", weights_only=True)``: never unpickles code.

    Parameters
    ----------
    path : the checkpoint file.
    kind : the kind the caller expects (``"image_vae"``, ...); ``None`` accepts any kind, for tools that
        inspect checkpoints.

    Returns
    -------
    dict with ``format_version``, ``kind``, ``config``, ``state_dict``, ``metadata`` and ``sha256``.

    Raises
    ------
    CheckpointError naming ``path`` if the file is missing, is not a torch file, is truncated or
    corrupted, lacks a key, has an unsupported ``format_version`` or holds another kind of model.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise CheckpointError(f"checkpoint {path} {what}")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for bad files: any of them means unreadable
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise CheckpointError(
            f"checkpoint {path} cannot be read: not a torch checkpoint, truncated or tampered with "
            f"({type(error).__name__}: {reason})"
        ) from error

    if not isinstance(content, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(content).__name__}, not a checkpoint dict")
    missing = [key for key in _REQUIRED_KEYS if key not in content]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks key(s) {', '.join(missing)}; was it saved by imgsonic?")
    version = content["format_version"]
    if isinstance(version, bool) or version not in SUPPORTED_FORMAT_VERSIONS:
        supported = ", ".join(map(str, SUPPORTED_FORMAT_VERSIONS))
        raise CheckpointError(
            f"checkpoint {path} has format_version {version!r}; this imgsonic reads format_version {supported}"
        )
    if kind is not None and content["kind"] != kind:
        raise CheckpointError(f"checkpoint {path} holds kind {content['kind']!r}, expected kind {kind!r}")
    for key in ("config", "state_dict", "metadata"):
        if not isinstance(content[key], dict):
            raise CheckpointError(f"checkpoint {path}: {key} is a {type(content[key]).__name__}, expected a dict")
    if not all(isinstance(tensor, torch.Tensor) for tensor in content["state_dict"].values()):
        raise CheckpointError(f"checkpoint {path}: state_dict holds values that are not tensors")
    try:
        digest = _digest(content)
    except (TypeError, ValueError, RuntimeError) as error:  # config or metadata not plain, odd tensors
        raise CheckpointError(f"checkpoint {path} holds values of the wrong type ({error})") from error
    if content["sha256"] != digest:
        raise CheckpointError(
            f"checkpoint {path} does not match its sha256 digest: it was corrupted or tampered with"
        )
    return content


class CheckpointMixin:
    """Gives an ``nn.Module`` built from ``Model(config)`` checkpoint saving and loading.

    Subclasses set ``checkpoint_kind`` and ``config_class`` and store their config as ``self.config``.
    """

    checkpoint_kind: ClassVar[str]
    config_class: ClassVar[type]

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> Self:
        """Rebuild the model from a checkpoint's config and load its weights (``strict=True``).

        Returns the model on the CPU in eval mode. Read the training metadata with
        ``load_checkpoint(path, kind=...)["metadata"]``.
        """
        content = load_checkpoint(path, kind=cls.checkpoint_kind)
        config = config_from_dict(cls.config_class, content["config"], source=f"checkpoint {path}")
        check_state_shapes(cls, config, content["state_dict"], source=f"checkpoint {path}")
        model = cls(config)
        try:
            model.load_state_dict(content["state_dict"], strict=True)
        except RuntimeError as error:
            raise CheckpointError(
                f"checkpoint {path}: state_dict does not match {cls.__name__} built from its config: "
                + " ".join(str(error).split())[:500]
            ) from error
        return model.eval()

    def save(self, path: str | os.PathLike, *, metadata: Mapping[str, Any] | None = None) -> Path:
        """Write this model's config and weights (as float16) to ``path`` atomically; see :func:`save_checkpoint`."""
        return save_checkpoint(
            path, kind=self.checkpoint_kind, config=self.config, state_dict=self.state_dict(), metadata=metadata,
            float16=[name for name, _ in self.named_parameters()],
        )
