"""OSC control: every address acts on a fake engine, values are clamped, paths are confined, garbage is survived."""

import logging
import math
import socket
import struct
import time

import numpy as np
import pytest
from PIL import Image
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from bridge.control.latent_range import LatentRange
from bridge.control.mapping import load_mapping
from bridge.io.osc import (
    DEFAULT_IMAGE_FADETIME_S,
    DEFAULT_LATENT_FADETIME_S,
    OscControlServer,
    OscSender,
    parse_host_port,
)
from models.errors import ImgsonicError, InputError, ParameterError

LATENT_DIM = 4


class FakeEngine:
    """Records every call; raises ``fail`` instead when it is set."""

    image_latent_dim = LATENT_DIM
    latent_range = LatentRange(low=np.array([-4.0, -4.0, -20.0, -4.0]), high=np.array([4.0, 4.0, 20.0, 4.0]),
                               source="test")

    def __init__(self):
        self.mapping = load_mapping()
        self.calls = []
        self.fail = None

    def _record(self, *call):
        if self.fail is not None:
            raise self.fail
        self.calls.append(call)

    def image_file(self, path, *, fadetime):
        self._record("image", path, fadetime)

    def morph_files(self, a, b, t):
        self._record("morph", a, b, t)

    def learn(self, name):
        self._record("learn", name)

    def describe(self):
        return {"preset": "fake", "latent_low": self.latent_range.low.tolist(), "image_latent_dim": LATENT_DIM}

    def set_latent(self, values, *, fadetime):
        self._record("latent", values, fadetime)

    def set_param(self, name, value):
        self._record("param", name, value)

    def set_gain(self, gain_db):
        self._record("gain", gain_db)


