"""Atomic output: whole or absent, existing targets kept on failure, ordinary permissions."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from models.errors import OutputError, ParameterError
from synth.files import SampleSpill, atomic_output, outputs_together


def test_a_finished_block_replaces_the_target(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_output(target) as stream:
        stream.write(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_an_interrupted_block_leaves_the_old_target_and_no_temporary(tmp_path, error):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(type(error)):
        with atomic_output(target, text=True) as stream:
            stream.write("half of it")
            raise error
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_an_interrupted_first_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "new.txt", text=True):
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_files_get_the_permissions_the_umask_allows(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "out.bin") as stream:
            stream.write(b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == 0o644


def test_bad_targets_name_the_problem(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        with atomic_output(tmp_path / "missing" / "out.bin"):
            pass
    with pytest.raises(ParameterError, match="is a folder"):
        with atomic_output(tmp_path):
            pass


def test_the_temporary_file_ends_in_the_targets_suffix(tmp_path):
    # pyo's recorder picks the file format from the name it is given: the temporary's
    with atomic_output(tmp_path / "take.wav") as handle:
        assert Path(handle.name).suffix == ".wav"
        assert Path(handle.name).parent == tmp_path and Path(handle.name).name.startswith(".take.wav.")


def test_an_interrupt_the_moment_the_temporary_is_created_removes_it(tmp_path, monkeypatch):
    # a signal that arrives during open() is handled as soon as the call returns, before the ``with`` body
    import synth.files

    def open_then_interrupted(*args, **kwargs):
        open(*args, **kwargs).close()
        raise KeyboardInterrupt

    monkeypatch.setattr(synth.files, "open", open_then_interrupted, raising=False)
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(tmp_path / "take.wav"):
            pass
    with pytest.raises(KeyboardInterrupt):
        with SampleSpill(beside=tmp_path / "take.wav"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_spill_beside_a_file_makes_it_on_entry_and_removes_it_on_exit(tmp_path):
    made = SampleSpill(beside=tmp_path / "take.wav")
    assert list(tmp_path.iterdir()) == []  # nothing on disk before ``with``: an interrupt there leaves nothing
    with made as spill:
        assert [path.name for path in tmp_path.iterdir()] == [spill.path.name]
        spill.append(np.ones(4, np.float32))
    assert list(tmp_path.iterdir()) == []


# ---- several outputs together ----------------------------------------------------------------------------

def _write(path: Path, text: str) -> None:
    with atomic_output(path, text=True) as stream:
        stream.write(text)


def test_outputs_together_appear_only_at_the_end_of_the_block(tmp_path):
    with outputs_together():
        _write(tmp_path / "a.mid", "a")
        _write(tmp_path / "b.json", "b")
        assert [path.name for path in tmp_path.iterdir() if not path.name.startswith(".")] == []
        with outputs_together():  # a nested block joins the outer one
            _write(tmp_path / "c.wav", "c")
        assert not (tmp_path / "c.wav").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.mid", "b.json", "c.wav"]
    assert (tmp_path / "b.json").read_text() == "b"


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError, ValueError])
def test_an_interrupt_after_some_outputs_leaves_none_of_them(tmp_path, error):
    # the render's case: MIDI and JSON finished, the audio not yet: no file at all, old targets untouched
    (tmp_path / "a.mid").write_text("old")
    with pytest.raises(error):
        with outputs_together():
            _write(tmp_path / "a.mid", "new")
            _write(tmp_path / "b.json", "b")
            with atomic_output(tmp_path / "c.wav") as handle:
                handle.write(b"half")
                raise error
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.mid"]
    assert (tmp_path / "a.mid").read_text() == "old"


def test_a_failed_move_removes_the_temporaries_not_yet_moved(tmp_path, monkeypatch):
    real_replace = os.replace

    def replace_fails_second(source, target):
        if Path(target).name == "b.json":
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace_fails_second)
    with pytest.raises(OutputError, match="b.json.*No space left"):
        with outputs_together():
            _write(tmp_path / "a.mid", "a")
            _write(tmp_path / "b.json", "b")
            _write(tmp_path / "c.wav", "c")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.mid"]


def test_an_interrupt_just_before_the_moves_removes_every_temporary(tmp_path, monkeypatch):
    # after the block, before the first rename (outside the CLI's hold): nothing half-made stays
    import synth.files

    def interrupted(pending):
        raise KeyboardInterrupt

    monkeypatch.setattr(synth.files, "_move_into_place", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with outputs_together():
            _write(tmp_path / "a.mid", "a")
            _write(tmp_path / "b.json", "b")
    assert list(tmp_path.iterdir()) == []
