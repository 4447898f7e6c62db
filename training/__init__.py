"""imgsonic training: data sets, losses, one explicit loop, one script per model, evaluation metrics.

Reproduce a shipped preset (checkpoints and TOML land in ``runs/presets/``; shipping = copying them into
``models/presets/``)::

    imgsonic train all --preset squares-sines      # then digits-fm, default
    cp -r runs/presets/squares-sines.toml models/presets/
    mkdir -p models/presets/squares-sines && cp runs/presets/squares-sines/*.pt models/presets/squares-sines/

Each model alone: ``imgsonic train image-vae|audio-vae|mapper --preset NAME [--steps N] [--device cuda]
[--images DIR] [--sounds DIR] [--resume]``; data parallel: ``torchrun --nproc_per_node N -m
training.train_image_vae --preset NAME``.
"""

from training.loop import LoopSettings, train_loop
from training.presets import PRESET_SPECS, PresetSpec

__all__ = ["PRESET_SPECS", "PresetSpec", "LoopSettings", "train_loop"]
