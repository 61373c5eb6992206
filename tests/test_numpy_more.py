"""Issue 14's numpy functions on traced values (trace/numpy_more*.py): differential tests against numpy.

Breadth (shapes, dtypes, axes, keyword forms) runs through the IR interpreter, which evaluates the traced graph
with symbolic lengths (fast: no compile); every function also runs compiled under tj.jit once, a few with two
lengths through one compilation; errors are checked for numpy's exception type and message; gradients against
JAX (x64) for the differentiable ones.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.api import make_ir
from tracejit.errors import UnsupportedError
from tracejit.ir.interpret import evaluate

R = np.random.default_rng(0)


def _same(got, want, rtol=1e-12):
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w, rtol)
        return
    want = np.asarray(want)
    got = np.asarray(got)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12, equal_nan=True)


def _leaves(tree):
    return [x for t in tree for x in _leaves(t)] if isinstance(tree, (tuple, list)) else [tree]


def _rebuild(tree, it):
    if isinstance(tree, (tuple, list)):
        return type(tree)(_rebuild(t, it) for t in tree)
    return next(it)


def eager(f, *args, like=None):
    """f traced (lengths symbolic) and evaluated by the IR interpreter, run-time length checks included; ``like``
    (numpy's result) gives the output structure (the run-time check flags follow the outputs)."""
    g = make_ir(f)(*args)
    out = evaluate(g, list(args))
    if like is None:
        return out[0] if len(out) == 1 else tuple(out)
    n = len(_leaves(like))
    assert not any(np.any(flag) for flag in out[n:]), "a run-time check failed"
    return _rebuild(like, iter(out[:n]))


def both(f, *args, rtol=1e-12):
    want = f(*args)
    _same(eager(f, *args, like=want), want, rtol)
    return want


# ------------------------------------------------------------------------------------------------ data
X = R.normal(size=(5, 4))
XN = X.copy()
XN[1, 2], XN[3, 1], XN[0, 0] = np.nan, np.inf, -np.inf
XI = R.integers(-9, 9, size=(5, 4))
XB = XI > 0
X32 = X.astype(np.float32)
V = R.normal(size=7)
K3 = np.array([0.5, -1.0, 2.0])
EDGES = np.array([-2.0, -1.0, 0.0, 0.5, 3.0])

# one compiled run per function (the interpreter covers the variations below)
JIT_CASES = {
    "roll": (lambda x: np.roll(x, 2, axis=1), X),
    "roll_flat": (lambda x: np.roll(x, -7), XI),
    "roll_axes": (lambda x: np.roll(x, (1, -2), axis=(0, 1)), X),  # two gathers: the memory planner's case
    "diff": (lambda x: np.diff(x, 2, axis=0, prepend=0.0), X),
    "flip": (lambda x: np.flip(x), X),
    "rot90": (lambda x: np.rot90(x, 3), XI),
    "cumsum": (lambda x: np.cumsum(x, axis=1), XI),
    "cumprod": (lambda x: np.cumprod(x, axis=0, dtype=np.float64), X32),
    "tile": (lambda x: np.tile(x, (2, 1, 3)), XB),
    "repeat": (lambda x: np.repeat(x, [1, 0, 2, 1, 3], axis=0), X),
    "pad_reflect": (lambda x: np.pad(x, ((2, 7), (1, 0)), mode="reflect"), X),
    "pad_constant": (lambda x: np.pad(x, 2, constant_values=(1, 7)), XI),
    "take": (lambda x: np.take(x, np.array([[0, -1], [2, 2]]), axis=1), X),
    "take_along_axis": (lambda x: np.take_along_axis(x, np.argmax(x, axis=1)[:, None], 1), X),
    "put_along_axis": (lambda x: tnp.put_along_axis(x, np.array([[0], [3], [1], [1], [2]]), -1.0, 1,
                                                    inplace=False), X),
    "array_split": (lambda x: np.array_split(x, 3, axis=1), X),
    "stacks": (lambda x: (np.hstack([x, x]), np.vstack([x, x[0]]), np.column_stack([x[:, 0], x]),
                          np.dstack([x, x])), X),
    "meshgrid": (lambda x: np.meshgrid(x[0], x[:, 0]), X),
    "triu_tril": (lambda x: (np.triu(x, 1), np.tril(x, -1)), X),
    "diag": (lambda x: (np.diag(x[0], -1), np.diag(x, 1)), X),
    "trace": (lambda x: np.trace(x, -1), XI),
    "kron": (lambda x: np.kron(x, np.array([[1, -1], [2, 0]])), XI),
    "cross": (lambda x: np.cross(x[:, :3], x[:, 1:]), X),
    "round": (lambda x: (np.round(x * 10, 1), np.round(x * 10, -1)), X),
    "isclose": (lambda x: (np.isclose(x, x + 1e-9), np.allclose(x, x * 2)), XN),
    "nan": (lambda x: (np.nan_to_num(x), np.nansum(x, 0), np.nanmean(x, 1), np.nanmax(x), np.nanmin(x, 0)), XN),
    "count_nonzero": (lambda x: np.count_nonzero(x, axis=0), XI),
    "average": (lambda x: np.average(x, axis=1, weights=np.arange(1.0, 5.0), returned=True), X),
    "searchsorted": (lambda x: np.searchsorted(np.sort(X.ravel()), x, side="right"), X),
    "bincount": (lambda x: np.bincount(np.abs(x.ravel()), minlength=12), XI),
    "histogram": (lambda x: np.histogram(x, bins=5), X),
    "interp": (lambda x: np.interp(x, EDGES, np.array([1.0, -1, 2, 0, 3])), X),
    "convolve": (lambda x: np.convolve(x, K3, "same"), V),
    "correlate": (lambda x: np.correlate(x, K3), V),
    "norm": (lambda x: (np.linalg.norm(x), np.linalg.norm(x, 1), np.linalg.norm(x, 3, axis=0)), X),
    "linspace": (lambda x: np.logspace(x[0], x[1], 5), V),
}


@pytest.mark.parametrize("name", sorted(JIT_CASES))
def test_compiled_matches_numpy(name):
    f, x = JIT_CASES[name]
    want = f(x) if name != "put_along_axis" else _put(x)
    _same(tj.jit(f)(x), want)


def _put(x):
    out = x.copy()
    np.put_along_axis(out, np.array([[0], [3], [1], [1], [2]]), -1.0, 1)
    return out


def test_one_compile_for_two_lengths():
    f = tj.jit(lambda x: (np.cumsum(x), np.roll(x, 3), np.diff(x), np.pad(x, (2, 3), mode="wrap"),
                          np.convolve(x, np.array([1, 2, 1])), np.histogram(x, bins=4, range=(-5, 5))[0],
                          np.array_split(x, 3)[2], np.searchsorted(np.cumsum(np.abs(x)), np.array([0, 7, 10**6]))))
    for n in (7, 300_001):  # 300001 crosses every level of the blocked scan
        x = R.integers(-5, 5, size=n)
        want = (np.cumsum(x), np.roll(x, 3), np.diff(x), np.pad(x, (2, 3), mode="wrap"),
                np.convolve(x, np.array([1, 2, 1])), np.histogram(x, bins=4, range=(-5, 5))[0],
                np.array_split(x, 3)[2], np.searchsorted(np.cumsum(np.abs(x)), np.array([0, 7, 10**6])))
        _same(f(x), want)
    assert f.cache_info().misses == 1


def test_cumprod_float_long_and_vmap():
    x = 1 + R.normal(size=(3, 5000)) * 1e-3
    _same(tj.jit(lambda x: np.cumprod(x, axis=1))(x), np.cumprod(x, axis=1), rtol=1e-11)
    _same(tj.vmap(lambda r: np.cumsum(np.roll(r, 1)))(x[:, :9]), np.cumsum(np.roll(x[:, :9], 1, axis=1), axis=1))


def test_tracejit_numpy_namespace():
    assert tnp.roll(np.arange(4), 1).tolist() == [3, 0, 1, 2]  # plain arrays: numpy's own
    _same(tj.jit(lambda x: tnp.cumsum(x))(XI), np.cumsum(XI))
    for name in ("roll", "cumsum", "pad", "interp", "histogram", "bincount", "isclose", "atleast_3d"):
        assert callable(getattr(tnp, name))
    _same(tnp.linalg.norm(X, 1), np.linalg.norm(X, 1))
    _same(tj.jit(lambda x: tnp.linalg.norm(x, axis=0))(X), np.linalg.norm(X, axis=0))
    _same(tnp.linalg.solve(X[:4], X[0]), np.linalg.solve(X[:4], X[0]))  # plain arrays: numpy's own
    _same(tnp.fft.rfft(V), np.fft.rfft(V))
    # formerly a refusal ("LAPACK"): np.linalg runs on traced values now (tests/test_library_prims.py)
    _same(tj.jit(lambda x: tnp.linalg.inv(x))(X[:4]), np.linalg.inv(X[:4]))


# ------------------------------------------------------------------------------------------------ breadth (interpreter)
shapes = st.lists(st.integers(0, 5), min_size=1, max_size=3).map(tuple)


DTYPES = st.sampled_from([np.float64, np.float32, np.int32, np.int64, np.bool_])


@settings(max_examples=25)
@given(shapes, st.integers(-7, 7), DTYPES, st.data())
def test_roll_diff_flip(shape, k, dt, data):
    x = (R.normal(size=shape) * 3).astype(dt)
    ax = data.draw(st.integers(-len(shape), len(shape) - 1))
    both(lambda x: np.roll(x, k, axis=ax), x)
    both(lambda x: np.roll(x, k), x)
    both(lambda x: np.flip(x, ax), x)
    n = data.draw(st.integers(0, 3))
    both(lambda x: np.diff(x, n, axis=ax), x)


@settings(max_examples=25)
@given(shapes, st.sampled_from([np.int32, np.int64, np.float64, np.float32, np.bool_]), st.data())
def test_cumsum_cumprod(shape, dt, data):
    x = R.integers(-3, 4, size=shape).astype(dt)
    ax = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    both(lambda x: np.cumsum(x, axis=ax), x, rtol=1e-5)
    both(lambda x: np.cumprod(x, axis=ax), x, rtol=1e-5)


def test_cumsum_long_exact_for_ints():
    x = R.integers(-2**40, 2**40, size=70_000)
    both(np.cumsum, x)
    both(lambda x: np.cumsum(x, dtype=np.int32), (x % 1000).astype(np.int32))
    both(lambda x: np.cumprod(x, axis=0), R.integers(-3, 4, size=(200, 2)))  # wraps around as numpy


@settings(max_examples=30)
@given(shapes, st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap", "maximum", "minimum", "mean"]),
       st.sampled_from([np.float64, np.float32, np.int32, np.int64]), st.data())
def test_pad_modes(shape, mode, dt, data):
    x = R.integers(-9, 9, size=shape).astype(dt)
    pw = [(data.draw(st.integers(0, 9)), data.draw(st.integers(0, 9))) for _ in shape]
    if mode != "constant" and any(n == 0 and p != (0, 0) for n, p in zip(shape, pw)):
        with pytest.raises(ValueError, match="can't extend empty axis"):
            eager(lambda x: np.pad(x, pw, mode=mode), x)
        return
    both(lambda x: np.pad(x, pw, mode=mode), x)


def test_pad_forms():
    both(lambda x: np.pad(x, 1, constant_values=((1, 2), (3, 4))), XI)
    both(lambda x: np.pad(x, ((1, 2),), mode="edge"), X)
    both(lambda x: np.pad(x, (0, 3), mode="mean"), XI)  # rounded into the int array


@settings(max_examples=25)
@given(shapes, st.data())
def test_take_and_along_axis(shape, data):
    x = R.normal(size=shape)
    ax = data.draw(st.integers(0, len(shape) - 1))
    n = shape[ax]
    if n == 0:
        return
    idx = R.integers(-n, n, size=(3,))
    both(lambda x: np.take(x, idx, axis=ax), x)
    if x.size == 0:
        for g in (lambda x: np.take(x, idx, mode="wrap"), lambda x: np.take(x, idx, mode="clip")):
            with pytest.raises(IndexError, match="non-empty take"):
                g(x)
            with pytest.raises(IndexError, match="non-empty take|out of bounds"):
                tj.jit(g)(x)
        return
    ishape = tuple(s if i != ax else 4 for i, s in enumerate(shape))
    ia = R.integers(-n, n, size=ishape)
    both(lambda x: np.take_along_axis(x, ia, ax), x)
    both(lambda x: np.take(x, idx * 3, mode="wrap"), x)
    both(lambda x: np.take(x, idx * 3, axis=ax, mode="clip"), x)


@settings(max_examples=25)
@given(shapes, DTYPES, st.data())
def test_tile_repeat_split(shape, dt, data):
    x = R.integers(-9, 9, size=shape).astype(dt)
    reps = tuple(data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=4)))
    both(lambda x: np.tile(x, reps), x)
    r = data.draw(st.integers(0, 3))
    ax = data.draw(st.integers(-len(shape), len(shape) - 1))
    both(lambda x: np.repeat(x, r, axis=ax), x)
    both(lambda x: np.repeat(x, r), x)
    counts = R.integers(0, 3, size=shape[ax])
    both(lambda x: np.repeat(x, counts, axis=ax), x)
    sections = data.draw(st.integers(1, 4))
    both(lambda x: np.array_split(x, sections, axis=ax), x)
    both(lambda x: np.split(x, [1, 3], axis=ax), x)


