"""Issue 14's library-bound complex and scan work: complex prod/cumprod in numpy's order (zeros, infs, nans and
signed zeros exactly as numpy), matmul of complex matrices through one complex gemm (values, dtypes, gradients
against JAX), numpy's own cumsum loop (values, dtypes, gradients), and one library call for the several results
of one routine (an FFT's two parts, svd's three factors)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracejit as tj

SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.5, np.inf, -np.inf, np.nan]


def _same_bits(got, want):
    """Equal values, dtypes and shapes; nans where numpy has them; the sign of every zero and inf."""
    assert got.shape == want.shape and got.dtype == want.dtype
    for g, w in ((got.real, want.real), (got.imag, want.imag)):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        ok = ~np.isnan(w)
        np.testing.assert_array_equal(g[ok], w[ok])
        np.testing.assert_array_equal(np.signbit(g[ok]), np.signbit(w[ok]))


def _special_array(draw, shape, dtype):
    n = int(np.prod(shape))
    re = draw(st.lists(st.sampled_from(SPECIAL), min_size=n, max_size=n))
    im = draw(st.lists(st.sampled_from(SPECIAL), min_size=n, max_size=n))
    z = np.empty(shape, dtype)
    z.real, z.imag = np.reshape(re, shape), np.reshape(im, shape)
    return z


CASES = [(np.prod, {}), (np.prod, {"axis": 0}), (np.prod, {"axis": -1, "keepdims": True}), (np.cumprod, {}),
         (np.cumprod, {"axis": 0}), (np.cumprod, {"axis": -1})]


@settings(max_examples=30, deadline=None)
@given(data=st.data(), shape=st.sampled_from([(0,), (1,), (3,), (2, 3), (3, 1), (0, 2)]),
       dtype=st.sampled_from([np.complex128, np.complex64]), case=st.sampled_from(range(len(CASES))))
def test_complex_products_match_numpy_on_special_values(data, shape, dtype, case):
    """numpy multiplies in order with the plain formula; any other order or formula changes which parts are nan."""
    f, kw = CASES[case]
    z = _special_array(data.draw, shape, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = f(z, **kw)
        got = tj.jit(lambda z: f(z, **kw))(z)
    _same_bits(np.asarray(got), np.asarray(want))


def test_complex_products_order_matters():
    """(inf+0j)(1+1j)(1-1j): inf+nanj one at a time, as numpy; a tree or polar form gives something else."""
    z = np.array([complex(np.inf, 0), 1 + 1j, 1 - 1j])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _same_bits(tj.jit(np.prod)(z), np.prod(z))
        _same_bits(tj.jit(np.cumprod)(z), np.cumprod(z))


def test_complex_prod_of_many_axes_and_dtype():
    z = np.random.default_rng(0).standard_normal((3, 4, 2)) * (1 + 0.5j)
    np.testing.assert_allclose(tj.jit(lambda z: np.prod(z, axis=(0, 2)))(z), np.prod(z, axis=(0, 2)), rtol=1e-12)
    got = tj.jit(lambda z: np.prod(z, dtype=np.complex64))(z)
    assert got.dtype == np.complex64
    np.testing.assert_allclose(got, np.prod(z, dtype=np.complex64), rtol=1e-4)
    with pytest.raises(np.exceptions.AxisError):
        tj.jit(lambda z: np.prod(z, axis=3))(z)


def _cplx(rng, *shape, dtype=np.complex128):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_complex_matmul_is_one_complex_gemm(dtype):
    rng = np.random.default_rng(1)
    a, b = _cplx(rng, 6, 4, dtype=dtype), _cplx(rng, 4, 5, dtype=dtype)
    f = tj.jit(lambda a, b: a @ b)
    got = f(a, b)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, a @ b, rtol=1e-5 if dtype == np.complex64 else 1e-12)
    assert "complex_matmul" in f.lower(a, b).as_text("optimized")
    # mixed operands and vectors keep the pair form, with numpy's result dtype
    for x, y in [(a, b.real.copy()), (a, b[:, 0]), (a.astype(np.complex128), b)]:
        np.testing.assert_allclose(tj.jit(lambda x, y: x @ y)(x, y), x @ y, rtol=1e-5)


def test_complex_matmul_in_a_loop_body_stays_native():
    """Inside a loop body the pair form stays: a library call there would take the loop off the native path."""
    rng = np.random.default_rng(9)
    u, s = _cplx(rng, 4, 4) / 4, np.eye(4, dtype=np.complex128)
    f = tj.jit(lambda u, s: tj.fori_loop(0, 5, lambda i, st: u @ st, s))
    np.testing.assert_allclose(f(u, s), np.linalg.matrix_power(u, 5), rtol=1e-12)
    (entry,) = f._cache.values()
    assert entry.exe.loop_runs["native"] >= 1 and entry.exe.loop_runs["python"] == 0


def test_complex_matmul_gradient_matches_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    rng = np.random.default_rng(2)
    A, B = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))

    def f(A, B, xp):
        return xp.abs((A + 1j * A ** 2) @ (B - 2j * B)).sum()
    got = tj.grad(lambda A, B: f(A, B, np), argnums=(0, 1))(A, B)
    want = jax.grad(lambda A, B: f(A, B, jnp), argnums=(0, 1))(A, B)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int8, np.uint16, np.bool_])
def test_cumsum_is_numpys_loop(dtype):
    x = (np.random.default_rng(4).standard_normal((3, 200)) * 50).astype(dtype)
    for axis in (None, 0, 1, -1):
        got, want = tj.jit(lambda x: np.cumsum(x, axis=axis))(x), np.cumsum(x, axis=axis)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)  # numpy's own order of additions: bit for bit
    assert tj.jit(lambda x: np.cumsum(x, axis=1))(x[:, :0]).shape == (3, 0)


def test_cumsum_gradient_and_vmap_match_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((3, 100)), rng.standard_normal((3, 100))
    for axis, wt in ((None, w.ravel()), (0, w), (1, w)):
        got = tj.grad(lambda x: (np.cumsum(x, axis=axis) ** 2 * wt).sum())(x)
        want = jax.grad(lambda x: (jnp.cumsum(x, axis=axis) ** 2 * wt).sum())(x)
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(tj.vmap(np.cumsum)(x), np.cumsum(x, axis=1))


def test_several_results_of_one_routine_call_it_once(monkeypatch):
    calls = {"rfft": 0, "svd": 0}
    rfft, svd = np.fft.rfft, np.linalg.svd

    def counted(name, f):
        def g(*a, **k):
            calls[name] += type(a[0]) is np.ndarray  # (the trace calls it too, with a tracer)
            return f(*a, **k)
        return g
    monkeypatch.setattr(np.fft, "rfft", counted("rfft", rfft))
    monkeypatch.setattr(np.linalg, "svd", counted("svd", svd))
    x = np.random.default_rng(6).standard_normal((5, 4))
    got = tj.jit(lambda x: np.fft.rfft(x))(x)
    assert calls["rfft"] == 1  # one call for both parts
    np.testing.assert_allclose(got, rfft(x), rtol=1e-12)
    assert got.flags.c_contiguous and got.dtype == np.complex128
    u, s, vh = tj.jit(lambda x: np.linalg.svd(x, full_matrices=False))(x)
    assert calls["svd"] == 1
    np.testing.assert_allclose((u * s) @ vh, x, atol=1e-12)


def test_complex_results_are_fresh_arrays():
    """The whole-array shortcut for a transform's result never hands back an argument."""
    z = np.random.default_rng(7).standard_normal(8) * (1 + 1j)
    same = tj.jit(lambda z: z)(z)
    assert same is not z and not np.shares_memory(same, z)
    out = tj.jit(lambda z: np.fft.fft(z))(z)
    assert not np.shares_memory(out, z)
    np.testing.assert_allclose(out, np.fft.fft(z), rtol=1e-12)


