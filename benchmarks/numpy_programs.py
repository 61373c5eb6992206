"""examples/numpy_programs.py under tracejit, numba (njit) and numpy, in one run: first call and steady state.

    python benchmarks/numpy_programs.py [--n 256] [--repeat 7]

First call includes tracing and compiling (each tool starts from a fresh function object; tracejit's disk cache
goes to a fresh temporary directory). Steady state is the best of ``--repeat`` timings of a loop of calls. A
program that mutates its argument gets a fresh copy before each timed loop; each tool's result is checked against
numpy's, and a tool that cannot run a program prints why in its cell.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TRACEJIT_CACHE_DIR", tempfile.mkdtemp(prefix="tj-numpy-programs-"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import numpy_programs as ex  # noqa: E402

import tracejit as tj  # noqa: E402


def _copy(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def _run(fun, args):
    """(result, the arguments after the call): a mutating program's output is its first argument."""
    a = _copy(args)
    r = fun(*a)
    return (a[0] if r is None else r), a


def _steady(fun, args, repeat):
    a = _copy(args)
    fun(*a)
    t0 = time.perf_counter()
    fun(*a)
    once = time.perf_counter() - t0
    loops = max(1, min(1000, int(0.05 / max(once, 1e-7))))
    best = float("inf")
    for _ in range(repeat):
        a = _copy(args)
        t0 = time.perf_counter()
        for _ in range(loops):
            fun(*a)
        best = min(best, (time.perf_counter() - t0) / loops)
    return best


def _cell(make_fun, args, want, repeat):
    try:
        fun = make_fun()
        a = _copy(args)
        t0 = time.perf_counter()
        r = fun(*a)
        first = time.perf_counter() - t0
        got = a[0] if r is None else r
        if not np.allclose(got, want, rtol=1e-10, atol=1e-12):
            return "WRONG", ""
        return f"{_steady(fun, args, repeat) * 1e6:10.1f}", f"{first * 1e3:8.1f}"
    except Exception as e:  # noqa: BLE001 - every tool gets a cell
        return f"fails: {type(e).__name__}", ""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--repeat", type=int, default=7)
    opts = p.parse_args()
    try:
        import numba
    except ImportError:
        numba = None
    print(f"n={opts.n}; steady state in µs per call (first call in ms)")
    print(f"{'program':24s} {'numpy':>10s} {'tracejit':>10s} {'(first)':>9s} {'numba':>10s} {'(first)':>9s}")
    for name, (fun, make) in ex.PROGRAMS.items():
        args = make(opts.n, np.random.default_rng(0))
        want, _ = _run(fun, args)
        base = _steady(fun, args, opts.repeat)
        tjs, tjf = _cell(lambda: tj.jit(_fresh(fun)), args, want, opts.repeat)
        nbs, nbf = _cell(lambda: numba.njit(_fresh(fun)), args, want, opts.repeat) if numba else ("absent", "")
        print(f"{name:24s} {base * 1e6:10.1f} {tjs:>10s} {tjf:>9s} {nbs:>10s} {nbf:>9s}")


def _fresh(fun):
    """A new function object with fun's code (no tool's per-function cache carries over)."""
    import types
    return types.FunctionType(fun.__code__, fun.__globals__, fun.__name__, fun.__defaults__, fun.__closure__)


if __name__ == "__main__":
    main()
