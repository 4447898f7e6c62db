"""SIGINT/SIGTERM as one exception: raised in the main thread, ignored while cleaning up, held during imports
and while a with statement enters."""

import os
import signal
import sys
import time

import pytest

from bridge.cli.signals import Interrupted, exit_code, signals_as_interrupts


def test_a_signal_raises_interrupted_with_the_shells_exit_code():
    with pytest.raises(Interrupted) as caught, signals_as_interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert exit_code(caught.value) == 143
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN  # the previous handler is back


def test_a_signal_during_an_import_waits_until_the_import_is_over(tmp_path, monkeypatch):
    # torch's import calls back into Python from C++; an exception raised there aborts the process
    (tmp_path / "slow_module_for_signals.py").write_text(
        "import os, signal, time\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(0.3)  # the signal is re-sent every 20 ms meanwhile\n"
        "FINISHED = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    started = time.monotonic()
    with pytest.raises(Interrupted) as caught, signals_as_interrupts():
        import slow_module_for_signals  # noqa: F401
        time.sleep(5)
    assert sys.modules["slow_module_for_signals"].FINISHED
    assert caught.value.signum == signal.SIGINT and time.monotonic() - started < 2
    sys.modules.pop("slow_module_for_signals")


def test_a_signal_while_a_with_statement_enters_waits_until_its_exit_can_clean_up():
    # raised inside __enter__, the exception would skip the __exit__ that removes what __enter__ made
    events = []

    class Makes:
        def __enter__(self):
            events.append("made")
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # held, re-sent every 20 ms meanwhile
            events.append("entered")
            return self

        def __exit__(self, *exc_info):
            events.append("removed")

    started = time.monotonic()
    with pytest.raises(Interrupted), signals_as_interrupts():
        with Makes():
            time.sleep(5)
    assert events == ["made", "entered", "removed"] and time.monotonic() - started < 2


def test_a_signal_while_outputs_are_committed_together_waits_until_all_are_in_place(tmp_path, monkeypatch):
    # an interrupt between two of the renames would leave the MIDI and JSON of a render without its audio
    from synth.files import atomic_output, outputs_together

    real_replace = os.replace

    def replace_then_signalled(source, target):
        real_replace(source, target)
        os.kill(os.getpid(), signal.SIGTERM)  # handled at the next bytecode, still inside the commit

    later = []  # SIGTERMs that arrive after the block (a retry per held signal would send three)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: later.append(signum))
    try:
        monkeypatch.setattr(os, "replace", replace_then_signalled)
        with pytest.raises(Interrupted), signals_as_interrupts():
            with outputs_together():
                for name in ("x.mid", "x.json", "x.wav"):
                    with atomic_output(tmp_path / name) as handle:
                        handle.write(b"whole")
            monkeypatch.setattr(os, "replace", real_replace)
            time.sleep(5)  # the held signal is sent again 20 ms later
        time.sleep(0.2)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["x.json", "x.mid", "x.wav"]
    assert later == []
