"""Gradients: tracejit beside JAX, autograd, PyTensor and a hand-written numpy gradient (issue 4), one run.

    python benchmarks/grad_bench.py            # full sizes
    python benchmarks/grad_bench.py --quick    # small sizes, few repeats
    python benchmarks/grad_bench.py --only hvp --interleave   # the rows whose name contains "hvp", with
                                                              # the columns timed in alternation

Workloads:
  sigmoid_grad   d/dx sum(1/(1+exp(-x))), x: 10^7 float64
  logreg_step    one logistic-regression step with value_and_grad + update, X: 100000x100 float64
  mlp_step       one SGD step of a 784 -> 256 tanh -> 10 softmax cross-entropy MLP, batch 256, float32
  per_example_grads  the same MLP's per-example gradients, vmap(grad(loss), in_axes=(None, 0, 0)), batch 256
  logreg_hvp     a Hessian-vector product of the logistic-regression loss, jvp(grad(loss)), X: 100000x100 f64
  jacfwd_100     the 100 x 100 Jacobian of tanh(A @ x) * x + sin(x) by forward mode
Each cell is the median wall time of one call (ms); the ratio columns are peer time / tracejit time (> 1: tracejit
is faster). Every result is checked against the numpy version; a peer that is missing prints n/a.
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

PEERS = ["numpy", "jax", "autograd", "pytensor"]


def median_ms(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    _wait_for_background_compiles()  # steady state: the optimized tier, not the quick one it replaces
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def interleaved_medians_ms(fns: dict, repeats, warmup=2) -> dict:
    """Median ms of each function, timed in rounds that call every function once: on a loaded machine the
    load then falls on all columns alike, so their ratio holds better than their times."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    _wait_for_background_compiles()
    times = {c: [] for c in fns}
    for _ in range(repeats):
        for c, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[c].append(time.perf_counter() - t0)
    return {c: 1e3 * statistics.median(ts) for c, ts in times.items()}


def _wait_for_background_compiles():
    from tracejit.backends.cpu import jobs
    for job in jobs.running():
        job.join()


def _import(name):
    try:
        if name == "jax":
            import jax
            jax.config.update("jax_enable_x64", True)
            return jax
        if name == "autograd":
            import autograd
            return autograd
        if name == "pytensor":
            import pytensor
            return pytensor
    except Exception:
        return None


def _expit(z):
    return 0.5 * (1 + np.tanh(0.5 * z))  # numpy's own stable logistic, no scipy call overhead


# ------------------------------------------------------------------------------------------------ workloads
def sigmoid_grad(n, mods):
    x = np.random.default_rng(0).standard_normal(n)
    impls = {}

    def by_hand(x):
        s = 1 / (1 + np.exp(-x))
        return s * (1 - s)
    impls["numpy"] = lambda: by_hand(x)
    f = tj.jit(tj.grad(lambda x: np.sum(1 / (1 + np.exp(-x)))))
    impls["tracejit"] = lambda: f(x)
    if mods.get("jax"):
        jax, jnp = mods["jax"], __import__("jax.numpy").numpy
        jf = jax.jit(jax.grad(lambda x: jnp.sum(1 / (1 + jnp.exp(-x)))))
        xj = jax.device_put(x)
        impls["jax"] = lambda: jf(xj).block_until_ready()
    if mods.get("autograd"):
        import autograd
        import autograd.numpy as anp
        af = autograd.grad(lambda x: anp.sum(1 / (1 + anp.exp(-x))))
        impls["autograd"] = lambda: af(x)
    if mods.get("pytensor"):
        import pytensor
        import pytensor.tensor as pt
        xs = pt.dvector("x")
        pf = pytensor.function([xs], pytensor.grad(pt.sum(1 / (1 + pt.exp(-xs))), xs))
        impls["pytensor"] = lambda: pf(x)
    return impls, by_hand(x)


