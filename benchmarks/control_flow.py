"""Loops kept as loops: tracejit's fori_loop / scan / while_loop beside JAX, numba, numpy and PyTensor.

    python benchmarks/control_flow.py                 # every case
    python benchmarks/control_flow.py --only fori,compile

Cases (medians of repeated calls after warm-up, in ms, the contenders called in turns so that load from other
processes weighs on all alike; ratios are the peer's time over tracejit's, > 1: tracejit faster):
  fori      a 1,000-step fori_loop of a small elementwise update on 1,000 floats (vs jax.lax.fori_loop, numba)
  lstm      an LSTM's forward + backward over 100 steps, batch 32, hidden 256, float32 (vs lax.scan + grad,
            PyTensor scan + grad); also tracejit's Theano surface (theano.scan + T.grad) on the same program
  compile   first-call compile time of `fori` at 10 and at 10,000 steps (first call minus a later call)
  mandel    Mandelbrot escape times on 1000 x 1000 points, 100 iterations (vs numpy and numba)
  nested    a 200-step scan whose step runs a 10-step fori_loop and a cond, on 256 floats (vs the same program
            driven from Python, JAX, numba)
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # normalized: tracejit
# tells its own frames from the user's by path
import tracejit as tj  # noqa: E402


def interleaved_ms(fns, repeat=7):
    """Medians in ms of each of ``fns`` (name -> callable), the calls taken in turns (one of each per round), so
    that a machine loaded by others weighs on every contender alike."""
    for f in fns.values():
        f()
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) * 1e3 for k, v in times.items()}


def row(case, results):
    mine = results["tracejit"]
    peers = "  ".join(f"{k} {v:8.2f} ms (x{v / mine:5.2f})" for k, v in results.items() if k != "tracejit")
    print(f"{case:10s} tracejit {mine:8.2f} ms  {peers}", flush=True)


# ------------------------------------------------------------------------------------------------ fori
def _update(i, x):
    return x * 0.99 + 0.01 * np.sin(x) + 1e-4 * i


def fori_case(steps=1000, n=1000):
    x = np.linspace(0, 1, n)
    tj_f = tj.jit(lambda x: tj.fori_loop(0, steps, _update, x))
    fns = {"tracejit": lambda: tj_f(x)}
    import jax
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    jf = jax.jit(lambda x: jax.lax.fori_loop(0, steps, lambda i, x: x * 0.99 + 0.01 * jnp.sin(x) + 1e-4 * i, x))
    fns["jax"] = lambda: jf(x).block_until_ready()
    np.testing.assert_allclose(tj_f(x), np.asarray(jf(x)), rtol=1e-9)
    try:
        import numba

        @numba.njit(cache=False)
        def nb(x):
            x = x.copy()
            for i in range(steps):
                for j in range(x.shape[0]):
                    x[j] = x[j] * 0.99 + 0.01 * np.sin(x[j]) + 1e-4 * i
            return x
        fns["numba"] = lambda: nb(x)
    except ImportError:
        pass
    row("fori", interleaved_ms(fns, repeat=15))


def compile_case():
    """Trace, passes and compile (both tiers: ``Jitted.compile`` waits for the optimized code); each trip count's
    body differs by a constant, so neither reuses the other's compiled code."""
    out = {}
    for steps, a in ((10, 0.98), (10000, 0.97)):
        f = tj.jit(lambda x: tj.fori_loop(0, steps, lambda i, x: x * a + 0.01 * np.sin(x) + 1e-4 * i, x))
        t0 = time.perf_counter()
        f.compile(np.linspace(0, 1, 1000))
        out[steps] = (time.perf_counter() - t0) * 1e3
    print(f"compile    tracejit: 10 steps {out[10]:7.1f} ms, 10,000 steps {out[10000]:7.1f} ms", flush=True)


