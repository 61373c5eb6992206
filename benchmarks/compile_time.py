"""Compile time of real programs: first call, second call and steady state, each point in a fresh process.

    python benchmarks/compile_time.py                       # tanh MLP depths 5..40, tracejit beside JAX
    python benchmarks/compile_time.py --depths 5,10,20,40,80
    python benchmarks/compile_time.py --only life,chain20,lenet   # other programs (see PROGRAMS)

Each point runs in a new Python process with a fresh, empty disk cache, so nothing compiled earlier helps. The
"second" column is what a user feels right after the first call (a synchronous recompile would show here);
"steady" is the median of later calls, after the optimized tier is in place.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

# The child: builds one program, times its calls and prints one JSON line. Run as `python -c CHILD impl prog n`.
CHILD = r'''
import json, sys, time
impl, prog, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
t_import = time.perf_counter()
import numpy as onp
if impl == "jax":
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as np
    jit, grad = jax.jit, jax.grad
    block = lambda x: jax.block_until_ready(x)
else:
    import numpy as np
    import tracejit as tj
    jit, grad = tj.jit, tj.grad
    block = lambda x: x
t_import = time.perf_counter() - t_import
rng = onp.random.default_rng(0)

if prog == "mlp":
    def loss(ws, x):
        h = x
        for w in ws:
            h = np.tanh(h @ w) + 0.1 * np.exp(-h * h)
        return np.sum(h * h)
    f = jit(grad(loss))
    args = ([rng.standard_normal((64, 64)) / 8 for _ in range(n)], rng.standard_normal((64, 64)))
elif prog == "chain20":  # the 20-primitive expression of benchmarks/run.py (its first_call workload)
    sys.path.insert(0, "benchmarks")
    import run as bench
    f = jit(bench.make_function(("x", "y"), bench.CHAIN20 + ["return r"], {**bench.namespace_of(np), "C": 0.75}))
    args = (rng.standard_normal(n), rng.standard_normal(n))
elif prog == "life":
    sys.path.insert(0, "examples")
    from numpy_programs import life_step
    f = jit(life_step)
    args = ((rng.random((n, n)) < 0.3).astype(onp.int64),)
elif prog == "lenet" and impl == "tracejit":  # the Theano issue's LeNet training step (theano.function)
    sys.path.insert(0, "examples")
    from theano_lenet import build, synthetic_digits
    f, _ = build(rng, batch=n)
    args = synthetic_digits(n, rng)
elif prog == "lenet":  # the same network and step written with jax.lax (dropout from a key per call)
    from jax import lax
    def conv_pool(h, w, b):
        c = lax.conv_general_dilated(h, w, (1, 1), "VALID")
        p = lax.reduce_window(c, -np.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        return np.tanh(p + b[None, :, None, None])
    def loss(ps, x, y, key):
        h = conv_pool(conv_pool(x, ps[0], ps[1]), ps[2], ps[3]).reshape(x.shape[0], -1)
        hid = np.tanh(h @ ps[4] + ps[5])
        hid = hid * jax.random.bernoulli(key, 0.8, hid.shape) / 0.8
        z = hid @ ps[6] + ps[7]
        logp = z - jax.scipy.special.logsumexp(z, axis=1, keepdims=True)
        return -np.mean(logp[np.arange(x.shape[0]), y])
    @jax.jit
    def step(ps, x, y, key):
        g = jax.grad(loss)(ps, x, y, key)
        return [p - 0.1 * gp for p, gp in zip(ps, g)]
    u = lambda *s: rng.uniform(-0.1, 0.1, s)
    ps = [u(8, 1, 5, 5), onp.zeros(8), u(16, 8, 5, 5), onp.zeros(16), u(256, 64), onp.zeros(64), u(64, 10), onp.zeros(10)]
    sys.path.insert(0, "examples")
    from theano_lenet import synthetic_digits
    xb, yb = synthetic_digits(n, rng)
    keys = iter(jax.random.split(jax.random.PRNGKey(0), 64))
    f = lambda x, y: step(ps, x, y, next(keys))
    args = (xb, yb)
else:
    raise SystemExit(f"unknown program {prog}")

def timed():
    t0 = time.perf_counter()
    block(f(*args))
    return time.perf_counter() - t0
cpu0 = time.process_time()
first = timed()
first_cpu = time.process_time() - cpu0  # all threads: on a loaded machine, steadier than the wall clock
second = timed()
time.sleep(0.0)
# steady state: once the optimized tier is in (tracejit compiles it in the background), the median of many calls
if impl == "tracejit":
    exes = [e.exe for es in f._specs.values() for e in es] if hasattr(f, "_specs") else [e[0] for e in f._execs.values()]
    for exe in exes:
        getattr(exe, "wait", lambda: None)()
for _ in range(3):
    timed()
runs = sorted(timed() for _ in range(21))
print(json.dumps({"import": t_import, "first": first, "first_cpu": first_cpu, "second": second,
                  "steady": runs[len(runs) // 2]}))
'''

PROGRAMS = {"mlp": "jit(grad(loss)) of a depth-n tanh MLP, 64x64 layers",
            "chain20": "the 20-primitive elementwise expression of benchmarks/run.py, n elements",
            "life": "Game of Life step (examples/numpy_programs.py), n x n int64 board",
            "lenet": "LeNet training step (examples/theano_lenet.py: theano.function with updates; JAX: lax.conv), "
                     "batch n"}


def run_point(impl, prog, n, timeout=900):
    """One fresh process: its JSON line, or {'error': ...}."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="tj-compile-time-") as d:
        env["TRACEJIT_CACHE_DIR"] = d  # an empty disk cache: a cold compile
        # the libraries' own bytecode is cached, as in a user's install (JAX's site-packages have theirs): without
        # it every fresh process compiles tracejit's modules from source, ~0.5 s that is no compile of the program
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.setdefault("JAX_PLATFORMS", "cpu")
        try:
            p = subprocess.run([sys.executable, "-c", CHILD, impl, prog, str(n)], env=env, capture_output=True,
                               text=True, timeout=timeout, cwd=os.path.dirname(os.path.dirname(
                                   os.path.abspath(__file__))))
        except subprocess.TimeoutExpired:
            return {"error": f"timeout {timeout}s"}
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def fmt(sec):
    if sec is None:
        return "-"
    return f"{sec:.2f} s" if sec >= 1 else f"{sec * 1e3:.1f} ms" if sec >= 1e-3 else f"{sec * 1e6:.0f} us"


