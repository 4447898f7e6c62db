"""Atomic file output: every file imgsonic writes appears whole or not at all, and a command's outputs all
together or none of them (:func:`outputs_together`).

Checkpoints keep their own writer in :mod:`models.checkpoint` (``models`` imports nothing but torch).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from models.errors import ImgsonicError, OutputError, ParameterError

__all__ = ["atomic_output", "outputs_together", "output_error", "SampleSpill", "COMMIT_CODE"]


def output_error(path: str | os.PathLike, error: OSError) -> OutputError:
    """A one-line :class:`OutputError` for an OSError while writing ``path`` (a full disk, no permission, …)."""
    reason = error.strerror or str(error) or type(error).__name__
    code = f" ({errno.errorcode[error.errno]})" if error.errno in errno.errorcode else ""
    return OutputError(f"cannot write {str(path)!r}: {reason}{code}")


def _discard(path: Path) -> None:
    """Remove a temporary file if it is there (on a read-only file system it never was: unlink says EROFS)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


@dataclass
class _Pending:
    """A temporary file of :func:`atomic_output` inside :func:`outputs_together`: moved to ``path`` at the end
    if ``complete`` (its own block ended normally), removed otherwise."""

    temporary: Path
    path: Path
    complete: bool = False


# the outputs of the innermost ``outputs_together`` block, None outside one
_together: contextvars.ContextVar[list[_Pending] | None] = contextvars.ContextVar("imgsonic_outputs_together",
                                                                                   default=None)


def _move_into_place(pending: list[_Pending]) -> None:
    """Move every complete temporary file over its target (bridge.cli.signals holds a signal while the main
    thread is in here: :data:`COMMIT_CODE`); on an error, remove the temporary files not yet moved."""
    for index, each in enumerate(pending):
        if not each.complete:
            _discard(each.temporary)
            continue
        try:
            os.replace(each.temporary, each.path)
        except OSError as error:
            for rest in pending[index:]:
                _discard(rest.temporary)
            raise output_error(each.path, error) from error


#: The code a SIGINT or SIGTERM must not cut short: the few renames that commit a command's outputs together.
COMMIT_CODE = _move_into_place.__code__