# ------------------------------------------------------------------------------------------------ lstm
def _lstm_params(rng, d, h):
    s = 1 / np.sqrt(h)
    return {"w": (rng.standard_normal((d + h, 4 * h)) * s).astype(np.float32),
            "b": np.zeros(4 * h, np.float32)}


def lstm_case(steps=100, batch=32, hidden=256):
    rng = np.random.default_rng(0)
    params = _lstm_params(rng, hidden, hidden)
    xs = rng.standard_normal((steps, batch, hidden)).astype(np.float32)

    def make_loss(npx, scan, sigmoid):
        def loss(p, xs):
            def cell(carry, x):
                h, c = carry
                z = npx.concatenate([x, h], axis=1) @ p["w"] + p["b"]
                i, f, g, o = z[:, :hidden], z[:, hidden:2 * hidden], z[:, 2 * hidden:3 * hidden], z[:, 3 * hidden:]
                c = sigmoid(f) * c + sigmoid(i) * npx.tanh(g)
                h = sigmoid(o) * npx.tanh(c)
                return (h, c), h
            zero = npx.zeros((batch, hidden), npx.float32)
            _, hs = scan(cell, (zero, zero), xs)
            return (hs * hs).mean()
        return loss

    tj_loss = make_loss(np, tj.scan, lambda v: 1 / (1 + np.exp(-v)))
    tj_g = tj.jit(tj.grad(tj_loss))
    fns = {"tracejit": lambda: tj_g(params, xs)}
    import jax
    jnp = jax.numpy
    j_g = jax.jit(jax.grad(make_loss(jnp, jax.lax.scan, jax.nn.sigmoid)))
    fns["jax"] = lambda: jax.block_until_ready(j_g(params, xs))
    np.testing.assert_allclose(tj_g(params, xs)["w"], np.asarray(j_g(params, xs)["w"]), rtol=2e-3, atol=1e-6)
    ref = np.asarray(j_g(params, xs)["w"])
    th = _theano_lstm(tj.theano, tj.tensor, batch, hidden)
    fns["tracejit (theano.scan)"] = lambda: th(params["w"], params["b"], xs)
    np.testing.assert_allclose(th(params["w"], params["b"], xs)[0], ref, rtol=2e-3, atol=1e-6)
    try:
        import pytensor
        import pytensor.tensor as pt
    except ImportError:
        pytensor = None
    if pytensor is not None:
        t0 = time.perf_counter()
        pf = _theano_lstm(pytensor, pt, batch, hidden)
        pf(params["w"], params["b"], xs)
        print(f"           (PyTensor compile {time.perf_counter() - t0:.1f} s)", flush=True)
        fns["pytensor"] = lambda: pf(params["w"], params["b"], xs)
        np.testing.assert_allclose(pf(params["w"], params["b"], xs)[0], ref, rtol=2e-3, atol=1e-6)
    row("lstm", interleaved_ms(fns, repeat=3))


def _theano_lstm(theano, T, batch, hidden):
    """The same LSTM written against Theano's API (``scan`` + ``grad``), for tracejit.theano and PyTensor:
    a compiled function (w, b, xs) -> [dloss/dw, dloss/db]."""
    W, b, X = T.fmatrix("w"), T.fvector("b"), T.ftensor3("xs")

    def sig(v):
        return 1 / (1 + T.exp(-v))

    def cell(x, h, c, W, b):
        z = T.dot(T.concatenate([x, h], axis=1), W) + b
        i, f, g, o = z[:, :hidden], z[:, hidden:2 * hidden], z[:, 2 * hidden:3 * hidden], z[:, 3 * hidden:]
        c = sig(f) * c + sig(i) * T.tanh(g)
        h = sig(o) * T.tanh(c)
        return h, c
    zero = T.zeros((batch, hidden), dtype="float32")
    (hs, _), _ = theano.scan(cell, sequences=X, outputs_info=[zero, zero], non_sequences=[W, b])
    loss = (hs * hs).mean()
    return theano.function([W, b, X], T.grad(loss, [W, b]))


