"""Speed of tracejit's vectorized transcendental functions (tracejit.backends.cpu.vecmath) against numpy.

Each function runs over 10**7 elements into a preallocated output (one thread), median of 7 runs;
prints ns/element: the polynomial inlined into the loop ("inlined", vecmath_harness.compiled) and the loop
calling the precompiled library's vector variant, as tracejit's kernels do ("library",
backends/cpu/vecmath_library.py).  Usage: python benchmarks/vecmath_speed.py [n]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
import vecmath_harness as H  # noqa: E402

INPUTS = {
    "exp": (-10.0, 10.0),
    "log": (0.01, 100.0),
    "tanh": (-5.0, 5.0),
    "sin": (-100.0, 100.0),
}


def _median_time(fn, reps=7):
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main(n=10 ** 7):
    rng = np.random.default_rng(0)
    print(f"{'function':8s} {'dtype':8s} {'inlined ns/el':>14s} {'library ns/el':>14s} {'numpy ns/el':>12s} "
          f"{'speedup':>8s}")
    for name, (lo, hi) in INPUTS.items():
        for dt in ("float64", "float32"):
            x = rng.uniform(lo, hi, n).astype(dt)
            out = np.empty_like(x)
            f, g = H.compiled(name, dt), H.library_compiled(name, dt)
            ufunc = getattr(np, name)
            t_inl = _median_time(lambda: f(x, out=out))
            t_lib = _median_time(lambda: g(x, out=out))
            t_np = _median_time(lambda: ufunc(x, out=out))
            print(f"{name:8s} {dt:8s} {t_inl / n * 1e9:14.2f} {t_lib / n * 1e9:14.2f} {t_np / n * 1e9:12.2f} "
                  f"{t_np / t_lib:8.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10 ** 7)
