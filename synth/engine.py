"""Python-made audio inside a pyo graph, sample-exactly: the server hook and the block feed.

pyo is imported by this module (and by the voices built on it), never by the rest of ``synth``, so
offline rendering and training work where pyo cannot open a device.

How audio gets in (measured in ARCHITECTURE.md): the server calls one Python function per buffer, before it
computes the graph. :class:`ServerHooks` is that function for a server; it runs every registered hook and
never lets an exception through (pyo would print it and repeat the last block). :class:`BlockFeed` is a
pyo object that registers a hook writing ``buffersize`` samples from a Python *source* into a
``DataTable`` through a numpy view, read by a ``TableScan`` in the same buffer: zero added delay, and the
output is exactly the source's samples (times ``mul``, plus ``add``).

A source is any callable ``source(n_samples) -> float32 array (n_samples,)``. The feed calls it either in
the hook (``ahead_blocks=0``: deterministic, what offline/manual servers and tests use) or from a worker
thread that keeps ``ahead_blocks`` buffers ready (real-time servers: the hook only copies, so a slow
decode never holds up the audio thread; an empty queue is counted as an underrun and plays silence).

Example
-------
>>> import numpy as np, pyo                                                    # doctest: +SKIP
>>> s = pyo.Server(audio="manual", nchnls=1).boot()                           # doctest: +SKIP
>>> ramp = iter(range(10**9))                                                 # doctest: +SKIP
>>> feed = BlockFeed(lambda n: np.full(n, next(ramp), np.float32), mul=0.5).out()  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable

import numpy as np

# Without this pyo prints a wxPython notice on stdout at import, which corrupts `$(imgsonic ...)` captures.
# imgsonic imports pyo only through this module (bridge modules: `from synth.engine import pyo`).
os.environ.setdefault("PYO_GUI_WX", "0")
import pyo  # noqa: E402

from models.errors import ParameterError  # noqa: E402
from synth.native_output import captured_native_stderr  # noqa: E402

__all__ = ["pyo", "ServerHooks", "server_hooks", "BlockFeed", "FeedStats", "settle_garbage_collector",
           "count_audio_devices"]

log = logging.getLogger("imgsonic.engine")

Source = Callable[[int], np.ndarray]

_HOOKS: dict[int, tuple[object, ServerHooks]] = {}  # id(C server) → (that server, its hooks): one per server


def count_audio_devices() -> int:
    """How many portaudio devices there are, without ALSA's probing errors on the terminal.

    Check this before booting a portaudio server: with none, ``Server.boot()`` crashes the process.
    """
    with captured_native_stderr() as probing:
        n_devices = pyo.pa_count_devices()
    if probing.text:
        log.debug("portaudio probing said: %s", probing.text.strip())
    return n_devices


def _c_server(server=None):
    """The C-level server of a ``pyo.Server``, of a pyo object, or of the booted server (``None``)."""
    if server is None:
        if not pyo.serverBooted():
            raise ParameterError("no pyo server is booted; create and boot one first: Server().boot()")
        return pyo.Sig(0).getServer()
    if isinstance(server, pyo.Server):
        return server._server
    if isinstance(server, pyo.PyoObjectBase):
        return server.getServer()
    return server


def settle_garbage_collector() -> None:
    """Collect garbage now, then take every object that survives out of the cyclic collector's sight.

    A collection of the older generations walks every object the process holds (about 200 000 once torch,
    pyo and the models are loaded) and runs in whichever thread happens to allocate, the audio callback
    included: measured here as 17 ms pauses in the callback (117 ms for a full collection), which were the
    live benchmark's buffers over their deadline. After :func:`gc.freeze` those objects are skipped; they are
    still freed by reference counting, and only reference cycles among them stay until ``gc.unfreeze()``.
    Call it after loading models, where a pause is harmless (not after each patch: a replaced patch's
    namespace is a reference cycle, which a freeze would keep alive with its pyo objects).
    """
    gc.collect()
    gc.freeze()


class ServerHooks:
    """Functions run once per buffer, before the graph, in the order added; exceptions are caught and counted.

    Hooks are held weakly when they are bound methods (a voice that is garbage-collected stops being
    called). Use :func:`server_hooks` rather than building one: a server has one callback.
    """

    def __init__(self, c_server) -> None:
        self._hooks: tuple = ()
        self.errors = 0
        self.last_error: str | None = None
        c_server.setCallback(self._run)

    def add(self, hook: Callable[[], None]) -> None:
        ref = weakref.WeakMethod(hook) if hasattr(hook, "__self__") else (lambda hook=hook: hook)
        self._hooks = (*self._hooks, ref)  # replaced, not mutated: the audio thread may be iterating

    def remove(self, hook: Callable[[], None]) -> None:
        self._hooks = tuple(ref for ref in self._hooks if ref() != hook)

    def _run(self) -> None:
        dead = False
        for ref in self._hooks:
            hook = ref()
            if hook is None:
                dead = True
                continue
            try:
                hook()
            except Exception as error:  # noqa: BLE001 — nothing may stop the audio
                self.errors += 1
                if self.last_error is None or self.errors % 1000 == 1:
                    log.error("audio hook %r failed (%d so far): %r", hook, self.errors, error)
                self.last_error = repr(error)
        if dead:
            self._hooks = tuple(ref for ref in self._hooks if ref() is not None)


def server_hooks(server=None) -> ServerHooks:
    """The :class:`ServerHooks` of ``server`` (a ``pyo.Server``, any pyo object, or None for the booted one).

    It installs itself with ``setCallback``: a callback set later by other code replaces it.
    """
    c_server = _c_server(server)
    entry = _HOOKS.get(id(c_server))
    if entry is None or entry[0] is not c_server:
        entry = (c_server, ServerHooks(c_server))
        _HOOKS[id(c_server)] = entry
    return entry[1]


class FeedStats:
    """What a :class:`BlockFeed` measured: hook durations (last ``capacity`` buffers), underruns, source errors."""

    def __init__(self, capacity: int = 1 << 17) -> None:
        self.hook_s = np.zeros(capacity)
        self.n_buffers = 0
        self.underruns = 0
        self.source_errors = 0
        self.last_error: str | None = None

    def record(self, seconds: float) -> None:
        self.hook_s[self.n_buffers % self.hook_s.size] = seconds
        self.n_buffers += 1

    def durations_s(self) -> np.ndarray:
        """Hook durations in seconds, oldest first (at most ``capacity``)."""
        n = min(self.n_buffers, self.hook_s.size)
        if self.n_buffers <= self.hook_s.size:
            return self.hook_s[:n].copy()
        start = self.n_buffers % self.hook_s.size
        return np.concatenate([self.hook_s[start:], self.hook_s[:start]])


class _Ahead:
    """A worker thread that keeps ``n_blocks`` blocks from ``source`` ready in a queue."""

    def __init__(self, source: Source, *, block_size: int, n_blocks: int, stats: FeedStats) -> None:
        self._source, self._block_size, self._stats = source, block_size, stats
        self.blocks: queue.Queue = queue.Queue(maxsize=n_blocks)
        for _ in range(n_blocks):  # full before the first callback: no underrun while the thread starts
            self.blocks.put_nowait(_call_source(source, block_size, stats))
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="imgsonic-decode-ahead", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while self._running:
            block = _call_source(self._source, self._block_size, self._stats)
            while self._running:
                try:
                    self.blocks.put(block, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def close(self) -> None:
        self._running = False


def _call_source(source: Source, n_samples: int, stats: FeedStats) -> np.ndarray:
    try:
        block = np.asarray(source(n_samples), dtype=np.float32).reshape(-1)
        if block.size != n_samples or not np.isfinite(block).all():
            raise ValueError(f"source gave {block.size} samples (finite: {bool(np.isfinite(block).all())}); expected {n_samples} finite")
        return block
    except Exception as error:  # noqa: BLE001 — a failing source plays silence, the audio goes on
        stats.source_errors += 1
        if stats.last_error is None or stats.source_errors % 1000 == 1:
            log.error("audio source failed (%d so far): %r", stats.source_errors, error)
        stats.last_error = repr(error)
        return np.zeros(n_samples, dtype=np.float32)


class BlockFeed(pyo.PyoObject):
    """A pyo object playing the samples a Python source makes, one buffer at a time, with no added delay.

    Parameters
    ----------
    source : callable ``(n_samples) -> array (n_samples,)``
        Called once per buffer (or from the worker); an exception or a wrong block plays silence and is counted.
    ahead_blocks : int
        0: call the source in the server's hook (deterministic). ≥ 1: a worker thread keeps that many
        buffers ready; the hook only copies (for real-time servers).
    mul, add : float or PyoObject
        As for any pyo object.
    """

    def __init__(self, source: Source, *, ahead_blocks: int = 0, mul=1, add=0) -> None:
        pyo.pyoArgsAssert(self, "OO", mul, add)
        if isinstance(ahead_blocks, bool) or not isinstance(ahead_blocks, int) or ahead_blocks < 0:
            raise ParameterError(f"ahead_blocks={ahead_blocks!r}; expected an integer ≥ 0")
        pyo.PyoObject.__init__(self, mul, add)
        self._source = source
        self._table = pyo.DataTable(size=pyo.Sig(0).getBufferSize())
        self._block_size = self._table.getSize()
        self._view = np.asarray(self._table.getBuffer())
        self.stats = FeedStats()
        self._ahead = (
            _Ahead(source, block_size=self._block_size, n_blocks=ahead_blocks, stats=self.stats) if ahead_blocks else None
        )
        self._scan = pyo.TableScan(self._table, mul=mul, add=add)
        self._base_objs = self._scan.getBaseObjects()
        server_hooks(self._scan).add(self._fill)

    def _fill(self) -> None:
        start = time.perf_counter()
        if self._ahead is None:
            self._view[:] = _call_source(self._source, self._block_size, self.stats)
        else:
            try:
                self._view[:] = self._ahead.blocks.get_nowait()
            except queue.Empty:
                self._view[:] = 0.0
                self.stats.underruns += 1
        self.stats.record(time.perf_counter() - start)

    @property
    def block_size(self) -> int:
        return self._block_size

    def close(self) -> None:
        """Stop calling the source (and end the worker thread); the object plays silence from then on."""
        server_hooks(self._scan).remove(self._fill)
        self._view[:] = 0.0
        if self._ahead is not None:
            self._ahead.close()
