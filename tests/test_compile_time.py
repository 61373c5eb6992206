"""Compile time (issue 16): the optimized tier compiles in the background, calls never wait for it, and the
process exits cleanly while it runs; ahead-of-time compile() waits for it."""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import tracejit as tj
from tracejit.backends.cpu import tiers

rng = np.random.default_rng(16)


def _f(x):
    return np.tanh(x) * np.exp(-x * x) + np.sin(x)


def _entry_exe(f):
    return next(iter(f._cache.values()))[0]


def hook_optimized_compile(monkeypatch, before):
    """Call ``before()`` as each optimized-tier compile starts (not the disk-cache probes), with the disk cache off:
    a hit would skip the first tier. Tests slow the compile down, hold it at a gate or make it fail."""
    real = tiers.LLVMExecutable

    class Hooked(real):
        def __init__(self, graph, tier=1, cache_only=False, **kw):
            if tier >= 1 and not cache_only:
                before()
            super().__init__(graph, tier, cache_only, **kw)
    monkeypatch.setattr(tiers, "LLVMExecutable", Hooked)
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")


def quick_first_call(n):
    """``(f, x, want, exe)``: ``tj.jit(_f)`` after a checked first call on ``n`` elements, running the quick tier."""
    f = tj.jit(_f)
    x = rng.standard_normal(n)
    want = _f(x)
    np.testing.assert_allclose(f(x), want, rtol=1e-13)
    exe = _entry_exe(f)
    assert isinstance(exe, tiers.TieredExecutable) and exe.tier == 0
    return f, x, want, exe


@pytest.fixture
def slow_tier_up(monkeypatch):
    """The optimized tier takes at least ``delay`` seconds to compile (the test sets it), so that calls made
    meanwhile show whether they wait for it; ``started`` is set when the background compile begins."""
    state = {"delay": 1.0, "started": threading.Event()}

    def slow():
        state["started"].set()
        time.sleep(state["delay"])
    hook_optimized_compile(monkeypatch, slow)
    return state


def test_second_call_does_not_wait_for_the_optimized_tier(slow_tier_up):
    slow_tier_up["delay"] = 1.5
    f, x, want, exe = quick_first_call(500)
    t0 = time.perf_counter()
    np.testing.assert_allclose(f(x), want, rtol=1e-13)  # starts the background compile, runs the first tier
    np.testing.assert_allclose(f(x), want, rtol=1e-13)
    assert time.perf_counter() - t0 < 1.0, "a call waited for the optimized tier"
    assert slow_tier_up["started"].wait(5)
    assert exe.tier == 0
    exe.wait()
    assert exe.tier == 1
    np.testing.assert_allclose(f(x), want, rtol=1e-13)


def test_switch_under_concurrent_calls_from_several_threads(slow_tier_up):
    slow_tier_up["delay"] = 0.5
    f = tj.jit(_f)
    xs = [rng.standard_normal(n) for n in (7, 300, 4000)]
    wants = [_f(x) for x in xs]
    f(xs[0])
    exe = _entry_exe(f)
    seen, errors = [], []
    stop = threading.Event()

    def worker(k):
        i = 0
        while not stop.is_set():
            x, want = xs[(i + k) % 3], wants[(i + k) % 3]
            tier = exe.tier
            try:
                np.testing.assert_allclose(f(x), want, rtol=1e-13)
            except Exception as e:  # noqa: BLE001  (reported below, with the tier it ran)
                errors.append((tier, e))
            seen.append(tier)
            i += 1
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while exe.tier < 1 and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # calls keep coming after the switch
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert exe.tier == 1 and exe.tier_up_error is None
    assert 0 in seen and 1 in seen  # calls ran in both tiers, some while the compile was in flight
    assert exe._job is not None and exe._job.join(0)  # one background compile, finished


