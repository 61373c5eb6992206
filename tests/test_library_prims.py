"""Library primitives (issue 14): sort, argsort, np.linalg through LAPACK, np.fft through pocketfft, and the
composites built on them (median, percentile/quantile, det, lstsq, pinv, matrix_rank, norm), through ``tj.jit``
against numpy; their gradients against JAX's; numpy's LinAlgError; the backend hook."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracejit as tj
from tracejit.api import make_ir
from tracejit.ir.primitives import LIBRARY_PRIMS, is_library_call

R = np.random.default_rng(7)


def close(f, *args, rtol=1e-7, atol=1e-9):
    got, want = tj.jit(f)(*args), f(*args)
    if isinstance(want, tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
            assert np.asarray(g).dtype == np.asarray(w).dtype
        return
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    assert np.asarray(got).dtype == np.asarray(want).dtype, (np.asarray(got).dtype, np.asarray(want).dtype)


# ------------------------------------------------------------------------------------------------ sort
@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(2, 5), min_size=1, max_size=3), st.sampled_from(["float64", "float32", "int32", "int64"]),
       st.integers(-1, 2), st.sampled_from([None, "stable", "quicksort", "mergesort", "heapsort"]))
def test_sort_and_argsort_match_numpy(shape, dtype, axis, kind):
    x = (R.normal(size=shape) * 3).astype(dtype)
    axis = axis if axis < len(shape) else -1
    np.testing.assert_array_equal(tj.jit(lambda a: np.sort(a, axis=axis, kind=kind))(x), np.sort(x, axis, kind))
    np.testing.assert_array_equal(tj.jit(lambda a: np.sort(a, axis=None))(x), np.sort(x, axis=None))
    stable = tj.jit(lambda a: np.argsort(a, axis=axis, kind="stable"))(x)
    np.testing.assert_array_equal(stable, np.argsort(x, axis=axis, kind="stable"))


def test_sort_puts_nan_last_and_argsort_is_stable():
    x = np.array([3.0, np.nan, -1.0, np.inf, np.nan, -np.inf, 0.0])
    np.testing.assert_array_equal(tj.jit(np.sort)(x), np.sort(x))
    ties = np.array([2, 1, 2, 1, 2, 0, 1] * 5)
    np.testing.assert_array_equal(tj.jit(lambda a: np.argsort(a, kind="stable"))(ties), np.argsort(ties, kind="stable"))
    np.testing.assert_array_equal(tj.jit(lambda a: np.argsort(a, stable=True))(ties), np.argsort(ties, stable=True))
    np.testing.assert_array_equal(tj.jit(lambda a: a.argsort())(x), x.argsort())  # the method


def test_sort_errors():
    with pytest.raises(np.exceptions.AxisError):
        tj.jit(lambda a: np.sort(a, axis=2))(np.ones((2, 3)))
    with pytest.raises(ValueError, match="kind"):
        tj.jit(lambda a: np.sort(a, kind="bogo"))(np.ones(3))


QUANTILE_METHODS = ["linear", "lower", "higher", "midpoint", "nearest", "inverted_cdf", "averaged_inverted_cdf",
                    "closest_observation", "interpolated_inverted_cdf", "hazen", "weibull", "median_unbiased",
                    "normal_unbiased"]


@pytest.mark.parametrize("method", QUANTILE_METHODS)
def test_quantile_every_method(method):
    x = R.normal(size=(5, 8))
    for q in (0.0, 0.25, 0.5, 0.9, 1.0, [0.1, 0.5, 0.77]):
        close(lambda a: np.quantile(a, q, axis=1, method=method), x)
    close(lambda a: np.percentile(a, [10, 50, 99], method=method), x)


def test_median_percentile_forms():
    x = R.normal(size=(4, 5, 6))
    close(np.median, x)
    close(lambda a: np.median(a, axis=1), x)
    close(lambda a: np.median(a, axis=(0, 2), keepdims=True), x)
    close(lambda a: np.median(a[:, :, :5], axis=-1), x)  # even count: the mean of the middle two
    close(lambda a: np.percentile(a, 30, axis=0, keepdims=True), x)
    close(lambda a: np.quantile(a, [0.2, 0.8], axis=2, keepdims=True), x)
    close(lambda a: np.median(a.astype(np.float32), axis=0), x, rtol=1e-6)
    close(lambda a: np.median(a), np.arange(7))  # ints -> float64
    y = x.copy()
    y[1, 2, 3] = np.nan  # numpy: nan wherever the slice has one
    close(lambda a: np.median(a, axis=2), y)
    with pytest.raises(ValueError, match="Quantiles must be in the range"):
        tj.jit(lambda a: np.quantile(a, 1.5))(x)


# ------------------------------------------------------------------------------------------------ linalg
def _spd(*batch, n=4):
    a = R.normal(size=batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def test_linalg_values_and_batches():
    a, s = R.normal(size=(3, 4, 4)), _spd(3)
    close(np.linalg.inv, a)
    close(lambda m: np.linalg.solve(m, m[..., 0, :]), a[0])  # vector b
    close(lambda m, b: np.linalg.solve(m, b), a, R.normal(size=(4, 2)))  # b broadcast over the stack
    close(lambda m, b: np.linalg.solve(m, b), a[:1], R.normal(size=(3, 4, 5)))  # a broadcast
    close(np.linalg.cholesky, s)
    close(lambda m: np.linalg.cholesky(m, upper=True), s)
    close(np.linalg.det, a)
    close(np.linalg.slogdet, a)
    close(lambda m: np.linalg.eigh(m)[0], s)
    close(lambda m: np.abs(np.linalg.eigh(m, UPLO="U")[1]), s)  # eigenvectors up to sign
    close(np.linalg.eigvalsh, s)
    close(lambda m: np.linalg.svd(m, compute_uv=False), R.normal(size=(2, 5, 3)))
    close(lambda m: np.linalg.norm(m, 2), a[0])
    close(lambda m: np.linalg.norm(m, "nuc", axis=(0, 2)), a)
    close(lambda m: np.linalg.norm(m, -2, axis=(1, 2), keepdims=True), a)
    close(lambda m: np.linalg.matrix_power(m, 5), a)
    close(lambda m: np.linalg.matrix_power(m, -2), a)
    close(lambda m: np.linalg.matrix_power(m, 0), a)
    close(lambda m: np.linalg.inv(m.astype(np.float32)), a, rtol=1e-4, atol=1e-5)
    close(np.linalg.inv, np.array([[2, 1], [1, 3]]))  # ints: float64, as numpy


@pytest.mark.parametrize("shape,full", [((5, 3), True), ((5, 3), False), ((3, 5), True), ((2, 4, 4), False)])
def test_svd_and_qr_reconstruct(shape, full):
    a = R.normal(size=shape)
    u, s, vh = tj.jit(lambda m: np.linalg.svd(m, full_matrices=full))(a)
    nu, ns, nvh = np.linalg.svd(a, full_matrices=full)
    assert u.shape == nu.shape and vh.shape == nvh.shape
    np.testing.assert_allclose(s, ns, rtol=1e-10)
    k = s.shape[-1]
    np.testing.assert_allclose((u[..., :k] * s[..., None, :]) @ vh[..., :k, :], a, atol=1e-10)
    mode = "complete" if full else "reduced"
    q, r = tj.jit(lambda m: np.linalg.qr(m, mode=mode))(a)
    nq, nr = np.linalg.qr(a, mode=mode)
    np.testing.assert_allclose(q, nq, atol=1e-10)
    np.testing.assert_allclose(r, nr, atol=1e-10)
    np.testing.assert_allclose(tj.jit(lambda m: np.linalg.qr(m, mode="r"))(a), np.linalg.qr(a, mode="r"), atol=1e-10)


def test_lstsq_pinv_rank():
    a, b = R.normal(size=(8, 3)), R.normal(size=8)
    for got, want in zip(tj.jit(lambda m, v: np.linalg.lstsq(m, v))(a, b), np.linalg.lstsq(a, b)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    close(lambda m, v: np.linalg.lstsq(m, v)[0], a, R.normal(size=(8, 2)))
    close(np.linalg.pinv, a)
    close(np.linalg.pinv, R.normal(size=(2, 3, 5)))
    low = R.normal(size=(6, 2)) @ R.normal(size=(2, 5))
    assert tj.jit(np.linalg.matrix_rank)(low) == np.linalg.matrix_rank(low) == 2
    close(np.linalg.matrix_rank, R.normal(size=(3, 4, 4)))


def test_linalg_errors_are_numpys():
    sing = np.array([[1.0, 2.0], [2.0, 4.0]])
    for f in (np.linalg.inv, lambda m: np.linalg.solve(m, m[0])):
        with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
            tj.jit(f)(sing)
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        tj.jit(np.linalg.cholesky)(-np.eye(3))
    with pytest.raises(np.linalg.LinAlgError, match="must be square"):
        tj.jit(np.linalg.inv)(np.ones((2, 3)))
    with pytest.raises(np.linalg.LinAlgError, match="at least two-dimensional"):
        tj.jit(np.linalg.det)(np.ones(3))
    with pytest.raises(ValueError, match="UPLO"):
        tj.jit(lambda m: np.linalg.eigh(m, UPLO="X"))(np.eye(2))


# ------------------------------------------------------------------------------------------------ fft
def _as_pair(z):
    return z.real, z.imag


@pytest.mark.parametrize("norm", [None, "ortho", "forward"])
def test_fft_family(norm):
    x = R.normal(size=(4, 12))
    close(lambda a: _as_pair(np.fft.fft(a, norm=norm)), x)
    close(lambda a: _as_pair(np.fft.ifft(a, n=7, axis=0, norm=norm)), x)
    close(lambda a: _as_pair(np.fft.rfft(a, norm=norm)), x)
    close(lambda a: _as_pair(np.fft.rfft(a, n=9, axis=0, norm=norm)), x)
    close(lambda a: np.fft.irfft(np.fft.rfft(a, norm=norm), n=12, norm=norm), x)
    close(lambda a: np.fft.irfft(np.fft.rfft(a), n=15, axis=-1), x)
    close(lambda a: _as_pair(np.fft.fft2(a, norm=norm)), x)
    close(lambda a: _as_pair(np.fft.ifft2(np.fft.fft2(a), s=(3, 5))), x)
    close(lambda a: _as_pair(np.fft.rfft2(a, norm=norm)), x)
    close(lambda a: np.fft.irfft2(np.fft.rfft2(a), s=x.shape), x)
    close(lambda a: _as_pair(np.fft.fftn(a)), R.normal(size=(3, 4, 5)))
    close(lambda a: np.fft.irfftn(np.fft.rfftn(a), a.shape, axes=(0, 1, 2)), R.normal(size=(3, 4, 6)))
    close(lambda a: _as_pair(np.fft.rfft(a.astype(np.float32))), x, rtol=1e-5, atol=1e-5)  # complex64 parts


def test_complex_pair_arithmetic():
    x = R.normal(size=32)

    def spectral(a):
        z = np.fft.fft(a)
        w = (z * 2 - 1j) / (1 + 0.5j) + z.conj() * z
        return np.abs(w), np.angle(w), np.real(w), np.imag(z[3:9])
    close(spectral, x)
    got = tj.jit(lambda a: np.fft.fft(a))(x)  # issue 14: complex results leave the function as numpy's
    assert got.dtype == np.complex128
    np.testing.assert_allclose(got, np.fft.fft(x), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------ gradients
jax = pytest.importorskip("jax")
jnp = jax.numpy
jax.config.update("jax_enable_x64", True)

A = R.normal(size=(4, 4))
SPD = A @ A.T + 4 * np.eye(4)
X16 = R.normal(size=16)
GRADS = {
    "sort": (lambda x, np: (np.sort(x) * np.arange(16.0)).sum(), X16),
    "sort_axis0": (lambda x, np: (np.sort(x.reshape(4, 4), axis=0) ** 3).sum(), X16),
    "median": (lambda x, np: np.median(x) ** 2, X16),
    "quantile": (lambda x, np: np.quantile(x.reshape(4, 4), 0.3, axis=1).sum(), X16),
    "inv": (lambda a, np: (np.linalg.inv(a) ** 2).sum(), SPD),
    "solve": (lambda a, np: (np.linalg.solve(a, a[:, 0] + 1) ** 2).sum(), SPD),
    "det": (lambda a, np: np.linalg.det(a), A),
    "slogdet": (lambda a, np: np.linalg.slogdet(a)[1], A),
    "cholesky": (lambda a, np: (np.linalg.cholesky(a) ** 3).sum(), SPD),
    "eigh_values": (lambda a, np: (np.linalg.eigh(a)[0] ** 2).sum(), SPD),
    "eigh_vectors": (lambda a, np: (np.linalg.eigh(a)[1][:, 1:] ** 4).sum(), SPD),
    "svd_values": (lambda a, np: np.linalg.svd(a, compute_uv=False).sum(), A),
    "norm2": (lambda a, np: np.linalg.norm(a, 2), A),
    "svd_u": (lambda a, np: (np.linalg.svd(a, full_matrices=False)[0] ** 4).sum(), A[:, :3]),
    "svd_vh": (lambda a, np: (np.linalg.svd(a, full_matrices=False)[2] ** 4).sum(), A[:3]),
    "svd_square": (lambda a, np: (np.linalg.svd(a, full_matrices=False)[0] ** 4).sum()
                   + (np.linalg.svd(a, full_matrices=False)[2] ** 4).sum(), A),
    "pinv": (lambda a, np: (np.linalg.pinv(a) ** 2).sum(), A[:, :3]),
    "lstsq": (lambda a, np: (np.linalg.lstsq(a, np.ones(4))[0] ** 2).sum(), A[:, :3]),
    "qr_q": (lambda a, np: (np.linalg.qr(a)[0] ** 3).sum(), A[:, :3]),
    "qr_r": (lambda a, np: (np.linalg.qr(a)[1] ** 3).sum(), A),
    "qr_both": (lambda a, np: (np.linalg.qr(a)[0][:, :2] @ np.linalg.qr(a)[1][:2]).sum(), A[:, :3]),
    "rfft": (lambda x, np: (np.fft.rfft(x).real ** 2 + 3 * np.fft.rfft(x).imag).sum(), X16),
    "rfft_n": (lambda x, np: (np.fft.rfft(x, n=21).real ** 2).sum() + (np.fft.rfft(x, n=10).imag).sum(), X16),
    "fft": (lambda x, np: (np.fft.fft(x).imag ** 2 + np.fft.ifft(x, norm="ortho").real).sum(), X16),
    "irfft": (lambda x, np: (np.fft.irfft(np.fft.rfft(x) * np.linspace(0, 1, 9), n=16) ** 2).sum(), X16),
    "irfft_n": (lambda x, np: (np.fft.irfft(np.fft.rfft(x), n=11) ** 2).sum(), X16),
}


@pytest.mark.parametrize("name", list(GRADS))
def test_gradients_match_jax(name):
    f, x = GRADS[name]
    want = np.asarray(jax.grad(lambda v: f(v, jnp))(x))
    np.testing.assert_allclose(tj.grad(lambda v: f(v, np))(x), want, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(tj.jit(tj.grad(lambda v: f(v, np)))(x), want, rtol=1e-7, atol=1e-9)


def test_gradient_against_finite_differences():
    def f(a):
        return np.linalg.slogdet(a)[1] + (np.linalg.solve(a, a[0]) ** 2).sum() + np.median(a)
    m = A + 4 * np.eye(4)  # not symmetric: no ties for the median
    g = tj.grad(f)(m)
    eps, num = 1e-6, np.zeros_like(m)
    for i in np.ndindex(m.shape):
        d = np.zeros_like(m)
        d[i] = eps
        num[i] = (f(m + d) - f(m - d)) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-6)


def test_svd_full_matrices_gradient_is_a_clear_error():
    with pytest.raises(NotImplementedError, match="full_matrices=False"):
        tj.grad(lambda a: np.linalg.svd(a)[0].sum())(A[:, :3])


# ------------------------------------------------------------------------------------------------ backend hook
def test_library_calls_cut_the_program_into_compiled_segments():
    g = make_ir(lambda a: np.sort(a) + np.linalg.inv(a).sum())(SPD)
    prims = {e.prim for e in g.eqns if is_library_call(e)}
    assert prims == {"sort", "linalg_inv"} and prims <= set(LIBRARY_PRIMS)
    assert not any(is_library_call(e) for e in make_ir(lambda a: a + 1)(SPD).eqns)
    from tracejit.compile import CompileOptions, compile as compile_graph
    from tracejit.segmented import RegionExecutable, _LibraryStep, _Segment
    exe = compile_graph(g, CompileOptions(tiered=False))
    assert isinstance(exe, RegionExecutable)
    kinds = [type(s) for s in exe.steps]
    assert kinds.count(_LibraryStep) == 2 and _Segment in kinds  # the elementwise work is compiled code
    np.testing.assert_allclose(exe.run([SPD])[0], np.sort(SPD) + np.linalg.inv(SPD).sum())
    # a data-dependent length bound by a call is read by the compiled segment after it
    f = tj.jit(lambda x: np.exp(x[x > 0.5]) * 2)
    for x in (R.random(7), R.random(11)):
        np.testing.assert_allclose(f(x), np.exp(x[x > 0.5]) * 2)


def test_vmap_of_library_calls():
    x = R.normal(size=(3, 5, 4))
    a = x[:, :4, :]
    np.testing.assert_allclose(tj.vmap(lambda r: np.sort(r, axis=0))(x), np.sort(x, axis=1))
    np.testing.assert_allclose(tj.vmap(np.linalg.inv)(a), np.linalg.inv(a))
    np.testing.assert_allclose(tj.vmap(lambda m: np.linalg.solve(m, np.ones(4)))(a),
                               np.linalg.solve(a, np.ones((3, 4, 1)))[..., 0])
    np.testing.assert_allclose(tj.vmap(lambda r: np.fft.rfft(r, axis=0).imag)(x), np.fft.rfft(x, axis=1).imag,
                               atol=1e-12)
    np.testing.assert_allclose(tj.vmap(np.median)(x), np.median(x.reshape(3, -1), axis=1))
    with pytest.raises(NotImplementedError, match="data-dependent"):
        tj.vmap(lambda r: r[r > 0].sum())(x)


# ------------------------------------------------------------------------------------------------ eig, partition,
# Hermitian transforms, unique(axis=) (issue 14's remaining functions)
NONSYM = np.triu(R.normal(size=(4, 4))) + np.diag([1.0, 2, 3, 4]) + 0.1 * R.normal(size=(4, 4))  # real eigenvalues


def _jax_eig(a):
    w, v = jax.lax.linalg.eig(a, compute_left_eigenvectors=False, enable_eigvec_derivs=True)
    return w.real, v.real


def test_eig_matches_numpy():
    close(np.linalg.eig, NONSYM, rtol=0, atol=0)  # numpy's LAPACK call: the same numbers
    close(np.linalg.eigvals, np.stack([NONSYM, NONSYM.T, SPD]), rtol=0, atol=0)
    close(np.linalg.eig, NONSYM.astype(np.float32), rtol=0, atol=0)
    close(np.linalg.eigvals, np.triu(np.arange(9).reshape(3, 3)), rtol=1e-12)  # ints compute in float64
    f = tj.jit(np.linalg.eigvals)
    for n in (3, 6):  # one compilation for both lengths
        m = np.triu(R.normal(size=(n, n)))
        np.testing.assert_allclose(f(m), np.linalg.eigvals(m))
    np.testing.assert_allclose(tj.vmap(np.linalg.eigvals)(np.stack([NONSYM, SPD])),
                               np.linalg.eigvals(np.stack([NONSYM, SPD])))


def test_eig_errors():
    with pytest.raises(np.linalg.LinAlgError, match="square"):
        tj.jit(np.linalg.eig)(np.ones((2, 3)))
    with pytest.raises(np.linalg.LinAlgError, match="at least two-dimensional"):
        tj.jit(np.linalg.eigvals)(np.ones(3))
    with pytest.raises(NotImplementedError, match="complex eigenvalues.*eigh"):  # the rotation's are +-i
        tj.jit(np.linalg.eig)(np.array([[0.0, -1.0], [1.0, 0.0]]))


@pytest.mark.parametrize("kth,axis", [(2, -1), (-1, 0), ((0, 3), -1), ([1, 2], 0), (0, None)])
def test_partition_is_numpys(kth, axis):
    x = R.normal(size=(5, 6))
    x[1, 2] = x[3, 4] = np.nan  # nan sorts last, as in numpy
    close(lambda a: np.partition(a, kth, axis=axis), x, rtol=0, atol=0)
    close(lambda a: np.argpartition(a, kth, axis=axis), x, rtol=0, atol=0)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 9), st.integers(1, 4), st.data())
def test_partition_guarantees(n, m, data):
    """numpy's contract, checked on its own: the kth elements in sorted position, smaller ones before them and
    larger ones after them (along the axis); argpartition gathers the same values."""
    x = np.asarray(data.draw(st.lists(st.integers(-3, 3), min_size=n * m, max_size=n * m)), float).reshape(n, m)
    ks = tuple(sorted(set(data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=3)))))
    f = tj.jit(lambda a: (np.partition(a, ks, axis=0), np.argpartition(a, ks, axis=0)))
    p, ip = f(x)
    s = np.sort(x, axis=0)
    for k in ks:
        np.testing.assert_array_equal(p[k], s[k])
        assert (p[:k % n] <= p[k]).all() and (p[k % n + 1:] >= p[k]).all()
    np.testing.assert_array_equal(np.take_along_axis(x, ip, 0), p)


def test_partition_lengths_and_errors():
    f = tj.jit(lambda a: np.partition(a, a.shape[0] // 2)[a.shape[0] // 2])  # the median element, any length
    for n in (5, 8):
        x = R.normal(size=n)
        assert f(x) == np.sort(x)[n // 2]
    with pytest.raises(ValueError, match="out of bounds"):
        tj.jit(lambda a: np.partition(a, 9))(np.ones(4))
    with pytest.raises(ValueError, match="out of bounds"):  # a length known at run time: numpy's check
        tj.jit(lambda a: np.partition(a[1:], 3))(np.ones(4))
    with pytest.raises(TypeError, match="integer"):
        tj.jit(lambda a: np.partition(a, 1.5))(np.ones(4))
    with pytest.raises(ValueError, match="introselect"):
        tj.jit(lambda a: np.argpartition(a, 1, kind="quicksort"))(np.ones(4))
    with pytest.raises(np.exceptions.AxisError):
        tj.jit(lambda a: np.partition(a, 1, axis=1))(np.ones(4))
    np.testing.assert_array_equal(tj.vmap(lambda r: np.partition(r, 2))(X16.reshape(4, 4)),
                                  np.partition(X16.reshape(4, 4), 2, axis=1))


@pytest.mark.parametrize("norm", [None, "ortho", "forward"])
def test_hermitian_transforms(norm):
    x = R.normal(size=(4, 9))
    close(lambda a: np.fft.hfft(a, norm=norm), x)
    close(lambda a: np.fft.hfft(a, n=7, axis=0, norm=norm), x)
    close(lambda a: np.fft.hfft(np.fft.ihfft(a, norm=norm), 9, norm=norm), x)
    close(lambda a: _as_pair(np.fft.ihfft(a, n=12, axis=0, norm=norm)), x)
    close(lambda a: np.fft.hfft(np.fft.fft(a) * 0.5, norm=norm), x)  # a complex input


def test_fftshift_and_frequencies_follow_the_length():
    f = tj.jit(lambda a: (np.fft.fftshift(a), np.fft.ifftshift(a, axes=0), np.fft.fftshift(a, axes=(1,)),
                          _as_pair(np.fft.fftshift(np.fft.fft(a, axis=0), 0))))
    for shape in ((4, 5), (7, 2)):  # even and odd lengths through one compilation
        x = R.normal(size=shape)
        want = (np.fft.fftshift(x), np.fft.ifftshift(x, axes=0), np.fft.fftshift(x, axes=(1,)),
                _as_pair(np.fft.fftshift(np.fft.fft(x, axis=0), 0)))
        for g, w in zip(tj.jit(f)(x), want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    import tracejit.numpy as tnp
    close(lambda d: (tnp.fft.fftfreq(9, d), tnp.fft.rfftfreq(8, d)), np.float64(0.25))
    with pytest.raises(ValueError, match="norm"):
        tj.jit(lambda a: np.fft.hfft(a, norm="bad"))(X16)


UNIQUE_ALL = {ax: tj.jit(lambda a, ax=ax: np.unique(a, axis=ax, return_index=True, return_inverse=True,
                                                    return_counts=True)) for ax in (-1, 0, 1)}


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 6), st.integers(2, 3), st.integers(0, 2), st.sampled_from([-1, 0, 1]))
def test_unique_along_an_axis(n, m, hi, axis):  # lengths 0 and 1: test_unique_axis_values_and_errors
    x = R.integers(0, hi + 1, size=(n, m, 2))
    got = UNIQUE_ALL[axis](x)
    for g, w in zip(got, np.unique(x, axis=axis, return_index=True, return_inverse=True, return_counts=True)):
        np.testing.assert_array_equal(g, w)
        assert g.shape == w.shape and g.dtype == w.dtype


def test_unique_axis_values_and_errors():
    x = np.array([[1.5, np.nan], [0.0, 2.0], [1.5, np.nan], [-0.0, 2.0]])
    close(lambda a: np.unique(a, axis=0), x)  # -0.0 == 0.0, nan != nan: numpy's row equality
    close(lambda a: np.unique(a, axis=1, return_counts=True), x.T)
    for shape in ((0, 3), (1, 3), (3, 1)):
        close(lambda a: np.unique(a, axis=0, return_index=True, return_inverse=True, return_counts=True),
              np.ones(shape, np.int64))
    with pytest.raises(np.exceptions.AxisError):
        tj.jit(lambda a: np.unique(a, axis=2))(x)


EIG_GRADS = {
    "eigvals": (lambda a, np: (np.linalg.eigvals(a) ** 3).sum(), lambda a: (_jax_eig(a)[0] ** 3).sum()),
    "eig_vectors": (lambda a, np: ((np.linalg.eig(a)[1] ** 4).sum(0) * np.linalg.eig(a)[0]).sum(),
                    lambda a: ((_jax_eig(a)[1] ** 4).sum(0) * _jax_eig(a)[0]).sum()),
    "partition": (lambda x, np: (np.partition(x, 5)[:5] ** 2).sum() + np.partition(x, 5)[5] * 3,
                  lambda x: (jnp.sort(x)[:5] ** 2).sum() + jnp.sort(x)[5] * 3),
    "partition_axis0": (lambda x, np: (np.partition(x.reshape(4, 4), (1, 2), axis=0)[1:3] ** 3).sum(),
                        lambda x: (jnp.sort(x.reshape(4, 4), axis=0)[1:3] ** 3).sum()),
    "hfft": (lambda x, np: (np.fft.hfft(x, n=20) ** 2 * np.arange(20.0)).sum(),
             lambda x: (jnp.fft.hfft(x, n=20) ** 2 * jnp.arange(20.0)).sum()),
    "ihfft": (lambda x, np: (np.fft.ihfft(x, norm="ortho").imag ** 2 + np.fft.ihfft(x).real).sum(),
              lambda x: (jnp.fft.ihfft(x, norm="ortho").imag ** 2 + jnp.fft.ihfft(x).real).sum()),
    "fftshift": (lambda x, np: (np.fft.fftshift(x.reshape(4, 4), axes=0) * np.arange(16.0).reshape(4, 4)).sum(),
                 lambda x: (jnp.fft.fftshift(x.reshape(4, 4), axes=0) * jnp.arange(16.0).reshape(4, 4)).sum()),
}


@pytest.mark.parametrize("name", list(EIG_GRADS))
def test_new_gradients_match_jax(name):
    f, fj = EIG_GRADS[name]
    x = NONSYM if name.startswith("eig") else X16
    want = np.asarray(jax.grad(fj)(x))
    np.testing.assert_allclose(tj.grad(lambda v: f(v, np))(x), want, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(tj.jit(tj.grad(lambda v: f(v, np)))(x), want, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("kth", [np.array([[1]]), 1.0, True, np.array([], int), [], np.int32(1), np.array(1),
                                 np.array([0, 2]), [0, 2], -3])
def test_partition_kth_forms_as_numpy(kth):
    """Every kth form numpy takes gives numpy's result; every one it refuses, numpy's error."""
    x = np.array([[3.0, 1, 2], [0, 5, -1]])
    for f in (lambda a: np.partition(a, kth), lambda a: np.argpartition(a, kth, axis=0)):
        try:
            want = f(x)
        except (TypeError, ValueError) as e:
            with pytest.raises(type(e), match=str(e).replace("(", "\\(").replace(")", "\\)")):
                tj.jit(f)(x)
            continue
        np.testing.assert_array_equal(tj.jit(f)(x), want)


def test_a_program_that_is_one_routine_calls_it_directly():
    """``rfft(x)``, ``svd(a)``: the routine is called with the program's arguments and its results handed out (no
    environment, symbols or checks around it); lengths still come from each call's arguments, nothing recompiles."""
    from tracejit.segmented import RegionExecutable

    f = tj.jit(lambda x: np.fft.rfft(x))
    for n in (8, 1024, 1000):
        x = np.random.default_rng(n).standard_normal(n)
        got = f(x)
        np.testing.assert_allclose(got, np.fft.rfft(x), rtol=1e-12, atol=1e-12)
        assert got.dtype == np.complex128 and got.shape == (n // 2 + 1,)
    exe = next(iter(f._cache.values()))[0]
    assert isinstance(exe, RegionExecutable) and "run" in vars(exe)  # the direct call in place of the method
    assert len(f._cache) == 1
    a = np.random.default_rng(0).standard_normal((5, 3))
    u, s, vh = tj.jit(lambda a: np.linalg.svd(a, full_matrices=False))(a)
    np.testing.assert_allclose((u * s) @ vh, a, rtol=1e-12, atol=1e-12)
    g = tj.jit(lambda x: np.fft.rfft(x * 2))  # with work around the routine: the general path
    np.testing.assert_allclose(g(x), np.fft.rfft(x * 2), rtol=1e-12, atol=1e-12)
    assert "run" not in vars(next(iter(g._cache.values()))[0])