def test_stack_family_and_atleast():
    a, b = np.arange(3.0), np.arange(3.0, 6.0)
    for f in (np.hstack, np.vstack, np.column_stack, np.dstack):
        both(lambda a, b: f([a, b]), a, b)
        both(lambda a, b: f((a[None], b[None])), a, b)
    both(lambda a: np.hstack([a[0], a[1]]), a)
    for f in (np.atleast_1d, np.atleast_2d, np.atleast_3d):
        for x in (np.float64(2.0) * np.ones(()), a, X, np.ones((2, 3, 4))):
            both(f, x)
        both(lambda a, b: f(a, b), a, X)
    both(lambda a: np.split(a, 3), a)


def test_grids_triangles_diagonals():
    both(lambda a, b, c: np.meshgrid(a, b, c, indexing="ij"), V[:3], V[:4], V[:2])
    both(lambda a, b: np.meshgrid(a, b, sparse=True), V[:3], V[:4])
    _same(eager(lambda x: tnp.indices(x.shape), X, like=np.indices(X.shape)), np.indices(X.shape))
    want = np.indices(X.shape, sparse=True)
    _same(eager(lambda x: tnp.indices(x.shape, sparse=True), X, like=want), want)
    sq = R.normal(size=(2, 4, 4))
    for k in (-5, -1, 0, 2, 7):
        both(lambda x: (np.triu(x, k), np.tril(x, k)), sq)
        both(lambda x: (np.diag(x, k), np.diag(x[:, 0], k)), X)
        both(lambda x: np.diagonal(x, k, 2, 0), sq)
        both(lambda x: np.trace(x, k, axis1=1, axis2=2), sq)
    both(lambda x: (np.triu(x[0]), np.tril(x[0], 1)), X)
    both(lambda x: (np.fliplr(x), np.flipud(x), np.rot90(x), np.rot90(x, 2, axes=(1, 0))), X)
    both(lambda x: np.rot90(x, -1, axes=(2, 0)), sq)