def wait_until(predicate, *, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the OSC server")
        time.sleep(0.001)


def message(address, *args):
    """An OSC datagram; an argument given as ``(value, "d")`` is sent with that type tag."""
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(*arg) if isinstance(arg, tuple) else builder.add_arg(arg)
    return builder.build().dgram


class Client:
    """Sends datagrams to a server and waits until it has handled them (no sleeps-and-hope)."""

    def __init__(self, server):
        self.server = server
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sent = server.counters.datagrams

    def send_raw(self, data):
        self.socket.sendto(data, ("127.0.0.1", self.server.port))
        self.sent += 1

    def wait(self):
        wait_until(lambda: self.server.counters.datagrams >= self.sent)

    def send(self, address, *args):
        self.send_raw(message(address, *args))
        self.wait()

    def send_many(self, packets):
        """Send all, pausing so the server's socket buffer (≈200 kB) never overflows and drops datagrams."""
        pending_bytes = 0
        for packet in packets:
            self.send_raw(packet)
            pending_bytes += len(packet) + 768  # the kernel's per-datagram overhead, roughly
            if pending_bytes > 100_000:
                self.wait()
                pending_bytes = 0
        self.wait()


def write_image(path, value=128, size=(8, 6)):
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def folders(tmp_path):
    images, outside = tmp_path / "images", tmp_path / "outside"
    images.mkdir()
    outside.mkdir()
    write_image(images / "a.png", 10)
    write_image(images / "b.png", 200)
    write_image(outside / "secret.png", 50)
    return images, outside


@pytest.fixture
def osc(folders, caplog):
    caplog.set_level(logging.INFO, logger="imgsonic.osc")
    engine = FakeEngine()
    with OscControlServer(engine, allowed_folders=[folders[0]], rate_per_s=math.inf) as server:
        client = Client(server)
        yield server, engine, client
        client.socket.close()


def test_binds_localhost_on_a_free_port_and_stops(folders):
    server = OscControlServer(FakeEngine(), allowed_folders=[folders[0]])
    assert server.host == "127.0.0.1" and server.port > 0
    server.start()
    with pytest.raises(ImgsonicError, match=str(server.port)):
        OscControlServer(FakeEngine(), port=server.port)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2.0
    OscControlServer(FakeEngine(), port=server.port).stop()  # the port is free again


def test_allowed_folders_must_be_folders(tmp_path):
    with pytest.raises(ParameterError, match="nope"):
        OscControlServer(FakeEngine(), allowed_folders=[tmp_path / "nope"])


def test_image_relative_and_absolute_paths_act(osc, folders):
    server, engine, client = osc
    client.send("/imgsonic/image", "a.png")
    client.send("/imgsonic/image", str(folders[0] / "b.png"), 2.0)
    (kind, path, fadetime), second = engine.calls
    assert kind == "image" and path == (folders[0] / "a.png").resolve() and fadetime == DEFAULT_IMAGE_FADETIME_S
    assert second[1:] == ((folders[0] / "b.png").resolve(), 2.0)
    assert server.counters.acted == 2 and server.counters.clamped == 0


@pytest.mark.parametrize(
    ("fadetime", "expected"), [(100.0, 60.0), (-1.0, 0.0), (math.nan, 0.5), (math.inf, 60.0), (3, 3.0)]
)
def test_image_fadetime_is_clamped(osc, fadetime, expected):
    server, engine, client = osc
    client.send("/imgsonic/image", "a.png", fadetime)
    assert engine.calls[0][2] == expected
    assert server.counters.clamped == (expected != fadetime)


def test_latent_values_are_clamped_to_the_engines_latent_range(osc):
    server, engine, client = osc
    client.send("/imgsonic/latent", 0.5, math.nan, math.inf, -9.0)
    client.send("/imgsonic/latent", 1, 2, 15, -1)  # dimension 2 reaches ±20 in this range: 15 is not clamped
    client.send("/imgsonic/latent", *[(0.1, "d")] * LATENT_DIM)  # doubles, in range: not clamped
    (kind, values, fadetime), (_, ints, _), (_, doubles, _) = engine.calls
    assert values.shape == (LATENT_DIM,)
    assert values.tolist() == [0.5, 0.0, 20.0, -4.0] and fadetime == DEFAULT_LATENT_FADETIME_S
    assert ints.tolist() == [1.0, 2.0, 15.0, -1.0] and np.allclose(doubles, 0.1)
    assert server.counters.clamped == 1


def test_param_values_are_clamped_to_the_parameters_range(osc):
    server, engine, client = osc
    client.send("/imgsonic/param", "cutoff_hz", 1234.5)
    client.send("/imgsonic/param", "cutoff_hz", 1e9)
    client.send("/imgsonic/param", "reverb_mix", -5)  # a descending range [0.6, 0.05]
    client.send("/imgsonic/param", "pan", math.nan)
    client.send("/imgsonic/param", "pan", -math.inf)
    assert [call[1:] for call in engine.calls] == [
        ("cutoff_hz", 1234.5), ("cutoff_hz", 8000.0), ("reverb_mix", 0.05), ("pan", 0.0), ("pan", -1.0)]
    assert server.counters.clamped == 4


def test_gain_is_clamped(osc):
    server, engine, client = osc
    for gain_db in (-6.0, 100.0, -math.inf, math.nan, 0):
        client.send("/imgsonic/gain", gain_db)
    assert [call[1] for call in engine.calls] == [-6.0, 12.0, -80.0, -80.0, 0.0]


def test_morph_clamps_t_and_resolves_both_paths(osc, folders):
    server, engine, client = osc
    for t in np.linspace(-0.5, 1.5, 40):
        client.send("/imgsonic/morph", "a.png", "b.png", float(t))
    client.send("/imgsonic/morph", "a.png", "b.png", math.nan)
    ts = [call[3] for call in engine.calls]
    assert min(ts) == 0.0 and max(ts) == 1.0 and ts[-1] == 0.0 and len(ts) == 41
    assert engine.calls[0][1:3] == ((folders[0] / "a.png").resolve(), (folders[0] / "b.png").resolve())


@pytest.mark.parametrize(
    ("make_path", "reason"),
    [
        (lambda images, outside: str(outside / "secret.png"), "outside the allowed folders"),
        (lambda images, outside: "../outside/secret.png", "outside the allowed folders"),
        (lambda images, outside: str(images / "link.png"), "outside the allowed folders"),  # symlink escape
        (lambda images, outside: "missing.png", "does not exist"),
        (lambda images, outside: "notes.txt", "not an image file"),
        (lambda images, outside: "", "characters"),
        (lambda images, outside: "x" * 5000, "characters"),
        (lambda images, outside: "y" * 300 + ".png", "does not exist"),  # a file name too long for the OS
    ],
)
def test_bad_image_paths_are_refused_with_a_reason(osc, folders, caplog, make_path, reason):
    server, engine, client = osc
    images, outside = folders
    (images / "link.png").symlink_to(outside / "secret.png")
    (images / "notes.txt").write_text("hello")
    client.send("/imgsonic/image", make_path(images, outside))
    client.send("/imgsonic/morph", "a.png", make_path(images, outside), 0.5)
    assert engine.calls == []
    assert server.counters.refused == 2
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 2 and all(reason in line and "\n" not in line for line in refusals)


def test_with_no_allowed_folders_every_image_is_refused(caplog):
    caplog.set_level(logging.INFO, logger="imgsonic.osc")
    engine = FakeEngine()
    with OscControlServer(engine) as server:
        Client(server).send("/imgsonic/image", "/etc/hostname")
    assert engine.calls == [] and server.counters.refused == 1
    assert "no image folders were allowed" in caplog.text


@pytest.mark.parametrize(
    ("address", "args"),
    [
        ("/imgsonic/image", ()),
        ("/imgsonic/image", (3,)),
        ("/imgsonic/image", ("a.png", "slow")),
        ("/imgsonic/image", ("a.png", 1.0, 2.0)),
        ("/imgsonic/latent", (1.0, 2.0, 3.0)),
        ("/imgsonic/latent", (1.0, 2.0, 3.0, 4.0, 5.0)),
        ("/imgsonic/latent", (1.0, "2", 3.0, 4.0)),
        ("/imgsonic/latent", (1.0, True, 3.0, 4.0)),
        ("/imgsonic/param", ("cutoff_hz",)),
        ("/imgsonic/param", ("volume", 1.0)),
        ("/imgsonic/param", (74, 1.0)),
        ("/imgsonic/param", ("cutoff_hz", b"\x00\x01")),
        ("/imgsonic/gain", ()),
        ("/imgsonic/gain", ("loud",)),
        ("/imgsonic/gain", (None,)),
        ("/imgsonic/morph", ("a.png", "b.png")),
        ("/imgsonic/morph", ("a.png", 2, 0.5)),
        ("/imgsonic/ping", (0,)),
        ("/imgsonic/ping", ("here",)),
        ("/imgsonic/ping", (9103.5,)),
        ("/imgsonic/ping", (70000.0,)),
        ("/imgsonic/info", (math.nan,)),
        ("/imgsonic/learn", ()),
        ("/imgsonic/learn", ("volume",)),
    ],
)
def test_wrong_types_and_arity_are_refused(osc, caplog, address, args):
    server, engine, client = osc
    client.send(address, *args)
    assert engine.calls == []
    assert server.counters.refused == 1 and server.counters.received == 1
    assert f"{address} refused: " in caplog.text


def test_unknown_addresses_and_patterns_are_counted_and_logged(osc, caplog):
    server, engine, client = osc
    client.send("/imgsonic/volume", 1.0)
    client.send("/other/thing")
    started = time.monotonic()
    client.send("/imgsonic/" + "*" * 100 + "x", 1.0)  # python-osc's matcher would backtrack for minutes
    assert time.monotonic() - started < 2.0
    client.send("/imgsonic/gai?", 1.0)
    assert engine.calls == [] and server.counters.unknown == 4
    assert "'/imgsonic/volume' (str) is not an imgsonic address" in caplog.text
    assert "patterns are not accepted" in caplog.text


@pytest.mark.parametrize("error", [InputError("the engine is busy"), RuntimeError("boom"), ZeroDivisionError()])
def test_exceptions_from_the_engine_are_logged_and_survived(osc, caplog, error):
    server, engine, client = osc
    engine.fail = error
    for address, args in [("/imgsonic/gain", (-3.0,)), ("/imgsonic/image", ("a.png",)),
                          ("/imgsonic/latent", (0.0,) * LATENT_DIM), ("/imgsonic/param", ("pan", 0.5)),
                          ("/imgsonic/morph", ("a.png", "b.png", 0.5)), ("/imgsonic/learn", ("pan",))]:
        client.send(address, *args)
    assert server.counters.errors == 6 and engine.calls == []
    assert type(error).__name__ in caplog.text
    engine.fail = None
    client.send("/imgsonic/gain", -3.0)
    assert engine.calls == [("gain", -3.0)] and server.counters.acted == 1


def test_ping_is_answered_with_the_counters(osc):
    server, engine, client = osc
    client.send("/imgsonic/gain", 0.0)
    client.send("/imgsonic/gain", "x")
    client.socket.settimeout(5.0)
    client.send("/imgsonic/ping")
    pong = OscMessage(client.socket.recv(1024))
    assert pong.address == "/imgsonic/pong"
    # received (with the ping) acted refused unknown errors malformed dropped
    assert pong.params == [3, 1, 1, 0, 0, 0, 0]

    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5.0)
    client.send("/imgsonic/ping", listener.getsockname()[1])
    assert OscMessage(listener.recv(1024)).params[:2] == [4, 2]
    # Pd sends every number as a float; a whole float (or double) is a port
    client.send("/imgsonic/ping", float(listener.getsockname()[1]))
    client.send("/imgsonic/ping", (float(listener.getsockname()[1]), "d"))
    assert [OscMessage(listener.recv(1024)).params[:2] for _ in range(2)] == [[5, 3], [6, 4]]
    listener.close()


