"""OSC control of the live engine: the ``/imgsonic/...`` namespace in, latent and parameter streams out.

:class:`OscControlServer` listens on UDP (127.0.0.1 unless told otherwise), validates every message and
calls a :class:`LiveTarget` (the live engine). It never stops for bad input: a datagram that is not OSC is
dropped, a message with wrong types or arity is refused with a logged one-line reason, NaN, inf and
out-of-range numbers are clamped, and an exception raised by the target is logged while the server goes on.

=============================================  ========================================================
address and arguments                          what it does
=============================================  ========================================================
``/imgsonic/image <path> [fadetime_s]``        load an image and crossfade to it (fadetime 0…60 s,
                                               default 0.5)
``/imgsonic/latent <f> × image_latent_dim``    set the image latent directly (each value clamped to the
                                               preset's latent range, see ``/imgsonic/info``)
``/imgsonic/param <name> <value>``             override a mapped parameter, in its units (clamped to
                                               the parameter's range)
``/imgsonic/gain <db>``                        master gain, −80…+12 dB
``/imgsonic/morph <path_a> <path_b> <t>``      blend two images, t 0…1 (0 = a)
``/imgsonic/learn <name>``                     bind the next MIDI controller that moves to parameter
                                               ``name`` (needs MIDI in)
``/imgsonic/ping [reply_port]``                answered, to the sender's host at ``reply_port`` or the
                                               sender's port, with ``/imgsonic/pong`` and seven ints:
                                               received acted refused unknown errors malformed dropped
                                               (received already counts the ping)
``/imgsonic/info [reply_port]``                answered the same way with one ``/imgsonic/info/<key>``
                                               message per entry of the engine's ``describe()`` (the
                                               latent range as ``latent_low`` and ``latent_high``, …),
                                               then ``/imgsonic/info/end``
=============================================  ========================================================

Numbers may be int, float or double wherever a number is expected (a reply port too, when it is whole:
Pd sends floats). NaN becomes the neutral value: latent 0, the parameter's default, fadetime 0.5 s, t 0,
and −80 dB for the gain (silence is the safe side). Image paths are taken relative to the allowed folders
(tried in order) or as absolute paths, and are accepted only when their real path — symlinks and ``..``
resolved — lies under one of the allowed folders and has an image extension; the engine loads them in its
own thread (``image_file``, ``morph_files``), so no file, however large, holds up this server. Addresses are
matched exactly: OSC wildcard patterns are refused, because python-osc's pattern matcher backtracks for
seconds on a 50-star address. Datagrams over 8 kB and bundles nested deeper than 8 are dropped; bundle time
tags are ignored (messages act on arrival).

Rate limits: at most ``rate_per_s`` messages a second are handled (in bursts of a tenth of a second's
worth); the excess is dropped unread and counted (``dropped`` in the pong), and pings have a budget of their
own, so a flood of other messages never keeps a ping from being answered. Log lines are limited to 20 a
second.

All target calls come from the server's one thread, one at a time.

Example
-------
>>> server = OscControlServer(engine, allowed_folders=["images/"], port=9000)   # doctest: +SKIP
>>> server.start()                                                                # doctest: +SKIP
>>> # oscsend localhost 9000 /imgsonic/image s cat.png
>>> server.stop()                                                                 # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import select
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from bridge.control.latent_range import LatentRange
from bridge.control.limits import FADE_S, GAIN_DB, MORPH_T, Limit
from bridge.control.mapping import Mapping
from bridge.control.rate import LimitedLog, TokenBucket
from bridge.sources.images import IMAGE_EXTENSIONS
from models.errors import ImgsonicError, InputError, ParameterError

__all__ = [
    "LiveTarget",
    "OscControlServer",
    "OscCounters",
    "OscSender",
    "parse_host_port",
    "DEFAULT_IMAGE_FADETIME_S",
    "DEFAULT_LATENT_FADETIME_S",
    "DEFAULT_RATE_PER_S",
]


DEFAULT_IMAGE_FADETIME_S = 0.5
_IMAGE_FADE_S = Limit(FADE_S.name, FADE_S.low, FADE_S.high, neutral=DEFAULT_IMAGE_FADETIME_S, unit=FADE_S.unit)
DEFAULT_LATENT_FADETIME_S = 0.05
"""A latent stream arrives as many small steps; a short fade removes the zipper noise between them."""

_PREFIX = "/imgsonic/"
_PATTERN_CHARACTERS = frozenset("*?[]{}")
_MAX_PATH_CHARACTERS = 4096  # PATH_MAX on Linux; longer strings cannot name a file
_LOG_LINES_PER_S = 20
DEFAULT_RATE_PER_S = 1000.0  # a TouchOSC page of ten faders at 60 Hz is 600 a second
_PING_RATE_PER_S = 200.0
_PING = b"/imgsonic/ping\x00"
_MAX_BUNDLE_DEPTH = 8
_BATCH = 256  # datagrams read per wake-up at most, so stop() is seen even in a flood
# python-osc scans strings byte by byte (≈35 ns a byte, holding the GIL the audio callback needs); 8 kB is
# what python-osc's server reads by default and holds any real message (a 4096-character path, 1000 floats).
_MAX_DATAGRAM_BYTES = 8192
_BUNDLE_PREFIX = b"#bundle\x00"
_TYPE_TAGS = frozenset(b"ihfdsbrmtTFN[]")  # the ones python-osc parses; it logs others to the root logger
_PONG_COUNTERS = ("received", "acted", "refused", "unknown", "errors", "malformed", "dropped")

logger = logging.getLogger("imgsonic.osc")


class LiveTarget(Protocol):
    """The live engine's control surface, as the OSC server and MIDI input drive it.

    Any method may raise; callers log the exception and go on. ``image_file`` and ``morph_files`` get real
    paths already confined to the allowed folders and must return at once (the engine reads the files in
    its own time).
    """

    image_latent_dim: int
    mapping: Mapping
    latent_range: LatentRange

    def image_file(self, path: Path, *, fadetime: float) -> None: ...

    def set_latent(self, values: np.ndarray, *, fadetime: float) -> None: ...

    def set_param(self, name: str, value: float) -> None: ...

    def set_gain(self, gain_db: float) -> None: ...

    def morph_files(self, a: Path, b: Path, t: float) -> None: ...

    def learn(self, name: str) -> None: ...

    def describe(self) -> MappingABC[str, Any]: ...


@dataclass(frozen=True)
class OscCounters:
    """What the server has seen since it started.

    Each parsed message is counted once in ``received`` and once in exactly one of ``acted``, ``refused``,
    ``unknown`` and ``errors`` (the target raised); ``malformed`` counts datagrams that are not OSC and
    ``dropped`` what the rate limit turned away unread (whole datagrams, and a bundle's messages past the
    budget). ``clamped`` counts acted messages in which at least one value was clamped.
    """

    datagrams: int = 0
    dropped: int = 0
    malformed: int = 0
    received: int = 0
    acted: int = 0
    refused: int = 0
    unknown: int = 0
    errors: int = 0
    clamped: int = 0


def _show(value: Any) -> str:
    """A short description of an OSC argument for a log line (a 60 kB string must not become one)."""
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{text} ({type(value).__name__})"


def _check_arity(args: tuple, counts: tuple[int, ...], usage: str) -> None:
    if len(args) not in counts:
        shown = ", ".join(_show(arg) for arg in args[:4]) + (", ..." if len(args) > 4 else "")
        raise ParameterError(f"expected {usage}; got {len(args)} arguments ({shown or 'none'})")


def _number(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{what} = {_show(value)}; expected a number")
    return float(value)


def _text(what: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ParameterError(f"{what} = {_show(value)}; expected a string")
    return value


def _split_packet(data: bytes) -> list[bytes]:
    """The messages of an OSC packet, in order, with bundles unpacked; ValueError says what is malformed.

    Done here rather than by python-osc's ``OscPacket`` because that recurses once per nesting level (a
    2500-deep bundle costs 30 ms and a RecursionError) and logs each unknown type tag or stray element to
    the root logger, unthrottled. Bundle time tags are ignored: every message acts when it arrives.
    """
    if len(data) > _MAX_DATAGRAM_BYTES:
        raise ValueError(f"{len(data)} bytes; the limit is {_MAX_DATAGRAM_BYTES}")
    messages, stack = [], [(data, 0)]
    while stack:
        dgram, depth = stack.pop()
        if dgram.startswith(_BUNDLE_PREFIX):
            if depth == _MAX_BUNDLE_DEPTH:
                raise ValueError(f"bundles nested deeper than {_MAX_BUNDLE_DEPTH}")
            elements, index = [], len(_BUNDLE_PREFIX) + 8  # after the 8-byte time tag
            if index > len(dgram):
                raise ValueError("bundle without a time tag")
            while index < len(dgram):
                size = int.from_bytes(dgram[index:index + 4], "big", signed=True)
                index += 4
                if size <= 0 or size % 4 or index + size > len(dgram):
                    raise ValueError(f"bundle element of {size} bytes in {len(dgram) - index} left")
                elements.append((dgram[index:index + size], depth + 1))
                index += size
            stack.extend(reversed(elements))
        elif dgram.startswith(b"/"):
            address_end = dgram.find(b"\x00")
            tags_start = (address_end // 4 + 1) * 4
            tags_end = dgram.find(b"\x00", tags_start)
            if address_end < 0 or tags_end < 0 or dgram[tags_start:tags_start + 1] != b",":
                raise ValueError("message without a type tag string")
            unknown = set(dgram[tags_start + 1:tags_end]) - _TYPE_TAGS
            if unknown:
                raise ValueError(f"unsupported type tag {chr(min(unknown))!r}")
            messages.append(dgram)
        else:
            raise ValueError("neither an OSC message nor a bundle")
    return messages


def _real_path(path: Path) -> Path | None:
    """``path`` with symlinks and ``..`` resolved; None when it cannot be (a NUL in it)."""
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):
        return None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a too-long name, a permission problem: not a usable file
        return False


def _bind(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``host:port`` (IPv4 or IPv6), with room for a burst of datagrams."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    bound = socket.socket(family, socket.SOCK_DGRAM)
    try:
        # the kernel caps this at net.core.rmem_max: a flood that overflowed the buffer would take pings with it
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 2**20)
        bound.bind(address)
    except OSError:
        bound.close()
        raise
    bound.setblocking(False)
    return bound


class OscControlServer:
    """A UDP OSC server for the ``/imgsonic/...`` namespace (see the module docstring), run in a daemon thread.

    Parameters
    ----------
    target : LiveTarget
        What the messages act on.
    host, port : where to listen; port 0 picks a free port (read it back from :attr:`port`).
    allowed_folders : folders image paths must lie under; with none, every image message is refused.
    rate_per_s : messages handled a second at most (pings apart); ``math.inf`` for no limit.

    Raises
    ------
    ParameterError
        An allowed folder is not a folder.
    ImgsonicError
        The address cannot be bound (port in use, unknown host).
    """

    def __init__(
        self,
        target: LiveTarget,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allowed_folders: Sequence[str | os.PathLike] = (),
        rate_per_s: float = DEFAULT_RATE_PER_S,
    ) -> None:
        self._target = target
        folders = []
        for folder in allowed_folders:
            real = Path(os.path.realpath(folder))
            if not real.is_dir():
                raise ParameterError(f"allowed image folder {str(folder)!r} is not a folder")
            folders.append(real)
        self._folders = tuple(folders)
        self._messages = TokenBucket(rate_per_s=rate_per_s, burst=max(1.0, min(rate_per_s, 1e9) / 10))
        self._pings = TokenBucket(rate_per_s=_PING_RATE_PER_S, burst=_PING_RATE_PER_S / 10)
        self._log = LimitedLog(logger, lines_per_s=_LOG_LINES_PER_S)
        self._counts = dict.fromkeys(OscCounters.__dataclass_fields__, 0)
        self._client: tuple = ("", 0)

        self._dispatcher = Dispatcher(strict_timing=False)
        parsers = {
            "image": self._parse_image,
            "latent": self._parse_latent,
            "param": self._parse_param,
            "gain": self._parse_gain,
            "morph": self._parse_morph,
            "learn": self._parse_learn,
            "ping": self._parse_ping,
            "info": self._parse_info,
        }
        for name, parse in parsers.items():
            self._dispatcher.map(_PREFIX + name, partial(self._handle, parse))
        self._known = ", ".join(_PREFIX + name for name in parsers)
        try:
            self._socket = _bind(host, port)
            self._address = self._socket.getsockname()
        except (OSError, UnicodeError) as error:
            raise ImgsonicError(
                f"cannot listen for OSC on {host}:{port} ({error.strerror or error}); choose another port"
            ) from error
        self._thread: threading.Thread | None = None
        self._serving = False

    @property
    def host(self) -> str:
        return self._address[0]

    @property
    def port(self) -> int:
        """The bound UDP port (the free one the system chose when ``port=0``)."""
        return self._address[1]

    @property
    def allowed_folders(self) -> tuple[Path, ...]:
        return self._folders

    @property
    def counters(self) -> OscCounters:
        return OscCounters(**self._counts)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._serving = True
        self._thread = threading.Thread(target=self._serve, name="imgsonic-osc", daemon=True)
        self._thread.start()
        logger.info(
            "OSC control on %s:%d; image folders: %s", self.host, self.port,
            ", ".join(map(str, self._folders)) or "none (image messages are refused)",
        )

    def stop(self) -> None:
        """Stop serving and close the socket; waits for the message being handled, if any."""
        self._serving = False
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._socket.close()

    def _serve(self) -> None:
        """Wait for datagrams, then read every one that is there before waiting again.

        One wait per burst instead of one per datagram: in a flood the thread spends its time on the
        datagrams, and the 50 ms wait bounds how long :meth:`stop` takes.
        """
        while self._serving:
            if not select.select([self._socket], [], [], 0.05)[0]:
                continue
            for _ in range(_BATCH):
                try:
                    data, client_address = self._socket.recvfrom(65535)  # whole: a long one is refused, not cut
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as error:  # e.g. ICMP port unreachable reported on a later read
                    self._log(logging.DEBUG, "OSC socket: %s", error)
                    break
                try:
                    self._on_datagram(data, client_address)
                except Exception:  # noqa: BLE001 — a bug must not stop the server
                    logger.exception("OSC datagram from %s could not be handled", client_address)

    def __enter__(self) -> OscControlServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- dispatch -------------------------------------------------------------------------------

    def _on_datagram(self, data: bytes, client_address: tuple) -> None:
        try:
            if not (self._pings if data.startswith(_PING) else self._messages).take():
                self._counts["dropped"] += 1  # over the rate: not even parsed
                return
            self._dispatch(data, client_address)
        finally:
            # counted last, so whoever sees the count also sees everything the datagram did
            self._counts["datagrams"] += 1

    def _dispatch(self, data: bytes, client_address: tuple) -> None:
        try:
            messages = [OscMessage(dgram) for dgram in _split_packet(data)]
        except Exception as error:  # ValueError from the split; ParseError, UnicodeDecodeError, ... from python-osc
            self._counts["malformed"] += 1
            self._log(logging.WARNING, "dropped a %d-byte datagram from %s that is not OSC (%s)",
                      len(data), client_address, str(error)[:80])
            return
        self._client = client_address
        for index, message in enumerate(messages):
            if index and not self._messages.take():  # a bundle's later messages count against the rate too
                self._counts["dropped"] += len(messages) - index
                break
            address = message.address
            if _PATTERN_CHARACTERS.intersection(address):
                self._counts["received"] += 1
                self._counts["unknown"] += 1
                self._log(logging.WARNING, "%s refused: OSC address patterns are not accepted; send an exact "
                          "/imgsonic/... address", _show(address))
                continue
            # No default handler: python-osc's path to it calls logging.debug(), which configures the root logger.
            handlers = list(self._dispatcher.handlers_for_address(address))
            if not handlers:
                self._unknown(address)
            for handler in handlers:
                handler.invoke(client_address, message)

    def _unknown(self, address: str) -> None:
        self._counts["received"] += 1
        self._counts["unknown"] += 1
        self._log(logging.WARNING, "%s is not an imgsonic address; known: %s", _show(address), self._known)

    def _handle(self, parse: Callable[[tuple], tuple[Callable[[], None], bool]], address: str, *args: Any) -> None:
        """Validate (``parse`` → the action and whether a value was clamped), then act; count the outcome."""
        self._counts["received"] += 1
        try:
            action, clamped = parse(args)
        except ImgsonicError as error:
            self._counts["refused"] += 1
            self._log(logging.WARNING, "%s refused: %s", address, error)
            return
        except Exception as error:  # e.g. a decoder failing in a way read_image does not know
            self._counts["errors"] += 1
            self._log(logging.ERROR, "%s could not be handled: %s: %s", address, type(error).__name__, error)
            logger.debug("traceback", exc_info=True)
            return
        try:
            action()
        except Exception as error:  # the target's bugs must not stop the server
            self._counts["errors"] += 1
            self._log(logging.ERROR, "%s: the live engine raised %s: %s", address, type(error).__name__, error)
            logger.debug("traceback of the live engine's error", exc_info=True)
            return
        self._counts["acted"] += 1
        self._counts["clamped"] += clamped

    # --- the namespace --------------------------------------------------------------------------

    def _resolve_image(self, text: str) -> Path:
        """The real path of an image file under an allowed folder, or InputError saying why not."""
        if not self._folders:
            raise InputError(f"image path {_show(text)} refused: no image folders were allowed")
        if not text or len(text) > _MAX_PATH_CHARACTERS:
            raise InputError(f"image path of {len(text)} characters; expected 1…{_MAX_PATH_CHARACTERS}")
        candidates = [Path(text)] if os.path.isabs(text) else [folder / text for folder in self._folders]
        inside = [
            real for real in map(_real_path, candidates)
            if real is not None and any(real.is_relative_to(folder) for folder in self._folders)
        ]
        folders = ", ".join(map(str, self._folders))
        if not inside:
            raise InputError(f"image path {text!r} resolves outside the allowed folders ({folders})")
        files = [real for real in inside if _is_file(real)]
        if not files:
            raise InputError(f"image {text!r} does not exist under the allowed folders ({folders})")
        if files[0].suffix.lower() not in IMAGE_EXTENSIONS:
            raise InputError(f"{text!r} is not an image file; expected one of {', '.join(sorted(IMAGE_EXTENSIONS))}")
        return files[0]

    def _parse_image(self, args: tuple) -> tuple[Callable[[], None], bool]:
        _check_arity(args, (1, 2), "<path> [fadetime_s]")
        fadetime, clamped = DEFAULT_IMAGE_FADETIME_S, False
        if len(args) == 2:
            fadetime, clamped = _IMAGE_FADE_S.clamp(_number("fadetime_s", args[1]))
        path = self._resolve_image(_text("path", args[0]))
        return partial(self._target.image_file, path, fadetime=fadetime), clamped

    def _parse_latent(self, args: tuple) -> tuple[Callable[[], None], bool]:
        dim = self._target.image_latent_dim
        _check_arity(args, (dim,), f"{dim} numbers (the image latent)")
        raw = np.array([_number(f"value {index}", arg) for index, arg in enumerate(args)])
        values, clamped = self._target.latent_range.clamp(raw)
        return partial(self._target.set_latent, values, fadetime=DEFAULT_LATENT_FADETIME_S), clamped

    def _parse_param(self, args: tuple) -> tuple[Callable[[], None], bool]:
        _check_arity(args, (2,), "<name> <value>")
        name = _text("name", args[0])
        mapping = self._target.mapping
        if name not in mapping.names:
            raise ParameterError(f"no parameter {_show(name)}; the mapping has {', '.join(mapping.names)}")
        parameter = mapping[name]
        low, high = sorted((parameter.low, parameter.high))
        default = min(max(parameter.default_value, low), high)
        value, clamped = Limit(name, low, high, neutral=default).clamp(_number("value", args[1]))
        return partial(self._target.set_param, name, value), clamped

    def _parse_gain(self, args: tuple) -> tuple[Callable[[], None], bool]:
        _check_arity(args, (1,), "<gain_db>")
        gain_db, clamped = GAIN_DB.clamp(_number("gain_db", args[0]))
        return partial(self._target.set_gain, gain_db), clamped

    def _parse_morph(self, args: tuple) -> tuple[Callable[[], None], bool]:
        _check_arity(args, (3,), "<path_a> <path_b> <t>")
        t, clamped = MORPH_T.clamp(_number("t", args[2]))
        a = self._resolve_image(_text("path_a", args[0]))
        b = self._resolve_image(_text("path_b", args[1]))
        return partial(self._target.morph_files, a, b, t), clamped

    def _parse_learn(self, args: tuple) -> tuple[Callable[[], None], bool]:
        _check_arity(args, (1,), "<parameter name>")
        name = _text("name", args[0])
        mapping = self._target.mapping
        if name not in mapping.names:
            raise ParameterError(f"no parameter {_show(name)}; the mapping has {', '.join(mapping.names)}")
        return partial(self._target.learn, name), False

    def _reply_address(self, args: tuple) -> tuple[str, int]:
        _check_arity(args, (0, 1), "[reply_port]")
        host, port = self._client[0], self._client[1]
        if args:
            number = _number("reply_port", args[0])  # Pd sends 9103 as a float
            if not (math.isfinite(number) and number == int(number) and 1 <= number <= 65535):
                raise ParameterError(f"reply_port = {_show(args[0])}; expected a whole number in 1…65535")
            port = int(number)
        return host, port

    def _parse_ping(self, args: tuple) -> tuple[Callable[[], None], bool]:
        host, port = self._reply_address(args)
        return partial(self._pong, host, port), False

    def _parse_info(self, args: tuple) -> tuple[Callable[[], None], bool]:
        host, port = self._reply_address(args)
        return partial(self._info, host, port), False

    def _reply(self, host: str, port: int, address: str, values: Iterable[Any]) -> None:
        builder = OscMessageBuilder(address=address)
        for value in values:
            builder.add_arg(value, OscMessageBuilder.ARG_TYPE_INT if isinstance(value, int)
                            else OscMessageBuilder.ARG_TYPE_FLOAT if isinstance(value, float)
                            else OscMessageBuilder.ARG_TYPE_STRING)
        self._socket.sendto(builder.build().dgram, (host, port))

    def _pong(self, host: str, port: int) -> None:
        self._reply(host, port, _PREFIX + "pong", (self._counts[key] for key in _PONG_COUNTERS))

    def _info(self, host: str, port: int) -> None:
        for key, value in self._target.describe().items():
            values = value if isinstance(value, (list, tuple)) else [value]
            self._reply(host, port, f"{_PREFIX}info/{key}", (v if isinstance(v, (int, float)) else str(v)
                                                             for v in values))
        self._reply(host, port, _PREFIX + "info/end", ())


def parse_host_port(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (``"[::1]:PORT"`` for IPv6) → ``(host, port)``; ParameterError names a bad one."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ParameterError(
            f"OSC destination {text!r}; expected HOST:PORT with a port in 1…65535, e.g. 127.0.0.1:9001"
        )
    return host, int(port)


class OscSender:
    """Sends the live engine's streams to one OSC peer over UDP.

    Messages (one datagram each, so receivers that do not take bundles, such as Pd's ``oscparse``, work):

    * ``/imgsonic/out/z_img f...`` — the image latent ``(image_latent_dim,)``
    * ``/imgsonic/out/z_aud f...`` — the audio latent ``(audio_latent_dim,)``
    * ``/imgsonic/out/param <name> <value>`` — one parameter, in its units
    * ``/imgsonic/out/visual/z_img f...`` — the image latent of what the live visualizer hears

    Sending never blocks and never raises: a full socket buffer or an unreachable peer drops the message,
    counted in :attr:`dropped` and logged (rate-limited). How often to send is the caller's choice.

    Raises
    ------
    ParameterError
        ``port`` is not in 1…65535 or ``host`` cannot be resolved.

    Example
    -------
    >>> sender = OscSender(host="127.0.0.1", port=9001)                         # doctest: +SKIP
    >>> sender.send_params({"cutoff_hz": 1200.0, "pan": -0.3})                 # doctest: +SKIP
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ParameterError(f"OSC out port = {port!r}; expected an integer in 1…65535")
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except (socket.gaierror, UnicodeError) as error:
            raise ParameterError(f"OSC out host {host!r} cannot be resolved ({error})") from error
        family, _, _, _, self._address = info
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._log = LimitedLog(logger, lines_per_s=_LOG_LINES_PER_S)
        self.sent = 0
        self.dropped = 0

    def _send(self, address: str, args: Iterable[tuple[Any, str]]) -> None:
        builder = OscMessageBuilder(address=address)
        for value, type_tag in args:
            builder.add_arg(value, type_tag)
        try:
            self._socket.sendto(builder.build().dgram, self._address)
        except OSError as error:
            self.dropped += 1
            self._log(logging.WARNING, "OSC out to %s dropped %s (%s)", self._address, address, error)
            return
        self.sent += 1

    def _send_vector(self, address: str, values: np.ndarray) -> None:
        self._send(address, ((float(value), "f") for value in np.asarray(values, dtype=np.float64).ravel()))

    def send_visual_latent(self, z_img: np.ndarray) -> None:
        """``/imgsonic/out/visual/z_img``: the image latent the live visualizer heard in the sound (floats)."""
        self._send_vector("/imgsonic/out/visual/z_img", z_img)

    def send_image_latent(self, z_img: np.ndarray) -> None:
        """``/imgsonic/out/z_img`` with the ``(image_latent_dim,)`` latent as floats."""
        self._send_vector(_PREFIX + "out/z_img", z_img)

    def send_audio_latent(self, z_aud: np.ndarray) -> None:
        """``/imgsonic/out/z_aud`` with the ``(audio_latent_dim,)`` latent as floats."""
        self._send_vector(_PREFIX + "out/z_aud", z_aud)

    def send_param(self, name: str, value: float) -> None:
        """``/imgsonic/out/param <name> <value>``."""
        self._send(_PREFIX + "out/param", ((name, "s"), (float(value), "f")))

    def send_params(self, values: MappingABC[str, float]) -> None:
        """One ``/imgsonic/out/param`` message per entry of ``values`` (name → value in its units)."""
        for name, value in values.items():
            self.send_param(name, value)

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> OscSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