def test_kron_cross():
    both(lambda a, b: np.kron(a, b), XI, X[:2, :3])
    both(lambda a, b: np.kron(a, b), V[:3], X)
    a, b = R.normal(size=(4, 3)), R.normal(size=(4, 3))
    both(np.cross, a, b)
    both(lambda a, b: np.cross(a, b, axisa=0, axisb=0, axisc=0), a.T, b.T)
    both(lambda a, b: np.cross(a, b), a, b[0])
    with pytest.warns(DeprecationWarning):
        want = np.cross(a[:, :2], b[:, :2])
    _same(tj.jit(lambda a, b: np.cross(a[:, :2], b[:, :2]))(a, b), want)  # the length specializes under jit


def test_round_isclose_nan():
    half = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.125, 0.375, 1e300, np.nan, np.inf])
    for d in (-2, -1, 0, 1, 2):
        both(lambda x: np.round(x, d), half)
        both(lambda x: np.around(x, d), X32 * 100)
        both(lambda x: np.round(x, d), np.array([-250, -150, -25, 15, 25, 35, 149, 150, 151]))
    with pytest.raises(TypeError, match="float16"):
        eager(np.round, XB)
    y = np.where(R.random(XN.shape) < 0.5, XN, XN + 1e-7)
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.0, "atol": 1e-6}):
        both(lambda a, b: (np.isclose(a, b, **kw), np.allclose(a, b, **kw)), XN, y)
    both(lambda a: np.isclose(a, 3), XI)
    both(lambda a: np.isclose(a, 1 + 1e-8, rtol=0, atol=1e-9), np.float32([1.0, 2.0]))  # a Python float: float32
    both(lambda a: np.isclose(a, np.float64(1 + 1e-8), rtol=0, atol=1e-9), np.float32([1.0, 2.0]))  # float64
    both(lambda a: np.isclose(a, 16777217, rtol=0, atol=0), np.float32([16777216.0]))
    both(lambda a: np.isclose(a, a.astype(np.float32)), X32)
    both(lambda x: np.nan_to_num(x, nan=-1.0, posinf=9.0), XN)
    both(np.nan_to_num, XI)
    allnan = XN.copy()
    allnan[:, 1] = np.nan
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for ax in (None, 0, 1):
            both(lambda x: (np.nansum(x, ax), np.nanprod(x, ax), np.nanmean(x, ax), np.nanmax(x, ax),
                            np.nanmin(x, ax, keepdims=True)), allnan)
    both(lambda x: (np.nanmax(x), np.nansum(x, 0)), XI)
    both(lambda x: (np.count_nonzero(x), np.count_nonzero(x, axis=1, keepdims=True)), XB)


