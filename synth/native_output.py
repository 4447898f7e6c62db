"""What C libraries print: capture file descriptor 2 while ALSA, JACK or PortAudio probe for devices.

Opening a portaudio device, a JACK client or an ALSA sequencer port prints diagnostics from C straight to
file descriptor 2 (``ALSA lib pcm.c:2666:(snd_pcm_open_noupdate) Unknown PCM …``, ``Cannot connect to server
socket …``), dozens of lines before imgsonic can say what went wrong in one. :func:`captured_native_stderr`
sends descriptor 2 to a temporary file for the duration of a ``with`` block and hands back what was written,
so the caller can log it (``imgsonic live -v`` shows it) instead of the terminal.

Example
-------
>>> with captured_native_stderr() as captured:
...     pass
>>> captured.text
''
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["CapturedOutput", "captured_native_stderr"]


@dataclass
class CapturedOutput:
    """The text written to file descriptor 2 inside the block (filled in when the block ends)."""

    text: str = ""


@contextlib.contextmanager
def captured_native_stderr() -> Iterator[CapturedOutput]:
    """Capture everything written to file descriptor 2 (from C or Python) inside the block.

    Where descriptor 2 cannot be redirected (no such descriptor, as under some embedders), nothing is
    captured and the block runs as it is.
    """
    captured = CapturedOutput()
    sys.stderr.flush()
    try:
        saved_fd = os.dup(2)
    except OSError:
        yield captured
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", errors="replace")
