"""Where a render goes: the sound file, its MIDI and its JSON log, each written atomically, all committed
together (:func:`synth.files.outputs_together`).

If a render is interrupted (Ctrl-C, SIGTERM, a full disk, an error) no file is left — every temporary file and
the audio's spill beside it are removed — and existing ones are untouched; once it has finished, all its
files are there. :func:`save_outputs` writes a render held in memory
(:func:`bridge.sonify.render.render_items`); ``imgsonic render`` streams its audio into
:func:`synth.audio_io.audio_writer` and calls :func:`write_side_outputs` inside the same
``outputs_together`` block.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.errors import ParameterError
from synth.files import atomic_output, outputs_together

if TYPE_CHECKING:
    import mido

    from bridge.control.mapping import Mapping
    from bridge.control.tempo import Tempo
    from bridge.sonify.render import RenderResult

__all__ = ["check_output", "save_outputs", "write_side_outputs", "write_json"]


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (temporary file in the same folder, then ``os.replace``)."""
    with atomic_output(path, text=True) as stream:
        json.dump(data, stream, indent=2)
        stream.write("\n")


def check_output(path: Path | None, suffixes: tuple[str, ...], option: str) -> None:
    if path is None:
        return
    if path.suffix.lower() not in suffixes:
        raise ParameterError(f"{option} {str(path)!r}: expected a file ending in {' or '.join(suffixes)}")
    if not path.parent.is_dir():
        raise ParameterError(f"{option} {str(path)!r}: folder {str(path.parent)!r} does not exist")


def write_side_outputs(
    result: RenderResult,
    *,
    midi_path: str | os.PathLike | None = None,
    midi_file: mido.MidiFile | None = None,
    json_path: str | os.PathLike | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write the MIDI file and the JSON log (each if asked), atomically."""
    if midi_path is not None and midi_file is not None:
        from bridge.io.midi_file import write_midi

        write_midi(midi_path, midi_file)
    if json_path is not None:
        write_json(json_path, {**(metadata or {}), "sample_rate": result.sample_rate,
                               "duration_s": result.duration_s, "images": result.images})


def save_outputs(
    result: RenderResult,
    *,
    out_path: str | os.PathLike,
    mapping: Mapping,
    midi_path: str | os.PathLike | None = None,
    json_path: str | os.PathLike | None = None,
    metadata: dict[str, Any] | None = None,
    tempo: Tempo | None = None,
) -> None:
    """Write a render held in memory: the MIDI and JSON files (if asked) and the audio, all of them or none."""
    from synth.audio_io import write_audio

    midi_file = None
    if midi_path is not None:
        from bridge.control.midi_spec import MidiSpec
        from bridge.io.midi_file import controls_to_midi

        midi_file = controls_to_midi(
            spec=MidiSpec.from_mapping(mapping),
            times_s=result.frame_times_s,
            positions=result.positions,
            onsets_s=result.onsets_s,
            duration_s=result.duration_s,
            tempo=tempo,
        )
    with outputs_together():
        write_side_outputs(result, midi_path=midi_path, midi_file=midi_file, json_path=json_path,
                           metadata=metadata)
        clock = time.perf_counter()
        write_audio(out_path, result.audio, sample_rate=result.sample_rate)
    result.timings_s["write"] = time.perf_counter() - clock