def test_average():
    both(lambda x, w: np.average(x, weights=w), X, X ** 2)
    both(lambda x, w: np.average(x, axis=0, weights=w, returned=True), XI, np.arange(5))
    both(lambda x: np.average(x, axis=(0, 1), returned=True), XI)
    both(lambda x: np.average(x, axis=1, keepdims=True), X32)


def test_counting():
    a = np.sort(R.integers(0, 6, size=9)).astype(np.float64)
    v = np.array([[-1.0, 0, 2.5], [3, 5, 9]])
    for side in ("left", "right"):
        both(lambda a, v: np.searchsorted(a, v, side=side), a, v)
        both(lambda a: np.searchsorted(a, 2, side=side), a)
    both(lambda a, v: np.searchsorted(a, v), np.array([0.0, 1, np.nan]), np.array([np.nan, 1.0, 5.0]))
    perm = R.permutation(9)
    order = np.argsort(a[perm])
    both(lambda a, v: np.searchsorted(a, v, sorter=order), a[perm], v)
    for n in (0, 1, 63, 64, 65, 200, 1000):  # the blocked count: block edges, padding, nan and extreme queries
        big = np.sort(R.integers(-50, 50, size=n)).astype(np.float64)
        big[n - n // 10:] = np.nan
        q = np.concatenate([R.integers(-60, 60, size=40).astype(np.float64), big[:3], [np.nan, -np.inf, np.inf]])
        for side in ("left", "right"):
            both(lambda a, v: np.searchsorted(a, v, side=side), big, q)
            ints = np.sort(R.integers(-50, 50, size=n).astype(np.int32))
            both(lambda a, v: np.searchsorted(a, v, side=side), ints, q[:40].astype(int))
            both(lambda v: np.searchsorted(np.arange(n), v, side=side), np.array([-1, 0, 5, n - 1, n, 2**62]))
    x = R.integers(0, 7, size=30)
    both(lambda x: np.bincount(x, minlength=10), x)
    both(lambda x, w: np.bincount(x, w, minlength=7), x, R.normal(size=30))
    d = R.normal(size=40)
    for kw in ({}, {"bins": 3}, {"bins": 6, "range": (-1, 1)}, {"bins": EDGES}, {"bins": 4, "density": True},
               {"bins": 5, "weights": np.abs(d)}):
        both(lambda d: np.histogram(d, **kw), d)
    both(lambda d: np.histogram(d, bins=3), np.full(5, 2.0))  # min == max: numpy widens by 0.5
    e = np.linspace(-1, 1, 8)
    edge_hits = np.concatenate([d, e, e.astype(np.float32), [np.nan, np.inf, -3.0, 2.0]])
    for data in (edge_hits, edge_hits.astype(np.float32), R.integers(-5, 6, size=50)):
        for kw in ({"bins": 7, "range": (-1, 1)}, {"bins": 256, "range": (-1.0, 1.5)}, {"bins": 5}):
            if not np.isfinite(data).all() and "range" not in kw:
                continue
            both(lambda d: np.histogram(d, **kw), data)
    both(lambda d: np.histogram(d), np.zeros((0,)))


def test_interp_convolve():
    xp = np.array([0.0, 1, 2.5, 4, 5])
    fp = np.array([1.0, -1, 2, 0, 3])
    x = np.concatenate([np.linspace(-1, 6, 29), xp, [np.nan]])
    both(lambda x: np.interp(x, xp, fp), x)
    both(lambda x: np.interp(x, xp, fp, left=-9.0, right=9.0), x)
    both(lambda x: np.interp(x, xp[:1], fp[:1]), x)
    both(lambda x, xp, fp: np.interp(x, xp, fp), x, xp, fp)
    xl = np.sort(R.normal(size=300))
    both(lambda x, xp, fp: np.interp(x, xp, fp), np.concatenate([x, xl[::7], R.normal(size=50)]), xl, xl ** 2)
    for n, m in ((7, 3), (3, 7), (6, 2), (2, 6), (5, 5), (1, 4)):
        a, b = R.normal(size=n), R.normal(size=m)
        for mode in ("full", "same", "valid"):
            both(lambda a, b: (np.convolve(a, b, mode), np.correlate(a, b, mode)), a, b)
    both(lambda a: np.convolve(a, np.array([1, 2, 3])), np.arange(5))


def test_linspace_logspace_norm():
    both(lambda a, b: np.linspace(a, b, 6), np.float64(0.5) * np.ones(()), np.float64(3.0) * np.ones(()))
    both(lambda a: tnp.linspace(a, a + 1, 4, endpoint=False, axis=1), V[:3])
    both(lambda a: tnp.linspace(a[0], a[1], 5, retstep=True), V)
    both(lambda a: tnp.linspace(a[0], a[0], 5), V)
    both(lambda a: tnp.logspace(a[0], a[1], 4, base=2.0), V)
    both(lambda a: (tnp.linspace(a[0], a[1], 7), tnp.linspace(a[0], a[1], 5, dtype=np.int32)), V.astype(np.float32))
    for ord_ in (None, 1, 2, np.inf, -np.inf, 0, 3, -1.5):
        both(lambda x: np.linalg.norm(x, ord_, axis=1), X)
    for ord_ in (None, "fro", 1, -1, np.inf, -np.inf):
        both(lambda x: np.linalg.norm(x, ord_), X)
        both(lambda x: np.linalg.norm(x, ord_, axis=(2, 0), keepdims=True), R.normal(size=(3, 2, 4)))
    both(lambda x: np.linalg.norm(x), XI)


# ------------------------------------------------------------------------------------------------ errors
ERRORS = [
    (lambda x: np.diff(x, -1), X, ValueError, "order must be non-negative"),
    (lambda x: np.diff(x[0, 0]), X, ValueError, "at least one dimensional"),
    (lambda x: np.roll(x, (1, 2), axis=(0, 1, 0)), X, ValueError, "should be scalars or 1D sequences"),
    (lambda x: np.roll(x, 1, axis=2), X, np.exceptions.AxisError, "out of bounds"),
    (lambda x: np.tile(x, -1), X, ValueError, "negative dimensions"),
    (lambda x: np.repeat(x, -1), X, ValueError, "negative values"),
    (lambda x: np.repeat(x, [1, 2], axis=0), X, ValueError, "could not be broadcast"),
    (lambda x: np.repeat(x, x.astype(int)), X, UnsupportedError, "data-dependent length"),
    (lambda x: np.pad(x, -1), X, ValueError, "negative values"),
    (lambda x: np.pad(x, 1.5), X, TypeError, "integral type"),
    (lambda x: np.pad(x, 1, mode="linear_ramp"), X, NotImplementedError, "linear_ramp"),
    (lambda x: np.pad(x, 1, mode="edge", constant_values=3), X, ValueError, "unsupported keyword"),
    (lambda x: np.take(x, np.array([0.5])), X, TypeError, "Cannot cast"),
    (lambda x: np.take(x, np.array([1]), mode="bad"), X, ValueError, "clipmode"),
    (lambda x: np.take_along_axis(x, np.array([0]), 1), X, ValueError, "same number of dimensions"),
    (lambda x: np.put_along_axis(x, np.array([0]), 1.0, 1), X, ValueError, "same number of dimensions"),
    (lambda x: np.split(x[:3], 2), X, ValueError, "equal division"),
    (lambda x: np.array_split(x, 0), X, ValueError, "larger than 0"),
    (lambda x: np.rot90(x, axes=(0, 0)), X, ValueError, "Axes must be different"),
    (lambda x: np.rot90(x, axes=(0, 1, 2)), X, ValueError, "len\\(axes\\) must be 2"),
    (lambda x: np.fliplr(x[0]), X, ValueError, ">= 2-d"),
    (lambda x: np.diag(x[None]), X, ValueError, "1- or 2-d"),
    (lambda x: np.diagonal(x, 0, 1, 1), X, ValueError, "cannot be the same"),
    (lambda x: np.cross(x, x), X, ValueError, "incompatible dimensions"),
    (lambda x: np.average(x, weights=x[0]), X, TypeError, "Axis must be specified"),
    (lambda x: np.average(x, axis=1, weights=np.ones(3)), X, ValueError, "Length of weights"),
    (lambda x: np.bincount(x.astype(int)), X, ValueError, "too deep"),
    (lambda x: np.bincount(x.ravel(), minlength=3), X, TypeError, "Cannot cast"),
    (lambda x: np.histogram(x, bins="auto"), X, UnsupportedError, "static count"),
    (lambda x: np.histogram(x, range=(1, 0)), X, ValueError, "max must be larger than min"),
    (lambda x: np.interp(x, np.zeros(3), np.zeros(2)), X, ValueError, "same length"),
    (lambda x: np.interp(x, np.arange(3.0), np.zeros(3), period=2.0), X, NotImplementedError, "period"),
    (lambda x: np.convolve(x, x), X, ValueError, "too deep"),
    (lambda x: np.convolve(x[0], x[0], mode="bad"), X, ValueError, "mode must be one of"),
    (lambda x: np.searchsorted(x, 1.0), X, ValueError, "too deep"),
    (lambda x: np.round(x, 1.5), X, TypeError, "integer"),
    (lambda x: np.linalg.norm(x, "fro", axis=0), X, ValueError, "Invalid norm order"),
    # these four were refusals (sort, median, LAPACK, pocketfft) before the library primitives: numpy's errors now
    (lambda x: np.sort(x, kind="bogo"), X, ValueError, "sort kind"),
    (lambda x: np.median(x, axis=2), X, np.exceptions.AxisError, "out of bounds"),
    (lambda x: np.linalg.solve(x, x[0]), X, np.linalg.LinAlgError, "must be square"),
    (lambda x: np.fft.rfft(x, n=0), X, ValueError, "Invalid number of FFT data points"),
]


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_errors_as_numpy(i):
    f, x, exc, msg = ERRORS[i]
    with pytest.raises(exc, match=f"(?i){msg}"):
        eager(f, x)  # at trace time, or from the run-time length checks
    if exc in (ValueError, TypeError) or issubclass(exc, ValueError):
        with pytest.raises(exc):  # numpy itself agrees on the exception type
            f(x)


RUNTIME_ERRORS = [
    (lambda x: np.average(x, axis=1, weights=x[0]), np.zeros((3, 4)), ZeroDivisionError, "sum to zero"),
    (lambda x: np.bincount(x, minlength=3), np.array([0, 1, 5]), ValueError, "minlength=3"),
    (lambda x: np.bincount(x, minlength=3), np.array([0, -1, 2]), ValueError, "negative elements"),
    (lambda x: np.bincount(x), np.array([0, -1, 2]), ValueError, "negative elements"),
    (lambda x: np.take_along_axis(x, np.array([[0, 4], [1, 1]]), 1), np.zeros((2, 3)), IndexError, "out of bounds"),
    (lambda x: np.take(x, np.array([3])), np.zeros(3), IndexError, "out of bounds"),
    (lambda x: np.histogram(x, bins=np.array([0.0, 2.0, 1.0])), np.zeros(3), ValueError, "monotonically"),
    (lambda x: np.split(x, 2), np.zeros(5), ValueError, "equal division"),
    (lambda x: tnp.put_along_axis(x, np.array([[0, 0]]), 1.0, 1, inplace=False), np.zeros((1, 3)),
     NotImplementedError, "same element"),
]


@pytest.mark.parametrize("i", range(len(RUNTIME_ERRORS)))
def test_run_time_errors(i):
    """Failures only the data (or the run-time length) shows raise at call time, never a wrong answer."""
    f, x, exc, msg = RUNTIME_ERRORS[i]
    with pytest.raises(exc, match=msg):
        tj.jit(f)(x)


# ------------------------------------------------------------------------------------------------ gradients
jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

GRADS = [
    ("roll", lambda m: lambda x: m.roll(x, 2, axis=1)),
    ("diff", lambda m: lambda x: m.diff(x, 2, axis=0)),
    ("cumsum", lambda m: lambda x: m.cumsum(x, axis=1)),
    ("cumprod", lambda m: lambda x: m.cumprod(x * m.array([1.0, 0.0, 1.0, 1.0]), axis=1)),  # a zero inside
    ("tile_repeat", lambda m: lambda x: m.tile(x, (2, 1))[::2] + m.repeat(x, 2, axis=0)[1::2]),
    ("repeat_counts", lambda m: lambda x: m.repeat(x, m.array([1, 0, 2, 1, 3]) if m is jnp else
                                                    np.array([1, 0, 2, 1, 3]), axis=0, **(
                                                        {"total_repeat_length": 7} if m is jnp else {}))),
    ("pad", lambda m: lambda x: m.pad(x, ((2, 3), (1, 4)), mode="reflect") * 1.0),
    ("pad_wrap", lambda m: lambda x: m.pad(x, ((1, 6), (0, 2)), mode="wrap")),
    ("take_along", lambda m: lambda x: m.take_along_axis(x, m.asarray(np.array([[0, 3], [1, 1], [2, 0], [3, 3],
                                                                                [0, 0]])), 1)),
    ("triu_diag_trace", lambda m: lambda x: m.triu(x, 1).sum() * m.trace(x) + m.diag(x[:, 0]).sum(0)),
    ("kron", lambda m: lambda x: m.kron(x[:2, :2], x)),
    ("cross", lambda m: lambda x: m.cross(x[:, :3], x[:, 1:])),
    ("average", lambda m: lambda x: m.average(x, axis=1, weights=x[0] ** 2 + 1)),
    ("nanmean", lambda m: lambda x: m.nanmean(m.where(x > 1, m.nan, x), axis=0)),
    ("norm", lambda m: lambda x: m.linalg.norm(x, axis=1) + m.linalg.norm(x, 3, axis=1)),
    ("interp", lambda m: lambda x: m.interp(x, m.asarray(EDGES), m.asarray(np.array([1.0, -1, 2, 0, 3])))),
    ("convolve", lambda m: lambda x: m.convolve(x[0], x[1], "same")),
    ("take_diagonal", lambda m: lambda x: m.take(x, m.asarray(np.array([0, -1, 0])), axis=1) * m.diagonal(x, 1)[0]),
    ("nansum_nanmax", lambda m: lambda x: m.nansum(m.where(x > 1, m.nan, x), 1) + m.nanmax(x, 1)),
    ("bincount_weights", lambda m: lambda x: m.bincount(m.asarray(np.array([0, 3, 3, 1])), x[0],
                                                        **({"minlength": 5} if m is np else {"length": 5}))),
    ("stack_split", lambda m: lambda x: m.hstack(m.array_split(x, 3, axis=1)[::-1]) * m.vstack([x[0], x[1]])[0]),
    ("linspace", lambda m: lambda x: m.linspace(x[0], x[1], 6) if m is jnp else tnp.linspace(x[0], x[1], 6)),
    ("pad_edge_constant", lambda m: lambda x: m.pad(x, ((1, 2), (3, 0)), mode="edge")[:7, :6] * m.pad(x, 1)),
]


@pytest.mark.parametrize("name", [g[0] for g in GRADS])
def test_gradient_matches_jax(name):
    make = dict(GRADS)[name]
    x = R.normal(size=(5, 4))
    w = R.normal(size=make(np)(x).shape)

    def loss(m):
        return lambda x: (make(m)(x) * w).sum()
    got = tj.grad(loss(np))(x)
    want = jax.grad(loss(jnp))(x)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-9, atol=1e-12)


