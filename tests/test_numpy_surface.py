"""Audit of issue 14's numpy surface (and issue 13's missing functions): every function and Python builtin the
issue lists, called on tracers under ``tj.jit`` in its typical forms (axes, keywords), against numpy's own result
(values, shape and dtype). A function that needs a complex dtype must raise a clear UnsupportedError instead
(``REFUSED``). One compile per form; the breadth of each function is in test_numpy_more / test_library_prims."""
from __future__ import annotations

import operator

import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.errors import UnsupportedError

R = np.random.default_rng(14)
X = R.normal(size=(5, 4))
X3 = R.normal(size=(2, 3, 4))
XI = R.integers(-9, 9, size=(5, 4))
XN = X.copy()
XN[1, 2], XN[3, 1], XN[0, 0] = np.nan, np.inf, -np.inf
V = R.normal(size=8)
VI = R.integers(0, 6, size=10)
SQ = R.normal(size=(4, 4)) + 4 * np.eye(4)
SPD = SQ @ SQ.T
SPD3 = np.stack([SPD, SPD + np.eye(4), 2 * SPD])
TALL = R.normal(size=(6, 3))
TRI = np.triu(R.normal(size=(4, 4))) + 3 * np.eye(4)  # real eigenvalues (its diagonal)


def parts(z):
    """A complex result as (real, imaginary): tracejit's complex values leave a traced function as their parts."""
    return (z.real, z.imag) if isinstance(z, np.ndarray) and z.dtype.kind == "c" or hasattr(z, "imag") else z


def _with_parts(f):
    def g(*a):
        out = f(*a)
        return tuple(parts(o) for o in out) if isinstance(out, tuple) else parts(out)
    return g


