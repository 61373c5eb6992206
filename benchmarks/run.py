"""tracejit beside numpy, numexpr, numba, JAX and PyTensor: one run, one table.

    python benchmarks/run.py                 # every workload, full sizes (a few minutes)
    python benchmarks/run.py --quick         # small sizes, few repeats (well under 2 minutes)
    python benchmarks/run.py --only logistic_f64,dispatch
    python benchmarks/run.py --list          # workload names and what they measure

Each workload is written once in numpy style (``BODY`` lines over names such as ``exp`` and ``where``) and turned
into every implementation that fits it: numpy itself, ``tj.jit``, ``jax.jit`` over ``jax.numpy``, PyTensor's
``function`` over symbolic inputs, a numexpr string, and a numba kernel written as an explicit ``prange`` loop
(compiled once with ``parallel=True`` and once without). Every result is checked against numpy's; every cell is
guarded, so an implementation that fails prints its error in its cell and the run goes on. See README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

IMPLS = ["tracejit", "numpy", "numexpr", "numba-par", "numba", "jax", "pytensor", "pytensor-c"]
PEERS = IMPLS[1:]


# ----------------------------------------------------------------------------------------------- settings
@dataclass
class Settings:
    """Sizes and repeat counts: --quick shrinks both."""
    quick: bool
    repeats: int
    warmup: int
    min_sample_s: float        # a steady-state sample loops a call until it lasts at least this long
    first_call_repeats: int
    train_calls: int
    cache_pairs: int
    cell_budget_s: float       # slow cells take fewer samples (never under 3) to stay within about this time

    @classmethod
    def make(cls, quick, repeats=None):
        if quick:
            s = cls(True, 3, 1, 0.01, 3, 1000, 1, 2.0)
        else:
            s = cls(False, 11, 2, 0.05, 5, 10_000, 3, 10.0)
        if repeats:
            s.repeats = repeats
            s.first_call_repeats = repeats
        return s

    def size(self, full, quick):
        return quick if self.quick else full


# ----------------------------------------------------------------------------------------------- the peers
class Peers:
    """Imports each peer once; a missing one becomes an 'n/a' column, never a crash."""

    def __init__(self):
        self.mods, self.versions, self.missing = {}, {}, {}
        for name in ("numexpr", "numba", "jax", "pytensor", "tracejit"):
            try:
                self.mods[name] = self._import(name)
                self.versions[name] = getattr(self.mods[name], "__version__", "?")
            except Exception as e:  # noqa: BLE001 - any import failure means "not available"
                self.missing[name] = f"{type(e).__name__}: {e}"

    @staticmethod
    def _import(name):
        if name == "jax":
            import jax
            jax.config.update("jax_enable_x64", True)     # float64 stays float64, as in numpy
            return jax
        if name == "pytensor":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pytensor
                import pytensor.tensor  # noqa: F401
            return pytensor
        return __import__(name)

    def has(self, name):
        return name in self.mods

    def tracejit_backend(self):
        if not self.has("tracejit"):
            return "not importable"
        try:  # ask the runtime what it compiled a tiny function into: codegen falls back to the interpreter
            exe = self.mods["tracejit"].jit(lambda x: x + 1).lower(np.ones(3)).executable
        except Exception as e:  # noqa: BLE001
            return f"unknown ({type(e).__name__}: {e})"
        kind = "numpy interpreter" if "Interpret" in type(exe).__name__ else "compiled"
        return f"{kind} ({type(exe).__module__}.{type(exe).__name__})"


# ----------------------------------------------------------------------------------------------- function builders
def make_function(params, lines, namespace, name="bench_fn"):
    """A fresh function object from source lines: a new object each call, so nothing is cached by identity."""
    src = f"def {name}({', '.join(params)}):\n" + "".join(f"    {ln}\n" for ln in lines)
    glb = dict(namespace)
    exec(compile(src, f"<benchmarks/run.py:{name}>", "exec"), glb)
    return glb[name]


_XP_NAMES = ("exp", "tanh", "sqrt", "abs", "log1p", "maximum", "where", "sin", "cos")


def namespace_of(xp):
    """The names a BODY may use, bound to numpy, jax.numpy or pytensor.tensor."""
    return {n: getattr(xp, n) for n in _XP_NAMES}


def scalar_namespace(numba):
    """The same names for a numba loop body over scalars."""
    def where(c, a, b):
        return a if c else b
    return {"exp": math.exp, "tanh": math.tanh, "sqrt": math.sqrt, "abs": abs, "log1p": math.log1p,
            "maximum": max, "sin": math.sin, "cos": math.cos, "where": numba.njit(where),
            "np": np, "prange": numba.prange}


# ----------------------------------------------------------------------------------------------- workloads
@dataclass
class Workload:
    name: str
    title: str
    unit: str                                  # "ms" or "us" per call
    inputs: Callable                           # Settings -> list of arrays
    body: list | None = None                   # numpy-style source lines over PARAMS and the _XP_NAMES
    params: tuple = ("x",)
    numexpr: tuple | None = None               # numexpr strings: "name = expr" keeps a temporary, "expr" is an output
    loop: Callable | None = None               # (numba, consts) -> numba kernel: an explicit prange loop
    kind: str = "steady"                       # "steady", "first_call", "train" or "disk_cache"
    traffic: bool = True                       # effective bandwidth is meaningful
    memory: bool = False                       # peak memory of tracejit and numpy (tracemalloc)
    parallel_numba: bool = True                # False: the numba column only (the loop has nothing to split)
    consts: dict = field(default_factory=dict)  # extra names for BODY (the constant C of the 20-op chain)


def _rand(shape, dtype, lo=-4.0, hi=4.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(lo, hi, size=shape).astype(dtype)


# The fixed 20-primitive elementwise expression (the first-call and chain workloads). Primitives, as numpy names
# them: multiply, negative, exp, add, divide | subtract, tanh | absolute, add, sqrt | multiply, log1p | maximum |
# greater, negative, where | sin, cos, multiply, add.
CHAIN20_NUMEXPR = (  # numexpr has no CSE: reused values become temporaries, as a numexpr user writes it
    "s = 1.0 / (1.0 + exp(-(x * C)))",
    "t = tanh(x - y)",
    "w = maximum(sqrt(abs(t) + 1.0), log1p(s * s))",
    "where(x > y, w, -w) + sin(s) * cos(t)",
)
CHAIN20 = [
    "a = x * C",
    "s = 1.0 / (1.0 + exp(-a))",
    "t = tanh(x - y)",
    "u = sqrt(abs(t) + 1.0)",
    "v = log1p(s * s)",
    "w = maximum(u, v)",
    "z = where(x > y, w, -w)",
    "r = z + sin(s) * cos(t)",
]


def _chain_loop(numba, consts):
    """The numba kernel of CHAIN20: the same statements on scalars inside a prange loop."""
    c = consts["C"]
    lines = ["out = np.empty_like(X)", "for i in prange(X.size):", "    x = X[i]", "    y = Y[i]"]
    lines += ["    " + s for s in CHAIN20] + ["    out[i] = r", "return out"]
    return make_function(("X", "Y"), lines, {**scalar_namespace(numba), "C": c}, "chain20_loop")


def _loops(numba):
    """Hand-written numba kernels, one per workload, each an explicit prange loop allocating its output."""
    prange = numba.prange

    def logistic(x):
        out = np.empty_like(x)
        for i in prange(x.size):
            out[i] = 1.0 / (1.0 + math.exp(-x[i]))
        return out

    def add_one(x):
        out = np.empty_like(x)
        for i in prange(x.size):
            out[i] = x[i] + 1.0
        return out

    def matmul(x, y):
        return x @ y

    def softmax(x):
        n, m = x.shape
        out = np.empty_like(x)
        for i in prange(n):
            mx = x[i, 0]
            for j in range(1, m):
                mx = max(mx, x[i, j])
            s = 0.0
            for j in range(m):
                e = math.exp(x[i, j] - mx)
                out[i, j] = e
                s += e
            for j in range(m):
                out[i, j] /= s
        return out

    def diff3(x, y):
        xf, yf = x.reshape(-1), y.reshape(-1)
        d, a, q = np.empty_like(xf), np.empty_like(xf), np.empty_like(xf)
        for i in prange(xf.size):
            v = xf[i] - yf[i]
            d[i] = v
            a[i] = abs(v)
            q[i] = v * v
        return d.reshape(x.shape), a.reshape(x.shape), q.reshape(x.shape)

    def sum_sigmoid(x):
        s = 0.0
        for i in prange(x.size):
            s += 1.0 / (1.0 + math.exp(-x[i]))
        return s

    return {"logistic": logistic, "add_one": add_one, "matmul": matmul, "softmax": softmax, "diff3": diff3,
            "sum_sigmoid": sum_sigmoid}


def _hand_loop(name):
    return lambda numba, consts: _loops(numba)[name]


LOGISTIC = ["return 1 / (1 + exp(-x))"]


def workloads():
    n7 = lambda s: s.size(10**7, 10**6)  # noqa: E731
    return [
        Workload("logistic_f64", "logistic 1/(1+exp(-x)), float64", "ms",
                 lambda s: [_rand(n7(s), np.float64)], LOGISTIC, numexpr=("1 / (1 + exp(-x))",),
                 loop=_hand_loop("logistic"), memory=True),
        Workload("logistic_f32", "logistic 1/(1+exp(-x)), float32", "ms",
                 lambda s: [_rand(n7(s), np.float32)], LOGISTIC, numexpr=("1 / (1 + exp(-x))",),
                 loop=_hand_loop("logistic"), memory=True),
        Workload("dispatch", "dispatch: f(x) = x + 1 on 10 float64", "us",
                 lambda s: [_rand(10, np.float64)], ["return x + 1"], numexpr=("x + 1",),
                 loop=_hand_loop("add_one"), traffic=False),
        Workload("first_call", "first call (trace+passes+compile), 20-primitive expr", "ms",
                 lambda s: [_rand(1000, np.float64), _rand(1000, np.float64, seed=1)], CHAIN20 + ["return r"],
                 params=("x", "y"), numexpr=CHAIN20_NUMEXPR, loop=_chain_loop, kind="first_call",
                 traffic=False),
        Workload("matmul", "matmul float64 (n x n) @ (n x n)", "ms",
                 lambda s: [_rand((s.size(1024, 256),) * 2, np.float64),
                            _rand((s.size(1024, 256),) * 2, np.float64, seed=1)],
                 ["return x @ y"], params=("x", "y"), loop=_hand_loop("matmul"), traffic=False,
                 parallel_numba=False),
        Workload("softmax", "row softmax, float64 matrix", "ms",
                 lambda s: [_rand((s.size(4096, 1024),) * 2, np.float64)],
                 ["e = exp(x - x.max(axis=1, keepdims=True))", "return e / e.sum(axis=1, keepdims=True)"],
                 loop=_hand_loop("softmax"), memory=True),
        Workload("diff3", "d=x-y; (d, abs(d), d**2), float64 matrices", "ms",
                 lambda s: [_rand(s.size((4000, 2500), (1000, 1000)), np.float64),
                            _rand(s.size((4000, 2500), (1000, 1000)), np.float64, seed=1)],
                 ["d = x - y", "return d, abs(d), d ** 2"], params=("x", "y"),
                 numexpr=("x - y", "abs(x - y)", "(x - y) ** 2"), loop=_hand_loop("diff3"), memory=True),
        Workload("sum_sigmoid", "sum(sigmoid(x)), float64", "ms",
                 lambda s: [_rand(n7(s), np.float64)], ["return (1 / (1 + exp(-x))).sum()"],
                 numexpr=("sum(1 / (1 + exp(-x)))",), loop=_hand_loop("sum_sigmoid"), memory=True),
        Workload("chain20", "20-primitive elementwise chain, float64", "ms",
                 lambda s: [_rand(n7(s), np.float64), _rand(n7(s), np.float64, seed=1)], CHAIN20 + ["return r"],
                 params=("x", "y"), numexpr=CHAIN20_NUMEXPR, loop=_chain_loop, memory=True,
                 consts={"C": 0.75}),
        Workload("train_step", "Theano tutorial's training step: function + updates", "us",
                 lambda s: [np.array([1.0, 1.0], np.float32), np.float32(20.0)], kind="train", traffic=False),
        Workload("cache_cold", "first call, fresh process, cold on-disk cache", "ms",
                 lambda s: [], kind="disk_cache", traffic=False),
        Workload("cache_warm", "first call, fresh process, warm on-disk cache", "ms",
                 lambda s: [], kind="disk_cache", traffic=False),
    ]


# ----------------------------------------------------------------------------------------------- implementations
class NotApplicable(Exception):
    """This implementation does not exist for this workload (printed as '-')."""


class Unavailable(Exception):
    """The implementation exists but cannot run here (peer not installed, API not implemented yet): 'n/a'."""


def _nbytes(tree):
    if isinstance(tree, (tuple, list)):
        return sum(_nbytes(t) for t in tree)
    return np.asarray(tree).nbytes


def _to_numpy(tree):
    if isinstance(tree, (tuple, list)):
        return [_to_numpy(t) for t in tree]
    return np.asarray(tree)


def build(impl, w, args, peers, const=None):
    """A zero-argument callable running ``w`` on ``args`` with ``impl`` (compiled, warmed up by the caller)."""
    consts = dict(w.consts)
    if const is not None:
        consts["C"] = const
    if impl == "numpy":
        f = make_function(w.params, w.body, {**namespace_of(np), **consts})
        return lambda: f(*args)
    if impl == "tracejit":
        tj = _need(peers, "tracejit")
        f = tj.jit(make_function(w.params, w.body, {**namespace_of(np), **consts}))
        return lambda: f(*args)
    if impl == "numexpr":
        ne = _need(peers, "numexpr")
        if w.numexpr is None:
            raise NotApplicable
        exprs = [re.sub(r"\bC\b", repr(consts["C"]), e) if "C" in consts else e for e in w.numexpr]
        return lambda: _numexpr_program(ne, exprs, dict(zip(w.params, args)))
    if impl in ("numba", "numba-par"):
        numba = _need(peers, "numba")
        if impl == "numba-par" and not w.parallel_numba:
            raise NotApplicable
        if w.loop is None:
            raise NotApplicable
        kernel = w.loop(numba, consts)
        f = numba.njit(parallel=(impl == "numba-par"))(kernel)
        return lambda: f(*args)
    if impl == "jax":
        jax = _need(peers, "jax")
        import jax.numpy as jnp
        f = jax.jit(make_function(w.params, w.body, {**namespace_of(jnp), **consts}))
        jargs = [jax.device_put(a) for a in args]
        return lambda: jax.block_until_ready(f(*jargs))
    if impl in ("pytensor", "pytensor-c"):
        pytensor = _need(peers, "pytensor")
        import pytensor.tensor as pt
        syms = [pt.tensor(name=p, dtype=str(a.dtype), shape=(None,) * a.ndim) for p, a in zip(w.params, args)]
        out = make_function(w.params, w.body, {**namespace_of(pt), **consts})(*syms)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = pytensor.function(syms, list(out) if isinstance(out, tuple) else out,
                                  mode="CVM" if impl == "pytensor-c" else None)
        return lambda: f(*args)
    raise ValueError(impl)


def _numexpr_program(ne, exprs, local):
    """Evaluate numexpr strings in order: ``name = expr`` binds a temporary, a bare expression is an output."""
    outs = []
    for e in exprs:
        target, _, expr = e.partition("=") if re.match(r"^\s*\w+\s*=[^=]", e) else ("", "", e)
        val = ne.evaluate(expr.strip(), local_dict=local)
        if target:
            local[target.strip()] = val
        else:
            outs.append(val)
    return outs[0] if len(outs) == 1 else tuple(outs)


def _need(peers, name):
    if name == "tracejit" and not peers.has(name):
        raise RuntimeError(f"tracejit not importable ({peers.missing.get(name, '')})")
    if not peers.has(name):
        raise Unavailable(f"{name} not importable ({peers.missing.get(name, '')})")
    return peers.mods[name]


# ------------------------------------------------------------------------------------------ the tutorial's train step
TRAIN_STEPS_CHECKED = 10


def train_reference(x, target, steps):
    """The tutorial's loop in plain numpy: y = sum(x*W); W -= 0.1 * d(target - y)^2/dW."""
    W = np.array([0.2, 0.7])
    outs = []
    for _ in range(steps):
        y = float(np.sum(x * W))
        outs.append(y)
        W = W - 0.1 * (-2.0 * (target - y) * x)
    return np.array(outs)


