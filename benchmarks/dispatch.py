"""The cost of a jitted call of a tiny function beside numpy's own call, per kind of call, in one run.

    python benchmarks/dispatch.py [--rounds 40] [--calls 2000]

Each row times a loop of ``--calls`` calls, ``--rounds`` times, interleaved with numpy's ``x + 1`` on the same
10-element array (so load on the machine hits both alike), and prints the median time per call and its ratio to
numpy's median, and the best round's (steadier on a loaded machine). The goal of issue 13: at most 1.5x numpy's
call without guards, 1.8x with a few guards.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import tracejit as tj  # noqa: E402


def cases():
    x = np.random.default_rng(0).random(10)
    y = x.copy()
    u = x.copy()

    @tj.jit
    def add_one(x):
        return x + 1

    @tj.jit
    def add(x, y):
        return x + y

    @tj.jit
    def scale(x, s):
        return x * s

    @tj.jit(static_argnums=1)
    def power(x, k):
        return x ** k

    @tj.jit
    def guarded(x, n):
        if x.shape[0] > 4:  # three guards: n's value, a length comparison, len()
            return x * len(x) + sum(range(n))
        return x

    @tj.jit
    def bump(u):
        u += 1

    @tj.jit
    def two_outputs(x):
        return x + 1, x * 2

    return [
        ("numpy x + 1", lambda: x + 1),
        ("numpy np.add(x, 1)", lambda: np.add(x, 1)),
        ("f(x) = x + 1", lambda: add_one(x)),
        ("f(x, y) = x + y", lambda: add(x, y)),
        ("f(x, 2.5) = x * s", lambda: scale(x, 2.5)),
        ("f(x, 3) static k", lambda: power(x, 3)),
        ("f(x, 3) 3 guards", lambda: guarded(x, 3)),
        ("f(x[::2]) strided", lambda: add_one(x[::2])),
        ("f(u) mutates u", lambda: bump(u)),
        ("f(x) two outputs", lambda: two_outputs(x)),
        ("f(x=x) keyword", lambda: add_one(x=x)),
    ]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: this thread's CPU time (time.thread_time_ns), which leaves out the time other "
                        "processes had the core: steadier on a loaded machine")
    a = p.parse_args()
    clock = time.thread_time_ns if a.clock == "cpu" else time.perf_counter_ns
    rows = cases()
    for _, fn in rows:  # compile, and tier up to the optimized code
        for _ in range(200):
            fn()
    time.sleep(0.5)
    for _, fn in rows:
        for _ in range(200):
            fn()
    samples = {name: [] for name, _ in rows}
    for _ in range(a.rounds):
        for name, fn in rows:
            t = clock()
            for _ in range(a.calls):
                fn()
            samples[name].append((clock() - t) / a.calls)
    base = statistics.median(samples["numpy x + 1"])
    print(f"tracejit {tj.__file__}")
    print(f"medians of {a.rounds} rounds of {a.calls} calls ({a.clock} clock, ns per call, including a lambda's "
          f"~70 ns)")
    best = min(samples["numpy x + 1"])
    print(f"{'call':24s} {'median ns':>9s} {'x numpy':>8s} {'best ns':>8s} {'x numpy':>8s}")
    for name, _ in rows:  # the best round is the steadier figure on a loaded machine
        m, b = statistics.median(samples[name]), min(samples[name])
        print(f"{name:24s} {m:9.0f} {m / base:8.2f} {b:8.0f} {b / best:8.2f}")


if __name__ == "__main__":
    main()
