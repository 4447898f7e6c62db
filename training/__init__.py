"""imgsonic training: data sets, losses, one explicit loop, one script per model, evaluation metrics.

Reproduce a shipped preset (checkpoints and TOML land in ``runs/presets/``; shipping = copying them into
``models/presets/``)::

    imgsonic train all --preset squares-sines      # then digits-fm, default
    cp -r runs/presets/squares-sines.toml models/presets/
    mkdir -p models/presets/squares-sines && cp runs/presets/squares-sines/*.pt models/presets/squares-sines/

Each model alone: ``imgsonic train image-vae|audio-vae|mapper --preset NAME [--steps N] [--device cuda]
[--images DIR] [--sounds DIR] [--resume]``; data parallel: ``torchrun --nproc_per_node N -m bridge
train image-vae --preset NAME``.
"""

# Names load on first use (PEP 562), so importing one training module does not import them all.

from models.lazy import lazy_exports

_EXPORTS = {
    "PRESET_SPECS": "training.presets",
    "PresetSpec": "training.presets",
    "LoopSettings": "training.loop",
    "train_loop": "training.loop",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