VMAPPED = {
    "pad": lambda r: np.pad(r, (2, 3), mode="reflect"),
    "roll_diff": lambda r: np.diff(np.roll(r, 2), 2),
    "cumprod": np.cumprod,
    "take_along": lambda r: np.take_along_axis(r, np.array([5, 0, 2]), 0),
    "interp": lambda r: np.interp(r, np.array([-1.0, 0, 1]), np.array([0.0, 2, 1])),
    "convolve": lambda r: np.convolve(r, np.array([1.0, 2, 3]), "same"),
    "histogram": lambda r: np.histogram(r, bins=3)[0],
    "diag_tile_repeat": lambda r: np.diag(r).sum(0) + np.tile(r, 2)[::2] + np.repeat(r, [1, 0, 2, 1, 1, 1]),
    "average": lambda r: np.average(r, weights=np.arange(1.0, 7.0)),  # constant weights of a symbolic length
    "allclose_norm": lambda r: np.where(np.allclose(r, 0), 0.0, np.linalg.norm(r)),
}


@pytest.mark.parametrize("name", sorted(VMAPPED))
def test_vmap_matches_a_loop(name):
    f = VMAPPED[name]
    x = R.normal(size=(3, 6))
    _same(tj.vmap(f)(x), np.stack([f(r) for r in x]))


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.uint8, np.bool_])
def test_ufunc_accumulate_matches_numpy(dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((40, 3)) * 20).astype(dtype)
    if dtype == np.float64:
        x[5, 1] = np.nan
    f = lambda x: (np.maximum.accumulate(x), np.minimum.accumulate(x, axis=1), np.add.accumulate(x, axis=-1),
                   np.multiply.accumulate(x[:6]))
    for got, want in zip(tj.jit(f)(x), f(x)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_ufunc_accumulate_gradient_and_errors():
    g = tj.grad(lambda x: np.maximum.accumulate(x).sum())(np.array([1., 3, 2, 5, 4]))
    np.testing.assert_array_equal(g, [1, 2, 0, 2, 0])
    with pytest.raises(ValueError, match="axis"):
        tj.jit(lambda x: np.maximum.accumulate(x, axis=None))(np.ones(3))


def test_reshape_and_ravel_in_fortran_order():
    a = np.arange(24.0).reshape(2, 3, 4)
    f = lambda a: (a.ravel(order="F"), a.reshape(4, 6, order="F"), a.T.flatten("F"), np.reshape(a, (-1, 2), order="F"))
    for got, want in zip(tj.jit(f)(a), f(a)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(NotImplementedError, match="order='K'.*memory layout"):
        tj.jit(lambda a: a.ravel(order="K"))(a)
    with pytest.raises(ValueError, match="order must be one of"):
        tj.jit(lambda a: a.reshape(-1, order="X"))(a)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int8, np.uint16])