def logreg_step(n, d, mods, lr=0.1):
    r = np.random.default_rng(1)
    X = r.standard_normal((n, d))
    y = (X @ r.standard_normal(d) > 0).astype(np.float64)
    w, b = np.zeros(d) + 0.01, np.asarray(0.0)
    impls = {}

    def by_hand():
        z = X @ w + b
        loss = np.mean(np.logaddexp(0.0, z) - y * z)
        err = (_expit(z) - y) / n
        return loss, w - lr * (X.T @ err), b - lr * np.sum(err)
    impls["numpy"] = by_hand

    def loss(w, b, X, y):
        z = X @ w + b
        return np.mean(np.logaddexp(0.0, z) - y * z)

    @tj.jit
    def step(w, b, X, y):
        val, (gw, gb) = tj.value_and_grad(loss, argnums=(0, 1))(w, b, X, y)
        return val, w - lr * gw, b - lr * gb
    impls["tracejit"] = lambda: step(w, b, X, y)
    if mods.get("jax"):
        jax, jnp = mods["jax"], __import__("jax.numpy").numpy

        def jloss(w, b, X, y):
            z = X @ w + b
            return jnp.mean(jnp.logaddexp(0.0, z) - y * z)

        @jax.jit
        def jstep(w, b, X, y):
            val, (gw, gb) = jax.value_and_grad(jloss, argnums=(0, 1))(w, b, X, y)
            return val, w - lr * gw, b - lr * gb
        args = [jax.device_put(a) for a in (w, b, X, y)]
        impls["jax"] = lambda: jax.block_until_ready(jstep(*args))
    if mods.get("autograd"):
        import autograd
        import autograd.numpy as anp

        def aloss(w, b):
            z = anp.dot(X, w) + b
            return anp.mean(anp.logaddexp(0.0, z) - y * z)
        avg = autograd.value_and_grad(aloss, argnum=(0, 1))

        def astep():
            val, (gw, gb) = avg(w, b)
            return val, w - lr * gw, b - lr * gb
        impls["autograd"] = astep
    if mods.get("pytensor"):
        import pytensor
        import pytensor.tensor as pt
        ws, bs, Xs, ys = pt.dvector("w"), pt.dscalar("b"), pt.dmatrix("X"), pt.dvector("y")
        z = Xs @ ws + bs
        cost = pt.mean(pt.log1pexp(z) - ys * z)
        gw, gb = pytensor.grad(cost, [ws, bs])
        pf = pytensor.function([ws, bs, Xs, ys], [cost, ws - lr * gw, bs - lr * gb])
        impls["pytensor"] = lambda: pf(w, b, X, y)
    return impls, by_hand()