def test_results_identical_before_and_after_the_switch(monkeypatch):
    """Without transcendental calls both tiers lower the same IR; only LLVM's pipeline differs, and without
    fast-math flags it may not change an elementwise result: bit for bit equal. (A float sum is marked
    reassociable, so the vectorized tier may round it differently: equal to a few ulps, as numpy's pairwise sum
    is to a sequential one; transcendental functions differ by an ulp between libm and the vector library.)"""
    monkeypatch.setattr(tiers, "TIER_MIN_STEPS", 1)
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    g = lambda x, y: (np.sqrt(np.abs(x * y) + 1.0) / (x - 2.5) + np.maximum(x, y) * 3.0,  # noqa: E731
                      np.where(x > y, x // 0.25, y % 0.75), (x * 1000).astype(np.int64) * 7 - 3)
    x, y = rng.standard_normal(3001), rng.standard_normal(3001)
    f = tj.jit(g)
    before = [f(x, y)]
    exe = _entry_exe(f)
    assert isinstance(exe, tiers.TieredExecutable) and exe.tier == 0
    before.append(f(x, y))
    exe.wait()
    assert exe.tier == 1
    after = f(x, y)
    for b in before:
        for u, v in zip(b, after):
            np.testing.assert_array_equal(u, v)
    for u, v in zip(after, g(x, y)):
        np.testing.assert_allclose(u, v, rtol=1e-12)


def test_compile_ahead_of_time_waits_for_the_optimized_tier(monkeypatch):
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    f = tj.jit(_f)
    x = rng.standard_normal(100)
    assert f.compile(x) is f
    exe = _entry_exe(f)
    assert exe.tier == 1
    np.testing.assert_allclose(f(x), _f(x), rtol=1e-13)
    assert f.cache_info().misses == 1  # the call was a hit on what compile() made
    low = tj.jit(_f).lower(x)
    assert low.compile() is low and low.executable.tier == 1


def _python(code, timeout=120, **env):
    e = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=e)


EXIT_DURING_COMPILE = """
import sys, time, threading, numpy as np, tracejit as tj
from tracejit.backends.cpu import tiers
def loss(ws, x):
    h = x
    for w in ws:
        h = np.tanh(h @ w) + 0.1 * np.exp(-h * h)
    return np.sum(h * h)
f = tj.jit(tj.grad(loss))
ws = [np.full((16, 16), 0.01) for _ in range(12)]
x = np.ones((16, 16))
f(ws, x); f(ws, x)   # the second call starts the optimized tier in the background
exe = next(iter(f._cache.values()))[0]
assert exe._job is not None, "no background compile started"
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
print("exiting", exe.tier, flush=True)
"""


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_process_exits_cleanly_during_a_background_compile(delay, tmp_path):
    code = EXIT_DURING_COMPILE.replace('float(sys.argv[1]) if len(sys.argv) > 1 else 0.0', repr(delay))
    p = _python(code, TRACEJIT_CACHE_DIR=str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    assert "exiting" in p.stdout
    assert "Traceback" not in p.stderr and "Exception" not in p.stderr, p.stderr[-3000:]


def test_tiering_off_compiles_the_optimized_tier_at_once(tmp_path):
    code = ("import numpy as np, tracejit as tj\n"
            "f = tj.jit(lambda x: np.tanh(x) + 1.0); f(np.ones(3))\n"
            "exe = next(iter(f._cache.values()))[0]\n"
            "print(type(exe).__name__, exe.tier)\n")
    p = _python(code, TRACEJIT_TIERED="0", TRACEJIT_CACHE_DIR=str(tmp_path))
    assert p.stdout.split() == ["LLVMExecutable", "1"], p.stderr


def _mlp_loss(ws, x):
    h = x
    for w in ws:
        h = np.tanh(h @ w) + 0.1 * np.exp(-h * h)
    return np.sum(h * h)


def test_identical_steps_compile_once_per_program(monkeypatch):
    """The layers of an MLP repeat the same kernels: the number of distinct step functions handed to LLVM does
    not grow with depth, and the deduplicated program computes what the interpreter does."""
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    counts = {}
    for depth in (3, 8):
        ws = [rng.standard_normal((16, 16)) / 4 for _ in range(depth)]
        x = rng.standard_normal((16, 16))
        f = tj.jit(tj.grad(_mlp_loss)).compile(ws, x)
        exe = _entry_exe(f)
        counts[depth] = (exe.num_kernels, exe.num_functions)
        got = f(ws, x)
        low = tj.jit(tj.grad(_mlp_loss)).lower(ws, x)
        want = tj.ir.interpret.evaluate(low.optimized, [*ws, x])
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    (k3, n3), (k8, n8) = counts[3], counts[8]
    assert k8 > k3 and n8 == n3 and n8 < k8 / 4, counts


def test_steps_that_differ_only_in_buffers_share_code_and_keep_their_own_data(monkeypatch):
    """Two identical bodies over different buffers and lengths: one function, each call site its own data."""
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    f = tj.jit(lambda a, b, c: (np.sum(a * 2.0 + 1.0), np.sum(b * 2.0 + 1.0), np.sum(c * 2.0 + 1.0)))
    a, b, c = rng.standard_normal(10), rng.standard_normal(1000), rng.standard_normal(7)
    got = f.compile(a, b, c)(a, b, c)
    for g, x in zip(got, (a, b, c)):
        np.testing.assert_allclose(g, np.sum(x * 2.0 + 1.0), rtol=1e-12)
    exe = _entry_exe(f)
    assert exe.num_functions < exe.num_kernels, (exe.num_functions, exe.num_kernels)


def test_a_call_slower_than_the_rest_of_the_compile_waits_for_the_optimized_tier(slow_tier_up, monkeypatch):
    """Big work in slow first-tier code would cost more than waiting: such a call waits and runs optimized code."""
    slow_tier_up["delay"] = 0.3
    monkeypatch.setattr(tiers, "TIER1_COMPILE_RATIO", 0.0)  # "the compile is nearly done": always worth waiting
    f = tj.jit(_f)
    x = rng.standard_normal(1000)
    f(x)
    f(x)  # starts the background compile, runs the first tier
    exe = _entry_exe(f)
    assert exe.tier == 0
    np.testing.assert_allclose(f(x), _f(x), rtol=1e-13)
    assert exe.tier == 1


def test_codegen_knows_the_vector_library_names_without_importing_it():
    from tracejit.backends.cpu import scalar as L, vecmath
    assert L.VEC_FUNCTIONS == vecmath.FUNCTIONS
    for name in vecmath.FUNCTIONS:
        assert L.vec_symbol(name, "f64") == vecmath.symbol(name, np.float64)
        assert L.vec_symbol(name, "f32") == vecmath.symbol(name, np.float32)


def test_quick_tier_of_a_transcendental_program_does_not_import_the_vector_library(tmp_path):
    code = ("import sys, numpy as np, tracejit as tj\n"
            "f = tj.jit(lambda x: np.tanh(x) * np.exp(-x) + np.arctan2(x, 2.0)); x = np.linspace(-3, 3, 101)\n"
            "np.testing.assert_allclose(f(x), np.tanh(x) * np.exp(-x) + np.arctan2(x, 2.0), rtol=1e-14)\n"
            "print('tracejit.backends.cpu.vecmath' in sys.modules)\n"
            "f.compile(x); np.testing.assert_allclose(f(x), np.tanh(x) * np.exp(-x) + np.arctan2(x, 2.0), rtol=1e-13)\n"
            "print('tracejit.backends.cpu.vecmath' in sys.modules)\n")
    p = _python(code, TRACEJIT_CACHE_DIR=str(tmp_path))
    assert p.stdout.split() == ["False", "True"], p.stderr[-2000:]


FORK_DURING_COMPILE = EXIT_DURING_COMPILE.replace('time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)', """
import os, signal
pid = os.fork()   # waits for the compile in flight: a child must not inherit a thread's LLVM locks
if pid == 0:
    signal.alarm(60)
    out = f(ws, x)
    exe.wait()
    ok = exe.tier == 1 and all(np.allclose(a, b) for a, b in zip(out, f(ws, x)))
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status), flush=True)
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the platform has no os.fork (Windows): the test forks a child while a compile runs")
def test_fork_during_a_background_compile(tmp_path):
    p = _python(FORK_DURING_COMPILE, TRACEJIT_CACHE_DIR=str(tmp_path))
    assert p.returncode == 0 and "child 0" in p.stdout, (p.stdout, p.stderr[-3000:])


def _quick_source(depth, n=16):
    """The IR text both tiers share (the quick tier compiles it whole) for a depth-``depth`` MLP gradient."""
    from tracejit.backends.cpu.executable import LLVMExecutable
    ws = [rng.standard_normal((n, n)) / 4 for _ in range(depth)]
    x = rng.standard_normal((n, n))
    graph = tj.jit(tj.grad(_mlp_loss)).lower(ws, x).optimized
    return LLVMExecutable(graph, tier=1, cache_only=True, known_kernels_only=True)


def test_the_program_code_does_not_grow_with_its_steps(monkeypatch):
    """No function and no call per step: the quick tier's module holds the distinct bodies, one caller per body,
    tj_entry and tj_steps (loops over constant tables), at depth 3 as at depth 12; only the tables grow."""
    import re
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    shape = {}
    for depth in (3, 12):
        exe = _quick_source(depth)
        text = exe.source.whole
        defined = re.findall(r'^define [^@]*@"([^"]+)"', text, re.M)
        bodies = [n for n in defined if n.endswith("_impl")]
        callers = [n for n in defined if n.startswith("tj_call")]
        assert sorted(set(defined) - set(bodies) - set(callers)) == ["tj_entry", "tj_steps"], defined
        assert len(bodies) == len(callers) == exe.num_functions, (bodies, callers)
        assert depth < 12 or len(exe.plan.steps) > 4 * len(bodies)
        glue = "\n".join(re.findall(r'^define [^@]*@"tj_(?:entry|steps|call\d+)".*?^}', text, re.M | re.S))
        shape[depth] = len(defined), glue.count("\n  call "), len(glue.splitlines())
        rows = re.search(r'^@"tj_calls" = .*\[(\d+) x', text, re.M)
        assert int(rows.group(1)) == len(exe.plan.steps)  # one table row per step
    assert shape[3] == shape[12], shape


def test_threads_split_steps_of_a_program_loaded_from_the_disk_cache(tmp_path):
    """A call split across threads calls each step's body with the lengths and buffers the disk cache recorded
    beside the program (no IR is built on a hit): the results are numpy's in the process that compiled it and
    in a fresh one that loaded it."""
    code = (
        "import numpy as np, tracejit as tj\n"
        "from tracejit.backends.cpu import executable\n"
        "executable.PARALLEL_THRESHOLD = 1000\n"
        "rng = np.random.default_rng(3)\n"
        "x, w = rng.standard_normal((300, 40)), rng.standard_normal((40, 40)) / 6\n"
        "def f(x, w):\n"
        "    h = np.tanh(x @ w) + 0.1 * np.exp(-x * x)\n"
        "    return np.sin(h) * 2 + h.sum(0), (h * h).sum(1), h.T.copy()\n"
        "g = tj.jit(f).compile(x, w)\n"
        "for _ in range(2):\n"
        "    for a, b in zip(g(x, w), f(x, w)):\n"
        "        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)\n"
        "exe = next(iter(g._cache.values()))[0]\n"
        "print(exe.from_cache, exe._step_fns is not None)\n")
    env = dict(os.environ, TRACEJIT_NUM_THREADS="2", TRACEJIT_CACHE_DIR=str(tmp_path))
    env.pop("TRACEJIT_DISABLE_CACHE", None)
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    assert [r.stdout.split() for r in runs] == [["False", "True"], ["True", "True"]], [r.stderr[-2000:] for r in runs]


def test_streamed_stores_are_built_for_the_optimized_tier_only(monkeypatch):
    """The quick tier's shared IR leaves out the streamed copy of big memory-bound loops; the optimized tier's
    kernels have it, built body by body with the shared build's arguments, and compute the same results."""
    from tracejit.backends.cpu.kernel_library import LIBRARY
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    LIBRARY.clear()  # kernels an earlier test compiled would skip the quick tier
    quick = _quick_source(3).source
    assert quick.streams_later and "!nontemporal" not in quick.whole
    assert any(ks.build is not None for ks in quick.kernels)
    ws = [rng.standard_normal((16, 16)) / 4 for _ in range(3)]
    x = rng.standard_normal((16, 16))
    f = tj.jit(tj.grad(_mlp_loss))
    first = f(ws, x)
    exe = _entry_exe(f)
    assert exe.tier == 0
    exe.wait()
    assert exe.tier == 1 and "!nontemporal" in exe.llvm_ir()
    for a, b in zip(f(ws, x), first):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
