"""The one training loop every model script uses: seeded, resumable, data-parallel under ``torchrun``.

A script supplies an :class:`Objective` — the modules, one optimiser per loss, a function that turns a batch
into losses, and a function that writes the model checkpoints — plus in-memory data, and calls
:func:`train_loop`. The loop owns everything else:

* **seeding**: model initialisation from ``seed``; batches from a per-rank ``torch.Generator``;
* **resuming**: ``<out>/<name>.resume`` holds modules, optimiser states, the step and every rank's random
  state; it is written with each periodic checkpoint, and ``resume=True`` continues from it exactly;
* **progress**: a tqdm bar with the running losses and an ETA (on rank 0);
* **data parallelism**: under ``torchrun --nproc_per_node N`` (``WORLD_SIZE`` > 1) it joins the process group
  (gloo on CPU, nccl on CUDA), broadcasts rank 0's parameters, and averages gradients with one all-reduce per
  optimiser after each backward. Each rank draws its own batches, so the effective batch is N × batch_size.
  Gradients are averaged by hand rather than through ``DistributedDataParallel`` because the objectives call
  more than ``forward`` (the mapper's inverse, the FactorVAE discriminator, frozen encoders and decoders).

Example
-------
>>> import torch, tempfile
>>> from torch import nn
>>> class Fit:
...     def __init__(self):
...         self.modules = {"line": nn.Linear(1, 1)}
...         self.optimizers = {"line": torch.optim.Adam(self.modules["line"].parameters(), lr=0.1)}
...     def losses(self, step, batch, generator):
...         loss = (self.modules["line"](batch["x"]) - 2 * batch["x"]).pow(2).mean()
...         return {"line": loss}, {"mse": float(loss)}
...     def save(self, step):
...         pass
>>> settings = LoopSettings(name="fit", steps=200, batch_size=8, out_dir=tempfile.mkdtemp(), progress=False)
>>> result = train_loop(Fit(), {"x": torch.linspace(-1, 1, 64)[:, None]}, settings)
>>> result.logs["mse"] < 1e-2
True
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import Tensor, nn

from models.errors import InputError, ParameterError

__all__ = ["Objective", "LoopSettings", "LoopResult", "train_loop", "save_trained", "resolve_device", "seed_everything",
           "is_main_process", "leave_process_group"]

log = logging.getLogger(__name__)

RESUME_FORMAT_VERSION = 1
_LOG_WINDOW = 50  # steps averaged for the progress bar and the final summary


class Objective(Protocol):
    """What a training script hands to :func:`train_loop`.

    ``optimizers`` maps each loss name returned by ``losses`` to the optimiser that minimises it; losses are
    back-propagated in that order, each followed by its optimiser's step (so a discriminator can be trained
    on the same batch after the model it judges).
    """

    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    def losses(self, step: int, batch: dict[str, Tensor], generator: torch.Generator) -> tuple[dict[str, Tensor], dict[str, float]]:
        """Batch → (loss per optimiser name, numbers to log)."""
        ...

    def save(self, step: int) -> None:
        """Write the model checkpoint(s); called on rank 0 only."""
        ...


@dataclass
class LoopSettings:
    """How long and where to train.

    name : file stem of the resume file and the progress bar's label.
    steps : total optimiser steps (a resumed run continues up to this number).
    batch_size : examples per step and per process.
    checkpoint_every : steps between periodic checkpoints (and resume files); the last step always saves.
    """

    name: str
    steps: int
    batch_size: int
    out_dir: str | os.PathLike
    seed: int = 0
    device: str = "cpu"
    checkpoint_every: int = 500
    resume: bool = False
    progress: bool = True
    grad_clip: float = 10.0


@dataclass
class LoopResult:
    """What a run did: steps done, wall seconds of this process's run, and the last logged values (averaged
    over the final steps)."""

    steps: int
    seconds: float
    logs: dict[str, float] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """``"cpu"`` or ``"cuda"`` (``"cuda:N"``) → a device; ParameterError when CUDA is asked for but absent."""
    if not isinstance(name, str) or not (name == "cpu" or name.startswith("cuda")):
        raise ParameterError(f"device={name!r}; expected 'cpu' or 'cuda'")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(f"device={name!r} but CUDA is not available here; use --device cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed torch's global generator (model initialisation, VAE sampling) on CPU and CUDA."""
    torch.manual_seed(seed)