def test_info_states_the_latent_range_and_learn_reaches_the_engine(osc):
    server, engine, client = osc
    client.socket.settimeout(5.0)
    client.send("/imgsonic/info")
    replies = {}
    while "/imgsonic/info/end" not in replies:
        reply = OscMessage(client.socket.recv(4096))
        replies[reply.address] = reply.params
    assert replies["/imgsonic/info/preset"] == ["fake"] and replies["/imgsonic/info/image_latent_dim"] == [LATENT_DIM]
    assert np.allclose(replies["/imgsonic/info/latent_low"], engine.latent_range.low)
    client.send("/imgsonic/learn", "cutoff_hz")
    assert engine.calls == [("learn", "cutoff_hz")]


def test_messages_over_the_rate_are_dropped_unread_and_pings_still_answered(folders):
    engine = FakeEngine()
    with OscControlServer(engine, allowed_folders=[folders[0]], rate_per_s=50.0) as server:
        client = Client(server)
        client.send_many([message("/imgsonic/gain", -1.0)] * 400)
        client.socket.settimeout(5.0)
        client.send("/imgsonic/ping")
        pong = OscMessage(client.socket.recv(1024)).params
    counts = server.counters
    gains = len(engine.calls)
    assert counts.datagrams == 401 and 5 <= gains < 100  # a 5-message burst and 50 a second
    assert counts.acted == gains + 1  # the ping, over its own budget
    assert counts.dropped == 400 - gains == pong[6]
    client.socket.close()