# name -> [(form, function, arguments)]: each function's typical forms (several axis / keyword forms each)
CASES = {
    "roll": [("shift", lambda x: np.roll(x, 3), X), ("axis", lambda x: np.roll(x, -1, axis=1), X),
             ("axes", lambda x: np.roll(x, (1, 2), axis=(0, 1)), XI)],
    "cumsum": [("flat", lambda x: np.cumsum(x), X), ("axis", lambda x: np.cumsum(x, axis=1), XI),
               ("dtype", lambda x: np.cumsum(x, 0, dtype=np.float32), XI)],
    "cumprod": [("flat", lambda x: np.cumprod(x), X), ("axis", lambda x: np.cumprod(x, axis=0), XI)],
    "diff": [("last", lambda x: np.diff(x), X), ("n_axis", lambda x: np.diff(x, 2, axis=0), XI),
             ("prepend", lambda x: np.diff(x, prepend=0.0, append=x[:, -1:]), X)],
    "average": [("all", lambda x: np.average(x), X), ("axis", lambda x: np.average(x, axis=0), XI),
                ("weights", lambda x: np.average(x, axis=1, weights=np.arange(1.0, 5.0)), X),
                ("returned", lambda x: np.average(x, weights=x * x, returned=True), X)],
    "tile": [("int", lambda x: np.tile(x, 2), V), ("tuple", lambda x: np.tile(x, (2, 1, 3)), XI)],
    "repeat": [("flat", lambda x: np.repeat(x, 2), X), ("axis", lambda x: np.repeat(x, [1, 0, 2, 1], axis=1), X)],
    "arange": [("len", lambda x: np.arange(x.shape[0]) * x[:, 0], X),
               ("start_step", lambda x: np.arange(1, 2 * x.shape[1], 2) + x, X)],
    "linspace": [("num", lambda x: np.linspace(0, 1, x.shape[0]) + x[:, 0], X),
                 ("traced", lambda x: np.linspace(x[0], x[1], 5), V),
                 ("endpoint", lambda x: np.linspace(x[0], x[1], 4, endpoint=False, axis=0), X)],
    "logspace": [("num", lambda x: np.logspace(x[0], x[1], 5), V),
                 ("base", lambda x: np.logspace(0, 2, 3, base=2.0) * x[:3], V)],
    "eye": [("n", lambda x: np.eye(x.shape[1]) @ x.T, X), ("k", lambda x: np.eye(5, 4, k=1) * x, X)],
    "identity": [("n", lambda x: np.identity(x.shape[0]) + x, SQ)],
    "zeros_ones_empty_full": [
        ("int", lambda x: np.zeros(x.shape[0]) + np.ones(x.shape[0], np.int32) + x[:, 0], X),
        ("tuple", lambda x: np.full((x.shape[0], 2), 3.0) + np.ones((x.shape[0], 1)), X),
        ("shape", lambda x: np.zeros(x.shape, dtype=np.int64) + np.full(x.shape, 2), XI),
        ("empty_written", lambda x: _filled_empty(x), X),
        ("like", lambda x: (np.zeros_like(x), np.ones_like(x, dtype=np.float32), np.full_like(x, 7)), XI)],
    "pad": [("constant", lambda x: np.pad(x, 1), X), ("edge", lambda x: np.pad(x, ((1, 2), (0, 3)), "edge"), X),
            ("reflect", lambda x: np.pad(x, 2, mode="reflect"), XI), ("wrap", lambda x: np.pad(x, (3, 1), "wrap"), V),
            ("values", lambda x: np.pad(x, 1, constant_values=(-1, 5)), XI)],
    "flip": [("all", lambda x: np.flip(x), X), ("axis", lambda x: np.flip(x, axis=(0, 2)), X3),
             ("lr_ud", lambda x: (np.fliplr(x), np.flipud(x)), X)],
    "rot90": [("k1", lambda x: np.rot90(x), X), ("k3_axes", lambda x: np.rot90(x, 3, axes=(0, 2)), X3)],
    "sort": [("last", lambda x: np.sort(x), X), ("axis0", lambda x: np.sort(x, axis=0), XI),
             ("none", lambda x: np.sort(x, axis=None), X),
             ("complex", lambda x: parts(np.sort(x + 1j * x[::-1], axis=0)), np.round(X))],  # ties on the real part
    "argsort": [("stable", lambda x: np.argsort(x, kind="stable"), XI % 3),
                ("axis0", lambda x: np.argsort(x, axis=0, stable=True), XI % 3)],
    "lexsort": [("keys", lambda x: np.lexsort((x % 3, x % 2)), VI),
                ("array_axis", lambda x: np.lexsort(x % 2, axis=0), XI)],
    "unique_family": [("all_counts", lambda x: (np.unique_all(x), np.unique_counts(x)), XI % 4),
                      ("inverse_values", lambda x: (np.unique_inverse(x), np.unique_values(x)), XN)],
    "searchsorted": [("left", lambda x: np.searchsorted(np.sort(V), x), X),
                     ("right", lambda x: np.searchsorted(np.sort(x), x[::-1], side="right"), VI)],
    "take": [("flat", lambda x: np.take(x, [0, 5, -1]), X),
             ("axis", lambda x: np.take(x, np.array([[0, 2], [1, 1]]), axis=1), X),
             ("wrap", lambda x: np.take(x, [7, -9], axis=0, mode="wrap"), X)],
    "take_along_axis": [("argmax", lambda x: np.take_along_axis(x, np.argsort(x, axis=0), 0), X)],
    "put_along_axis": [("returned", lambda x: tnp.put_along_axis(x, np.argmax(x, axis=1)[:, None], -1.0, 1,
                                                               inplace=False), X, lambda x: _put_along(x)),
                       ("inplace", lambda x: _put_along(x), X)],  # numpy's call, writing into x
    "meshgrid": [("xy", lambda x: np.meshgrid(x[0], x[:, 0]), X),
                 ("ij", lambda x: np.meshgrid(x[0], x[:, 0], indexing="ij"), X)],
    "indices": [("shape", lambda x: np.indices((2, 3)).sum(0) + x[:2, :3], X)],
    "triu_tril": [("k0", lambda x: (np.triu(x), np.tril(x)), X), ("k", lambda x: (np.triu(x, 1), np.tril(x, -2)), X)],
    "diag": [("vector", lambda x: np.diag(x, 1), V), ("matrix", lambda x: np.diag(x, -1), X)],
    "diagonal": [("plain", lambda x: np.diagonal(x), X), ("offset_axes", lambda x: np.diagonal(x, 1, 0, 2), X3)],
    "trace": [("plain", lambda x: np.trace(x), XI), ("offset", lambda x: np.trace(x, -1, dtype=np.float32), XI)],
    "round": [("plain", lambda x: (np.round(x * 10), np.around(x * 10, 1)), X),
              ("negative", lambda x: np.round(x * 100, -1), X)],
    "isclose": [("plain", lambda x: np.isclose(x, x + 1e-9), XN),
                ("equal_nan", lambda x: np.isclose(x, x, equal_nan=True), XN)],
    "allclose": [("true", lambda x: np.allclose(x, x * (1 + 1e-9)), X), ("false", lambda x: np.allclose(x, x + 1), X)],
    "nan_to_num": [("plain", lambda x: np.nan_to_num(x), XN),
                   ("values", lambda x: np.nan_to_num(x, nan=-1.0, posinf=9.0), XN)],
    "nan_reductions": [("all", lambda x: (np.nansum(x), np.nanmean(x), np.nanmax(x), np.nanmin(x)), XN),
                       ("axis", lambda x: (np.nansum(x, 0), np.nanmean(x, 1), np.nanmax(x, 0), np.nanmin(x, 1)), XN)],
    "median": [("all", lambda x: np.median(x), X), ("axis", lambda x: np.median(x, axis=1, keepdims=True), X),
               ("empty", lambda x: (np.median(x, axis=0), np.median(x, axis=1)), np.zeros((0, 3)))],  # nan, as numpy
    "percentile_quantile": [("scalar", lambda x: (np.percentile(x, 30), np.quantile(x, 0.7)), X),
                            ("vector_axis", lambda x: np.quantile(x, [0.1, 0.5], axis=0), X),
                            ("method", lambda x: np.percentile(x, 40, axis=1, method="nearest"), X)],
    "count_nonzero": [("all", lambda x: np.count_nonzero(x), XI), ("axis", lambda x: np.count_nonzero(x, axis=0), XI)],
    "bincount": [("minlength", lambda x: np.bincount(x, minlength=9), VI), ("data_length", np.bincount, VI),
                 ("weights_data_length", lambda x: np.bincount(x, weights=np.arange(10.0)), VI),
                 ("weights", lambda x: np.bincount(x, weights=np.arange(10.0), minlength=6), VI)],
    "histogram": [("bins", lambda x: np.histogram(x, bins=5), X),
                  ("range", lambda x: np.histogram(x, bins=4, range=(-1, 1)), X)],
    "interp": [("plain", lambda x: np.interp(x, np.array([-1.0, 0, 2]), np.array([0.0, 1, -1])), X),
               ("left_right", lambda x: np.interp(x, np.array([-1.0, 0, 1]), np.array([0.0, 1, 2]), left=-5,
                                                  right=5), X)],
    "convolve_correlate": [("full", lambda x: np.convolve(x, np.array([1.0, 2, 0.5])), V),
                           ("same", lambda x: np.convolve(x, x[:3], "same"), V),
                           ("correlate", lambda x: (np.correlate(x, x[:3]), np.correlate(x, x[:2], "full")), V)],
    "cross": [("3d", lambda x: np.cross(x[:, :3], x[:, 1:]), X),
              ("axes", lambda x: np.cross(x[:3], x[2:], axisa=0, axisb=0), X)],
    "kron": [("plain", lambda x: np.kron(x, np.array([[1.0, -1], [2, 0]])), X)],
    "split": [("array_split", lambda x: np.array_split(x, 3), X), ("split_axis", lambda x: np.split(x, 2, axis=1), X),
              ("sections", lambda x: np.split(x, [1, 3]), X)],
    "stacks": [("h_v_col", lambda x: (np.hstack([x, x]), np.vstack([x, x[0]]), np.column_stack([x[:, 0], x])), X)],
    "atleast": [("1d_2d_3d", lambda x: (np.atleast_1d(x[0, 0]), np.atleast_2d(x[0]), np.atleast_3d(x)), X)],
    "where_one_argument": [("vector", lambda x: np.where(x > 0), V), ("matrix", lambda x: np.where(x > 0), X)],
    # np.linalg
    "norm": [("fro", lambda x: np.linalg.norm(x), X), ("ord_axis", lambda x: np.linalg.norm(x, 1, axis=0), X),
             ("matrix_ords", lambda x: (np.linalg.norm(x, 2), np.linalg.norm(x, "nuc"), np.linalg.norm(x, np.inf)), X)],
    "solve": [("vector", lambda a: np.linalg.solve(a, a[0]), SQ), ("stack", lambda a: np.linalg.solve(a, a), SPD3),
              ("complex", lambda a: parts(np.linalg.solve(a * (1 + 1j), a[0])), SQ)],
    "inv": [("plain", lambda a: np.linalg.inv(a), SQ), ("stack", lambda a: np.linalg.inv(a), SPD3)],
    "det_slogdet": [("plain", lambda a: (np.linalg.det(a), np.linalg.slogdet(a)), SQ),
                    ("stack", lambda a: np.linalg.slogdet(a), SPD3)],
    "cholesky": [("plain", lambda a: np.linalg.cholesky(a), SPD),
                 ("upper", lambda a: np.linalg.cholesky(a, upper=True), SPD3)],
    "qr": [("reduced", lambda a: np.linalg.qr(a), TALL), ("complete", lambda a: np.linalg.qr(a, mode="complete"), TALL),
           ("r", lambda a: np.linalg.qr(a, mode="r"), TALL)],
    "eigh": [("plain", lambda a: np.linalg.eigh(a), SPD), ("upper", lambda a: np.linalg.eigh(a, UPLO="U"), SPD3),
             ("eigvalsh", lambda a: np.linalg.eigvalsh(a), SPD)],
    "eig": [("values_vectors", lambda a: np.linalg.eig(a), TRI), ("eigvals", lambda a: np.linalg.eigvals(a), SPD3),
            ("complex_input", lambda a: parts(np.sort(np.linalg.eigvals(a.astype(complex)))), SQ)],
    "svd": [("full", lambda a: np.linalg.svd(a), TALL),
            ("reduced", lambda a: np.linalg.svd(a, full_matrices=False), TALL),
            ("values", lambda a: np.linalg.svd(a, compute_uv=False), SPD3)],
    "lstsq": [("vector", lambda a: np.linalg.lstsq(a, a[:, 0] + 1), TALL),
              ("matrix", lambda a: np.linalg.lstsq(a, a, rcond=None), TALL)],
    "pinv": [("plain", lambda a: np.linalg.pinv(a), TALL)],
    "matrix_power": [("positive", lambda a: np.linalg.matrix_power(a, 3), SQ), ("zero_negative",
                     lambda a: (np.linalg.matrix_power(a, 0), np.linalg.matrix_power(a, -2)), SQ)],
    # np.fft (complex results leave as their parts)
    "fft": [("plain", _with_parts(lambda x: np.fft.fft(x)), V),
            ("n_axis", _with_parts(lambda x: np.fft.fft(x, 6, axis=0)), X),
            ("ifft", _with_parts(lambda x: np.fft.ifft(x, norm="ortho")), X)],
    "rfft_irfft": [("rfft", _with_parts(lambda x: np.fft.rfft(x, axis=0)), X),
                   ("irfft", lambda x: np.fft.irfft(np.fft.rfft(x), n=8), V),
                   ("irfft_odd", lambda x: np.fft.irfft(np.fft.rfft(x, axis=0), n=5, axis=0, norm="forward"), X)],
    "fft2": [("plain", _with_parts(lambda x: np.fft.fft2(x)), X),
             ("s", _with_parts(lambda x: np.fft.ifft2(x, s=(3, 6))), X),
             ("rfft2", lambda x: np.fft.irfft2(np.fft.rfft2(x), s=x.shape), X)],
    "fftn": [("plain", _with_parts(lambda x: np.fft.fftn(x)), X3),
             ("axes", _with_parts(lambda x: np.fft.ifftn(x, axes=(0, 2))), X3),
             ("rfftn", lambda x: np.fft.irfftn(np.fft.rfftn(x), x.shape, axes=(0, 1, 2)), X3)],
    "hfft_ihfft": [("hfft", lambda x: np.fft.hfft(np.fft.ihfft(x)), V),
                   ("hfft_n_axis", lambda x: np.fft.hfft(x, n=7, axis=0, norm="ortho"), X),
                   ("ihfft", _with_parts(lambda x: np.fft.ihfft(x, axis=0, norm="forward")), X)],
    "fftfreq_shift": [("fftshift", lambda x: (np.fft.fftshift(x), np.fft.ifftshift(x, axes=1)), X),
                      ("freqs", lambda x: np.fft.fftfreq(8, 0.5) * x + np.fft.rfftfreq(8)[:, None].sum(), V)],
    # partition
    "partition": [("int", lambda x: np.partition(x, 3)[..., 3], X),
                  ("axis", lambda x: np.partition(x, -1, axis=0)[-1], X),
                  ("sequence", lambda x: np.partition(x, (1, 5))[[1, 5]], V)],
    "unique": [("flat", lambda x: np.unique(x), VI), ("counts", lambda x: np.unique(x, return_counts=True), VI),
               ("axis", lambda x: np.unique(x, axis=0), np.array([[1, 2], [0, 5], [1, 2], [0, 4]]))],
    # Python builtins on tracers
    "builtin_abs": [("abs", lambda x: abs(x), X)],
    "builtin_sum": [("list", lambda x: sum([x, 2 * x, x[0]]), X), ("start", lambda x: sum([x[0], x[1]], x[2]), X)],
    # round() on numpy scalars (numpy arrays have no __round__): an integer, or the value rounded to ndigits
    "builtin_round": [("round", lambda x: (round(x.sum()), round(x[0, 1], 1), round(x.max() * 100, -1)), X),
                      ("int", lambda x: round(x.sum(), -1), XI)],
    "builtin_divmod": [("divmod", lambda x: divmod(x, 4), XI), ("float", lambda x: divmod(x, 0.3), X),
                       ("reflected", lambda x: divmod(7, x + 10), XI)],
    "builtin_pow": [("pow", lambda x: (pow(x, 2), pow(2.0, x), x ** 3), X), ("int", lambda x: pow(x, 3), XI)],
}