def mlp_step(batch, mods, lr=np.float32(0.05)):
    r = np.random.default_rng(2)
    f32 = np.float32
    X = r.standard_normal((batch, 784)).astype(f32)
    labels = r.integers(0, 10, batch)
    Y = np.eye(10, dtype=f32)[labels]
    P = {"W1": (r.standard_normal((784, 256)) * 0.03).astype(f32), "b1": np.zeros(256, f32),
         "W2": (r.standard_normal((256, 10)) * 0.06).astype(f32), "b2": np.zeros(10, f32)}
    impls = {}

    def by_hand():
        h = np.tanh(X @ P["W1"] + P["b1"])
        logits = h @ P["W2"] + P["b2"]
        m = logits.max(axis=1, keepdims=True)
        e = np.exp(logits - m)
        s = e.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(s[:, 0]) + m[:, 0] - np.sum(Y * logits, axis=1))
        dlogits = (e / s - Y) / f32(batch)
        dh = (dlogits @ P["W2"].T) * (1 - h * h)
        grads = {"W1": X.T @ dh, "b1": dh.sum(0), "W2": h.T @ dlogits, "b2": dlogits.sum(0)}
        return loss, {k: P[k] - lr * grads[k] for k in P}
    impls["numpy"] = by_hand

    def loss(P, X, Y):
        h = np.tanh(X @ P["W1"] + P["b1"])
        logits = h @ P["W2"] + P["b2"]
        return -np.mean(np.sum(Y * tj.nn.log_softmax(logits, axis=1), axis=1))

    @tj.jit
    def step(P, X, Y):
        val, g = tj.value_and_grad(loss)(P, X, Y)
        return val, {k: P[k] - lr * g[k] for k in P}
    impls["tracejit"] = lambda: step(P, X, Y)
    if mods.get("jax"):
        jax, jnp = mods["jax"], __import__("jax.numpy").numpy

        def jloss(P, X, Y):
            h = jnp.tanh(X @ P["W1"] + P["b1"])
            logits = h @ P["W2"] + P["b2"]
            return -jnp.mean(jnp.sum(Y * jax.nn.log_softmax(logits, axis=1), axis=1))

        @jax.jit
        def jstep(P, X, Y):
            val, g = jax.value_and_grad(jloss)(P, X, Y)
            return val, {k: P[k] - lr * g[k] for k in P}
        Pj, Xj, Yj = jax.device_put(P), jax.device_put(X), jax.device_put(Y)
        impls["jax"] = lambda: jax.block_until_ready(jstep(Pj, Xj, Yj))
    if mods.get("autograd"):
        import autograd
        import autograd.numpy as anp
        from autograd.scipy.special import logsumexp

        def aloss(P):
            h = anp.tanh(anp.dot(X, P["W1"]) + P["b1"])
            logits = anp.dot(h, P["W2"]) + P["b2"]
            return anp.mean(logsumexp(logits, axis=1) - anp.sum(Y * logits, axis=1))
        avg = autograd.value_and_grad(aloss)

        def astep():
            val, g = avg(P)
            return val, {k: P[k] - lr * g[k] for k in P}
        impls["autograd"] = astep
    if mods.get("pytensor"):
        import pytensor
        import pytensor.tensor as pt
        from pytensor.tensor.special import log_softmax
        Xs, Ys = pt.fmatrix("X"), pt.fmatrix("Y")
        W1, b1, W2, b2 = pt.fmatrix("W1"), pt.fvector("b1"), pt.fmatrix("W2"), pt.fvector("b2")
        h = pt.tanh(Xs @ W1 + b1)
        logits = h @ W2 + b2
        cost = -pt.mean(pt.sum(Ys * log_softmax(logits, axis=1), axis=1))
        grads = pytensor.grad(cost, [W1, b1, W2, b2])
        pf = pytensor.function([W1, b1, W2, b2, Xs, Ys],
                               [cost] + [p - lr * g for p, g in zip([W1, b1, W2, b2], grads)])
        def pstep():
            val, *new = pf(P["W1"], P["b1"], P["W2"], P["b2"], X, Y)
            return val, dict(zip(["W1", "b1", "W2", "b2"], new))
        impls["pytensor"] = pstep
    return impls, by_hand()