def build_train(impl, x, target, peers):
    if impl == "tracejit":
        tj = _need(peers, "tracejit")
        T = tj.tensor
        if not hasattr(T, "fvector"):
            raise Unavailable("tracejit.tensor.fvector not implemented yet")
        xs, ts = T.fvector("x"), T.fscalar("target")
        W = tj.shared(np.asarray([0.2, 0.7]), "W")
        y = (xs * W).sum()
        cost = T.sqr(ts - y)
        gW = T.grad(cost, [W])[0]
        f = tj.function([xs, ts], y, updates=[(W, W - (0.1 * gW))])
    elif impl in ("pytensor", "pytensor-c"):
        pytensor = _need(peers, "pytensor")
        import pytensor.tensor as pt
        xs, ts = pt.fvector("x"), pt.fscalar("target")
        W = pytensor.shared(np.asarray([0.2, 0.7]), "W")
        y = (xs * W).sum()
        cost = pt.sqr(ts - y)
        gW = pytensor.grad(cost, [W])[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = pytensor.function([xs, ts], y, updates=[(W, W - (0.1 * gW))],
                                  mode="CVM" if impl == "pytensor-c" else None)
    else:
        raise NotApplicable
    return lambda: f(x, target)


# ----------------------------------------------------------------------------------------------- timing and checks
def time_steady(thunk, st):
    """Median seconds per call after warm-up; each sample loops until it lasts ``min_sample_s``; slow calls get
    fewer samples (at least 3) so that one cell takes about ``cell_budget_s``."""
    for _ in range(st.warmup):
        thunk()
    number = 1
    while True:  # calibrate on loops, not on one call: one lucky fast call must not make every sample huge
        t0 = time.perf_counter()
        for _ in range(number):
            thunk()
        elapsed = time.perf_counter() - t0
        if elapsed >= st.min_sample_s / 4 or number >= 10**6:
            break
        number *= 10
    per_call = max(elapsed / number, 1e-9)
    number = max(1, math.ceil(st.min_sample_s / per_call))
    repeats = max(min(3, st.repeats), min(st.repeats, int(st.cell_budget_s / (number * per_call))))
    samples = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(number):
                thunk()
            samples.append((time.perf_counter() - t0) / number)
    finally:
        gc.enable()
    return statistics.median(samples)


def time_calls(thunk, calls, repeats):
    """Median seconds per call over ``repeats`` samples of ``calls`` calls each."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            thunk()
        samples.append((time.perf_counter() - t0) / calls)
    return statistics.median(samples)


def peak_memory(thunk):
    """Bytes allocated at the peak of one call (output included), as numpy reports them to tracemalloc.

    The result of a first call is kept alive meanwhile, as a caller that stores results does: otherwise
    tracejit hands the measured call the buffer the previous call returned and the peak would read 0.
    """
    held = thunk()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = thunk()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del out, held
    return peak - base


def compare(ref, got):
    """'' when ``got`` matches numpy's ``ref``; otherwise what differs (dtype-aware tolerances)."""
    ref, got = _to_numpy(ref), _to_numpy(got)
    if isinstance(ref, list) != isinstance(got, list):
        return f"structure: expected {'a sequence' if isinstance(ref, list) else 'one array'}"
    if isinstance(ref, list):
        if len(ref) != len(got):
            return f"{len(got)} outputs, expected {len(ref)}"
        for i, (r, g) in enumerate(zip(ref, got)):
            msg = compare(r, g)
            if msg:
                return f"output {i}: {msg}"
        return ""
    if ref.shape != got.shape:
        return f"shape {got.shape}, expected {ref.shape}"
    single = np.float32 in (ref.dtype, got.dtype)
    rtol, atol = (1e-4, 1e-5) if single else (1e-6, 1e-9)
    if not np.allclose(got.astype(np.float64), ref.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True):
        err = np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64)))
        return f"values differ from numpy (max abs err {err:.3g})"
    return ""


