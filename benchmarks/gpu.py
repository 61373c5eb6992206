"""tracejit's CUDA backend beside CuPy (unfused and ``cupy.fuse``), JAX, PyTorch eager and ``torch.compile``.

    python benchmarks/gpu.py                    # all workloads, full sizes (needs a real NVIDIA GPU)
    python benchmarks/gpu.py --quick            # 1/16 of the sizes, fewer repeats
    python benchmarks/gpu.py --json out.json    # also write the rows as JSON

Workloads (float32): logistic ``1/(1+exp(-x))`` on 10^8 elements; the three-output difference
``d = x - y; d, |d|, d**2`` on 8192x8192; a row softmax on 8192x8192; one MLP training step (256x784 -> 256 tanh
-> 10, softmax cross-entropy, SGD). Inputs live on the device; results stay there. Each peer runs only when it
can be imported. Times are medians of device-event timings (CUDA events on the default stream; JAX, which runs
on its own streams, is timed with ``block_until_ready`` and the wall clock), all in one run. Effective bandwidth
is the bytes a workload must move (inputs read once, outputs written once) over its time, reported as a fraction
of a device-to-device copy measured in the same run. Every result is checked against tracejit's.

Without a GPU (or under NUMBA_ENABLE_CUDASIM) it prints why and exits with status 0.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def gpu_or_reason():
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return "NUMBA_ENABLE_CUDASIM is set: the simulator says nothing about GPU speed"
    try:
        from numba import cuda
    except Exception as e:
        return f"numba.cuda cannot be imported ({e}); pip install 'tracejit[cuda]'"
    try:
        if not cuda.is_available():
            return "numba.cuda.is_available() is False (no NVIDIA GPU or driver; check nvidia-smi)"
    except Exception as e:
        return f"the CUDA driver failed to initialize ({e})"
    return None


# ------------------------------------------------------------------------------------------------ timing
def time_events(fn, reps, warmup=2):
    """Median milliseconds of ``fn()`` between two CUDA events on the default stream."""
    from numba import cuda
    for _ in range(warmup):
        fn()
    cuda.synchronize()
    out = []
    for _ in range(reps):
        start, stop = cuda.event(), cuda.event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        out.append(cuda.event_elapsed_time(start, stop))
    return statistics.median(out)


def time_wall(fn, reps, warmup=2):
    """Median milliseconds of ``fn()`` (which must block until its results are ready)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return statistics.median(out)


