"""The numpy Mandelbrot written with complex128 (issue 14), unchanged under tracejit, numba and numpy.

    python benchmarks/complex_mandel.py [--size 400] [--iters 50] [--repeat 7]

Prints the median of repeated calls after a warm-up (in ms) for numpy, ``tj.jit`` and ``numba.njit`` on the
same function, the first-call (compile) time of the two compilers, and checks that all three agree. numba types
no 2-D boolean mask (``z[m]`` with ``m`` 2-D: "Multi-dimensional indices are not supported"), so it runs the same
code on the raveled grid (``mandel(c.ravel(), iters)``); tracejit runs both forms.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tracejit as tj  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
from mandelbrot import mandelbrot_complex as mandel  # noqa: E402  (the issue's program, kept in examples/)


def grid(size):
    x, y = np.linspace(-2.0, 0.6, size), np.linspace(-1.3, 1.3, size)
    return x[None, :] + 1j * y[:, None]


def first_call_s(f, *args):
    t0 = time.perf_counter()
    out = f(*args)
    return time.perf_counter() - t0, out


def medians_ms(fns, args, repeat):
    """Interleaved repeats (the machine's load hits every contender alike); the median of each, in ms."""
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, f in fns.items():
            t0 = time.perf_counter()
            f(*args)
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) * 1e3 for name, t in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=400)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    c = grid(a.size)
    want = mandel(c, a.iters)
    fns = {"numpy": mandel}
    jitted = tj.jit(mandel, static_argnums=1)
    s, out = first_call_s(jitted, c, a.iters)
    assert np.array_equal(out, want), "tracejit disagrees with numpy"
    print(f"tracejit first call (trace + compile + run): {s:.2f} s")
    fns["tracejit"] = jitted
    flat = tj.jit(mandel, static_argnums=1)
    flat(c.ravel(), a.iters)
    fns["tracejit 1-D"] = lambda c, iters: flat(c.ravel(), iters)
    try:
        import numba
        nb = numba.njit(mandel)
        s, out = first_call_s(nb, c.ravel(), a.iters)
        assert np.array_equal(out.reshape(c.shape), want), "numba disagrees with numpy"
        print(f"numba {numba.__version__} first call (compile + run): {s:.2f} s")
        fns["numba 1-D"] = lambda c, iters: nb(c.ravel(), iters)
    except Exception as e:  # noqa: BLE001 - report and go on without it
        print(f"numba: cannot compile this code ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
    res = medians_ms(fns, (c, a.iters), a.repeat)
    print(f"Mandelbrot {a.size}x{a.size}, {a.iters} iterations, complex128, median of {a.repeat}:")
    for name, ms in res.items():
        print(f"  {name:13s} {ms:9.2f} ms   (numpy / this: x{res['numpy'] / ms:5.2f})")


if __name__ == "__main__":
    main()