LINALG = {
    "solve": (lambda a, b: np.linalg.solve(a, b), "ab"), "solve_matrix": (lambda a, b: np.linalg.solve(a, b), "aB"),
    "solve_real_matrix": (lambda a, b: np.linalg.solve(a.real, b), "ab"),
    "solve_real_rhs": (lambda a, b: np.linalg.solve(a, b.real), "ab"),
    "inv": (lambda a: np.linalg.inv(a), "a"), "inv_stack": (lambda a: np.linalg.inv(a), "s"),
    "det": (lambda a: np.linalg.det(a), "a"), "slogdet": (lambda a: tuple(np.linalg.slogdet(a)), "s"),
    "eig": (lambda a: tuple(np.linalg.eig(a)), "a"), "eigvals": (lambda a: np.linalg.eigvals(a), "s"),
}


@pytest.mark.parametrize("name", list(LINALG))
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_linalg_of_complex_matrices_matches_numpy(name, dtype):
    f, kinds = LINALG[name]
    rng = np.random.default_rng(8)
    made = {"a": _cplx(rng, 4, 4, dtype=dtype) + 4 * np.eye(4, dtype=dtype), "b": _cplx(rng, 4, dtype=dtype),
            "B": _cplx(rng, 4, 2, dtype=dtype), "s": _cplx(rng, 3, 4, 4, dtype=dtype) + 4 * np.eye(4, dtype=dtype)}
    args = [made[k] for k in kinds]
    got, want = tj.jit(f)(*args), f(*args)
    for g, w in zip(got if isinstance(want, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4 if dtype == np.complex64 else 1e-10, atol=1e-5)


def test_complex_spectrum_of_a_real_matrix():
    """A real matrix's eig fixes a real result dtype when it traces: complex eigenvalues stop it with what to do,
    and the advised complex matrix gives them (numpy's values)."""
    rotation = np.array([[0.0, -1.0], [1.0, 0.0]])
    with pytest.raises(tj.errors.UnsupportedError, match=r"np.linalg.eigh.*a.astype\(complex\)"):
        tj.jit(np.linalg.eigvals)(rotation)
    got = tj.jit(lambda a: np.linalg.eigvals(a.astype(complex)))(rotation)
    want = np.linalg.eigvals(rotation)
    np.testing.assert_allclose(got[np.argsort(got.imag)], want[np.argsort(want.imag)], atol=1e-12)
    with pytest.raises(np.linalg.LinAlgError, match="square"):
        tj.jit(np.linalg.inv)(rotation[:1] * 1j)
    with pytest.raises(TypeError, match="complex matrix has no gradient"):
        tj.grad(lambda a: np.abs(np.linalg.det(a * (1 + 1j))))(rotation + 2 * np.eye(2))


@settings(max_examples=20, deadline=None)
@given(data=st.data(), shape=st.sampled_from([(0,), (6,), (2, 3), (1, 4), (3, 0)]),
       axis=st.sampled_from([-1, 0, None]))
def test_complex_sort_matches_numpy(data, shape, axis):
    """numpy's order: real part, then imaginary part, after its nan classes (R+Rj, R+nanj, nan+Rj, nan+nanj)."""
    z = _special_array(data.draw, shape, np.complex128)
    want = np.sort(z, axis=axis)
    _same_bits(tj.jit(lambda z: np.sort(z, axis=axis))(z), want)
    order = tj.jit(lambda z: np.argsort(z, axis=axis))(z)
    flat = z.ravel() if axis is None else z
    np.testing.assert_array_equal(np.take_along_axis(flat, order, -1 if axis is None else axis), want)