def test_fmod_matches_numpy(dtype):
    rng = np.random.default_rng(5)
    if dtype in (np.float64, np.float32):
        vals = np.concatenate([rng.standard_normal(60) * 10, [0.0, -0.0, np.inf, -np.inf, 1e-30, 3.0, -3.0]])
    else:
        vals = np.arange(-20, 21) if np.dtype(dtype).kind == "i" else np.arange(0, 41)
    a, b = np.meshgrid(vals.astype(dtype), vals[::5].astype(dtype))
    with np.errstate(all="ignore"):
        want = np.fmod(a, b)
    got = tj.jit(np.fmod)(a, b)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    keep = ~np.isnan(want) if want.dtype.kind == "f" else slice(None)
    np.testing.assert_array_equal(np.signbit(got[keep]), np.signbit(want[keep]))  # -0.0 from a negative dividend


def test_nanargmax_nanargmin_and_all_nan_error():
    x = np.array([[np.nan, 3.0, 1.0], [2.0, np.nan, 5.0]])
    f = lambda x: (np.nanargmax(x), np.nanargmin(x, axis=1), np.nanargmax(x, axis=0, keepdims=True))
    for got, want in zip(tj.jit(f)(x), f(x)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="All-NaN slice"):
        tj.jit(lambda x: np.nanargmax(x, axis=1))(np.array([[np.nan, np.nan], [1.0, 2.0]]))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_quantile_dtypes_follow_numpy(dtype):
    """Interpolating methods give float64 for integer input (not the small float a ufunc would); methods that
    pick an element keep the input's dtype."""
    a = np.array([5, 1, 3, 2, 9, 7], dtype)
    for method in ("linear", "lower", "higher", "nearest", "midpoint", "inverted_cdf", "hazen"):
        f = lambda a: (np.percentile(a, [30, 60], method=method), np.quantile(a, 0.25, method=method))
        for got, want in zip(tj.jit(f)(a), f(a)):
            assert got.dtype == want.dtype, method
            np.testing.assert_allclose(got, want, rtol=1e-6)
    got, want = tj.jit(np.median)(a), np.median(a)
    assert got.dtype == want.dtype and got == want