def test_bundles_act_in_order_and_deep_nesting_is_dropped(osc):
    server, engine, client = osc
    inner = OscBundleBuilder(IMMEDIATELY)
    inner.add_content(OscMessage(message("/imgsonic/param", "pan", 0.5)))
    outer = OscBundleBuilder(IMMEDIATELY)
    outer.add_content(OscMessage(message("/imgsonic/gain", -6.0)))
    outer.add_content(inner.build())
    outer.add_content(OscMessage(message("/imgsonic/gain", -7.0)))
    client.send_raw(outer.build().dgram)
    client.send_raw(_nested_bundle(8))
    client.send_raw(_nested_bundle(9))
    client.wait()
    assert engine.calls == [("gain", -6.0), ("param", "pan", 0.5), ("gain", -7.0), ("gain", 1.0)]
    assert server.counters.malformed == 1


def test_garbage_does_not_touch_the_root_logger(osc):
    """python-osc logs unknown type tags and unmatched addresses through the root logger, configuring it."""
    server, engine, client = osc
    handlers = list(logging.getLogger().handlers)
    tagged = message("/imgsonic/gain", 1.0).replace(b",f", b",x")
    stray = b"#bundle\x00" + struct.pack(">Qi", 1, 4) + b"junk"  # an element that is no message
    for data in (tagged, message("/nowhere"), stray):
        client.send_raw(data)
    client.wait()
    assert logging.getLogger().handlers == handlers
    assert server.counters.malformed == 2 and server.counters.unknown == 1


