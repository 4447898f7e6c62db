"""The live engine's image loading: off the control and audio threads, bounded in queue, size, memory and time.

An :class:`ImageLoader` runs one worker thread. :meth:`~ImageLoader.submit` queues a job — image files to
read and what to do with their pixels (encode them and queue the glide on the voice) — and returns at
once, so the OSC thread never waits for a file. The queue holds at most ``max_pending`` jobs; when a new
one arrives on a full queue the oldest waiting job is dropped (counted in :attr:`ImageLoader.superseded`):
a performer who sends images faster than they load hears the latest, not a backlog.

Reading (:meth:`~ImageLoader.read`) goes through a cache of decoded pixels keyed by (real path, mtime,
size), so a morph swept between two files reads each once. A file is decoded at the size the models need
(:func:`bridge.live.image_decoder.decode_bounded`), refused over ``max_pixels`` from its header alone,
and — when it holds more than ``IN_PROCESS_PIXELS`` — decoded in a separate process
(:class:`DecoderProcess`: idle priority, an address-space limit, killed after ``timeout_s``), so even a
169-megapixel PNG costs the engine's process nothing but a small array.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bridge.control.rate import LimitedLog
from bridge.live.image_decoder import decode_bounded, header_pixels
from models.errors import ImgsonicError, InputError

__all__ = ["ImageLoader", "DecoderProcess", "IN_PROCESS_PIXELS", "DEFAULT_MAX_PIXELS"]

log = logging.getLogger("imgsonic.images")

IN_PROCESS_PIXELS = 4_000_000  # up to 4 MP: decoded in the worker thread (≤ 0.2 s, ≤ 16 MB)
DEFAULT_MAX_PIXELS = 200_000_000
_CACHE_BYTES = 64 * 2**20  # decoded pixels are small (the centre square, < 2·max_side a side)
_DECODER_MEMORY_MB = 3072  # the decoder process's address space: a 200 MP RGBA image is 800 MB decoded


class DecoderProcess:
    """``python -m bridge.live.image_decoder`` as a child process, started when first needed, restarted
    after a crash or a timeout. Used by one thread at a time."""

    def __init__(self, *, timeout_s: float = 30.0, memory_mb: int = _DECODER_MEMORY_MB) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._process: subprocess.Popen | None = None
        self.restarts = 0

    def _start(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            if self._process is not None:
                self.restarts += 1
            root = str(Path(__file__).resolve().parents[2])
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
            self._process = subprocess.Popen(
                [sys.executable, "-m", "bridge.live.image_decoder", str(self.memory_mb)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0)
        return self._process

    def _read(self, process: subprocess.Popen, n_bytes: int, deadline: float) -> bytes:
        chunks, left = [], n_bytes
        fd = process.stdout.fileno()
        while left:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _read_line(self, process: subprocess.Popen, deadline: float) -> bytes:
        line = b""
        while not line.endswith(b"\n"):
            line += self._read(process, 1, deadline)
        return line

    def decode(self, path: Path, *, max_side: int, max_pixels: int) -> np.ndarray:
        """The pixels of ``path`` (see :func:`~bridge.live.image_decoder.decode_bounded`); InputError says why not."""
        process = self._start()
        deadline = time.monotonic() + self.timeout_s
        request = json.dumps({"path": str(path), "max_side": max_side, "max_pixels": max_pixels}).encode() + b"\n"
        try:
            process.stdin.write(request)
            header = json.loads(self._read_line(process, deadline))
            if "error" not in header:
                dtype, shape = np.dtype(header["dtype"]), tuple(header["shape"])
                data = self._read(process, int(np.prod(shape)) * dtype.itemsize, deadline)
        except TimeoutError:
            self.close()
            raise InputError(f"image {str(path)!r} took longer than {self.timeout_s:g} s to decode; skipped") from None
        except (EOFError, OSError, ValueError) as error:
            self.close()
            raise InputError(f"image {str(path)!r} ended the decoder ({type(error).__name__}); skipped") from None
        if "error" in header:
            raise InputError(header["error"])
        return np.frombuffer(data, dtype=dtype).reshape(shape)

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self._process is not None:
            for stream in (self._process.stdin, self._process.stdout):
                stream.close()


class ImageLoader:
    """One worker thread that reads image files and hands their pixels to actions, in submission order.

    Parameters
    ----------
    max_side : decoded images keep fewer than ``2 · max_side`` pixels a side (4 × what the models read).
    max_pixels : files with more pixels are refused from their header (``--max-image-megapixels``).
    max_pending : jobs waiting at most; the oldest is dropped for a new one.
    timeout_s : a decode in the decoder process that takes longer is abandoned (the process restarted).
    """

    def __init__(self, *, max_side: int = 256, max_pixels: int = DEFAULT_MAX_PIXELS, max_pending: int = 4,
                 timeout_s: float = 30.0) -> None:
        self.max_side = int(max_side)
        self.max_pixels = int(max_pixels)
        self._decoder = DecoderProcess(timeout_s=timeout_s)
        self._decoder_lock = threading.Lock()
        self._cache: OrderedDict[Path, tuple[tuple[int, int], np.ndarray]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._jobs: collections.deque = collections.deque()
        self._max_pending = int(max_pending)
        self._wake = threading.Condition()
        self._running = True
        self._log = LimitedLog(log)
        self.loads = 0  # files decoded (the rest came from the cache)
        self.superseded = 0  # jobs dropped from a full queue for newer ones
        self.failed = 0
        self.done = 0
        self._thread = threading.Thread(target=self._work, name="imgsonic-images", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return len(self._jobs)

    def read(self, path: str | os.PathLike) -> np.ndarray:
        """The pixels of an image file (cached, read-only), decoded within the limits; InputError says why not."""
        real = Path(os.path.realpath(path))
        try:
            stat = real.stat()
        except OSError as error:
            raise InputError(f"image {str(path)!r} cannot be read ({error.strerror or error})") from error
        key = (stat.st_mtime_ns, stat.st_size)
        with self._cache_lock:
            entry = self._cache.get(real)
            if entry is not None and entry[0] == key:
                self._cache.move_to_end(real)
                return entry[1]
        if stat.st_size == 0:
            raise InputError(f"image {str(path)!r} is an empty file")
        if header_pixels(real) <= IN_PROCESS_PIXELS:
            pixels = decode_bounded(real, max_side=self.max_side, max_pixels=self.max_pixels)
        else:
            with self._decoder_lock:
                pixels = self._decoder.decode(real, max_side=self.max_side, max_pixels=self.max_pixels)
        pixels.setflags(write=False)
        with self._cache_lock:
            self.loads += 1
            self._cache[real] = (key, pixels)
            total = sum(cached.nbytes for _, cached in self._cache.values())
            while total > _CACHE_BYTES and len(self._cache) > 1:
                _, (_, evicted) = self._cache.popitem(last=False)
                total -= evicted.nbytes
        return pixels

    def submit(self, paths: Sequence[str | os.PathLike], action: Callable[..., None], *, what: str) -> None:
        """Queue ``action(*pixels)`` for the images at ``paths``; returns at once. ``what`` names it in logs."""
        with self._wake:
            if len(self._jobs) >= self._max_pending:
                self._jobs.popleft()
                self.superseded += 1
            self._jobs.append((tuple(paths), action, what))
            self._wake.notify()

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Wait until every submitted job is done (tests and benchmarks); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._jobs or self._busy:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    _busy = False

    def _work(self) -> None:
        while True:
            with self._wake:
                while self._running and not self._jobs:
                    self._wake.wait()
                if not self._running:
                    return
                paths, action, what = self._jobs.popleft()
                self._busy = True
            try:
                action(*[self.read(path) for path in paths])
                self.done += 1
            except ImgsonicError as error:
                self.failed += 1
                self._log(logging.WARNING, "%s refused: %s", what, error)
            except Exception as error:  # noqa: BLE001 — a failing job must not end the worker
                self.failed += 1
                self._log(logging.ERROR, "%s failed: %s: %s", what, type(error).__name__, error)
            finally:
                self._busy = False

    def close(self) -> None:
        with self._wake:
            self._running = False
            self._jobs.clear()
            self._wake.notify()
        self._thread.join(timeout=2.0)
        self._decoder.close()