def test_vander_insert_polyval_and_bincount_with_a_length():
    x = np.random.default_rng(2).random(6)
    cases = [lambda x: np.vander(x), lambda x: np.vander(x, 3, increasing=True), lambda x: np.insert(x, 2, 9.0),
             lambda x: np.insert(x, [1, 3, 3], [7, 8, 9]), lambda x: np.insert(x, -1, 5),
             lambda x: np.insert(x.reshape(2, 3), [0, 2], [[1], [2]], axis=1), lambda x: np.insert(x, [2, 0], x[:2]),
             lambda x: np.polyval(np.array([1.0, 2, 3]), x), lambda x: np.vander(np.arange(1, 5))]
    for f in cases:
        got, want = tj.jit(f)(x), f(x)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    lab, C = np.array([0, 2, 2, 1, 2]), np.zeros((4, 2))
    np.testing.assert_array_equal(tj.jit(lambda lab, C: np.bincount(lab, minlength=C.shape[0]))(lab, C),
                                  np.bincount(lab, minlength=4))
    with pytest.raises(ValueError, match="minlength"):
        tj.jit(lambda lab, C: np.bincount(lab, minlength=C.shape[0]))(np.array([0, 5]), C)
    with pytest.raises(NotImplementedError, match="static"):
        tj.jit(lambda x: np.insert(x, slice(1, 4), 0))(x)


