"""BLAS on the calling thread inside native loops whose matrix products are small.

A loop body's products run one after another, each a few milliseconds at most; OpenBLAS hands each one to its
thread pool and its threads spin between calls. Where the cores are shared with other work, that hand-off
dominates the loop (an LSTM's forward and backward scan with 32 x 512 x 1024 products took ten times longer
with numpy's OpenBLAS on two threads than on one, on two loaded cores). So a native loop whose products are all
under SMALL_MATMUL multiply-adds sets numpy's OpenBLAS to one thread while it runs, and restores it after (other
threads calling BLAS meanwhile also get one thread). Other BLAS providers are left alone.
"""
from __future__ import annotations

import contextlib
import ctypes
import threading

from ...ir import types as T
from ...lower.plan import MatmulStep

SMALL_MATMUL = 1 << 25  # multiply-adds of one product
_lock = threading.Lock()
_state = {"active": 0, "before": None}
_fns = []


def _thread_functions():
    """(get, set) of numpy's OpenBLAS thread count, or None."""
    if not _fns:
        from . import blas
        found = None
        path = blas._numpy_openblas_path() if blas.provider().name.startswith("numpy") else None
        if path is not None:
            try:
                lib = ctypes.CDLL(path)
                get, put = lib.scipy_openblas_get_num_threads64_, lib.scipy_openblas_set_num_threads64_
                get.restype, get.argtypes = ctypes.c_int, []
                put.restype, put.argtypes = None, [ctypes.c_int]
                found = (get, put)
            except (OSError, AttributeError):
                found = None
        _fns.append(found)
    return _fns[0]


def small_products(frames) -> bool:
    """Whether the frames' bodies compute matrix products, all of them small (see the module docstring)."""
    found = False
    for f in frames:
        for st in f.plan.steps:
            if isinstance(st, MatmulStep):
                found = True
                dims = [T.eval_dim(d, f.env) for d in st.out.shape] + [T.eval_dim(st.a.shape[-1], f.env)]
                macs = 1
                for d in dims:
                    macs *= d
                if macs >= SMALL_MATMUL:
                    return False
    return found


@contextlib.contextmanager
def one_blas_thread(active: bool):
    fns = _thread_functions() if active else None
    if fns is None:
        yield
        return
    get, put = fns
    with _lock:
        if _state["active"] == 0:
            _state["before"] = get()
            put(1)
        _state["active"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["active"] -= 1
            if _state["active"] == 0:
                put(_state["before"])
