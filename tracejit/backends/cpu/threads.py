"""Threads of the CPU backend: how many, and the pool that runs the slices of a kernel split across them."""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_pool = None
_pool_lock = threading.Lock()


def num_threads():
    env = os.environ.get("TRACEJIT_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"TRACEJIT_NUM_THREADS must be an integer, got {env!r}") from None
    return os.cpu_count() or 1



def get_pool(n):
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < n:
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="tracejit")
        return _pool

