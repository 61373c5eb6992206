"""``python -m tracejit``: a short tour. The tutorial's examples jitted, their IR before and after the passes, and
a timing against numpy. Runs in a few seconds; nothing here is needed by the library itself."""
from __future__ import annotations

import sys
import time

import numpy as np

import tracejit as tj


def rule(title):
    print()
    print(f"== {title} " + "=" * max(0, 76 - len(title)))


def show_ir(f, *args, static_argnums=()):
    """Print f's IR as traced and after the optimizing passes, side by side in time."""
    before = tj.make_ir(f, optimize=False, static_argnums=static_argnums)(*args)
    after = tj.make_ir(f, static_argnums=static_argnums)(*args)
    print(f"-- traced ({len(before.ops)} equations)")
    print(before)
    print(f"-- after the passes ({len(after.ops)} equations)")
    print(after)


def best_of(f, *args, repeat=7, number=None):
    """Best wall time per call in milliseconds (the minimum is the least noisy estimate of the cost)."""
    if number is None:
        t0 = time.perf_counter()
        f(*args)
        number = max(1, min(200, int(0.05 / max(time.perf_counter() - t0, 1e-7))))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            f(*args)
        best = min(best, (time.perf_counter() - t0) / number)
    return best * 1e3


# ------------------------------------------------------------------------------------------------ the examples
def add(x, y):
    return x + y


def logistic(x):
    return 1 / (1 + np.exp(-x))


def diffs(x, y):
    diff = x - y
    return diff, abs(diff), diff ** 2


def sum_logistic(x):
    return np.sum(1 / (1 + np.exp(-x)))


def cost(W, x, target):
    y = (x * W).sum()
    return np.square(target - y), y


def train_step(W, x, target):
    (_, y), g = tj.value_and_grad(cost, has_aux=True)(W, x, target)
    return y, W - 0.1 * g


def _try(what, thunk):
    """Run one part of the tour; a feature still being built is reported, not fatal."""
    try:
        thunk()
    except (NotImplementedError, ImportError, AttributeError) as e:
        print(f"   ({what} is not available in this build: {type(e).__name__}: {e})")


def tour():
    np.set_printoptions(precision=6, suppress=True)
    print(f"tracejit {tj.__version__} on numpy {np.__version__}, Python {sys.version.split()[0]}")

    rule("1. adding two scalars")
    f = tj.jit(add)
    print("f(1.5, 2.5) =", f(1.5, 2.5))
    print("f(2.0, 3.0) =", f(2.0, 3.0), "  cache:", f.cache_info(), "(Python floats are traced: one compile)")

    rule("2. the logistic function, elementwise over a matrix")
    lg = tj.jit(logistic)
    m = np.array([[0.0, 1.0], [-1.0, -2.0]])
    print(lg(m))
    show_ir(logistic, m)

    rule("3. several outputs at once")
    d = tj.jit(diffs)
    for name, r in zip(("diff", "abs_diff", "diff_squared"),
                       d(np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([[0.0, 1.0], [2.0, 3.0]]))):
        print(f"{name}:\n{r}")
    show_ir(diffs, m, m)

    rule("4. the gradient of sum(logistic(x))")
    _try("tj.grad", lambda: (print(tj.jit(tj.grad(sum_logistic))(m)),
                             show_ir(tj.grad(sum_logistic), m)))

    rule("5. training W so that sum(x * W) reaches 20 (one jitted SGD step)")

    def train():
        step = tj.jit(train_step)
        W = np.asarray([0.2, 0.7])
        x = np.asarray([1.0, 1.0])
        for _ in range(10):
            y, W = step(W, x, 20.0)
            print(f"{float(y):.6g}", end="  ")
        print()
        print("cache:", step.cache_info())
    _try("tj.value_and_grad", train)

    rule("6. the signature cache: lengths are symbolic")
    g = tj.jit(lambda x, y: np.exp(-x) * y + x.sum(axis=0))
    for n in (1000, 50, 7):
        g(np.random.rand(n, 3), np.random.rand(3))
    print("3 calls with 3 lengths:", g.cache_info())
    lo = g.lower(np.random.rand(8, 3), np.random.rand(3))
    print("kernels per call:", lo.num_kernels)
    llvm = lo.as_text("llvm")
    if llvm:
        lines = llvm.splitlines()
        print(f"-- LLVM IR ({len(lines)} lines), first kernel's opening lines:")
        start = next((i for i, ln in enumerate(lines) if ln.startswith("define")), 0)
        print("\n".join(lines[start:start + 12]))
    else:
        print("(no LLVM IR: this build runs graphs through the numpy reference interpreter)")

    rule("7. timing against numpy (best of 7, milliseconds per call)")
    rng = np.random.default_rng(0)
    cases = [
        ("logistic 1/(1+exp(-x)), 10^6 float64", logistic, (rng.standard_normal(10 ** 6),)),
        ("logistic, 10^6 float32", logistic, (rng.standard_normal(10 ** 6).astype(np.float32),)),
        ("d=x-y; d, abs(d), d**2, 1000x1000", diffs, (rng.standard_normal((1000, 1000)),
                                                      rng.standard_normal((1000, 1000)))),
        ("x + y, 10 elements (dispatch)", add, (np.ones(10), np.ones(10))),
    ]
    print(f"{'workload':44s} {'numpy':>10s} {'tracejit':>10s} {'ratio':>7s}")
    for name, fn, args in cases:
        jf = tj.jit(fn)
        t0 = time.perf_counter()
        jf(*args)
        first = (time.perf_counter() - t0) * 1e3
        t_np = best_of(fn, *args)
        t_tj = best_of(jf, *args)
        print(f"{name:44s} {t_np:10.4f} {t_tj:10.4f} {t_np / t_tj:6.2f}x   (first call {first:.1f} ms)")
    print("ratio > 1: tracejit is faster. Full comparison with numexpr, numba, JAX, PyTensor: "
          "python benchmarks/run.py")


if __name__ == "__main__":
    tour()