@contextlib.contextmanager
def outputs_together() -> Iterator[None]:
    """Every :func:`atomic_output` file completed inside the block appears at the block's end, all of them at
    once; if the block raises (an interrupt, a full disk, bad input) none of them appears and every temporary
    file is removed.

    A render writes its audio, MIDI and JSON as separate atomic files; with this around them an interrupt
    between two of them cannot leave the MIDI without the audio. The moves at the end are renames in the same
    folders: microseconds, during which the CLI's signal handler waits (:data:`COMMIT_CODE`). A nested block
    joins the outer one.

    Example
    -------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> try:
    ...     with outputs_together():
    ...         with atomic_output(folder / "a.txt", text=True) as stream:
    ...             _ = stream.write("a")
    ...         raise RuntimeError("the second output failed")
    ... except RuntimeError:
    ...     pass
    >>> sorted(path.name for path in folder.iterdir())
    []
    """
    if _together.get() is not None:
        yield
        return
    pending: list[_Pending] = []
    token = _together.set(pending)
    try:
        yield
        _move_into_place(pending)  # in the try: an interrupt just before it still removes every temporary file
    except BaseException:
        for each in pending:
            _discard(each.temporary)
        raise
    finally:
        _together.reset(token)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, text: bool = False) -> Iterator[IO]:
    """Open a file to write that replaces ``path`` only once it is complete.

    Writes go to a hidden temporary file beside ``path`` (``.NAME.<random>.tmp.SUFFIX``); when the
    ``with`` block ends normally it is flushed to disk and moved over ``path`` with ``os.replace``. If
    the block raises — KeyboardInterrupt included — the temporary file is removed and an existing
    ``path`` is left as it was. The file gets the permissions the umask allows, like any file the user
    creates. Inside :func:`outputs_together` the move waits for the end of that block.

    Parameters
    ----------
    path : str or os.PathLike
        The target; its folder must exist.
    text : bool
        Open in text mode (UTF-8) instead of binary.

    Raises
    ------
    ParameterError
        The folder does not exist or ``path`` is a folder.
    OutputError
        The file cannot be created or written: no permission, a read-only file system, a full disk
        (an OSError raised inside the block becomes one too; the temporary file is removed first).

    Example
    -------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_output(target, text=True) as stream:
    ...     _ = stream.write("written whole or not at all")
    >>> target.read_text()
    'written whole or not at all'
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ParameterError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise ParameterError(f"cannot write {str(path)!r}: it is a folder; give a file name")
    # the temporary name ends in the target's suffix: writers that pick a format by name (pyo) see it
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp{path.suffix}")
    together = _together.get()
    # the file is created inside the ``try`` that removes it: an interrupt raised the moment ``open`` returns
    # (a signal arrives during the call) still removes it
    try:
        try:
            # "x" never clobbers another writer's temporary file
            handle = open(temporary, "x", encoding="utf-8") if text else open(temporary, "xb")
        except OSError as error:
            raise output_error(path, error) from error
        if together is not None:
            together.append(pending := _Pending(temporary, path))
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if together is None:
            os.replace(temporary, path)
        else:
            pending.complete = True
    except OSError as error:
        _discard(temporary)
        if isinstance(error, ImgsonicError):
            raise
        raise output_error(path, error) from error
    except BaseException:
        _discard(temporary)
        raise


class SampleSpill:
    """float32 samples parked while a render is made, read back in blocks: in memory, or in a hidden file.

    With ``beside`` (the output's path) the samples go to ``.NAME.<random>.tmp.raw`` in the output's
    folder, so a long render's memory does not grow with its length; the file is removed by :meth:`close`
    (and so by ``with``, on any exception or interrupt). Without it they stay in memory.

    Example
    -------
    >>> import numpy as np
    >>> with SampleSpill() as spill:
    ...     spill.append(np.ones(3, np.float32)); spill.append(np.zeros(2, np.float32))
    ...     [block.tolist() for block in spill.blocks(4)], spill.read(2, 2).tolist()
    ([[1.0, 1.0, 1.0, 0.0], [0.0]], [1.0, 0.0])
    """

    def __init__(self, beside: str | os.PathLike | None = None) -> None:
        import numpy as np

        self._np = np
        self.n_samples = 0
        self._target = None if beside is None else Path(beside)
        self._blocks: list = []
        self._file = None
        self._closed = False
        self.path: Path | None = None
        if self._target is not None:
            self.path = self._target.with_name(f".{self._target.name}.{secrets.token_hex(8)}.tmp.raw")

    def _ensure_file(self) -> None:
        """Create the hidden file, if there is to be one and it is not made yet (in ``__enter__``, or at the
        first append without ``with``): made where ``close`` removes it, never before."""
        if self.path is None or self._file is not None or self._closed:
            return
        try:
            self._file = open(self.path, "x+b")
        except OSError as error:
            raise output_error(self._target, error) from error

    def append(self, block) -> None:
        """Add samples ``(n,)`` (converted to float32)."""
        block = self._np.ascontiguousarray(block, dtype=self._np.float32)
        self._ensure_file()
        if self._file is None:
            self._blocks.append(block.copy())
        else:
            try:
                self._file.seek(0, os.SEEK_END)  # a read may have moved the position
                self._file.write(block.tobytes())
            except OSError as error:
                raise output_error(self._target, error) from error
        self.n_samples += len(block)

    def _whole(self):
        """The in-memory samples as one array (joined once, until the next append)."""
        np = self._np
        if len(self._blocks) != 1:
            self._blocks = [np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32)]
        return self._blocks[0]

    def blocks(self, block_size: int):
        """The samples in order, ``block_size`` at a time (the last block may be shorter)."""
        for start in range(0, self.n_samples, block_size):
            yield self.read(start, block_size)

    def read(self, start: int, n: int):
        """Samples ``start … start + n − 1`` (fewer past the end), float32, a new array."""
        np = self._np
        if start < 0 or n < 0:
            raise ParameterError(f"read({start}, {n}); expected a start and a count ≥ 0")
        if self._file is None:
            return self._whole()[start : start + n].copy()
        try:
            self._file.flush()
            self._file.seek(4 * start)
            data = self._file.read(4 * min(n, max(0, self.n_samples - start)))
        except OSError as error:
            raise output_error(self._target, error) from error
        return np.frombuffer(data, dtype=np.float32).copy()

    def close(self) -> None:
        """Forget the samples and remove the file."""
        self._closed = True
        self._blocks = []
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None:
            _discard(self.path)

    def __enter__(self) -> SampleSpill:
        try:
            self._ensure_file()
        except BaseException:
            self.close()  # an interrupt the moment the file was made: no __exit__ will follow
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
