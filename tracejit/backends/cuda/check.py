"""Is CUDA usable here? Kept free of CUDA imports at module level so ``import tracejit`` never loads numba.cuda."""
from __future__ import annotations

import os

_HOW_TO_CHECK = ("Check with `python -c \"from numba import cuda; cuda.detect()\"` and `nvidia-smi`; install the GPU "
                 "support with `pip install tracejit[cuda]` (numba-cuda) and a CUDA driver; or run on the CPU with "
                 "device='cpu' (or set NUMBA_ENABLE_CUDASIM=1 before importing numba to use numba's CUDA simulator).")


def simulator_enabled() -> bool:
    """numba's CUDA simulator: set by NUMBA_ENABLE_CUDASIM=1 before numba.cuda is first imported."""
    for mod in ("numba.cuda.core.config", "numba.core.config"):  # numba-cuda's own config first
        try:
            config = __import__(mod, fromlist=["ENABLE_CUDASIM"])
        except Exception:
            continue
        if hasattr(config, "ENABLE_CUDASIM"):
            return bool(config.ENABLE_CUDASIM)
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def device_index(device) -> int:
    """'cuda' -> 0, 'cuda:1' -> 1; anything else is a ValueError naming the argument."""
    if device == "cuda":
        return 0
    if isinstance(device, str) and device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise ValueError(f"device={device!r} is not a device name: use 'cpu', 'cuda' or 'cuda:N' (see tj.devices())")


def _cuda_gpu_count() -> tuple[int, str]:
    """(number of usable CUDA devices, why none) without raising."""
    try:
        from numba import cuda
    except Exception as e:
        return 0, f"numba.cuda cannot be imported ({type(e).__name__}: {e})"
    if simulator_enabled():
        return 1, ""
    try:
        if not cuda.is_available():
            return 0, "numba.cuda.is_available() is False (no NVIDIA GPU or CUDA driver was found)"
        return len(cuda.gpus), ""
    except Exception as e:
        return 0, f"the CUDA driver could not be initialized ({type(e).__name__}: {e})"


def devices() -> list:
    """What tracejit can run on here, e.g. ['cpu'] or ['cpu', 'cuda:0'] (the simulator counts as cuda:0)."""
    n, _ = _cuda_gpu_count()
    return ["cpu"] + [f"cuda:{i}" for i in range(n)]


def require_cuda(device):
    """Raise a RuntimeError saying why ``device`` cannot be used and how to check; return its index otherwise."""
    idx = device_index(device)
    n, why = _cuda_gpu_count()
    if n == 0:
        raise RuntimeError(f"device={device!r} was requested but no CUDA GPU is usable here: {why}. {_HOW_TO_CHECK}")
    if idx >= n:
        raise RuntimeError(f"device={device!r} was requested but only {n} CUDA device(s) are visible "
                           f"(cuda:0 .. cuda:{n - 1}). {_HOW_TO_CHECK}")
    return idx
