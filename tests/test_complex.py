"""complex64 / complex128 end to end (issue 14): arithmetic, math, comparisons, sums, matmul, casts and numpy 2's
promotion against numpy, complex arguments and results crossing jit's boundary, np.fft's complex values, and the
numpy Mandelbrot unchanged under tj.jit."""
from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracejit as tj

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
from mandelbrot import mandelbrot_complex as mandel  # noqa: E402  (the issue's program, kept in examples/)

C64, C128 = np.dtype(np.complex64), np.dtype(np.complex128)


def grid(h, w, dtype=np.complex128):
    x, y = np.linspace(-2.0, 0.6, w), np.linspace(-1.2, 1.2, h)
    return (x[None, :] + 1j * y[:, None]).astype(dtype)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_mandelbrot_matches_numpy(dtype):
    c = grid(24, 32, dtype)
    np.testing.assert_array_equal(tj.jit(mandel, static_argnums=1)(c, 16), mandel(c, 16))


def _tol(dt):
    return dict(rtol=2e-5, atol=2e-5) if np.dtype(dt) in (C64, np.float32) else dict(rtol=1e-11, atol=1e-11)


def check(got, want, dt=None):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, equal_nan=True, **_tol(dt or want.dtype))


# ------------------------------------------------------------------------------------------------ differential
UNARY = {"abs": np.abs, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "conj": np.conj, "real": np.real,
         "imag": np.imag, "angle": np.angle, "negative": np.negative, "square": np.square, "sin": np.sin,
         "isfinite": np.isfinite, ".real": lambda z: z.real * 1, ".imag": lambda z: z.imag * 1,
         "sum": np.sum, "mean": lambda z: z.mean(axis=-1) if np.ndim(z) else z.mean(),
         "prod": lambda z: np.prod(z, axis=-1) if np.ndim(z) else np.prod(z), "cumsum": np.cumsum,
         "power2": lambda z: z ** 2, "reciprocal": lambda z: 1 / z, "sign": np.sign,
         "max": lambda z: np.max(z, axis=-1) if np.ndim(z) and np.shape(z)[-1] else z,
         "min": lambda z: z.min(axis=0, keepdims=True) if np.ndim(z) and np.shape(z)[0] else z}
BINARY = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
          "equal": np.equal, "not_equal": np.not_equal, "less": np.less, "greater_equal": np.greater_equal,
          "maximum": np.maximum, "minimum": np.minimum, "where": lambda a, b: np.where(np.abs(a) > 1, a, b)}
OTHERS = ["same", "complex64", "complex128", "float32", "float64", "int64", "py_complex", "py_float", "py_int"]


def _values(rng, shape, dt):
    dt = np.dtype(dt)
    if dt.kind == "c":
        part = rng.standard_normal(shape) * 2, rng.standard_normal(shape) * 2
        return (part[0] + 1j * part[1]).astype(dt)
    if dt.kind == "i":
        return rng.integers(-4, 5, size=shape).astype(dt)
    return (rng.standard_normal(shape) * 2).astype(dt)


def _other(kind, rng, shape, dt):
    if kind == "same":
        return _values(rng, shape, dt)
    if kind.startswith("py_"):
        return {"py_complex": 1.5 - 0.5j, "py_float": 0.75, "py_int": 3}[kind]
    return _values(rng, shape[1:] if shape else shape, kind)  # a broadcast operand


@settings(max_examples=25, deadline=None)
@given(fn=st.sampled_from(sorted(UNARY)), dt=st.sampled_from([C64, C128]),
       shape=st.sampled_from([(), (0,), (1,), (3,), (2, 3)]), seed=st.integers(0, 2 ** 31))
def test_unary_against_numpy(fn, dt, shape, seed):
    z = _values(np.random.default_rng(seed), shape, dt)
    f = UNARY[fn]
    with np.errstate(all="ignore"):
        want = f(z)
    check(tj.jit(f)(z), want, dt)