def is_main_process() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _join_process_group(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, this rank's device); joins the group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def leave_process_group() -> None:
    """End a torchrun run: wait for every rank (rank 0 may still be saving), then destroy the process group.

    A gloo group left alive until interpreter exit aborted a rank in CI ("terminate called without an active
    exception", SIGABRT; pytorch/pytorch#190489). Does nothing outside torchrun. Call it only once every rank
    has succeeded: a barrier that waits for a rank that failed never returns.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _average_gradients(parameters: list[nn.Parameter], world: int) -> None:
    grads = [p.grad for p in parameters if p.grad is not None]
    if world <= 1 or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def _resume_path(settings: LoopSettings) -> Path:
    # Not ".pt": the resume file sits beside the checkpoints and must not be shipped with them.
    return Path(settings.out_dir) / f"{settings.name}.resume"


def _random_state(generator: torch.Generator) -> dict[str, Tensor]:
    return {"batches": generator.get_state(), "torch": torch.get_rng_state()}


def _write_resume(objective: Objective, step: int, generator: torch.Generator, settings: LoopSettings, world: int) -> None:
    states = [_random_state(generator)]
    if world > 1:
        gathered: list = [None] * world
        dist.all_gather_object(gathered, states[0])
        states = gathered
    if not is_main_process():
        return
    path = _resume_path(settings)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "format_version": RESUME_FORMAT_VERSION,
            "name": settings.name,
            "step": step,
            "seed": settings.seed,
            "world_size": world,
            "modules": {name: module.state_dict() for name, module in objective.modules.items()},
            "optimizers": {name: optimizer.state_dict() for name, optimizer in objective.optimizers.items()},
            "random": states,
        },
        temporary,
    )
    os.replace(temporary, path)  # a crash mid-write never leaves a broken resume file


_RESUME_KEYS = {"format_version": int, "name": str, "step": int, "world_size": int, "modules": dict,
                "optimizers": dict, "random": list}


def _load_resume_state(path: Path, settings: LoopSettings) -> dict:
    """The resume file's dict, checked key by key; any damage is one InputError line that names the file."""
    import pickle
    import warnings

    try:
        with warnings.catch_warnings():  # a foreign pickle protocol draws a warning before the refusal below
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message advises weights_only=False, i.e. running whatever code the file holds: never
        raise InputError(f"{path} holds Python objects other than tensors and plain data, so it is not a resume file "
                         "written by imgsonic; it was refused unread (loading it could run code)") from error
    except Exception as error:  # torch raises many types for truncated or foreign files
        first = (str(error).strip().splitlines() or [""])[0][:160]
        raise InputError(f"{path} cannot be read as a resume file: empty, truncated or not a torch file "
                         f"({type(error).__name__}{': ' + first if first else ''}); delete it and train without --resume") from error
    if not isinstance(state, dict):
        raise InputError(f"{path} holds a {type(state).__name__}, not a resume file's dict; delete it and train without --resume")
    wrong = [key for key, kind in _RESUME_KEYS.items() if not isinstance(state.get(key), kind)]
    if wrong:
        raise InputError(f"{path} lacks or mistypes {', '.join(wrong)}: not a resume file of {settings.name!r} "
                         f"(format {RESUME_FORMAT_VERSION}); delete it and train without --resume")
    if state["format_version"] != RESUME_FORMAT_VERSION or state["name"] != settings.name:
        raise InputError(f"{path} is not a resume file of {settings.name!r} (format {RESUME_FORMAT_VERSION})")
    return state


def _read_resume(objective: Objective, generator: torch.Generator, settings: LoopSettings, rank: int, world: int) -> int:
    path = _resume_path(settings)
    if not path.is_file():
        raise InputError(f"--resume given but there is no resume file {path}; train without --resume first")
    state = _load_resume_state(path, settings)
    if state["world_size"] != world:
        raise InputError(f"{path} was written by {state['world_size']} process(es); resume with as many, not {world}")
    try:
        for name, module in objective.modules.items():
            module.load_state_dict(state["modules"][name], strict=True)
        for name, optimizer in objective.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        generator.set_state(state["random"][rank]["batches"])
        torch.set_rng_state(state["random"][rank]["torch"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
        reason = " ".join(str(error).split())[:200]
        raise InputError(f"{path} does not fit this training run ({type(error).__name__}: {reason}); "
                         "delete it and train without --resume") from error
    return int(state["step"])


def _sample_batch(data: Mapping[str, Tensor | tuple[Tensor, ...]], batch_size: int, generator: torch.Generator,
                  device: torch.device) -> dict[str, Tensor | tuple[Tensor, ...]]:
    """Independent random rows of each named entry; a tuple entry (e.g. images and their labels) is sampled with
    the same rows for all its tensors. Small sets are drawn without repeats within a batch."""
    batch = {}
    for name, entry in data.items():
        tensors = entry if isinstance(entry, tuple) else (entry,)
        n = len(tensors[0])
        rows = torch.randperm(n, generator=generator)[:batch_size] if n <= 4 * batch_size else torch.randint(n, (batch_size,), generator=generator)
        picked = tuple(tensor[rows].to(device, non_blocking=True) for tensor in tensors)
        batch[name] = picked if isinstance(entry, tuple) else picked[0]
    return batch


def train_loop(
    objective: Objective,
    data: Mapping[str, Tensor | tuple[Tensor, ...]],
    settings: LoopSettings,
    *,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
) -> LoopResult:
    """Run ``settings.steps`` optimiser steps of ``objective`` on batches drawn from ``data``.

    Parameters
    ----------
    objective : see :class:`Objective`; its modules must already be on ``settings.device``.
    data : named tensors, each ``(n_i, ...)``; every step draws ``batch_size`` rows of each independently
        (the mapper draws image latents and audio latents that way: the data are unpaired). A tuple of tensors
        of equal length is drawn with shared rows (images with their labels).
    settings : see :class:`LoopSettings`.
    on_log : optional callback with (step, averaged logs) at each periodic checkpoint.

    Returns
    -------
    LoopResult with the final step, this run's wall seconds and the losses averaged over the last steps.
    """
    if settings.steps < 1 or settings.batch_size < 1:
        raise ParameterError(f"steps={settings.steps}, batch_size={settings.batch_size}; expected both >= 1")
    if not data or any(len(entry[0] if isinstance(entry, tuple) else entry) == 0 for entry in data.values()):
        raise InputError("no training data: every data set must hold at least one example")
    device = resolve_device(settings.device)
    rank, world, device = _join_process_group(device)
    Path(settings.out_dir).mkdir(parents=True, exist_ok=True)

    for module in objective.modules.values():
        if world > 1:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)
        module.train()
    generator = torch.Generator().manual_seed(settings.seed * 7919 + rank)
    start = _read_resume(objective, generator, settings, rank, world) if settings.resume else 0
    if start >= settings.steps:
        log.info("%s: already at step %d of %d; nothing to do", settings.name, start, settings.steps)
    parameters = {name: [p for group in opt.param_groups for p in group["params"]] for name, opt in objective.optimizers.items()}

    progress = None
    if settings.progress and rank == 0:
        from tqdm import tqdm

        progress = tqdm(total=settings.steps, initial=start, desc=settings.name, dynamic_ncols=True)
    history: list[dict[str, float]] = []
    began = time.perf_counter()
    step = start
    for step in range(start + 1, settings.steps + 1):
        batch = _sample_batch(data, settings.batch_size, generator, device)
        losses, logs = objective.losses(step, batch, generator)
        for name, loss in losses.items():
            optimizer = objective.optimizers[name]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            _average_gradients(parameters[name], world)
            if settings.grad_clip:
                nn.utils.clip_grad_norm_(parameters[name], settings.grad_clip)
            optimizer.step()
        history = (history + [logs])[-_LOG_WINDOW:]
        if progress is not None:
            progress.update(1)
            if step % 10 == 0 or step == settings.steps:
                progress.set_postfix({key: f"{value:.4g}" for key, value in _mean_logs(history).items()}, refresh=False)
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            if rank == 0:
                objective.save(step)
            _write_resume(objective, step, generator, settings, world)
            if on_log is not None and rank == 0:
                on_log(step, _mean_logs(history))
    if progress is not None:
        progress.close()
    return LoopResult(steps=max(step, start), seconds=time.perf_counter() - began, logs=_mean_logs(history))


def _mean_logs(history: list[dict[str, float]]) -> dict[str, float]:
    if not history:
        return {}
    return {key: sum(entry[key] for entry in history) / len(history) for key in history[-1]}


def save_trained(model: Any, checkpoint: Path, *, kind: str, result: LoopResult, metrics: dict[str, float],
                 metadata: dict, more_metadata: Callable[[], dict] | None = None) -> dict[str, float]:
    """The end of every training script: the loop's last logged losses join ``metrics`` as ``train_*``; the
    main process saves ``model`` (``.save(path, metadata=...)``) with the steps, seconds and metrics (plus
    ``more_metadata()``, computed there only) and prints them. Returns ``metrics``."""
    metrics.update({f"train_{key}": value for key, value in result.logs.items()})
    if is_main_process():
        extra = more_metadata() if more_metadata is not None else {}
        model.save(checkpoint, metadata={**metadata, "steps": result.steps, "seconds": round(result.seconds, 1),
                                         "metrics": metrics, **extra})
        print(f"{kind}: {result.steps} steps in {result.seconds:.0f} s → {checkpoint}")
        for key, value in metrics.items():
            print(f"  {key:<26} {value:.5g}")
    return metrics