# ----------------------------------------------------------------------------------------------- copy bandwidth
def copy_bandwidth(st, peers):
    """Best multi-threaded copy bandwidth (bytes read + written per second) and how it was reached.

    Always 10^7 float64 (80 MB each way, far beyond the caches), also with --quick, whose smaller workloads may
    then run from cache and exceed 1.0 of it.
    """
    n = 10**7
    src, dst = _rand(n, np.float64), np.empty(n)
    dst[:] = 0.0  # touch every page first: a copy into fresh pages would measure page faults, not memory
    nthreads = os.cpu_count() or 1
    bounds = [(c[0], c[-1] + 1) for c in np.array_split(np.arange(n), nthreads) if len(c)]
    pool = ThreadPoolExecutor(nthreads)

    def threaded_copyto():  # np.copyto releases the GIL, so the halves copy in parallel
        list(pool.map(lambda ab: np.copyto(dst[ab[0]:ab[1]], src[ab[0]:ab[1]]), bounds))

    candidates = {"np.copyto, 1 thread": lambda: np.copyto(dst, src),
                  f"np.copyto, {nthreads} threads": threaded_copyto}
    if peers.has("numba"):
        numba = peers.mods["numba"]

        def prange_copy(a, b):
            for i in numba.prange(a.size):
                b[i] = a[i]
        kernel = numba.njit(parallel=True)(prange_copy)
        candidates[f"numba prange copy, {numba.get_num_threads()} threads"] = lambda: kernel(src, dst)
    results = {}
    for name, fn in candidates.items():
        try:
            results[name] = 2 * src.nbytes / time_steady(fn, st)
        except Exception as e:  # noqa: BLE001
            print(f"copy bandwidth: {name} failed: {e}", file=sys.stderr)
    pool.shutdown()
    best = max(results, key=results.get)
    return results[best], best, results