def per_example_grads(batch, mods):
    """Per-example gradients of the mlp_step loss (one example's loss each): vmap(grad(loss), in_axes=(None, 0, 0)).
    The W1 gradients alone are batch x 784 x 256 floats (205 MB at batch 256): a memory-bound workload."""
    r = np.random.default_rng(3)
    f32 = np.float32
    X = r.standard_normal((batch, 784)).astype(f32)
    Y = np.eye(10, dtype=f32)[r.integers(0, 10, batch)]
    P = {"W1": (r.standard_normal((784, 256)) * 0.03).astype(f32), "b1": np.zeros(256, f32),
         "W2": (r.standard_normal((256, 10)) * 0.06).astype(f32), "b2": np.zeros(10, f32)}
    impls = {}

    def by_hand():
        h = np.tanh(X @ P["W1"] + P["b1"])
        logits = h @ P["W2"] + P["b2"]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        dlogits = e / e.sum(axis=1, keepdims=True) - Y
        dh = (dlogits @ P["W2"].T) * (1 - h * h)
        return {"W1": X[:, :, None] * dh[:, None, :], "b1": dh, "W2": h[:, :, None] * dlogits[:, None, :],
                "b2": dlogits}
    impls["numpy"] = by_hand

    def loss(P, x, y):
        h = np.tanh(x @ P["W1"] + P["b1"])
        logits = h @ P["W2"] + P["b2"]
        return -np.sum(y * tj.nn.log_softmax(logits, axis=-1))
    f = tj.jit(tj.vmap(tj.grad(loss), in_axes=(None, 0, 0)))
    impls["tracejit"] = lambda: f(P, X, Y)
    if mods.get("jax"):
        jax, jnp = mods["jax"], __import__("jax.numpy").numpy

        def jloss(P, x, y):
            h = jnp.tanh(x @ P["W1"] + P["b1"])
            logits = h @ P["W2"] + P["b2"]
            return -jnp.sum(y * jax.nn.log_softmax(logits, axis=-1))
        jf = jax.jit(jax.vmap(jax.grad(jloss), in_axes=(None, 0, 0)))
        Pj, Xj, Yj = jax.device_put(P), jax.device_put(X), jax.device_put(Y)
        impls["jax"] = lambda: jax.block_until_ready(jf(Pj, Xj, Yj))
    return impls, by_hand()


def logreg_hvp(n, d, mods):
    """A Hessian-vector product of the logistic-regression loss: jvp(grad(loss)) (forward over reverse)."""
    r = np.random.default_rng(4)
    X = r.standard_normal((n, d))
    y = (X @ r.standard_normal(d) > 0).astype(np.float64)
    w, v = r.standard_normal(d) * 0.1, r.standard_normal(d)
    impls = {}

    def by_hand():
        p = _expit(X @ w)
        return X.T @ (p * (1 - p) * (X @ v)) / n
    impls["numpy"] = by_hand

    def loss(w, X, y):
        z = X @ w
        return np.mean(np.logaddexp(0.0, z) - y * z)
    f = tj.jit(lambda w, v, X, y: tj.jvp(lambda w: tj.grad(loss)(w, X, y), (w,), (v,))[1])
    impls["tracejit"] = lambda: f(w, v, X, y)
    if mods.get("jax"):
        jax, jnp = mods["jax"], __import__("jax.numpy").numpy

        def jloss(w, X, y):
            z = X @ w
            return jnp.mean(jnp.logaddexp(0.0, z) - y * z)
        jf = jax.jit(lambda w, v, X, y: jax.jvp(lambda w: jax.grad(jloss)(w, X, y), (w,), (v,))[1])
        args = [jax.device_put(a) for a in (w, v, X, y)]
        impls["jax"] = lambda: jax.block_until_ready(jf(*args))
    return impls, by_hand()


def jacfwd_100(mods):
    """The 100 x 100 Jacobian of x -> tanh(A @ x) * x + sin(x) by forward mode (jacfwd)."""
    r = np.random.default_rng(5)
    A = r.standard_normal((100, 100)) / 10
    x = r.standard_normal(100)
    impls = {}

    def by_hand():
        t = np.tanh(A @ x)
        return (1 - t * t)[:, None] * A * x[:, None] + np.diag(t + np.cos(x))
    impls["numpy"] = by_hand
    f = tj.jit(tj.jacfwd(lambda x: np.tanh(A @ x) * x + np.sin(x)))
    impls["tracejit"] = lambda: f(x)
    if mods.get("jax"):
        jax, jnp = mods["jax"], __import__("jax.numpy").numpy
        jf = jax.jit(jax.jacfwd(lambda x: jnp.tanh(A @ x) * x + jnp.sin(x)))
        xj = jax.device_put(x)
        impls["jax"] = lambda: jax.block_until_ready(jf(xj))
    return impls, by_hand()