def _filled_empty(x):
    out = np.empty((x.shape[0], 2))
    out[:, 0] = x[:, 0]
    out[:, 1] = 1.0
    return out


def _put_along(x):
    out = x.copy()
    np.put_along_axis(out, np.argmax(out, axis=1)[:, None], -1.0, 1)
    return out


ROTATION = np.array([[0.0, -1.0], [1.0, 0.0]])
# what tracejit refuses, with the error type and the words its message must hold: the forms that need a complex
# dtype (results that are complex), a length only the data decides, a write numpy makes into its argument
REFUSED = {
    "eig_complex": (lambda a: np.linalg.eig(a), ROTATION, UnsupportedError, "complex eigenvalues"),
    "eigvals_complex": (lambda a: np.linalg.eigvals(2 * a + np.eye(2)), ROTATION, UnsupportedError,
                        "eigvals: this matrix"),
    "qr_raw": (lambda a: np.linalg.qr(a, mode="raw"), SQ, UnsupportedError, "mode='raw'"),
    "round_array": (lambda x: round(x), X, TypeError, "np.round"),  # numpy arrays have no __round__ either
    "partition_traced_kth": (lambda x, k: np.partition(x, k), (V, np.float64(2.0)), TypeError, "integer"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refusals_are_clear(name):
    f, args, exc, words = REFUSED[name]
    args = args if isinstance(args, tuple) else (args,)
    with pytest.raises(exc, match=words):
        tj.jit(f)(*args)


def _same(got, want, rtol):
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want), (type(got), len(got), len(want))
        assert type(got) is type(want) or not hasattr(want, "_fields"), (type(got), type(want))  # numpy 2's results
        for g, w in zip(got, want):
            _same(g, w, rtol)
        return
    want, got = np.asarray(want), np.asarray(got)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol, equal_nan=True)


