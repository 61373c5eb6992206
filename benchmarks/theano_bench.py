"""The Theano tutorial's logistic-regression training step (shared weights, updates) in tracejit and PyTensor.

Both libraries build the same symbolic graph with the same API; the step is timed on X 100000x100 float64
(``--quick``: 10000x100), medians, and the trained weights are checked against each other.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from grad_bench import median_ms  # noqa: E402  (one timing rule for the extra tables of run.py)


def build(lib, T, X, y):
    """The tutorial's program written once against a Theano-like module ``lib`` and its ``tensor`` ``T``."""
    rng = np.random.default_rng(0)
    w = lib.shared(rng.standard_normal(X.shape[1]) * 0.01, name="w")
    b = lib.shared(0.0, name="b")
    x, t = T.dmatrix("x"), T.dvector("y")
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    xent = -t * T.log(p_1) - (1 - t) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = T.grad(cost, [w, b])
    train = lib.function([x, t], cost, updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)])
    return train, w


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    n = 10_000 if a.quick else 100_000
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, 100))
    y = (rng.random(n) > 0.5).astype(np.float64)
    import tracejit
    import tracejit.tensor as tjT
    rows = {}
    train, w = build(tracejit, tjT, X, y)
    rows["tracejit"] = (median_ms(lambda: train(X, y), 5 if a.quick else 15), w)
    try:
        import pytensor
        import pytensor.tensor as ptT
        for mode in ("FAST_RUN", "CVM"):
            with pytensor.config.change_flags(mode=mode):
                train_p, w_p = build(pytensor, ptT, X, y)
                rows[f"pytensor ({mode})"] = (median_ms(lambda: train_p(X, y), 5 if a.quick else 15), w_p)
    except ImportError:
        pass
    t0 = rows["tracejit"][0]
    print(f"| logistic-regression step with shared variables + updates, X {n}x100 f64 | median ms | vs tracejit |")
    print("|---|---:|---:|")
    for k, (t, _) in rows.items():
        print(f"| {k} | {t:.3g} | {t / t0:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
