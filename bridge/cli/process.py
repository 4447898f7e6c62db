"""Process-wide settings the offline commands choose, never done at import: torch threads, the C allocator.

Example
-------
>>> installed_version("no-such-distribution") is None
True
"""

from __future__ import annotations

import importlib.metadata

from models.errors import ParameterError

__all__ = ["installed_version", "set_threads", "reuse_freed_memory"]


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def set_threads(n_threads: int) -> None:
    """Set torch's intra-op threads for this process (the CLI's choice)."""
    import torch

    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ParameterError(f"--threads {n_threads!r}; expected an integer ≥ 1")
    torch.set_num_threads(n_threads)


def reuse_freed_memory() -> bool:
    """Make this process's C allocator (glibc) keep freed memory for reuse; False where it cannot (not glibc).

    By default glibc hands every freed block over 128 kB back to the kernel at once (and only later raises
    that limit) and gives each thread its own arena that shrinks as it frees. A render allocates and frees
    hundreds of MB of multi-MB arrays, and each comes back as fresh pages: one page fault per 4 kB, ~2.7 µs
    each on this machine (a new 3.85 MB array: 2.7 ms to fill the first time, 0.15 ms the next). Here blocks
    up to 32 MB come from the heap, the heap is not trimmed, and all threads share the one arena (their
    allocations are few and large, so the lock is not contended). For offline commands only: it changes the
    whole process, and the live engine's audio thread should not wait on another thread's allocation.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no C library by that name, or no mallopt (macOS, Windows)
        return False
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8  # <malloc.h>
    return all(mallopt(option, value) == 1 for option, value in (
        (m_arena_max, 1), (m_mmap_threshold, 32 << 20), (m_trim_threshold, 1 << 30)))