# ----------------------------------------------------------------------------------------------- the on-disk cache
_CACHE_CHILD = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, sys.argv[2])
    import numpy as np
    import tracejit as tj
    import run as bench
    x, y = bench._rand(1000, np.float64), bench._rand(1000, np.float64, seed=1)
    f = tj.jit(bench.make_function(("x", "y"), bench.CHAIN20 + ["return r"], {**bench.namespace_of(np), "C": 0.75}))
    t0 = time.perf_counter()
    f(x, y)
    print(json.dumps({"first_call_s": time.perf_counter() - t0}))
""")


def disk_cache_times(st):
    """Median first-call seconds in a fresh process: (cold, warm), each pair with its own fresh cache directory."""
    if importlib.util.find_spec("tracejit.backends.cache") is None:
        raise Unavailable("no on-disk compile cache yet (tracejit/backends/cache.py)")
    colds, warms = [], []
    for _ in range(st.cache_pairs):
        cache_dir = tempfile.mkdtemp(prefix="tracejit-bench-cache-")
        try:
            env = {k: v for k, v in os.environ.items() if k != "TRACEJIT_DISABLE_CACHE"}
            env["TRACEJIT_CACHE_DIR"] = cache_dir
            env["TRACEJIT_TIERED"] = "0"  # the optimized code the cache is for (the quick first tier is first_call)
            runs = []
            for _ in range(2):
                p = subprocess.run([sys.executable, "-c", _CACHE_CHILD, REPO, os.path.dirname(__file__)],
                                   env=env, capture_output=True, text=True, timeout=300)
                if p.returncode:
                    raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "child failed")
                runs.append(json.loads(p.stdout.strip().splitlines()[-1])["first_call_s"])
                if len(runs) == 1 and not any(os.scandir(cache_dir)):
                    raise Unavailable("the cold run wrote nothing under TRACEJIT_CACHE_DIR "
                                      "(is the on-disk cache wired into the backend yet?)")
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)
        colds.append(runs[0])
        warms.append(runs[1])
    return statistics.median(colds), statistics.median(warms)


# ----------------------------------------------------------------------------------------------- one workload
@dataclass
class Cell:
    seconds: float | None = None
    status: str = ""          # "", "-", "n/a", "error", "mismatch"
    message: str = ""
    dtype_note: str = ""


@dataclass
class Row:
    workload: Workload
    cells: dict
    traffic_bytes: int | None = None
    peak: dict = field(default_factory=dict)   # impl -> bytes
    note: str = ""


def _guard(fn):
    """Run ``fn``; turn any failure into a Cell saying what happened."""
    try:
        return fn(), None
    except NotApplicable:
        return None, Cell(status="-")
    except Unavailable as e:
        return None, Cell(status="n/a", message=str(e))
    except NotImplementedError as e:
        return None, Cell(status="n/a", message=f"NotImplementedError: {e}")
    except Exception as e:  # noqa: BLE001 - the table must go on
        return None, Cell(status="error", message=f"{type(e).__name__}: {e}")


def run_workload(w, st, peers, disk_cache_result):
    if w.kind == "disk_cache":
        return run_disk_cache(w, disk_cache_result)
    args = w.inputs(st)
    cells, row = {}, Row(w, {})
    if w.kind == "train":
        x, target = args
        ref = train_reference(x.astype(np.float64), float(target), TRAIN_STEPS_CHECKED)
        for impl in IMPLS:
            cells[impl] = _run_train(impl, x, target, ref, st, peers)
        row.cells = cells
        return row

    if w.kind == "first_call":
        counter = iter(range(1, 10**9))
        ref = build("numpy", w, args, peers, const=0.75)()
        for impl in IMPLS:
            if impl == "numpy":
                cells[impl] = Cell(status="-")
                continue
            cells[impl] = _run_first_call(impl, w, args, ref, st, peers, counter)
        row.cells = cells
        return row

    ref = build("numpy", w, args, peers)()
    row.traffic_bytes = _nbytes(args) + _nbytes(ref)
    for impl in IMPLS:
        thunk, bad = _guard(lambda: build(impl, w, args, peers))
        if bad:
            cells[impl] = bad
            continue
        cells[impl] = _run_steady(impl, thunk, ref, st)
        if w.memory and impl in ("tracejit", "numpy") and cells[impl].status in ("", "mismatch"):
            row.peak[impl], _ = _guard(lambda: peak_memory(thunk))
        del thunk
        gc.collect()
    row.cells = cells
    return row


def _check_cell(got, ref):
    msg = compare(ref, got)
    cell = Cell()
    if msg:
        cell.status, cell.message = "mismatch", msg
    else:
        got_dt = {str(np.asarray(g).dtype) for g in (got if isinstance(got, (list, tuple)) else [got])}
        ref_dt = {str(np.asarray(r).dtype) for r in (ref if isinstance(ref, (list, tuple)) else [ref])}
        if got_dt != ref_dt:
            cell.dtype_note = f"returns {'/'.join(sorted(got_dt))}, numpy {'/'.join(sorted(ref_dt))}"
    return cell


def _run_steady(impl, thunk, ref, st):
    got, bad = _guard(thunk)
    if bad:
        return bad
    cell = _check_cell(got, ref)
    del got
    t, bad = _guard(lambda: time_steady(thunk, st))
    if bad:
        return bad
    cell.seconds = t
    return cell


def _run_first_call(impl, w, args, ref, st, peers, counter):
    """Check one call with C = 0.75; then time fresh functions, each with a new constant so no cache can hit."""
    def check():
        return build(impl, w, args, peers, const=0.75)()
    got, bad = _guard(check)
    if bad:
        return bad
    cell = _check_cell(got, ref)

    def fresh_first_call():
        c = 0.75 + next(counter) * 2.0**-30
        t0 = time.perf_counter()
        build(impl, w, args, peers, const=c)()
        return time.perf_counter() - t0
    samples, bad = _guard(lambda: [fresh_first_call() for _ in range(st.first_call_repeats)])
    if bad:
        return bad
    cell.seconds = statistics.median(samples)
    return cell


def _run_train(impl, x, target, ref, st, peers):
    def checked():
        f = build_train(impl, x, target, peers)
        return f, np.array([float(np.asarray(f())) for _ in range(TRAIN_STEPS_CHECKED)])
    res, bad = _guard(checked)
    if bad:
        return bad
    f, got = res
    cell = _check_cell(got, ref)
    t, bad = _guard(lambda: time_calls(f, st.train_calls, st.repeats if st.quick else 5))
    if bad:
        return bad
    cell.seconds = t
    return cell


def run_disk_cache(w, result):
    cells = {impl: Cell(status="-") for impl in IMPLS}
    times, bad = result
    if bad:
        cells["tracejit"] = bad
        return Row(w, cells)
    cold, warm = times
    cells["tracejit"] = Cell(seconds=cold if w.name == "cache_cold" else warm)
    note = f"warm is {cold / warm:.1f}x faster than cold" if w.name == "cache_warm" and warm > 0 else ""
    return Row(w, cells, note=note)


# ----------------------------------------------------------------------------------------------- the table
UNIT_SCALE = {"ms": 1e3, "us": 1e6}


def fmt_time(s, unit):
    v = s * UNIT_SCALE[unit]
    return f"{v:.3g}" if v < 1000 else f"{v:.0f}"


def fmt_ratio(r):
    return f"{r:.2g}x" if r < 100 else f"{r:.0f}x"


def _short(msg, n=48):
    msg = " ".join(msg.split())
    return msg if len(msg) <= n else msg[: n - 1] + "…"


def render(rows, copy_bw, notes):
    """A markdown table: times per implementation, ratio peer/tracejit, bandwidth, peak memory."""
    head = ["workload", "unit"] + IMPLS + ["BW tj / np", "peak MB tj / np"]
    lines = []
    for row in rows:
        w, cells = row.workload, row.cells
        tj = cells.get("tracejit")
        tj_s = tj.seconds if tj and tj.seconds and tj.status != "mismatch" else None
        out = [w.name, "µs" if w.unit == "us" else w.unit]
        for impl in IMPLS:
            c = cells[impl]
            if c.status == "-":
                out.append("-")
                continue
            if c.status in ("n/a", "error"):
                tag = "n/a" if c.status == "n/a" else "ERROR"
                out.append(f"{tag}: {_short(c.message)}" if impl == "tracejit" or c.status == "error" else tag)
                notes.append(f"{w.name} / {impl}: {tag}: {c.message}")
                continue
            text = fmt_time(c.seconds, w.unit)
            if impl != "tracejit" and tj_s:
                text += f" ({fmt_ratio(c.seconds / tj_s)})"
            if c.status == "mismatch":
                text = f"**MISMATCH** {text}"
                notes.append(f"!!! MISMATCH {w.name} / {impl}: {c.message}")
            if c.dtype_note:
                text += " †"
                notes.append(f"{w.name} / {impl}: {c.dtype_note}")
            out.append(text)
        out.append(_bandwidth(row, copy_bw))
        out.append(_peak(row))
        lines.append(out)
        if row.note:
            notes.append(f"{w.name}: {row.note}")
    widths = [max(len(str(r[i])) for r in [head] + lines) for i in range(len(head))]
    fmt_row = lambda r: "| " + " | ".join(str(c).ljust(wd) for c, wd in zip(r, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (wd + 2) if i < 2 else "-" * (wd + 1) + ":" for i, wd in enumerate(widths)) + "|"
    return "\n".join([fmt_row(head), sep] + [fmt_row(r) for r in lines])


def _bandwidth(row, copy_bw):
    if not row.workload.traffic or row.traffic_bytes is None:
        return "-"
    parts = []
    for impl in ("tracejit", "numpy"):
        c = row.cells[impl]
        parts.append(f"{row.traffic_bytes / c.seconds / copy_bw:.2f}" if c.seconds else "n/a")
    return " / ".join(parts)


def _peak(row):
    if not row.workload.memory:
        return "-"
    return " / ".join(f"{row.peak[i] / 2**20:.1f}" if row.peak.get(i) is not None else "n/a"
                      for i in ("tracejit", "numpy"))


def machine_line():
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as fh:
            for ln in fh:
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


# ----------------------------------------------------------------------------------------------- main
def parse_args(argv, names):
    p = argparse.ArgumentParser(description="tracejit beside numpy, numexpr, numba, JAX and PyTensor.")
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats (under 2 minutes)")
    p.add_argument("--only", default="", help="comma-separated workload names (see --list)")
    p.add_argument("--list", action="store_true", help="print the workloads and exit")
    p.add_argument("--repeats", type=int, default=None, help="timed samples per cell (default 11, quick 3)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the raw results as JSON")
    a = p.parse_args(argv)
    a.only = [s.strip() for s in a.only.split(",") if s.strip()]
    unknown = [s for s in a.only if s not in names]
    if unknown:
        p.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    return a


def main(argv=None):
    wls = workloads()
    a = parse_args(argv, [w.name for w in wls])
    if a.list:
        for w in wls:
            print(f"{w.name:14s} {w.title}")
        return 0
    # in-process first calls must compile: a fresh, private on-disk cache (and fresh constants, see
    # _run_first_call), set before tracejit is imported
    tmp_cache = tempfile.mkdtemp(prefix="tracejit-bench-cache-")
    os.environ["TRACEJIT_CACHE_DIR"] = tmp_cache
    try:
        return _main(a, wls)
    finally:
        shutil.rmtree(tmp_cache, ignore_errors=True)


def _main(a, wls):
    st = Settings.make(a.quick, a.repeats)
    if a.only:
        wls = [w for w in wls if w.name in a.only]
    t_start = time.perf_counter()
    peers = Peers()
    today = datetime.date.today().isoformat()
    print(f"# tracejit benchmarks, {today}{' (--quick)' if st.quick else ''}")
    print(f"machine: {machine_line()}")
    print("versions: numpy " + np.__version__ + ", " + ", ".join(f"{k} {v}" for k, v in peers.versions.items()))
    for k, v in peers.missing.items():
        print(f"not importable: {k} ({v})")
    print(f"tracejit backend: {peers.tracejit_backend()}")
    print("load average at start: " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores")
    copy_bw, how, all_bw = copy_bandwidth(st, peers)
    print(f"copy bandwidth (read + write): {copy_bw / 1e9:.1f} GB/s, best of "
          + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in all_bw.items()))
    print(f"medians of {st.repeats} samples (3 or more for calls slower than {st.cell_budget_s / st.repeats:.2g} s; "
          f"first calls: {st.first_call_repeats}); ratio = peer time / tracejit time")
    print(flush=True)

    needs_cache = any(w.kind == "disk_cache" for w in wls)
    disk = _guard(lambda: disk_cache_times(st)) if needs_cache else (None, None)
    rows = []
    for w in wls:
        t0 = time.perf_counter()
        rows.append(run_workload(w, st, peers, disk))
        print(f"  {w.name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    notes = []
    table = render(rows, copy_bw, notes)
    print(table)
    print()
    print("† returns a different dtype than numpy (see notes); **MISMATCH**: result differs from numpy's.")
    print("BW: (bytes of inputs read once + outputs written once) / time, as a fraction of the copy bandwidth.")
    for n in notes:
        print(f"- {n}")
    mismatches = [n for n in notes if n.startswith("!!! MISMATCH")]
    if mismatches:
        print(f"\n!!! {len(mismatches)} RESULT MISMATCH(ES) AGAINST NUMPY: see the notes above !!!")
    if not a.only:  # the gradient workloads (issue 4) and the Theano-API step (issue 5), same run
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        for mod in ("grad_bench", "theano_bench"):
            print(f"\n## {mod}")
            try:
                __import__(mod).main(["--quick"] if st.quick else [])
            except Exception as e:  # a failing extra table must not hide the main one
                print(f"{mod} failed: {type(e).__name__}: {e}")
    print(f"\ntotal time: {time.perf_counter() - t_start:.0f} s; load average at end: "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    if a.json:
        _write_json(a.json, rows, copy_bw, how, st)
    return 1 if mismatches else 0


def _write_json(path, rows, copy_bw, how, st):
    data = {"date": datetime.date.today().isoformat(), "machine": machine_line(), "quick": st.quick,
            "copy_bandwidth_Bps": copy_bw, "copy_method": how, "workloads": {}}
    for r in rows:
        data["workloads"][r.workload.name] = {
            "unit": r.workload.unit, "traffic_bytes": r.traffic_bytes, "peak_bytes": r.peak, "note": r.note,
            "cells": {k: {"seconds": c.seconds, "status": c.status, "message": c.message, "dtype": c.dtype_note}
                      for k, c in r.cells.items()}}
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1)


if __name__ == "__main__":
    sys.exit(main())