_R = np.random.default_rng(9)
_X, _XN, _M, _X3 = _R.standard_normal(7), _R.standard_normal(7), _R.standard_normal((4, 4)) + 3 * np.eye(4), \
    _R.standard_normal((2, 3, 4))
_XN[2] = np.nan
COMPOSITIONS = [
    (lambda x: np.angle(x), np.array([1.0, -2.0, 0.0, -0.0])), (lambda x: np.fabs(x), np.array([3, -2, 0])),
    (lambda x: np.fix(x * 3), _X), (lambda x: (np.isreal(x), np.iscomplex(x)), _X), (lambda x: np.diagflat(x[:3], 1), _X),
    (lambda x: np.ediff1d(x, to_end=[9.0], to_begin=0.5), _X), (lambda x: np.append(x, x[:2]), _X),
    (lambda m: np.append(m, m[:1], axis=0), _M), (lambda x: (np.delete(x, 2), np.delete(x, -1)), _X),
    (lambda m: (np.delete(m, [0, 2], axis=1), np.delete(m, slice(1, 3), axis=0)), _M),
    (lambda x: (np.trapezoid(x), np.trapezoid(x, x=np.arange(7.0) ** 2)), _X), (lambda m: np.trapezoid(m, axis=0), _M),
    (lambda x: (np.nancumsum(x), np.nancumprod(x), np.nanvar(x), np.nanstd(x, ddof=1)), _XN),
    (lambda x: np.cumulative_sum(x, include_initial=True), _X), (lambda m: np.cumulative_prod(m, axis=1), _M),
    (lambda x: (np.matrix_transpose(x), np.vecdot(x, x)), _X3), (lambda m: (np.matvec(m, m[0]), np.vecmat(m[0], m)), _M),
    (lambda m: np.unstack(m)[2], _M), (lambda x: (np.linalg.vector_norm(x), np.linalg.vector_norm(x, axis=1, ord=1)), _X3),
    (lambda m: (np.linalg.matrix_norm(m), np.linalg.svdvals(m), np.linalg.multi_dot([m, m, m])), _M),
    (lambda m: (np.linalg.cond(m), np.linalg.cond(m, 1)), _M), (lambda x: np.geomspace(1.0, 1000.0, 4) * x[0], _X)]


@pytest.mark.parametrize("case", range(len(COMPOSITIONS)))
def test_compositions_match_numpy(case):
    f, a = COMPOSITIONS[case]
    want, got = f(a), tj.jit(f)(a)
    for w, g in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
        assert np.shape(w) == np.shape(g) and np.asarray(w).dtype == np.asarray(g).dtype
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, equal_nan=True)