@settings(max_examples=25, deadline=None)
@given(fn=st.sampled_from(sorted(BINARY)), dt=st.sampled_from([C64, C128]), other=st.sampled_from(OTHERS),
       shape=st.sampled_from([(), (0,), (1,), (3,), (2, 3)]), swap=st.booleans(), seed=st.integers(0, 2 ** 31))
def test_binary_against_numpy(fn, dt, other, shape, swap, seed):
    rng = np.random.default_rng(seed)
    z, w = _values(rng, shape, dt), _other(other, rng, shape, dt)
    f = BINARY[fn]
    args = (w, z) if swap else (z, w)
    with np.errstate(all="ignore"):
        want = f(*args)
    got = tj.jit(f)(*args)
    check(got, want, np.result_type(dt, np.float32) if want.dtype.kind == "c" else None)


# ------------------------------------------------------------------------------------------------ promotion
def test_nep50_promotion():
    z64 = np.ones(3, np.complex64)
    assert tj.jit(lambda z, x: z + x)(z64, np.ones(3)).dtype == C128  # complex64 + float64 -> complex128
    assert tj.jit(lambda z, x: z + x)(z64, np.ones(3, np.float32)).dtype == C64
    assert tj.jit(lambda x: x * 2j)(np.ones(3, np.float32)).dtype == C64  # a Python complex is weak
    assert tj.jit(lambda x: x * 2j)(np.ones(3, np.int32)).dtype == C128
    assert tj.jit(lambda z: z * 2.5)(z64).dtype == C64
    out = tj.jit(lambda x, w: x * w)(np.arange(3.0, dtype=np.float32), 1 - 2j)  # a Python complex argument
    check(out, np.arange(3.0, dtype=np.float32) * (1 - 2j))


def test_casts():
    x = np.arange(4.0)
    check(tj.jit(lambda x: x.astype(np.complex64) * 1j)(x), x.astype(np.complex64) * 1j)
    z = x + 2j * x
    check(tj.jit(lambda z: z.astype(np.complex64))(z), z.astype(np.complex64))
    check(tj.jit(lambda z: z.astype(bool))(z), z.astype(bool))
    with pytest.warns(np.exceptions.ComplexWarning):
        check(tj.jit(lambda z: z.astype(np.float64))(z), x)
    check(tj.jit(lambda x: np.zeros(x.shape, np.complex64) + x)(x), np.zeros(4, np.complex64) + x)
    with pytest.raises(tj.errors.UnsupportedError, match="real_if_close"):
        tj.jit(np.real_if_close)(z)


def test_matmul_and_reductions():
    rng = np.random.default_rng(0)
    a, b = _values(rng, (3, 4), C128), _values(rng, (4, 2), C128)
    check(tj.jit(lambda a, b: a @ b)(a, b), a @ b)
    check(tj.jit(lambda a, b: a @ b)(a, b.real.copy()), a @ b.real)
    a64, b64 = a.astype(C64), b.astype(C64)
    check(tj.jit(np.matmul)(a64, b64), a64 @ b64)
    check(tj.jit(lambda a: (a.sum(axis=0), a.mean(), np.cumsum(a, axis=1), np.prod(a, axis=1)))(a)[3],
          np.prod(a, axis=1))
    check(tj.jit(lambda a: np.vdot(a, a))(a), np.vdot(a, a))


# ------------------------------------------------------------------------------------------------ the boundary
def test_arguments_results_and_writes():
    z = np.arange(5.0) + 1j
    out = tj.jit(lambda z: (z * z.conj(), z[1:3], z.T))(z)
    check(out[0], z * z.conj())
    check(out[1], z[1:3])

    def write(z, w):
        z[1:3] = 5j
        v = w[2:]
        v *= 2
        return z.sum()
    z1, w1, z2, w2 = z.copy(), z.copy() * 1j, z.copy(), z.copy() * 1j
    check(tj.jit(write)(z1, w1), write(z2, w2))
    check(z1, z2)
    check(w1, w2)
    strided = (np.arange(12.0) + 1j).reshape(3, 4)[:, ::2]
    check(tj.jit(lambda z: z * 2)(strided), strided * 2)