# ------------------------------------------------------------------------------------------------ mandelbrot
def mandel_case(size=1000, iters=100):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
    import mandelbrot as mb
    cr, ci = mb.grid(size, size)
    fns = {"tracejit": lambda: mb.mandelbrot(cr, ci), "numpy": lambda: mb.mandelbrot_numpy(cr, ci, iters)}
    assert (mb.mandelbrot(cr, ci) == mb.mandelbrot_numpy(cr, ci, iters)).all()
    try:
        import numba

        @numba.njit(parallel=False)
        def nb(cr, ci):
            out = np.zeros(cr.shape, np.int64)
            for a in range(cr.shape[0]):
                for b in range(cr.shape[1]):
                    zr = zi = 0.0
                    k = 0
                    while zr * zr + zi * zi <= 4.0 and k < iters:
                        zr, zi = zr * zr - zi * zi + cr[a, b], 2.0 * zr * zi + ci[a, b]
                        k += 1
                    out[a, b] = k
            return out
        fns["numba"] = lambda: nb(cr, ci)
    except ImportError:
        pass
    row("mandel", interleaved_ms(fns, repeat=5))


# ------------------------------------------------------------------------------------------------ nested
def _nested_step(np_, fori, cond):
    """A scan step holding a fori_loop and a cond: damp the carry 10 times, then branch on its sum."""
    def step(c, x):
        c = fori(0, 10, lambda j, v: v * 0.9 + 0.01 * x, c)
        c = cond(c.sum() > 0, lambda v: v - 0.5, lambda v: v + 0.25, c)
        return c, c[0]
    return step


def nested_case(steps=200, n=256):
    """A scan of 200 steps, each running a 10-step fori_loop and a cond, on 256 floats: tracejit's native program
    (one op table), the same executable driven from Python (TRACEJIT_NATIVE_LOOPS=0), JAX, numba."""
    xs = np.linspace(-1, 1, steps)
    c0 = np.linspace(0, 1, n)
    f = tj.jit(lambda c, xs: tj.scan(_nested_step(np, tj.fori_loop, tj.cond), c, xs))

    def python_driven():
        os.environ["TRACEJIT_NATIVE_LOOPS"] = "0"
        try:
            return f(c0, xs)
        finally:
            del os.environ["TRACEJIT_NATIVE_LOOPS"]
    fns = {"tracejit": lambda: f(c0, xs), "tracejit from Python": python_driven}
    import jax
    jax.config.update("jax_enable_x64", True)
    lax = jax.lax
    jf = jax.jit(lambda c, xs: lax.scan(_nested_step(jax.numpy, lax.fori_loop,
                                                     lambda p, t, e, v: lax.cond(p, t, e, v)), c, xs))
    fns["jax"] = lambda: jax.block_until_ready(jf(c0, xs))
    np.testing.assert_allclose(f(c0, xs)[1], np.asarray(jf(c0, xs)[1]), rtol=1e-12)
    try:
        import numba

        @numba.njit(cache=False)
        def nb(c, xs):
            c = c.copy()
            ys = np.empty(xs.shape[0])
            for t in range(xs.shape[0]):
                for _ in range(10):
                    c = c * 0.9 + 0.01 * xs[t]
                c = c - 0.5 if c.sum() > 0 else c + 0.25
                ys[t] = c[0]
            return c, ys
        fns["numba"] = lambda: nb(c0, xs)
        np.testing.assert_allclose(f(c0, xs)[1], nb(c0, xs)[1], rtol=1e-12)
    except ImportError:
        pass
    row("nested", interleaved_ms(fns, repeat=15))


CASES = {"fori": fori_case, "nested": nested_case, "compile": compile_case, "lstm": lstm_case, "mandel": mandel_case}

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(CASES))
    for name in ap.parse_args().only.split(","):
        CASES[name]()
