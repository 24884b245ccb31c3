"""Where tensors live and how many CPU threads compute them: the one place that turns the config's `device` and
`threads` into a torch device and a thread count."""

from __future__ import annotations

import os

import torch

from .errors import InputError


def resolve_device(name: str | torch.device | None) -> torch.device:
    """"auto" (or None) -> CUDA when present, else the CPU; "cpu"/"cuda" (or a torch.device) as asked. Asking for
    CUDA where there is none is an InputError (the user's choice cannot be honoured), never a silent fallback."""
    if name is None or str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", f"{name} was asked for but CUDA is not available on this machine "
                                     "(use --device cpu or auto)")
    return device


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, e.g. a container's or taskset's share), else all
    of the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_threads(threads: int) -> int:
    """The config's `threads` (0 = the cores this process may use) as a thread count."""
    return int(threads) if threads and threads > 0 else available_cores()
