"""Issue 14's numpy-surface workloads under tracejit, numpy, numba and JAX, in one run.

    python benchmarks/numpy_surface.py [--repeat 7] [--only NAME ...]

Each workload is one numpy-style function, written once and bound to each library the way
benchmarks/README.md describes: ``tj.jit(f)`` over numpy's names, ``f`` itself, ``numba.njit(f)`` and
``jax.jit`` of the same source with its names bound to ``jax.numpy`` (x64 on, inputs put on the device once,
``block_until_ready`` on every call). Every contender allocates its outputs per call. Timings are interleaved
(machine load hits each contender alike) after a warm-up; the figure is the median, in ms. Each result is checked
against numpy's; a contender that cannot run a workload prints why in its cell. The contenders' order turns each
round (one that runs right after JAX meets its thread pool still spinning).

Goals (issue 14): no slower than numpy on the library-bound calls (``solve``: LAPACK, ``rfft``: pocketfft);
faster than numpy and numba on the fused ones (``roll_stencil``, ``complex_abs_exp``, ``threshold_u8``).
``complex_matmul`` (500x500 complex128) is BLAS's zgemm for numpy and tracejit alike.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import types

import numpy as np

os.environ.setdefault("TRACEJIT_CACHE_DIR", tempfile.mkdtemp(prefix="tj-numpy-surface-"))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tracejit as tj  # noqa: E402

SOURCES = {
    "cumsum": "def f(x):\n    return np.cumsum(x)\n",
    "sort": "def f(x):\n    return np.sort(x)\n",
    "roll_stencil": (
        "def f(u):\n"
        "    return u + 0.1 * (np.roll(u, 1, 0) + np.roll(u, -1, 0) + np.roll(u, 1, 1) + np.roll(u, -1, 1) - 4.0 * u)\n"),
    "solve": "def f(a, b):\n    return np.linalg.solve(a, b)\n",
    "rfft": "def f(x):\n    return np.fft.rfft(x)\n",
    "complex_abs_exp": "def f(x):\n    return np.abs(np.exp(1j * x))\n",
    "complex_matmul": "def f(a, b):\n    return a @ b\n",
    "threshold_u8": "def f(img):\n    return np.where(img > 128, np.uint8(255), np.uint8(0))\n",
}

KIND = {"solve": "library", "rfft": "library", "cumsum": "scan", "sort": "library",
        "roll_stencil": "fused", "complex_abs_exp": "fused", "threshold_u8": "fused",
        "complex_matmul": "library"}


def inputs(name, rng):
    if name == "cumsum":
        return (rng.standard_normal(10**7),)
    if name == "sort":
        return (rng.standard_normal(10**6),)
    if name == "roll_stencil":
        return (rng.standard_normal((2048, 2048)),)
    if name == "solve":
        return (rng.standard_normal((500, 500)) + 500 * np.eye(500), rng.standard_normal(500))
    if name == "rfft":
        return (rng.standard_normal(2**20),)
    if name == "complex_abs_exp":
        return (rng.standard_normal(10**7),)
    if name == "complex_matmul":
        return tuple(rng.standard_normal((500, 500)) + 1j * rng.standard_normal((500, 500)) for _ in range(2))
    if name == "threshold_u8":
        return (rng.integers(0, 256, (4096, 4096), dtype=np.uint8),)
    raise KeyError(name)


def bind(name, np_like):
    """A fresh function object from the workload's source with ``np`` bound to ``np_like``."""
    scope = {"np": np_like}
    exec(compile(SOURCES[name], f"<{name}>", "exec"), scope)  # noqa: S102 - our own fixed sources
    return types.FunctionType(scope["f"].__code__, scope, name)


def contenders(name):
    """name -> (callable, args transform): each one a fresh compile of the same source."""
    out = {"numpy": (bind(name, np), None), "tracejit": (tj.jit(bind(name, np)), None)}
    try:
        import numba
        out["numba"] = (numba.njit(bind(name, np)), None)
    except ImportError:
        pass
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        jf = jax.jit(bind(name, jnp))
        out["jax"] = (lambda *a: jf(*a).block_until_ready(), lambda args: [jax.device_put(a) for a in args])
    except ImportError:
        pass
    return out


def run_workload(name, repeat, rng):
    args = inputs(name, rng)
    want = None
    ready, cells = {}, {}
    for who, (fun, prep) in contenders(name).items():
        a = prep(args) if prep else args
        try:
            t0 = time.perf_counter()
            got = np.asarray(fun(*a))
            first = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001 - every contender gets a cell
            cells[who] = f"fails: {type(e).__name__}"
            continue
        if who == "numpy":
            want = got
        elif got.shape != want.shape or not np.allclose(got, want, rtol=1e-9, atol=1e-9):
            cells[who] = "WRONG"
            continue
        ready[who] = (fun, a, first)
    times = {who: [] for who in ready}
    order = list(ready)
    for r in range(repeat):
        # the order turns each round: a contender just after JAX otherwise meets its still-spinning thread pool
        for who in order[r % len(order):] + order[:r % len(order)]:
            fun, a, _ = ready[who]
            t0 = time.perf_counter()
            fun(*a)
            times[who].append(time.perf_counter() - t0)
    for who, t in times.items():
        cells[who] = float(np.median(t)) * 1e3
    return cells


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--only", nargs="*", default=None)
    opts = ap.parse_args()
    names = opts.only or list(SOURCES)
    cols = ["tracejit", "numpy", "numba", "jax"]
    print(f"median of {opts.repeat} calls, ms (x: that column's time / tracejit's; >1 means tracejit is faster)")
    print(f"{'workload':16s} {'kind':8s} " + " ".join(f"{c:>20s}" for c in cols))
    for name in names:
        cells = run_workload(name, opts.repeat, np.random.default_rng(0))
        ref = cells.get("tracejit")
        row = []
        for c in cols:
            v = cells.get(c, "absent")
            if isinstance(v, float):
                ratio = f" (x{v / ref:5.2f})" if isinstance(ref, float) and c != "tracejit" else ""
                row.append(f"{v:9.2f}{ratio}".rjust(20))
            else:
                row.append(v.rjust(20))
        print(f"{name:16s} {KIND[name]:8s} " + " ".join(row), flush=True)


if __name__ == "__main__":
    main()