def test_oversized_datagrams_are_dropped_unparsed(osc, caplog):
    server, engine, client = osc
    client.send("/imgsonic/param", "pan", 0.5, "x" * 9000)
    assert server.counters.malformed == 1 and server.counters.received == 0
    assert "the limit is 8192" in caplog.text


def test_a_flood_of_refusals_logs_a_bounded_number_of_lines(osc, caplog):
    server, engine, client = osc
    started = time.monotonic()
    client.send_many([message("/imgsonic/gain", "loud")] * 300)
    seconds = math.ceil(time.monotonic() - started)
    lines = [r.getMessage() for r in caplog.records if r.name == "imgsonic.osc" and r.levelno == logging.WARNING]
    assert server.counters.refused == 300 and len(lines) <= (seconds + 1) * 21 < 300


def _nested_bundle(depth):
    inner = message("/imgsonic/gain", 1.0)
    for _ in range(depth):
        inner = b"#bundle\x00" + struct.pack(">Q", 1) + struct.pack(">i", len(inner)) + inner
    return inner


def _fuzz_packets(rng, n_packets, image_path):
    """Random bytes, truncated and re-tagged messages, wrong arity and types, huge strings, deep bundles."""
    addresses = ["/imgsonic/image", "/imgsonic/latent", "/imgsonic/param", "/imgsonic/gain", "/imgsonic/morph",
                 "/imgsonic/ping", "/imgsonic/nope", "/imgsonic/*", "/", "/imgsonic/image/x"]
    special = [math.nan, math.inf, -math.inf, 3.4e38, (1e308, "d"), (-math.inf, "d"), (math.nan, "d"), 0.0,
               2**31 - 1, -(2**31), 2**62, True, False, None,
               "", "a.png", image_path, "../outside/secret.png", "/etc/passwd", "cutoff_hz", "pan", "\u00e9\u2603",
               b"\x01", b"\x00" * 17]

    def random_arg():
        kind = rng.integers(5)
        if kind == 0:
            return special[rng.integers(len(special))]
        if kind == 1:
            return float(rng.normal(0, 10 ** rng.integers(0, 6)))
        if kind == 2:
            return int(rng.integers(-(2**31), 2**31))
        if kind == 3:
            huge = rng.random() < 0.05
            return "z" * int(rng.choice([100, 5000, 9000])) if huge else "x" * int(rng.integers(1, 40))
        return bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))

    nested = [_nested_bundle(depth) for depth in (1, 2, 8, 9, 50, 2500)]
    packets = []
    while len(packets) < n_packets:
        kind = rng.integers(8)
        valid = message(addresses[rng.integers(len(addresses))], *[random_arg() for _ in range(rng.integers(0, 6))])
        if len(valid) > 65000:
            continue
        if kind == 0:  # random bytes, sometimes looking like OSC at the start
            prefix = [b"", b"/", b"/imgsonic/", b"#bundle\x00"][rng.integers(4)]
            packets.append(prefix + bytes(rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8)))
        elif kind == 1:  # truncated
            packets.append(valid[: int(rng.integers(0, len(valid)))])
        elif kind == 2:  # type tags replaced
            comma = valid.find(b",")
            tags = bytes(rng.choice(list(b"ifsbhdtTFNIcrm[]xyz?\xff"), size=int(rng.integers(1, 8))))
            packets.append(valid[:comma + 1] + tags + valid[comma + 1 + len(tags):])
        elif kind == 3:  # a few bytes flipped
            data = bytearray(valid)
            for index in rng.integers(0, len(data), 3):
                data[index] = rng.integers(256)
            packets.append(bytes(data))
        elif kind == 4:  # bundles, some nested far deeper than Python's recursion limit
            packets.append(nested[int(rng.integers(len(nested)))] if rng.random() < 0.5 else
                           b"#bundle\x00" + struct.pack(">Q", 1) + struct.pack(">i", len(valid) + 7) + valid)
        else:  # well-formed OSC with random arity, types and values
            packets.append(valid)
    return packets