def _print_goals(rows):
    """The issue's goals for this program: tracejit's first call at most 1/3 of JAX's, at most 2.2x more per
    doubling of the size from the second point on, and the second call within 2x the steady state."""
    tj = {r["n"]: r for r in rows if r["impl"] == "tracejit"}
    jx = {r["n"]: r for r in rows if r["impl"] == "jax"}
    notes = []
    for n, r in tj.items():
        if n in jx:
            ratio = r["first"] / jx[n]["first"]
            notes.append(f"n={n}: first call {ratio:.2f}x JAX's ({'ok' if ratio <= 1 / 3 else 'miss: goal 0.33x'})")
        slow = r["second"] / max(r["steady"], 1e-9)
        if slow > 2:
            notes.append(f"n={n}: second call {slow:.1f}x the steady state (goal 2x)")
    ns = sorted(tj)
    for a, b in zip(ns[1:], ns[2:]):
        growth = (tj[b]["first"] / tj[a]["first"]) ** (1 / max(math.log2(b / a), 1e-9))
        notes.append(f"{a}->{b}: first call x{growth:.2f} per doubling ({'ok' if growth <= 2.2 else 'miss: goal 2.2'})")
    for line in notes:
        print(f"- {line}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depths", default="5,10,20,40", help="MLP depths (the issue's table goes to 80)")
    ap.add_argument("--only", default="mlp", help=f"comma-separated programs among {', '.join(PROGRAMS)}")
    ap.add_argument("--impls", default="tracejit,jax")
    ap.add_argument("--json", help="also write the rows here")
    a = ap.parse_args(argv)
    sizes = {"mlp": [int(d) for d in a.depths.split(",")], "chain20": [1000], "life": [64], "lenet": [50]}
    impls = a.impls.split(",")
    rows = []
    for prog in a.only.split(","):
        print(f"\n## {PROGRAMS[prog]}")
        head = "| n | " + " | ".join(f"{i} 1st | {i} 2nd | {i} steady" for i in impls) + " |"
        print(head)
        print("|" + "---:|" * (1 + 3 * len(impls)))
        for n in sizes[prog]:
            cells = [str(n)]
            for impl in impls:
                if impl == "jax" and prog == "life":  # numpy's in-place writes: no jax.numpy equivalent as written
                    cells += ["n/a", "", ""]
                    continue
                r = run_point(impl, prog, n)
                rows.append({"impl": impl, "program": prog, "n": n, **r})
                if "error" in r:
                    cells += [r["error"][:40], "", ""]
                else:
                    cells += [fmt(r["first"]), fmt(r["second"]), fmt(r["steady"])]
            print("| " + " | ".join(cells) + " |", flush=True)
        _print_goals([r for r in rows if r["program"] == prog and "error" not in r])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
