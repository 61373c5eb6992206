"""Time of the pass pipeline on traced graphs of about 10^3 and 10^4 equations (linear time expected).

Run: ``python benchmarks/passes_scaling.py``. The graph is a random mix of elementwise arithmetic, the patterns
the rewrites look for (x - x, x * 1, exp(log(x)), log(1 + exp(x)), repeated subexpressions), reductions and
reshapes, built from a fixed seed so runs are comparable.

Where the time goes at 10^4 equations (3 rounds of simplify and stabilize, 7 rebuilding sweeps): about 40% is the
first simplify sweep over the raw graph (the sum and product collections, and its ~2000 rewrites); most of the
rest rebuilds what lies above each later rewrite (every value above one is copied); about 15% is Python's
garbage collector, for those copies. Values the rules already declined, and copies of them far from any rewrite,
are not offered the rules again (see tracejit/passes/patterns.py), so a sweep costs a few microseconds per
equation beyond the rules that do fire.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tracejit as tj  # noqa: E402
from tracejit.passes.pipeline import optimize_with_log  # noqa: E402


def chain(n_steps, seed=0):
    rng = np.random.default_rng(seed)

    def f(x, y):
        vals = [x, y]
        for i in range(n_steps):
            a = vals[rng.integers(len(vals))]
            b = vals[rng.integers(len(vals))]
            k = rng.integers(10)
            if k == 0:
                v = a + b - a
            elif k == 1:
                v = np.exp(np.log(a)) * 1.0
            elif k == 2:
                v = np.log(1 + np.exp(a - b))
            elif k == 3:
                v = 2 * a + 3 * a + b
            elif k == 4:
                v = np.sqrt(np.square(a)) / 3.0
            elif k == 5:
                v = a * b / a + np.exp(b) + np.exp(b)
            elif k == 6:
                v = np.maximum(a, b) - (a - b)
            elif k == 7:
                v = a + np.sum(b, axis=0, keepdims=True)
            elif k == 8:
                v = 1 / (1 + np.exp(-a))
            else:
                v = np.tanh(a) * b
            vals.append(v)
            if len(vals) > 64:
                vals.pop(rng.integers(2, len(vals) - 8))
        return sum(vals[-8:])
    return f


def main():
    x = np.full((4, 5), 1.5)
    for steps in (750, 7500):
        graph = tj.make_ir(chain(steps), optimize=False)(x, x)
        times, cpu = [], []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            opt, log = optimize_with_log(graph)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(f"{len(graph.eqns):6d} equations -> {len(opt.eqns):6d}: pipeline {min(times) * 1e3:8.1f} ms wall, "
              f"{min(cpu) * 1e3:8.1f} ms cpu (best of 3; {len(log)} pass runs, "
              f"{min(cpu) / len(graph.eqns) * 1e6:.1f} us cpu/equation)")


if __name__ == "__main__":
    main()