def copy_bandwidth(nbytes, reps):
    """Bytes read + written per second by a device-to-device copy of ``nbytes``."""
    from numba import cuda
    a = cuda.device_array(nbytes // 4, np.float32)
    b = cuda.device_array(nbytes // 4, np.float32)
    ms = time_events(lambda: b.copy_to_device(a), reps)
    return 2 * nbytes / (ms * 1e-3)


# ------------------------------------------------------------------------------------------------ workloads
def logistic(xp):
    return lambda x: 1 / (1 + xp.exp(-x))


def difference(xp):
    def f(x, y):
        d = x - y
        return d, xp.abs(d), d ** 2
    return f


def softmax(xp):
    def f(x):
        e = xp.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return f


def mlp_loss(xp, logsumexp):
    def loss(W1, b1, W2, b2, X, Y):
        h = xp.tanh(X @ W1 + b1)
        logits = h @ W2 + b2
        return -xp.mean(xp.sum((logits - logsumexp(logits)) * Y, axis=1))
    return loss


def make_inputs(quick):
    rng = np.random.default_rng(0)
    k = 4 if quick else 1
    n = 10 ** 8 // (k * k)
    side = 8192 // k
    X = rng.standard_normal((256, 784)).astype(np.float32)
    return {
        "logistic": ((rng.standard_normal(n, np.float32),), 2 * 4 * n),
        "difference": ((rng.standard_normal((side, side), np.float32), rng.standard_normal((side, side), np.float32)),
                       5 * 4 * side * side),
        "softmax": ((rng.standard_normal((side, side), np.float32),), 2 * 4 * side * side),
        "mlp_step": (((rng.standard_normal((784, 256)) * 0.05).astype(np.float32), np.zeros(256, np.float32),
                      (rng.standard_normal((256, 10)) * 0.05).astype(np.float32), np.zeros(10, np.float32), X,
                      np.eye(10, dtype=np.float32)[rng.integers(0, 10, 256)]), None),
    }


# ------------------------------------------------------------------------------------------------ implementations
def tracejit_impls():
    import tracejit as tj
    from numba import cuda

    def lse(z):
        m = z.max(axis=1, keepdims=True)
        return m + np.log(np.sum(np.exp(z - m), axis=1, keepdims=True))
    vg = tj.value_and_grad(mlp_loss(np, lse), argnums=(0, 1, 2, 3))

    def step(W1, b1, W2, b2, X, Y):
        loss, grads = vg(W1, b1, W2, b2, X, Y)
        return (loss,) + tuple(p - 0.1 * g for p, g in zip((W1, b1, W2, b2), grads))
    fns = {"logistic": logistic(np), "difference": difference(np), "softmax": softmax(np), "mlp_step": step}
    return {name: (tj.jit(f, device="cuda"), cuda.to_device) for name, f in fns.items()}, time_events


def cupy_impls():
    import cupy as cp
    out = {"logistic": (logistic(cp), cp.asarray), "difference": (difference(cp), cp.asarray),
           "softmax": (softmax(cp), cp.asarray)}
    fused = {"logistic": (cp.fuse(logistic(cp)), cp.asarray), "difference": (cp.fuse(difference(cp)), cp.asarray)}
    return {"cupy": (out, time_events), "cupy.fuse": (fused, time_events)}


def jax_impls():
    import jax
    import jax.numpy as jnp
    if not any(d.platform == "gpu" for d in jax.devices()):
        raise RuntimeError("JAX sees no GPU")
    lse = lambda z: jax.nn.logsumexp(z, axis=1, keepdims=True)  # noqa: E731
    vg = jax.value_and_grad(mlp_loss(jnp, lse), argnums=(0, 1, 2, 3))

    def step(W1, b1, W2, b2, X, Y):
        loss, grads = vg(W1, b1, W2, b2, X, Y)
        return (loss,) + tuple(p - 0.1 * g for p, g in zip((W1, b1, W2, b2), grads))
    fns = {"logistic": logistic(jnp), "difference": difference(jnp), "softmax": softmax(jnp), "mlp_step": step}

    def blocking(f):
        jf = jax.jit(f)
        return lambda *a: jax.block_until_ready(jf(*a))
    return {name: (blocking(f), jax.device_put) for name, f in fns.items()}, time_wall


def torch_impls(compiled):
    import torch
    if not torch.cuda.is_available():
        raise RuntimeError("PyTorch sees no GPU")
    put = lambda a: torch.as_tensor(a, device="cuda")  # noqa: E731

    class TorchNS:
        exp, abs, tanh, sum, mean = torch.exp, torch.abs, torch.tanh, torch.sum, torch.mean

    def t_softmax(x):
        e = torch.exp(x - x.amax(dim=1, keepdim=True))
        return e / e.sum(dim=1, keepdim=True)

    def step(W1, b1, W2, b2, X, Y):
        ps = [p.detach().requires_grad_() for p in (W1, b1, W2, b2)]
        h = torch.tanh(X @ ps[0] + ps[1])
        logits = h @ ps[2] + ps[3]
        loss = -torch.mean(torch.sum((logits - torch.logsumexp(logits, 1, keepdim=True)) * Y, 1))
        loss.backward()
        with torch.no_grad():
            return (loss,) + tuple(p - 0.1 * p.grad for p in ps)
    fns = {"logistic": logistic(TorchNS), "difference": difference(TorchNS), "softmax": t_softmax, "mlp_step": step}
    if compiled:
        fns = {k: torch.compile(v) for k, v in fns.items()}
    return {name: (f, put) for name, f in fns.items()}, time_events


def peers():
    """name -> (workload -> (callable, put), timer), skipping what cannot be imported."""
    out, skipped = {}, {}
    try:
        out["tracejit"] = tracejit_impls()
    except Exception as e:
        skipped["tracejit"] = repr(e)
    for name, make in [("cupy", cupy_impls), ("jax", jax_impls), ("torch", lambda: torch_impls(False)),
                       ("torch.compile", lambda: torch_impls(True))]:
        try:
            got = make()
        except Exception as e:
            skipped[name] = f"{type(e).__name__}: {e}"
            continue
        if name == "cupy":
            out.update(got)
        else:
            out[name] = got
    return out, skipped


def to_host(x):
    if hasattr(x, "copy_to_host"):
        return x.copy_to_host()
    if hasattr(x, "get"):
        return x.get()
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def agree(got, want):
    got = got if isinstance(got, (tuple, list)) else (got,)
    want = want if isinstance(want, (tuple, list)) else (want,)
    return all(np.allclose(to_host(g), to_host(w), rtol=1e-3, atol=1e-4) for g, w in zip(got, want))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    reason = gpu_or_reason()
    if reason:
        print(f"benchmarks/gpu.py: no GPU to measure on: {reason}. Nothing was timed.")
        return 0
    from numba import cuda
    reps = 5 if args.quick else 20
    dev = cuda.get_current_device()
    copy_bw = copy_bandwidth(2 ** 28 if args.quick else 2 ** 30, reps)
    print(f"# {dev.name.decode() if isinstance(dev.name, bytes) else dev.name}: device-to-device copy "
          f"{copy_bw / 1e9:.0f} GB/s (read + write)")
    impls, skipped = peers()
    for name, why in skipped.items():
        print(f"# skipped {name}: {why}")
    rows = []
    for wname, (host_args, nbytes) in make_inputs(args.quick).items():
        ref = None
        for pname, (table, timer) in impls.items():
            if wname not in table:
                continue
            fn, put = table[wname]
            try:
                dev_args = [put(a) for a in host_args]
                result = fn(*dev_args)
                ok = True
                if ref is None:
                    ref = result
                else:
                    ok = agree(result, ref)
                ms = timer(lambda: fn(*dev_args), reps)
            except Exception as e:
                print(f"{wname:12s} {pname:14s} failed: {type(e).__name__}: {str(e)[:200]}")
                continue
            frac = (nbytes / (ms * 1e-3)) / copy_bw if nbytes else None
            rows.append({"workload": wname, "impl": pname, "ms": ms, "copy_fraction": frac, "matches": ok})
            eff = f"{frac * 100:5.1f}% of copy" if frac is not None else ""
            print(f"{wname:12s} {pname:14s} {ms:9.3f} ms  {eff}{'' if ok else '  RESULT DIFFERS'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"copy_bytes_per_s": copy_bw, "rows": rows, "skipped": skipped}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