# ------------------------------------------------------------------------------------------------ checking
def _flatten(res):
    if isinstance(res, dict):
        return [np.asarray(res[k]) for k in sorted(res)]
    if isinstance(res, (tuple, list)):
        out = []
        for r in res:
            out += _flatten(r)
        return out
    return [np.asarray(res)]


def agrees(res, ref, rtol):
    a, b = _flatten(res), _flatten(ref)
    if len(a) != len(b):
        return False
    return all(x.shape == y.shape and np.allclose(x, y, rtol=rtol, atol=rtol * (1 + np.abs(y).max(initial=0)))
               for x, y in zip(a, b))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--only", default=None, help="run only the workloads whose name contains this text")
    ap.add_argument("--interleave", action="store_true", help="time the columns in alternating rounds")
    args = ap.parse_args(argv)
    repeats = args.repeats or (5 if args.quick else 15)
    mods = {p: _import(p) for p in PEERS[1:]}
    n_sig = 10 ** 6 if args.quick else 10 ** 7
    n_lr = 10_000 if args.quick else 100_000
    workloads = [
        (f"sigmoid_grad 10^{int(np.log10(n_sig))} f64", lambda: sigmoid_grad(n_sig, mods), 1e-9),
        (f"logreg_step {n_lr}x100 f64", lambda: logreg_step(n_lr, 100, mods), 1e-8),
        ("mlp_step 256x784 f32", lambda: mlp_step(256, mods), 2e-3),
        ("per_example_grads vmap(grad) 256x784 f32", lambda: per_example_grads(256, mods), 2e-3),
        (f"logreg_hvp jvp(grad) {n_lr}x100 f64", lambda: logreg_hvp(n_lr, 100, mods), 1e-8),
        ("jacfwd 100->100 f64", lambda: jacfwd_100(mods), 1e-9),
    ]
    if args.only:
        workloads = [w for w in workloads if args.only in w[0]]
        if not workloads:
            ap.error(f"--only {args.only!r} matches no workload")
    cols = ["tracejit"] + PEERS
    print(f"tracejit backend: {_backend()}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          f"(compare only side by side); peers: " +
          ", ".join(f"{p}={'yes' if p == 'numpy' or mods.get(p) else 'n/a'}" for p in PEERS))
    print("| workload | " + " | ".join(f"{c} ms" for c in cols) + " | " +
          " | ".join(f"{p}/tracejit" for p in PEERS) + " |")
    print("|---" * (1 + len(cols) + len(PEERS)) + "|")
    failed = False
    for name, make, rtol in workloads:
        try:
            impls, ref = make()
        except Exception as e:  # a peer's setup failing must not stop the run
            print(f"| {name} | setup failed: {type(e).__name__}: {e} |")
            failed = True
            continue
        times, runnable = {}, {}
        for c in cols:
            fn = impls.get(c)
            if fn is None:
                times[c] = None
                continue
            try:
                if not agrees(fn(), ref, rtol):
                    times[c] = "wrong"
                    failed = True
                    continue
                if args.interleave:
                    runnable[c] = fn
                else:
                    times[c] = median_ms(fn, repeats if c != "autograd" else max(3, repeats // 3))
            except Exception as e:
                times[c] = f"error: {type(e).__name__}"
                failed = True
        times.update(interleaved_medians_ms(runnable, repeats))
        cells = [_fmt(times[c]) for c in cols]
        t0 = times["tracejit"]
        ratios = [f"{times[p] / t0:.2f}x" if isinstance(times[p], float) and isinstance(t0, float) else "n/a"
                  for p in PEERS]
        print(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |", flush=True)
    return 1 if failed else 0


def _fmt(t):
    if t is None:
        return "n/a"
    if isinstance(t, str):
        return t
    return f"{t:.3g}"


def _backend():
    try:
        from tracejit.backends.cpu import module  # noqa: F401
        return "llvm"
    except ImportError:
        return "numpy interpreter"


if __name__ == "__main__":
    sys.exit(main())