def test_ten_thousand_bad_packets_leave_the_server_acting(osc, folders, caplog, rng):
    server, engine, client = osc
    packets = _fuzz_packets(rng, 10_000, str(folders[0] / "a.png"))
    started = time.perf_counter()
    client.send_many(packets)
    elapsed_s = time.perf_counter() - started

    counts = server.counters
    assert counts.datagrams == len(packets)  # every datagram arrived and was handled
    assert counts.received == counts.acted + counts.refused + counts.unknown + counts.errors
    assert counts.errors == 0 and counts.malformed > 1000 and counts.refused > 1000 and counts.acted > 100
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    print(f"\n{len(packets)} fuzz packets in {elapsed_s:.2f} s ({len(packets) / elapsed_s:.0f}/s): {counts}")

    engine.calls.clear()
    client.send("/imgsonic/gain", -12.0)
    client.send("/imgsonic/image", "b.png")
    assert [call[0] for call in engine.calls] == ["gain", "image"] and engine.calls[0][1] == -12.0


def test_sender_sends_latents_and_parameters():
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5.0)
    with OscSender(port=listener.getsockname()[1]) as sender:
        sender.send_image_latent(np.array([0.5, -1.0, 2.0], dtype=np.float32))
        sender.send_audio_latent(np.arange(2.0))
        sender.send_params({"cutoff_hz": 1200.0, "pan": np.float64(-0.25)})
        received = [OscMessage(listener.recv(65536)) for _ in range(4)]
        assert sender.sent == 4 and sender.dropped == 0
    listener.close()
    assert [(m.address, m.params) for m in received] == [
        ("/imgsonic/out/z_img", [0.5, -1.0, 2.0]),
        ("/imgsonic/out/z_aud", [0.0, 1.0]),
        ("/imgsonic/out/param", ["cutoff_hz", 1200.0]),
        ("/imgsonic/out/param", ["pan", -0.25]),
    ]


def test_sender_drops_instead_of_raising():
    with OscSender(host="255.255.255.255", port=9) as sender:  # broadcast without permission: EACCES
        sender.send_param("pan", 0.0)
        assert sender.dropped == 1 and sender.sent == 0


@pytest.mark.parametrize(("kwargs", "match"), [({"port": 0}, "port"), ({"port": 70000}, "port"),
                                               ({"host": "no such host.invalid", "port": 9000}, "cannot be resolved")])
def test_sender_bad_destination_is_named(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        OscSender(**kwargs)


def test_parse_host_port():
    assert parse_host_port("127.0.0.1:9001") == ("127.0.0.1", 9001)
    assert parse_host_port("[::1]:57120") == ("::1", 57120)
    for text in ("9001", "localhost:", ":9001", "localhost:0", "localhost:99999", "localhost:abc"):
        with pytest.raises(ParameterError, match="HOST:PORT"):
            parse_host_port(text)