LIBRARY_TOLERANCE = ("norm", "solve", "inv", "det_slogdet", "cholesky", "qr", "eigh", "eig", "svd", "lstsq", "pinv",
                     "matrix_power", "fft", "rfft_irfft", "fft2", "fftn", "hfft_ihfft")


@pytest.mark.parametrize("name,form", [(n, c[0]) for n, cs in CASES.items() for c in cs])
def test_function_matches_numpy_under_jit(name, form):
    case = next(c for c in CASES[name] if c[0] == form)
    f, x = case[1], case[2]
    with np.errstate(invalid="ignore"):  # inf - inf in the nan-aware sums: numpy warns, tracejit does not
        want = (case[3] if len(case) > 3 else f)(x.copy())  # a fourth entry: numpy's spelling of the call
    got = tj.jit(f)(x.copy())
    _same(got, want, 1e-9 if name in LIBRARY_TOLERANCE else 1e-12)


def _clamp(x):
    lo = max(x[0, 0], 0.5)  # the user's line the error must point at
    return lo


@pytest.mark.parametrize("f,instead", [(lambda x: max(x, 0.5), "np.maximum"), (lambda x: min(x[0], x[1]), "np.minimum"),
                                       (lambda x: np.sin(min(1.0, x.sum())), "np.minimum"), (_clamp, "np.maximum")])
def test_python_max_min_name_numpys_functions(f, instead):
    with pytest.raises(tj.ConcretizationError, match=instead) as info:
        tj.jit(f)(X)
    assert info.traceback[-1].path.name == "test_numpy_surface.py"  # raised at the user's line
    with pytest.raises(tj.ConcretizationError, match="np.where") as info:  # other truth values keep their advice
        tj.jit(lambda x: x if x.sum() > 0 else -x)(X)
    assert "np.maximum" not in str(info.value)


def test_builtins_match_operator_module():
    # divmod and pow through the operator protocol (what the builtins call) on tracers
    f = tj.jit(lambda x: (operator.mod(x, 3), operator.floordiv(x, 3), operator.pow(x, 2)))
    _same(f(XI), (XI % 3, XI // 3, XI ** 2), 0)
