"""Loops run as native loops on the CPU (backends/cpu/loops.py): the same results as the Python-driven loop and
as numpy, for every carry arrangement the carry swaps must handle, and no Python per iteration."""
import time

import numpy as np
import pytest

import tracejit as tj


def _region_exe(f):
    """The RegionExecutable behind a jitted function's one compiled specialization."""
    (entry,) = f._cache.values()
    return entry.exe


def _both_paths(monkeypatch, make, *args):
    """(native result, Python-driven result, native executable) of ``make()``'s function on ``args``."""
    f = tj.jit(make())
    native = f(*args)
    exe = _region_exe(f)
    assert exe.loop_runs["native"] >= 1 and exe.loop_runs["python"] == 0
    monkeypatch.setenv("TRACEJIT_NATIVE_LOOPS", "0")
    g = tj.jit(make())
    slow = g(*args)
    assert _region_exe(g).loop_runs["native"] == 0
    monkeypatch.delenv("TRACEJIT_NATIVE_LOOPS")
    return native, slow, exe


def _assert_same(a, b):
    for x, y in zip(np.atleast_1d(a) if not isinstance(a, tuple) else a,
                    np.atleast_1d(b) if not isinstance(b, tuple) else b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_fori_loop_native_matches_numpy_and_python_path(monkeypatch):
    x = np.linspace(0, 1, 37)

    def step(i, v):
        return v * 0.9 + 0.01 * np.sin(v) + 1e-3 * i
    ref = x.copy()
    for i in range(50):
        ref = step(i, ref)
    native, slow, _ = _both_paths(monkeypatch, lambda: lambda x: tj.fori_loop(0, 50, step, x), x)
    np.testing.assert_allclose(native, ref, rtol=1e-12)
    np.testing.assert_array_equal(native, slow)


@pytest.mark.parametrize("n", [0, 1, 7])
def test_traced_trip_count_and_zero_trips(monkeypatch, n):
    x = np.arange(6, dtype=np.float32)
    def f(x, n):
        return tj.fori_loop(0, n, lambda i, v: (v * 2 + i).astype(np.float32), x)
    native, slow, _ = _both_paths(monkeypatch, lambda: f, x, np.int64(n))
    ref = x.copy()
    for i in range(n):
        ref = (ref * 2 + i).astype(np.float32)
    np.testing.assert_array_equal(native, ref)
    np.testing.assert_array_equal(native, slow)
    assert native.dtype == np.float32


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_stacks_outputs_in_place_forward_and_reversed(monkeypatch, reverse):
    xs = np.arange(24, dtype=np.float64).reshape(6, 4)

    def f(xs):
        def cell(c, x):
            s, k = c
            return (s + x, k + 1), (s * x, k)
        return tj.scan(cell, (np.zeros(4), np.int32(0)), xs, reverse=reverse)
    native, slow, _ = _both_paths(monkeypatch, lambda: f, xs)
    (s, k), (ys, ks) = native
    s_ref, rows = np.zeros(4), []
    for x in (xs[::-1] if reverse else xs):
        rows.append(s_ref * x)
        s_ref = s_ref + x
    rows = rows[::-1] if reverse else rows
    np.testing.assert_array_equal(s, s_ref)
    np.testing.assert_array_equal(ys, np.stack(rows))
    assert int(k) == 6 and ks.dtype == np.int32
    np.testing.assert_array_equal(ks, np.arange(6)[::-1] if reverse else np.arange(6))
    for a, b in zip([s, k, ys, ks], [slow[0][0], slow[0][1], slow[1][0], slow[1][1]]):
        np.testing.assert_array_equal(a, b)


def test_zero_length_scan(monkeypatch):
    xs = np.zeros((0, 3))
    native, slow, _ = _both_paths(monkeypatch, lambda: lambda xs: tj.scan(lambda c, x: (c + x, c * 2), np.ones(3), xs),
                                  xs)
    np.testing.assert_array_equal(native[0], np.ones(3))
    assert native[1].shape == (0, 3)
    np.testing.assert_array_equal(native[0], slow[0])


def test_swapped_repeated_and_constant_carries(monkeypatch):
    """(a, b) -> (b, a) reads the old values; one value as two carries and as a y; a constant carry."""
    a0, b0 = np.arange(3.0), np.arange(3.0) + 10

    def f(a, b):
        def cell(c, _):
            a, b, same1, same2, const = c
            s = a + b
            return (b, a, s, s, np.float64(7.0)), s
        return tj.scan(cell, (a, b, a, a, np.float64(0.0)), None, length=5)
    native, slow, _ = _both_paths(monkeypatch, lambda: f, a0, b0)
    carry, ys = native
    np.testing.assert_array_equal(carry[0], a0 if 5 % 2 == 0 else b0)
    np.testing.assert_array_equal(carry[1], b0 if 5 % 2 == 0 else a0)
    np.testing.assert_array_equal(carry[2], a0 + b0)
    np.testing.assert_array_equal(carry[3], a0 + b0)
    assert float(carry[4]) == 7.0
    np.testing.assert_array_equal(ys, np.tile(a0 + b0, (5, 1)))
    for x, y in zip(carry + (ys,), slow[0] + (slow[1],)):
        np.testing.assert_array_equal(x, y)


def test_while_loop_predicate_runs_natively(monkeypatch):
    def f(x, limit):
        def going(c):
            k, v = c
            return (v.sum() < limit) & (k < 1000)

        def body(c):
            k, v = c
            return k + 1, v * 1.5 + np.arange(v.shape[1], dtype=v.dtype)
        return tj.while_loop(going, body, (np.int64(0), x))
    x = np.ones((2, 3), np.float32)
    native, slow, _ = _both_paths(monkeypatch, lambda: f, x, np.float32(500.0))
    k, v = 0, x.copy()
    while v.sum() < 500 and k < 1000:
        k, v = k + 1, v * np.float32(1.5) + np.arange(3, dtype=np.float32)
    assert int(native[0]) == k
    np.testing.assert_array_equal(native[1], v)
    np.testing.assert_array_equal(native[1], slow[1])


def test_while_loop_that_never_runs_returns_its_input():
    f = tj.jit(lambda x: tj.while_loop(lambda v: v[0] > 100, lambda v: v + 1, x))
    x = np.array([1, 2, 3], np.int32)
    out = f(x)
    np.testing.assert_array_equal(out, x)
    assert out.dtype == np.int32
    x[0] = 50
    assert out[0] == 1  # the result is not the caller's array


def test_no_python_per_iteration():
    """100,000 iterations: the Python-driven loop needs ~10 us each (about a second); the native one a few ms."""
    f = tj.jit(lambda x: tj.fori_loop(0, 100_000, lambda i, v: v + 1.0, x))
    f(np.float64(0))
    t0 = time.perf_counter()
    out = f(np.float64(0))
    took = time.perf_counter() - t0
    assert float(out) == 100_000.0
    runs = _region_exe(f).loop_runs
    assert runs["native"] == 2 and runs["python"] == 0
    assert took < 0.15, took


def test_index_error_inside_a_native_loop():
    f = tj.jit(lambda x, idx: tj.fori_loop(0, 3, lambda i, v: v + x[idx], np.zeros(2)))
    np.testing.assert_array_equal(f(np.arange(4.0), np.array([1, 2])), [3.0, 6.0])
    with pytest.raises(IndexError, match="out of bounds"):
        f(np.arange(4.0), np.array([1, 9]))


def test_nested_loops_run_as_one_native_program():
    def f(x):
        return tj.fori_loop(0, 3, lambda i, v: tj.fori_loop(0, 4, lambda j, w: w + j, v) * 2, x)
    g = tj.jit(f)
    out = g(np.float64(1.0))
    v = 1.0
    for _ in range(3):
        v = (v + 6) * 2
    assert float(out) == v
    runs = _region_exe(g).loop_runs
    assert runs["python"] == 0 and runs["program"] == 1


def test_grad_through_scan_and_fori_loop_uses_native_loops():
    w = np.linspace(0.5, 1.5, 5)

    def loss(w):
        def cell(h, x):
            h = np.tanh(h * w + x)
            return h, h
        _, hs = tj.scan(cell, np.zeros(5), np.linspace(-1, 1, 20).reshape(4, 5))
        return (hs ** 2).sum() + tj.fori_loop(0, 3, lambda i, v: v * w, np.ones(5)).sum()
    g = tj.jit(tj.grad(loss))(w)
    eps, num = 1e-6, np.zeros(5)
    for k in range(5):
        d = np.zeros(5)
        d[k] = eps
        num[k] = (loss_np(w + d) - loss_np(w - d)) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


def loss_np(w):
    h, total = np.zeros(5), 0.0
    for x in np.linspace(-1, 1, 20).reshape(4, 5):
        h = np.tanh(h * w + x)
        total += (h ** 2).sum()
    return total + (w ** 3).sum()


# ------------------------------------------------------------------------------------------------ per element
def _escape(cr, ci):
    def going(s):
        zr, zi, k = s
        return (zr * zr + zi * zi <= 4.0) & (k < 50)

    def step(s):
        zr, zi, k = s
        return zr * zr - zi * zi + cr, 2.0 * zr * zi + ci, k + 1
    return tj.while_loop(going, step, (np.float64(0.0), np.float64(0.0), np.int64(0)))


def _escape_numpy(cr, ci):
    zr, zi, k = np.zeros_like(cr), np.zeros_like(ci), np.zeros(cr.shape, np.int64)
    for _ in range(50):
        alive = (zr * zr + zi * zi <= 4.0) & (k < 50)
        zr, zi = np.where(alive, zr * zr - zi * zi + cr, zr), np.where(alive, 2 * zr * zi + ci, zi)
        k = k + alive
    return zr, zi, k


def _grid(n):
    cr, ci = np.meshgrid(np.linspace(-2.2, 0.8, n), np.linspace(-1.2, 1.2, n // 2))
    return cr.ravel(), ci.ravel()


def test_vmapped_while_runs_each_element_in_one_kernel(monkeypatch):
    cr, ci = _grid(60)
    native, slow, exe = _both_paths(monkeypatch, lambda: tj.vmap(_escape), cr, ci)
    assert exe.loop_runs["elementwise"] == 1
    for a, b, c in zip(native, slow, _escape_numpy(cr, ci)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_tiles_where_the_scalar_table_lacks_an_operation(monkeypatch):
    from tracejit.backends.cpu import elementwise_while, tiled_loops

    def lacks(self, params):
        raise NotImplementedError("pretend")
    monkeypatch.setattr(elementwise_while.ElementWhile, "__init__", lacks)
    monkeypatch.setattr(tiled_loops, "TILE", 256)
    monkeypatch.setattr(tiled_loops, "MIN_TILES_PER_THREAD", 2)
    cr, ci = _grid(90)  # 4,050 points: 15 whole tiles and a rest
    f = tj.jit(tj.vmap(_escape))
    out = f(cr, ci)
    assert _region_exe(f).loop_runs["tiled"] == 1
    for a, c in zip(out, _escape_numpy(cr, ci)):
        np.testing.assert_array_equal(a, c)


def test_a_while_whose_elements_interact_is_not_split():
    """Without where(m, ..., carry) finished elements keep changing: the loop runs whole (and still natively)."""
    def f(x):
        return tj.while_loop(lambda v: np.any(v < 10.0), lambda v: v * 2.0, x)
    g = tj.jit(f)
    x = np.array([1.0, 3.0, 0.5])
    out = g(x)
    v = x.copy()
    while (v < 10).any():
        v = v * 2
    np.testing.assert_array_equal(out, v)
    runs = _region_exe(g).loop_runs
    assert runs["native"] == 1 and runs["elementwise"] == 0 and runs["tiled"] == 0


def test_per_element_loop_with_a_math_function_and_a_constant_array():
    def newton(a, x0):  # sqrt(a) by Newton's method, per element, until it stops moving
        def going(s):
            x, k = s
            return (np.abs(np.log(x * x / a)) > 1e-13) & (k < 60)

        def step(s):
            x, k = s
            return 0.5 * (x + a / x) + np.zeros_like(x), k + 1  # (zeros: a broadcast 0-d value per element)
        return tj.while_loop(going, step, (x0, np.int32(0)))
    a = np.linspace(0.5, 40.0, 33)
    f = tj.jit(tj.vmap(newton))
    x, k = f(a, np.ones_like(a))
    assert _region_exe(f).loop_runs["elementwise"] == 1
    np.testing.assert_allclose(x, np.sqrt(a), rtol=1e-12)
    assert k.dtype == np.int32 and (k < 60).all() and k.max() > k.min()


def _element_while(f):
    """The ElementWhile kernel behind a jitted function's per-element while_loop."""
    (step,) = [s for s in _region_exe(f).steps if hasattr(getattr(s, "tiled", None), "fn")]
    return step.tiled


@pytest.mark.parametrize("n", [3, 8, 29])
def test_per_element_loop_on_simd_lanes_matches_numpy_for_each_dtype(monkeypatch, n):
    """float32, int32 and bool carries on SIMD lanes, n not a multiple of the lanes (a scalar remainder)."""
    def collatz(x0, limit):
        def going(s):
            x, k, odd = s
            return (x != 1) & (k < limit)

        def step(s):
            x, k, odd = s
            odd = x % 2 == 1
            return np.where(odd, 3 * x + 1, x // 2), k + np.float32(0.5), odd
        return tj.while_loop(going, step, (x0, np.float32(0.0), np.bool_(False)))
    x0 = np.arange(1, n + 1, dtype=np.int32) * 7
    f = tj.jit(tj.vmap(collatz, in_axes=(0, None)))
    x, k, odd = f(x0, np.int32(40))
    assert _element_while(f).simd
    ref = []
    for v in x0:
        v, kk, o = int(v), np.float32(0), False
        while v != 1 and kk < 40:
            o = v % 2 == 1
            v, kk = (3 * v + 1 if o else v // 2), kk + np.float32(0.5)
        ref.append((v, kk, o))
    np.testing.assert_array_equal(x, [r[0] for r in ref])
    np.testing.assert_array_equal(k, np.array([r[1] for r in ref], np.float32))
    np.testing.assert_array_equal(odd, [r[2] for r in ref])
    assert x.dtype == np.int32 and k.dtype == np.float32 and odd.dtype == np.bool_


def test_a_math_call_in_a_per_element_loop_uses_scalar_lanes():
    f = tj.jit(tj.vmap(lambda x: tj.while_loop(lambda v: v < 3.0, lambda v: v + np.exp(-v), x)))
    out = f(np.linspace(0, 2, 11))
    assert not _element_while(f).simd
    ref = np.linspace(0, 2, 11)
    for j in range(11):
        while ref[j] < 3.0:
            ref[j] = ref[j] + np.exp(-ref[j])
    np.testing.assert_allclose(out, ref, rtol=1e-14)


def test_small_products_in_a_loop_run_blas_on_one_thread_and_restore_it():
    from tracejit.backends.cpu import loop_blas
    fns = loop_blas._thread_functions()
    w = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
    f = tj.jit(lambda h: tj.fori_loop(0, 20, lambda i, h: np.tanh(h @ w), h))
    h0 = np.ones((4, 8), np.float32)
    before = fns[0]() if fns else None
    out = f(h0)
    ref = h0
    for _ in range(20):
        ref = np.tanh(ref @ w)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    if fns:
        assert fns[0]() == before


# ------------------------------------------------------------------------------------------------ nested programs
def _count_region_runs(monkeypatch):
    """Calls of RegionExecutable.run (the top-level call is one; a body run from Python adds more)."""
    from tracejit import segmented
    calls = []
    real = segmented.RegionExecutable.run

    def counted(self, arrays):
        calls.append(self)
        return real(self, arrays)
    monkeypatch.setattr(segmented.RegionExecutable, "run", counted)
    return calls


def _program_paths(monkeypatch, make, *args):
    """(native result, Python-driven result): the native run must be one op table, no body run from Python."""
    calls = _count_region_runs(monkeypatch)
    f = tj.jit(make())
    native = f(*args)
    runs = _region_exe(f).loop_runs
    assert runs["python"] == 0 and runs["program"] >= 1
    assert len(calls) == 1, "a nested body ran from Python"
    monkeypatch.setenv("TRACEJIT_NATIVE_LOOPS", "0")
    slow = tj.jit(make())(*args)
    monkeypatch.delenv("TRACEJIT_NATIVE_LOOPS")
    return native, slow


def test_cond_inside_a_loop_body_runs_natively(monkeypatch):
    x = np.linspace(-1, 1, 9)

    def f(x):
        return tj.fori_loop(0, 12, lambda i, v: tj.cond(v.sum() > 2, lambda a: a * 0.5 - i,
                                                        lambda a: a + np.cos(a), v), x)
    native, slow = _program_paths(monkeypatch, lambda: f, x)
    ref = x.copy()
    for i in range(12):
        ref = ref * 0.5 - i if ref.sum() > 2 else ref + np.cos(ref)
    np.testing.assert_allclose(native, ref, rtol=1e-13)
    np.testing.assert_array_equal(native, slow)


@pytest.mark.parametrize("index", [-3, 0, 1, 2, 7])
def test_top_level_switch_runs_one_branch_natively(monkeypatch, index):
    x = np.arange(5.0)

    def f(x, k):
        return tj.switch(k, [lambda a: a + 1, lambda a: (a * 3).sum() * a, lambda a: -a], x)
    native, slow = _program_paths(monkeypatch, lambda: f, x, np.int64(index))
    ref = [x + 1, (x * 3).sum() * x, -x][int(np.clip(index, 0, 2))]
    np.testing.assert_array_equal(native, ref)
    np.testing.assert_array_equal(native, slow)


def test_top_level_cond_with_several_results_and_a_passed_through_operand(monkeypatch):
    def f(x, y):
        return tj.cond(x.sum() > y.sum(), lambda a, b: (a, b * 2), lambda a, b: (a * 0 + b.sum(), b - a.sum()), x, y)
    x, y = np.arange(3.0), np.array([5.0, 1.0, 2.0])
    for args in ((x, y), (x + 10, y)):
        native, slow = _program_paths(monkeypatch, lambda: f, *args)
        _assert_same(native, slow)


def test_while_loop_and_fori_loop_inside_a_scan_body(monkeypatch):
    def f(x, xs):
        def cell(c, xi):
            grown = tj.while_loop(lambda w: w.sum() < 10 + xi, lambda w: w * 2 + 0.25, c)
            smooth = tj.fori_loop(0, 3, lambda j, w: w * 0.5 + j, grown)
            return smooth * 0.1, (grown.sum(), smooth)
        return tj.scan(cell, x, xs, reverse=True)
    x, xs = np.linspace(0.1, 1, 4), np.arange(6.0)
    native, slow = _program_paths(monkeypatch, lambda: f, x, xs)
    c, ys, rows = x.copy(), [], []
    for xi in xs[::-1]:
        g = c.copy()
        while g.sum() < 10 + xi:
            g = g * 2 + 0.25
        s = g.copy()
        for j in range(3):
            s = s * 0.5 + j
        c = s * 0.1
        ys.append(g.sum())
        rows.append(s)
    np.testing.assert_allclose(native[0], c, rtol=1e-13)
    np.testing.assert_allclose(native[1][0], ys[::-1], rtol=1e-13)
    np.testing.assert_allclose(native[1][1], rows[::-1], rtol=1e-13)
    _assert_same(native[0], slow[0])
    _assert_same(native[1], slow[1])


def test_grad_through_a_nested_loop_runs_natively(monkeypatch):
    w = np.linspace(0.5, 1.5, 4)

    def loss(w):
        def cell(h, x):
            h = tj.fori_loop(0, 3, lambda j, v: np.tanh(v * w + x), h)
            return h, h.sum()
        return tj.scan(cell, np.zeros(4), np.linspace(0, 1, 5))[1].sum()
    native, slow = _program_paths(monkeypatch, lambda: tj.grad(loss), w)
    eps, fd, value = 1e-6, [], tj.jit(loss)
    for k in range(4):
        d = np.zeros(4)
        d[k] = eps
        fd.append((float(value(w + d)) - float(value(w - d))) / (2 * eps))
    np.testing.assert_allclose(native, fd, rtol=1e-6)
    np.testing.assert_allclose(native, slow, rtol=1e-14)


def test_index_error_inside_a_nested_native_loop():
    f = tj.jit(lambda x, idx: tj.fori_loop(0, 2, lambda i, v: tj.fori_loop(0, 2, lambda j, u: u + x[idx], v),
                                           np.zeros(2)))
    np.testing.assert_array_equal(f(np.arange(4.0), np.array([1, 2])), [4.0, 8.0])
    with pytest.raises(IndexError, match="out of bounds"):
        f(np.arange(4.0), np.array([1, 9]))
    # the built program is kept for these shapes: new inputs, and the error flag cleared for the next run
    np.testing.assert_array_equal(f(np.arange(4.0) * 2, np.array([3, 0])), [24.0, 0.0])


# ------------------------------------------------------------------------------------------------ LAPACK in bodies
def test_newton_steps_with_solve_run_natively(monkeypatch):
    """Newton's method on F(x) = A x + x^3 - b: each step solves with the Jacobian, inside the native loop."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(5, 5)) + 5 * np.eye(5), rng.normal(size=5)

    def newton(a, b):
        def step(i, x):
            return x - np.linalg.solve(a + np.diag(3 * x * x), a @ x + x ** 3 - b)
        return tj.fori_loop(0, 8, step, np.zeros(5))
    native, slow = _program_paths(monkeypatch, lambda: newton, a, b)
    x = np.zeros(5)
    for _ in range(8):
        x = x - np.linalg.solve(a + np.diag(3 * x * x), a @ x + x ** 3 - b)
    np.testing.assert_allclose(native, x, rtol=1e-12)
    np.testing.assert_allclose(a @ native + native ** 3, b, atol=1e-10)
    np.testing.assert_allclose(native, slow, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cholesky_inv_and_stacked_solve_in_a_scan_body(monkeypatch, dtype):
    rng = np.random.default_rng(4)
    m = rng.normal(size=(3, 3)).astype(dtype)
    stack = (rng.normal(size=(2, 3, 3)) + 3 * np.eye(3)).astype(dtype)
    rhs = rng.normal(size=(4, 2, 3, 2)).astype(dtype)

    def f(m, stack, rhs):
        def cell(c, r):
            spd = c @ c.T + np.eye(3, dtype=dtype)
            low = np.linalg.cholesky(spd)
            y = np.linalg.solve(stack, r) + np.linalg.inv(spd).sum()
            return low * 0.5 + np.eye(3, dtype=dtype), y
        return tj.scan(cell, m, rhs)
    native, slow = _program_paths(monkeypatch, lambda: f, m, stack, rhs)
    c, ys = m.astype(np.float64), []
    for r in rhs.astype(np.float64):
        spd = c @ c.T + np.eye(3)
        ys.append(np.linalg.solve(stack.astype(np.float64), r) + np.linalg.inv(spd).sum())
        c = np.linalg.cholesky(spd) * 0.5 + np.eye(3)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(native[0], c, rtol=tol, atol=tol)
    np.testing.assert_allclose(native[1], np.stack(ys), rtol=tol, atol=tol)
    assert native[0].dtype == dtype and native[1].dtype == dtype
    np.testing.assert_allclose(native[0], slow[0], rtol=tol, atol=tol)


def test_singular_and_indefinite_matrices_raise_numpys_error_from_a_native_loop():
    solve = tj.jit(lambda a, b: tj.fori_loop(0, 2, lambda i, v: np.linalg.solve(a, v), b))
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        solve(np.ones((3, 3)), np.ones(3))
    chol = tj.jit(lambda a: tj.fori_loop(0, 2, lambda i, v: np.linalg.cholesky(v) + a, a))
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        chol(-np.eye(3))
    np.testing.assert_allclose(solve(2 * np.eye(3), np.ones(3)), np.full(3, 0.25))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32])
def test_sort_in_a_loop_body_runs_natively_in_numpys_order(monkeypatch, dtype):
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(3, 8)) * 5).astype(dtype)
    if x.dtype.kind == "f":
        x[0, :4] = [np.nan, -0.0, np.inf, np.nan]

    def f(x):
        return tj.fori_loop(0, 3, lambda i, v: np.sort((v[:, ::-1] * -1 + i).astype(dtype)), x)
    native, slow = _program_paths(monkeypatch, lambda: f, x)
    ref = x.copy()
    for i in range(3):
        ref = np.sort(ref[:, ::-1] * -1 + dtype(i))
    np.testing.assert_array_equal(native, ref)
    np.testing.assert_array_equal(native, slow)
    assert native.dtype == dtype


def test_a_kept_program_is_not_shared_by_concurrent_calls():
    from concurrent.futures import ThreadPoolExecutor
    f = tj.jit(lambda x: tj.fori_loop(0, 200, lambda i, v: tj.cond(v.sum() > 0, lambda a: a * 0.5 - 1.0,
                                                                     lambda a: a + 0.75, v), x))
    inputs = [np.linspace(-k, k + 1, 64) for k in range(8)]
    expected = [f(x) for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            for got, ref in zip(pool.map(f, inputs), expected):
                np.testing.assert_array_equal(got, ref)
