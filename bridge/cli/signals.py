"""SIGINT and SIGTERM as one exception, so every command stops the same way and cleans up on the way out.

Inside :func:`signals_as_interrupts` the first SIGINT or SIGTERM raises :class:`Interrupted` (a
``KeyboardInterrupt``) in the main thread, so every ``finally`` and ``except BaseException`` on the way out
runs: :func:`synth.files.atomic_output` removes its temporary file, a frame folder its temporary folder,
worker pools cancel their queued work. A signal that arrives during an ``import``, while a ``with``
statement enters its context manager, or while :func:`synth.files.outputs_together` moves a command's
finished outputs into place, is held until that is over (:func:`held_for_now`). Further signals are
ignored until the block is left, so a second Ctrl-C cannot cut that cleanup short and leave the temporary
files it was removing. The exit code is the shell's: ``128 + signal number`` (130 for SIGINT, 143 for
SIGTERM).

Example
-------
>>> with signals_as_interrupts():                          # doctest: +SKIP
...     long_render()
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

from synth.files import COMMIT_CODE

__all__ = ["Interrupted", "signals_as_interrupts", "exit_code", "held_for_now"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A SIGINT or SIGTERM arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The shell's exit code for an interrupt: 128 + the signal number (a plain KeyboardInterrupt is SIGINT's)."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)


_RETRY_S = 0.02
_retry_due = False  # a held signal is to be sent again


def _must_wait(frame) -> bool:
    """Whether the main thread, stopped at ``frame``, is inside an ``import`` (a frame of importlib's
    bootstrap), a context manager's ``__enter__`` or the commit of several outputs."""
    while frame is not None:
        code = frame.f_code
        if (code.co_name == "__enter__" or code is COMMIT_CODE
                or code.co_filename.startswith("<frozen importlib._bootstrap")):
            return True
        frame = frame.f_back
    return False


def held_for_now(signum: int, frame) -> bool:
    """For a signal handler: when the main thread was stopped where it must not be interrupted (an import, a
    ``__enter__``, the commit of several outputs: :func:`_must_wait`), send ``signum`` again a moment later and
    return True (the handler then returns without raising); otherwise False.
    Several signals held at once are sent again once: a second one, sent after the first had been handled and
    the handlers given back, would kill the process instead of letting it exit with its code.

    An exception raised inside an import can cross C++ code that cannot unwind it (torch's import calls back
    into Python from C++; an exception there is ``std::terminate``, an abort instead of the exit code). One
    raised inside ``__enter__`` leaves what it had made so far (the temporary file of
    :func:`synth.files.atomic_output`) without the ``__exit__`` that would remove it; once entered, the
    ``with`` block's exit cleans up. One raised between two of the renames that commit a command's outputs
    would leave some of them without the others."""
    global _retry_due
    if not _must_wait(frame):
        return False
    if not _retry_due:  # one retry for any number of signals held at once: one interrupt, not one per signal
        _retry_due = True
        retry = threading.Timer(_RETRY_S, _send_again, (signum,))
        retry.daemon = True
        retry.start()
    return True


def _send_again(signum: int) -> None:
    global _retry_due
    _retry_due = False  # before the signal: if it is held again, it schedules its own retry
    os.kill(os.getpid(), signum)


def _raise_once(signum: int, frame) -> None:
    if held_for_now(signum, frame):
        return
    for each in _SIGNALS:
        signal.signal(each, signal.SIG_IGN)  # the cleanup that the exception starts must run to its end
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted`; the previous handlers come back after.

    Outside the main thread (where Python cannot set handlers) the block runs with the handlers as they are.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {each: signal.signal(each, _raise_once) for each in _SIGNALS}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)
