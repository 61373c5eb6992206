"""The LLVM backend: fusion into kernels, memory plans, vectorization, threads, BLAS, gathers, the entry point."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import tracejit as tj
from tracejit.lower.plan import Kernel, MatmulStep

rng = np.random.default_rng(0)


def _python(code, **env):
    """Run ``code`` in a fresh interpreter with extra environment variables (threads, tiers are read at start)."""
    return subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **env), capture_output=True,
                          text=True, timeout=120)


def logistic(x):
    return 1 / (1 + np.exp(-x))


def diff3(x, y):
    d = x - y
    return d, abs(d), d ** 2


def softmax(x):
    m = x.max(axis=1, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("fun,args,kernels", [
    (logistic, (rng.random(1000),), 1),
    (diff3, (rng.random((40, 30)), rng.random((40, 30))), 1),
    (softmax, (rng.random((50, 60)),), 1),
    (lambda x: np.sum(logistic(x)), (rng.random(1000),), 1),
    (lambda x, y: np.exp(-x) * y + x.sum(axis=-1, keepdims=True), (rng.random((20, 3)), rng.random(3)), 1),
])
def test_fusion_kernel_counts(fun, args, kernels):
    lowered = tj.jit(fun).lower(*args)
    assert lowered.num_kernels == kernels, lowered.as_text()
    out = tj.jit(fun)(*args)
    want = fun(*args)
    for a, b in zip(out if isinstance(out, tuple) else (out,), want if isinstance(want, tuple) else (want,)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_fusion_does_not_duplicate_expensive_work():
    # exp(x) feeds a reduction and an elementwise consumer in a later phase: it is computed once and stored
    def f(x):
        e = np.exp(x)
        return e / e.sum(axis=1, keepdims=True)
    lowered = tj.jit(f).lower(rng.random((8, 9)))
    ir = lowered.as_text("llvm")
    assert lowered.num_kernels == 1
    # one inlined exp per vector/scalar loop body, not one per phase that uses it: count the ln2 reduction
    kernel = [k for k in lowered.executable.plan.steps if isinstance(k, Kernel)][0]
    assert [o.eqn.prim for o in kernel.ops].count("exp") == 1
    assert ir


def test_matmul_is_a_blas_step_and_breaks_no_fusion():
    f = tj.jit(lambda a, b: np.tanh(a @ b) + 1)
    a, b = rng.random((30, 20)), rng.random((20, 10))
    steps = f.lower(a, b).executable.plan.steps
    assert [type(s) for s in steps] == [MatmulStep, Kernel]
    np.testing.assert_allclose(f(a, b), np.tanh(a @ b) + 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("case", ["nn", "tn", "nt", "tt", "vec", "vecl", "batch", "bcast"])
def test_matmul_layouts(dtype, case):
    a = (rng.random((7, 5)) * 10).astype(dtype)
    b = (rng.random((5, 4)) * 10).astype(dtype)
    fun = {
        "nn": lambda a, b: a @ b, "tn": lambda a, b: a.T.T @ b, "nt": lambda a, b: a @ b.T.T,
        "tt": lambda a, b: (b.T @ a.T).T, "vec": lambda a, b: a @ b[:, 0], "vecl": lambda a, b: a[0] @ b,
        "batch": lambda a, b: np.stack([a, a * 2]) @ np.stack([b, b + 1]),
        "bcast": lambda a, b: np.stack([a, a * 2]) @ b,
    }[case]
    got = tj.jit(fun)(a, b)
    want = fun(a, b)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)


_UPDATES = {  # name -> (function, folded into the gemm?)
    "sgd": (lambda a, b, d: d - 0.05 * (a @ b), True), "residual": (lambda a, b, d: d + a @ b, True),
    "scaled": (lambda a, b, d: (a @ b) * 2.0 + d, True), "minus": (lambda a, b, d: d - a @ b, True),
    "gemv": (lambda a, b, d: d[:, :1] - 3 * (a @ b[:, :1]), True),
    "transposed": (lambda a, b, d: d - 0.5 * (b.T @ a.T).T, True),
    "product_minus_d": (lambda a, b, d: a @ b - d, False),  # would need beta = -1
    "product_used_twice": (lambda a, b, d: (d - a @ b, a @ b), False),
    "array_scale": (lambda a, b, d: d - d * (a @ b), False),
    # a bias broadcast onto the product: its rows (or columns) are copied into the output first
    "bias_row": (lambda a, b, d: d[0] + a @ b, True), "bias_row_keepdims": (lambda a, b, d: d[0][None] + a @ b, True),
    "bias_column": (lambda a, b, d: d[:, 0][:, None] + a @ b, True),
    "bias_1x1": (lambda a, b, d: d[0, 0].reshape(1, 1) + a @ b, True),
    "minus_bias_row": (lambda a, b, d: d[3] - 2.0 * (a @ b), True),
    # the sum is bigger than a @ b: folding would update only the product's rows (it once did, silently)
    "product_broadcast": (lambda a, b, d: np.stack([d, d]) - a @ b, False),
    "product_row_broadcast": (lambda a, b, d: d - a[0][None] @ b, False),
    "promoted": (lambda a, b, d: d.astype(np.float64) - a @ b, None),  # folds only when a @ b is float64 too
}


@pytest.mark.parametrize("name", sorted(_UPDATES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_updates_fold_into_the_gemm(name, dtype):
    """``d + c * (a @ b)`` (d of the product's shape or broadcasting to it) is one copy of d and a gemm with
    beta = 1 (BLAS neither zeroes the product nor does a kernel read it back); everything else keeps a separate
    kernel."""
    fun, folded = _UPDATES[name]
    folded = dtype == np.float64 if folded is None else folded
    a, b, d = (rng.random(s).astype(dtype) for s in ((30, 20), (20, 10), (30, 10)))
    f = tj.jit(fun)
    got, want = f(a, b, d), fun(a, b, d)
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert g.dtype == w.dtype
        tol = 1e-5 if dtype == np.float32 else 1e-12  # absolute too: d - c * (a @ b) may cancel to near 0
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
    steps = f.lower(a, b, d).executable.plan.steps
    gemms = [s for s in steps if isinstance(s, MatmulStep)]
    assert [s.beta for s in gemms] == [1.0 if folded else 0.0]
    if folded:
        assert not any(isinstance(s, Kernel) for s in steps)


def test_folded_update_with_an_empty_contraction():
    a, b, d = np.ones((3, 0)), np.ones((0, 4)), rng.random((3, 4))
    np.testing.assert_array_equal(tj.jit(lambda a, b, d: d - 0.5 * (a @ b))(a, b, d), d)


def test_matmul_of_sliced_and_transposed_operands():
    x = rng.random((12, 9))
    f = tj.jit(lambda x: x[::2, 1:].T @ x[1::2, :-1])
    np.testing.assert_allclose(f(x), x[::2, 1:].T @ x[1::2, :-1], rtol=1e-12)


def test_transcendentals_vectorize():
    for fun in (np.exp, np.log, np.tanh, np.sin, np.log1p):
        ir = tj.jit(fun).lower(rng.random(100)).as_text("llvm")
        assert re.search(r"<(4|8|16) x double>", ir)  # the vector width follows the host (AVX2: 4), fun.__name__
        calls = set(re.findall(r"call [^@]*@([\w.]+)", ir))
        assert all(c.startswith(("llvm.", "tj_")) for c in calls), (fun.__name__, calls)


def test_asm_is_host_assembly():
    asm = tj.jit(np.exp).lower(rng.random(10)).as_text("asm")
    assert "zmm" in asm or "ymm" in asm or "xmm" in asm


def test_float32_sum_is_accurate():
    x = rng.random(10 ** 7).astype(np.float32)
    got = tj.jit(np.sum)(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(float(got), x.astype(np.float64).sum(), rtol=1e-5)


def test_float64_sum_is_as_accurate_as_numpy():
    x = rng.standard_normal(10 ** 6) * 1e3 + 1e6
    exact = np.float64(np.sum(x.astype(np.longdouble)))
    err_tj = abs(float(tj.jit(np.sum)(x)) - exact)
    err_np = abs(float(np.sum(x)) - exact)
    assert err_tj <= max(4 * err_np, 1e-6 * abs(exact) * 1e-9 + 1e-3)


def test_threads_split_large_kernels_with_the_same_result():
    code = (
        "import numpy as np, tracejit as tj\n"
        "x = np.random.default_rng(1).random((700, 600))\n"
        "f = tj.jit(lambda x: (np.exp(-x) * 2 + 1, x.sum(axis=1), np.argmax(x, axis=1), x.T.copy()))\n"
        "outs = f(x)\n"
        "want = (np.exp(-x) * 2 + 1, x.sum(axis=1), np.argmax(x, axis=1), x.T.copy())\n"
        "assert all(np.allclose(a, b) for a, b in zip(outs, want))\n"
        "print('ok')\n")
    for n in ("1", "2", "3"):
        out = _python(code, TRACEJIT_NUM_THREADS=n, TRACEJIT_DISABLE_CACHE="1")
        assert out.stdout.strip() == "ok", out.stderr


def test_streaming_stores_only_in_one_loop_elementwise_kernels():
    """Outputs far beyond the cache are written with non-temporal stores, in elementwise one-loop kernels only."""
    assert "!nontemporal" in tj.jit(diff3).lower(rng.random((4, 5)), rng.random((4, 5))).as_text("llvm")
    assert "!nontemporal" in tj.jit(logistic).lower(rng.random(10)).as_text("llvm")
    assert "!nontemporal" not in tj.jit(softmax).lower(rng.random((4, 5))).as_text("llvm")
    # compute-bound (more than two math functions per element): one loop only, compiled once
    heavy = tj.jit(lambda x: np.sin(x) * np.cos(x) + np.tanh(x)).lower(rng.random(10)).as_text("llvm")
    assert "!nontemporal" not in heavy


def test_streaming_stores_write_every_element():
    """Sizes just above the streaming threshold, odd lengths (partial blocks and vectors), several dtypes and
    output counts, and 1 to 3 threads splitting the loop at arbitrary points."""
    code = (
        "import numpy as np, tracejit as tj\n"
        "rng = np.random.default_rng(2)\n"
        "def diff3(x, y):\n"
        "    d = x - y\n"
        "    return d, abs(d), d ** 2\n"
        "x, y = rng.random((1001, 701)), rng.random((1001, 701))\n"
        "want = diff3(x, y)\n"
        "f = tj.jit(diff3)\n"
        "for _ in range(3):\n"  # both tiers, and outputs recycled from the pool
        "    got = f(x, y)\n"
        "    assert all(np.array_equal(a, b) for a, b in zip(got, want))\n"
        "    del got\n"
        "z = rng.random((1 << 21) + 13)\n"
        "g = tj.jit(lambda z: (z * 2, z > 0.5, (z * 100).astype(np.int32), z.astype(np.float32) + 1))\n"
        "for _ in range(2):\n"
        "    got = g(z)\n"
        "    want = (z * 2, z > 0.5, (z * 100).astype(np.int32), z.astype(np.float32) + 1)\n"
        "    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(got, want))\n"
        "h = tj.jit(lambda z: np.exp(z[::2] * 2) + 1)\n"  # the output takes over a dying intermediate
        "np.testing.assert_allclose(h(z), np.exp(z[::2] * 2) + 1, rtol=1e-15)\n"
        "print('ok')\n")
    for n in ("1", "2", "3"):
        out = _python(code, TRACEJIT_NUM_THREADS=n, TRACEJIT_DISABLE_CACHE="1")
        assert out.stdout.strip() == "ok", out.stderr


def test_bad_num_threads_is_a_clear_error():
    out = _python("import numpy as np, tracejit as tj; tj.jit(np.exp)(np.ones(3))", TRACEJIT_NUM_THREADS="many")
    assert "TRACEJIT_NUM_THREADS must be an integer" in out.stderr


def test_gather_bounds_checked_at_run_time():
    f = tj.jit(lambda x, i: x[i] * 2)
    x = rng.random(5)
    np.testing.assert_allclose(f(x, np.array([0, 4, -1, 2])), x[[0, 4, -1, 2]] * 2)
    with pytest.raises(IndexError, match="out of bounds"):
        f(x, np.array([0, 5]))
    with pytest.raises(IndexError, match="out of bounds"):
        f(x, np.array([-6]))
    np.testing.assert_allclose(f(x, np.array([1])), x[[1]] * 2)  # still fine after the error


def test_gather_on_inner_axis_and_2d_indices():
    x = rng.random((4, 6))
    idx = np.array([[0, 3], [2, 2]])
    f = tj.jit(lambda x, i: (x[:, i], x[i]))
    a, b = f(x, idx)
    np.testing.assert_allclose(a, x[:, idx])
    np.testing.assert_allclose(b, x[idx])


def test_memory_plan_logistic_has_no_temporaries():
    plan = tj.jit(logistic).lower(rng.random(1000)).memory_plan()
    assert plan["intermediate_bytes"] == 0
    assert plan["output_bytes_now"] == 8000


def test_memory_plan_softmax_writes_its_output_in_place():
    plan = tj.jit(softmax).lower(rng.random((30, 40))).memory_plan()
    assert plan["intermediate_bytes_now"] == 0


def test_temporaries_are_reused():
    def f(a, b):
        x = np.tanh(a @ b)
        y = np.tanh(x @ b)  # x dies here; y can take its buffer
        return (y @ b).sum()
    a, b = rng.random((16, 16)), rng.random((16, 16))
    lowered = tj.jit(f).lower(a, b)
    plan = lowered.memory_plan()
    assert plan["intermediate_buffers"] < plan["temporaries"]
    np.testing.assert_allclose(tj.jit(f)(a, b), f(a, b), rtol=1e-12)


def test_scalar_and_constant_outputs():
    f = tj.jit(lambda x: (3, np.float32(2.5), x.shape[0] * 1.0, np.zeros_like(x), x))
    x = rng.random(4)
    a, b, c, d, e = f(x)
    assert a == 3 and b == np.float32(2.5) and b.dtype == np.float32 and c == 4.0
    np.testing.assert_array_equal(d, np.zeros(4))
    np.testing.assert_array_equal(e, x)
    assert e is not x  # outputs never alias the caller's arrays


def test_entry_handles_many_buffers_and_empty_arrays():
    f = tj.jit(lambda *xs: sum(np.sin(x) for x in xs))
    xs = [rng.random(3) for _ in range(12)]
    np.testing.assert_allclose(f(*xs), sum(np.sin(x) for x in xs))
    np.testing.assert_array_equal(tj.jit(logistic)(np.zeros((0, 3))), np.zeros((0, 3)))


def test_reductions_over_every_axis_combination():
    x = rng.random((3, 4, 5))
    for axis in (None, 0, 1, 2, (0, 1), (0, 2), (1, 2), (0, 1, 2)):
        for name in ("sum", "max", "min", "prod", "mean"):
            fun = getattr(np, name)
            np.testing.assert_allclose(tj.jit(lambda x: fun(x, axis=axis))(x), fun(x, axis=axis), rtol=1e-12)
    for axis in (0, 1, 2):
        np.testing.assert_array_equal(tj.jit(lambda x: np.argmax(x, axis=axis))(x), np.argmax(x, axis=axis))
        np.testing.assert_array_equal(tj.jit(lambda x: np.argmin(x.T, axis=axis))(x), np.argmin(x.T, axis=axis))


def test_nan_propagation_in_max_and_argmax():
    x = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(tj.jit(lambda x: np.max(x, axis=1))(x), [np.nan, 6.0])
    np.testing.assert_array_equal(tj.jit(lambda x: np.argmax(x, axis=1))(x), [1, 2])
    np.testing.assert_array_equal(tj.jit(lambda x: np.maximum(x, 2.0))(x), np.maximum(x, 2.0))


def test_float_to_int_conversion_never_traps():
    x = np.array([np.nan, np.inf, -np.inf, 1e300, -3.7, 2.5])
    with np.errstate(invalid="ignore"):
        want = x.astype(np.int64)
    np.testing.assert_array_equal(tj.jit(lambda x: x.astype(np.int64))(x), want)


def test_integer_division_by_zero_and_overflow():
    a = np.array([7, -7, 0, np.iinfo(np.int64).min, 5], np.int64)
    b = np.array([0, 2, 0, -1, -3], np.int64)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(tj.jit(lambda a, b: a // b)(a, b), a // b)
        np.testing.assert_array_equal(tj.jit(lambda a, b: a % b)(a, b), a % b)


def test_concatenate_and_stack_of_fused_values():
    x = rng.random((3, 4))
    f = tj.jit(lambda x: (np.concatenate([np.exp(x), x[:, ::-1]], axis=1), np.stack([x, -x], axis=1)))
    a, b = f(x)
    np.testing.assert_allclose(a, np.concatenate([np.exp(x), x[:, ::-1]], axis=1))
    np.testing.assert_allclose(b, np.stack([x, -x], axis=1))


@pytest.mark.parametrize("shapes", [((3, 0), (0,)), ((0,), (0, 4)), ((3, 0), (0, 4)), ((0, 5), (5,)), ((0, 5), (5, 2))])
def test_matmul_with_empty_dimensions(shapes):
    a, b = (np.ones(s) for s in shapes)
    np.testing.assert_array_equal(tj.jit(lambda a, b: a @ b)(a, b), a @ b)


def test_matrix_vector_products_use_gemv():
    X, w = rng.random((50, 7)), rng.random(7)
    ir = tj.jit(lambda X, w: (X @ w, w @ X.T, X.T @ X[:, 0])).lower(X, w).as_text("llvm")
    assert "tj_dgemv" in ir and "tj_dgemm" not in ir
    a, b, c = tj.jit(lambda X, w: (X @ w, w @ X.T, X.T @ X[:, 0]))(X, w)
    np.testing.assert_allclose(a, X @ w)
    np.testing.assert_allclose(b, w @ X.T)
    np.testing.assert_allclose(c, X.T @ X[:, 0])


def test_big_outputs_are_recycled_only_when_the_caller_let_go():
    f = tj.jit(lambda x: np.exp(x))
    x = rng.random(1 << 18)
    a = f(x)
    b = f(x)  # a is still held: b must be new memory
    assert not np.shares_memory(a, b)
    view = b[:10]
    del b
    c = f(x)  # b's memory is still visible through view: not reused
    assert not np.shares_memory(c, view)
    np.testing.assert_allclose(view, np.exp(x[:10]))
    addr = c.__array_interface__["data"][0]
    del c
    d = f(x * 2)  # c was dropped: its buffer is written again
    assert d.__array_interface__["data"][0] == addr
    np.testing.assert_allclose(d, np.exp(x * 2))
    y = f(d)  # an input that is the pooled buffer itself is never overwritten
    np.testing.assert_allclose(y, np.exp(np.exp(x * 2)))


@pytest.mark.parametrize("fun", [
    lambda x: x.sum(axis=0), lambda x: np.exp(-x).sum(axis=0) * 2 + 1, lambda x: (x.max(axis=0), x.min(axis=0)),
    lambda x: (x.sum(axis=0), x * 2), lambda x: x.astype(np.float32).sum(0), lambda x: (x > 0.5).any(axis=0),
    lambda x: x.reshape(3, -1, x.shape[1]).sum(axis=(0, 1)), lambda x: np.mean(x, axis=0),
    lambda x: x - x.mean(axis=0),  # a later inner phase: not a column kernel, still right
])
def test_column_reductions(fun):
    x = rng.random((300, 70))
    x[5, 3] = np.nan
    got, want = tj.jit(fun)(x), fun(x)
    for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-5 if a.dtype == np.float32 else 1e-12)


def test_column_reduction_is_one_kernel_split_across_threads():
    code = (
        "import numpy as np, tracejit as tj\n"
        "x = np.random.default_rng(2).random((3000, 500))\n"
        "f = tj.jit(lambda x: np.tanh(x).sum(axis=0))\n"
        "assert f.lower(x).num_kernels == 1 and f.lower(x).executable.plan.steps[0].column\n"
        "assert np.allclose(f(x), np.tanh(x).sum(axis=0))\n"
        "print('ok')\n")
    out = _python(code, TRACEJIT_NUM_THREADS="2")
    assert out.stdout.strip() == "ok", out.stderr


def test_only_big_steps_are_split_and_small_ones_keep_the_gil(monkeypatch):
    """A program big enough to run its steps one by one splits only the steps with PARALLEL_THRESHOLD elements of
    their own (a small step handed to the pool costs more than it saves), and calls the others holding the GIL
    (releasing it at every step made a call wait for it behind another thread's Python: LeNet's second call);
    the quick tier runs on one thread."""
    import ctypes
    from tracejit.backends.cpu import executable
    from tracejit.backends.cpu import kernel_library
    monkeypatch.setenv("TRACEJIT_NUM_THREADS", "2")
    # a quick tier: no optimized code on disk, and no kernel known in the process (an earlier test's kernels
    # would give the optimized tier at once)
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    kernel_library.LIBRARY.clear()
    x, s = rng.standard_normal((1024, 512)), rng.standard_normal((50, 8))
    quick = tj.jit(lambda x, s: (np.tanh(x) * 2.0, np.exp(s) + 1.0))
    quick(x, s)
    first = [e for es in quick._specs.values() for e in es][0].exe
    # the quick tier runs on one thread (its calls overlap the optimized tier's compile on the other core)
    assert first.tier == 0 and first._exe.num_threads == 1
    monkeypatch.setenv("TRACEJIT_TIERED", "0")  # the optimized tier at once: it splits steps across threads
    submitted = []

    class CountingPool:
        def __init__(self, pool):
            self.pool = pool

        def submit(self, fn, *args):
            submitted.append(args[:2])
            return self.pool.submit(fn, *args)
    real = executable.get_pool
    monkeypatch.setattr(executable, "get_pool", lambda n: CountingPool(real(n)))
    f = tj.jit(lambda x, s: (np.tanh(x) * 2.0, np.exp(s) + 1.0, np.sqrt(np.abs(s)) * 3.0))
    got = f(x, s)
    np.testing.assert_allclose(got[0], np.tanh(x) * 2.0, rtol=1e-12)
    np.testing.assert_allclose(got[1], np.exp(s) + 1.0, rtol=1e-12)
    np.testing.assert_allclose(got[2], np.sqrt(np.abs(s)) * 3.0, rtol=1e-12)
    ran = [e for es in f._specs.values() for e in es][0].exe
    ran = getattr(ran, "_exe", ran)
    assert ran._step_fns is not None, "the call did not run its steps one by one"
    assert len(ran.plan.steps) >= 2  # the big kernel, and the small one (outer loop 50: split before)
    assert len(submitted) == 1 and submitted[0][1] == 1024 * 512, submitted  # the big (flat) kernel's second half
    held = [h for _, h, _ in ran._step_fns]
    assert all(type(h)._flags_ & ctypes._FUNCFLAG_PYTHONAPI for h in held)


def test_results_in_pytrees_are_recycled_without_the_garbage_collector():
    import gc
    f = tj.jit(lambda x, y: {"d": (x - y, abs(x - y)), "s": [x * y]})
    x, y = rng.random(1 << 16), rng.random(1 << 16)
    gc.disable()
    try:
        first = f(x, y)
        addrs = sorted(a.__array_interface__["data"][0] for a in (*first["d"], first["s"][0]))
        del first
        second = f(x, y)  # no reference cycle keeps the first outputs alive: their memory is reused
        again = sorted(a.__array_interface__["data"][0] for a in (*second["d"], second["s"][0]))
    finally:
        gc.enable()
    assert addrs == again


@pytest.mark.parametrize("n", [0, 1, 2, 63, 64, 65, 1000, 100003])
def test_split_full_reductions(n):
    x = rng.standard_normal(n)
    f = lambda x: (np.sum(1 / (1 + np.exp(-x))), x.max() if n else x.sum(), np.log(np.sum(np.exp(x))),  # noqa: E731
                   x.astype(np.float32).sum(), (x > 0).any(), (x > 0).all(), np.mean(x * 2))
    with np.errstate(all="ignore"):
        want = f(x)
    got = tj.jit(f)(x)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-5 if a.dtype == np.float32 else 1e-10)
    steps = tj.jit(lambda x: np.sum(1 / (1 + np.exp(-x)))).lower(x).executable.plan.steps
    if n >= 1000:  # one kernel of chunked partial sums for the threads, one that adds the partials
        assert [s.chunks for s in steps] == [16, 0]


def test_split_full_reduction_threads_agree():
    code = (
        "import numpy as np, tracejit as tj\n"
        "x = np.random.default_rng(3).standard_normal(10**6)\n"
        "f = tj.jit(lambda x: (np.sum(np.tanh(x)), x.max(), x.astype(np.float32).sum()))\n"
        "a, b, c = f(x)\n"
        "assert np.isclose(a, np.tanh(x).sum()) and b == x.max()\n"
        "assert np.isclose(c, x.astype(np.float32).astype(np.float64).sum(), rtol=1e-6)\n"
        "print('ok')\n")
    for n in ("1", "2", "5"):
        out = _python(code, TRACEJIT_NUM_THREADS=n)
        assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("shape", [(1,), (1, 1), (1, 5), (5, 1)])
def test_reductions_over_size_one_axes_feed_later_work(shape):
    x = rng.standard_normal(shape)
    f = lambda x: (np.std(x), np.log(np.sum(np.exp(x))), x - x.max(axis=0), x / x.sum(axis=-1, keepdims=True))  # noqa
    for a, b in zip(tj.jit(f)(x), f(x)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_two_tiers_give_the_same_results_and_tier_up_after_work():
    from tracejit.backends.cpu import tiers
    f = tj.jit(lambda x: np.tanh(x) * np.exp(-x) + np.sin(x))
    x = rng.standard_normal(1000)
    want = np.tanh(x) * np.exp(-x) + np.sin(x)
    np.testing.assert_allclose(f(x), want, rtol=1e-13)
    exe = next(iter(f._cache.values()))[0]
    assert isinstance(exe, tiers.TieredExecutable)
    first = exe.tier
    big = rng.standard_normal(1 << 20)
    for _ in range(20):
        out = f(big)
        if exe.tier == 1:
            break
    assert exe.tier == 1
    np.testing.assert_allclose(out, np.tanh(big) * np.exp(-big) + np.sin(big), rtol=1e-13)
    np.testing.assert_allclose(f(x), want, rtol=1e-13)
    assert first in (0, 1)  # 1 when the optimized code was already in the disk cache
    ir = exe.llvm_ir()
    assert re.search(r"<(4|8|16) x double>", ir)  # the vector width follows the host (AVX2: 4)


def test_graphs_without_vector_math_compile_once_and_lower_is_optimized():
    from tracejit.backends.cpu import executable
    f = tj.jit(lambda x: x * 2 + 1)
    f(rng.random(10))
    assert isinstance(next(iter(f._cache.values()))[0], executable.LLVMExecutable)
    ir = tj.jit(np.exp).lower(rng.random(10)).as_text("llvm")  # lower() always shows the optimized tier
    assert re.search(r"<(4|8|16) x double>", ir)  # the vector width follows the host (AVX2: 4)


def test_tiering_can_be_switched_off():
    code = ("import numpy as np, tracejit as tj\n"
            "from tracejit.backends.cpu import executable\n"
            "f = tj.jit(np.exp); f(np.ones(3))\n"
            "print(type(next(iter(f._cache.values()))[0]).__name__)\n")
    out = _python(code, TRACEJIT_TIERED="0")
    assert out.stdout.strip() == "LLVMExecutable", out.stderr


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_bias_folds_into_the_gemm(dtype):
    """``x @ W + b`` with b an argument (a dense layer): b's rows are copied into the output and BLAS adds the
    product onto them, so the tanh that follows reads the output alone."""
    x, w, bias = (rng.random(s).astype(dtype) for s in ((40, 30), (30, 20), (20,)))
    f = tj.jit(lambda x, w, bias: np.tanh(x @ w + bias))
    np.testing.assert_allclose(f(x, w, bias), np.tanh(x @ w + bias), rtol=1e-5 if dtype == np.float32 else 1e-12)
    steps = f.lower(x, w, bias).executable.plan.steps
    assert [type(s).__name__ for s in steps] == ["CopyStep", "MatmulStep", "Kernel"]
    assert steps[1].beta == 1.0 and [o.eqn.prim for o in steps[2].ops] == ["tanh"]


def test_scalar_gather_with_a_traced_index():
    """x[i] with a traced 0-d index reads one element: the gathered array has a higher rank than the result
    (this raised IndexError in the kernel lowering)."""
    x = np.arange(5.0)
    f = tj.jit(lambda x, i: x[i] * 2 + x[0])
    assert f(x, np.array(3)) == 6.0 and f(x, np.array(-1)) == 8.0
    g = tj.jit(lambda x, i: (x * 3)[i] + 1)
    assert g(x, np.array(2)) == 7.0