def test_fft_values_round_trip():
    x = np.random.default_rng(1).standard_normal(16)
    spectrum = tj.jit(lambda x: np.fft.fft(x) * np.exp(-2j * np.pi * np.fft.fftfreq(x.shape[0])))(x)
    check(spectrum, np.fft.fft(x) * np.exp(-2j * np.pi * np.fft.fftfreq(16)))
    back = tj.jit(lambda s: np.fft.ifft(s))(spectrum)  # a complex argument
    check(back, np.fft.ifft(spectrum))
    check(tj.jit(lambda x: np.fft.rfftfreq(x.shape[0], 0.1))(x), np.fft.rfftfreq(16, 0.1))


def test_complex_work_fuses_like_real_work():
    x, z = np.linspace(0, 1, 64), np.linspace(0, 1, 64) * (1 + 1j)
    f = tj.jit(lambda x, z: np.abs(np.exp(1j * x) * z))
    assert f.lower(x, z).num_kernels == 1
    check(f(x, z), np.abs(np.exp(1j * x) * z))


def test_grad_refuses_complex_and_differentiates_through_it():
    x = np.linspace(0.1, 1, 5)
    with pytest.raises(TypeError, match="complex128"):
        tj.grad(lambda z: np.abs(z).sum())(x + 1j)
    with pytest.raises(TypeError, match="complex128"):
        tj.grad(lambda x: (x * 1j).sum())(x)
    # complex values inside a real function of real arguments are real work on their parts: exact derivatives
    g = tj.grad(lambda x: np.abs(np.exp(1j * x) * (x + 2j)).sum())(x)
    np.testing.assert_allclose(g, x / np.sqrt(x ** 2 + 4), rtol=1e-12)


def test_unsupported_complex_is_refused_clearly():
    with pytest.raises(TypeError, match="complex256|clongdouble"):
        tj.jit(lambda z: z * 2)(np.ones(2, np.clongdouble))
    with pytest.raises(tj.errors.UnsupportedError, match="complex"):
        tj.jit(lambda z: np.fmod(z, 2))(np.ones(2, np.complex128))
    with pytest.raises(TypeError, match="//"):
        tj.jit(lambda z: z // 2)(np.ones(2, np.complex128))


def test_no_warnings_on_plain_use():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = np.arange(3.0) * 1j
        check(tj.jit(lambda z: np.sqrt(z) + np.log(z + 1))(z), np.sqrt(z) + np.log(z + 1))


def test_transformations_carry_complex_values():
    z = np.arange(6.0).reshape(2, 3) + 1j
    check(tj.vmap(lambda z: (z * z).sum())(z), (z * z).sum(axis=1))

    def ref(c):
        w = c
        for _ in range(5):
            w = w * w * 0.1 + c
        return w
    got = tj.jit(lambda c: tj.fori_loop(0, 5, lambda i, w: w * w * 0.1 + c, c))(z[0])
    check(got, ref(z[0]))
    check(tj.jit(lambda x: np.real(x) + np.imag(x))(np.ones(3)), np.ones(3))


def test_fast_call_path_serves_complex_arguments():
    f = tj.jit(lambda z, x: (z * x, x))
    z, x = np.arange(3.0) + 2j, np.arange(3.0)
    for _ in range(3):  # the first call compiles; later ones take the generated call path
        out = f(z, x)
        check(out[0], z * x)
        check(out[1], x)
    assert "_contig(a0.real)" in type(f).__call__.source
    z64 = z.astype(np.complex64)
    check(f(z64, x)[0], z64 * x)  # another signature: compiled again, not served by the first entry
    check(f(z[::-1], x)[0], z[::-1] * x)


def test_part_attributes_are_views():
    def f(z, x):
        z.imag = x
        w = z.copy()
        w.real[1:] = 0
        return w
    z, x = np.arange(4.0) + 1j, np.arange(4.0) * 2
    want_z = z.copy()
    want = f(want_z, x)
    check(tj.jit(f)(z, x), want)
    check(z, want_z)  # the write into the argument reaches the caller
