"""int8, int16, uint8, uint16, uint32, uint64 and float16 end to end, against numpy 2: promotion (NEP 50 weak
Python scalars, OverflowError for ints that do not fit), wrap-around, mixed signedness, conversions, reductions'
dtypes, float16 computed in float32 and rounded per operation, and an image kernel on a uint8 image."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracejit as tj

NEW = [np.int8, np.int16, np.uint8, np.uint16, np.uint32, np.uint64, np.float16]
INTS = [np.int8, np.int16, np.uint8, np.uint16, np.uint32, np.uint64]


def _numpy(f, *args):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return f(*args)


def same(got, want, f16_ulps=1):
    """Bit-identical for ints and bools; float16 within ``f16_ulps`` of numpy (float32 math rounded to half)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape
    if want.dtype == np.float16:
        g, w = got.astype(np.float64), want.astype(np.float64)
        tol = f16_ulps * np.spacing(np.abs(want)).astype(np.float64)
        with np.errstate(invalid="ignore"):  # inf - inf
            ok = (g == w) | (np.isnan(g) & np.isnan(w)) | (np.abs(g - w) <= tol)
        assert ok.all(), (got[~ok], want[~ok])
    else:
        np.testing.assert_array_equal(got, want)


def rand(dt, n=12, seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dt)
    if dt.kind == "f":
        return (rng.standard_normal(n) * 50).astype(dt)
    if dt.kind == "b":
        return rng.integers(0, 2, n).astype(bool)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)


# ------------------------------------------------------------------------------------------------ promotion
PAIRS = [(a, b) for a in NEW + [np.int32, np.int64, np.float32, np.bool_] for b in NEW]


@pytest.mark.parametrize("a,b", PAIRS[::3])
def test_array_array_promotion_and_arithmetic(a, b):
    x, y = rand(a, seed=1), rand(b, seed=2)
    f = lambda x, y: (x + y, x - y, x * y, x < y, x == y, np.maximum(x, y))  # noqa: E731
    for g, w in zip(tj.jit(f)(x, y), _numpy(f, x, y)):
        same(g, w)


@pytest.mark.parametrize("dt", NEW)
def test_python_scalars_are_weak(dt):
    x = rand(dt, seed=3)
    f = lambda x: (x + 1, x * 2, 3 - x, x + 1.5, x * True, x > 2, x == 300, x < -1)  # noqa: E731
    for g, w in zip(tj.jit(f)(x), _numpy(f, x)):
        same(g, w)


@pytest.mark.parametrize("dt,v", [(np.uint8, 300), (np.uint8, -1), (np.int8, 128), (np.uint16, 70000),
                                  (np.int16, -40000), (np.uint32, -5)])
def test_out_of_range_python_int_raises_overflow_as_numpy(dt, v):
    x = np.ones(3, dt)
    with pytest.raises(OverflowError):
        x + v
    with pytest.raises(OverflowError, match=str(v)):
        tj.jit(lambda x: x + v)(x)
    with pytest.raises(OverflowError):  # a Python int argument: checked at each call
        tj.jit(lambda x, k: x + k)(x, v)
    np.testing.assert_array_equal(tj.jit(lambda x, k: x + k)(x, 1), x + 1)


def test_promotion_table_examples():
    u8, i8 = np.array([200], np.uint8), np.array([-100], np.int8)
    assert tj.jit(lambda a, b: a + b)(u8, i8).dtype == np.int16
    assert tj.jit(lambda a, b: a + b)(u8.astype(np.uint64), i8.astype(np.int64)).dtype == np.float64
    assert tj.jit(lambda a, b: a + b)(i8, np.ones(1, np.float16)).dtype == np.float16
    assert tj.jit(lambda a: a / 3)(u8).dtype == np.float64
    assert tj.jit(np.sqrt)(u8).dtype == np.float16 and tj.jit(np.sqrt)(u8.astype(np.int16)).dtype == np.float32


# ------------------------------------------------------------------------------------------------ wrap-around
def test_wrap_around():
    u8 = np.array([255, 0, 128], np.uint8)
    same(tj.jit(lambda x: x + np.uint8(1))(u8), u8 + np.uint8(1))
    same(tj.jit(lambda x: x - np.uint8(1))(u8), _numpy(lambda: u8 - np.uint8(1)))
    same(tj.jit(np.negative)(u8), _numpy(np.negative, u8))
    same(tj.jit(np.abs)(np.array([-128, 5], np.int8)), np.abs(np.array([-128, 5], np.int8)))
    same(tj.jit(lambda x: x * x)(np.array([200, 16], np.uint8)), np.array([200, 16], np.uint8) ** 2)
    big = np.array([2 ** 64 - 1, 2 ** 63], np.uint64)
    same(tj.jit(lambda x: x + np.uint64(1))(big), big + np.uint64(1))


@pytest.mark.parametrize("dt", INTS)
def test_integer_division_shifts_and_bits_every_sign(dt):
    x, y = rand(dt, 40, seed=4), rand(dt, 40, seed=5)
    y[::7] = 0
    f = lambda x, y: (x // y, x % y, x & y, x | y, x ^ y, ~x, np.gcd(x, y), np.sign(x), np.abs(x))  # noqa: E731
    for g, w in zip(tj.jit(f)(x, y), _numpy(f, x, y)):
        same(g, w)
    n = (np.abs(y.astype(np.int64)) % (8 * np.dtype(dt).itemsize + 2)).astype(dt)
    sh = lambda x, n: (x << n, x >> n, x ** (n % 5))  # noqa: E731
    for g, w in zip(tj.jit(sh)(x, n), _numpy(sh, x, n)):
        same(g, w)


def test_uint64_int64_comparisons_are_exact():
    u = np.array([2 ** 63 + 1, 2 ** 64 - 1, 0, 5, 2 ** 63], np.uint64)
    s = np.array([-1, 2 ** 63 - 1, 0, 5, -2 ** 63], np.int64)
    f = lambda u, s: (u < s, u <= s, u == s, u != s, s > u, s >= u)  # noqa: E731
    for g, w in zip(tj.jit(f)(u, s), f(u, s)):
        same(g, w)


# ------------------------------------------------------------------------------------------------ conversions
@pytest.mark.parametrize("dt", NEW)
def test_astype_both_ways(dt):
    x = np.array([0.0, 1.5, -2.7, 100.25, 127.9, 250.5, 3e4, -3e4], np.float64)
    f = lambda x: (x.astype(dt), x.astype(np.float32).astype(dt), x.astype(dt).astype(np.float64))  # noqa: E731
    info = np.iinfo(dt) if np.dtype(dt).kind != "f" else None
    fits = np.ones(x.shape, bool) if info is None else (x >= info.min) & (x < info.max + 1)
    for g, w in zip(tj.jit(f)(x), _numpy(f, x)):
        same(g[fits], w[fits])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tj.jit(lambda x: x.astype(dt))(np.array([np.nan, np.inf, -1e30]))  # out of range: no crash


def test_float64_to_float16_rounds_once():
    """Rounding to float32 first would round twice: 1 + 2**-11 + 2**-40 is just above a float16 tie."""
    x = np.array([1 + 2 ** -11 + 2 ** -40, 65519.99, 65520.0, 2 ** -25 + 2 ** -50, -0.0, 1e-9, np.nan])
    same(tj.jit(lambda x: x.astype(np.float16))(x), x.astype(np.float16), f16_ulps=0)


# ------------------------------------------------------------------------------------------------ reductions
@pytest.mark.parametrize("dt", NEW)
def test_reduction_dtypes(dt):
    x = rand(dt, 24, seed=6).reshape(4, 6)
    if np.dtype(dt).kind == "f":  # quarters: every partial sum is exact, whatever the order numpy adds in
        x = (np.round(x.astype(np.float64) / 10 * 4) / 4).astype(dt)
    f = lambda x: (x.sum(), x.sum(axis=0), x.prod(axis=1), x.max(), x.min(axis=0), x.argmax(), np.argmin(x, 1),  # noqa: E731
                   x.mean(), np.cumsum(x, axis=1), np.cumprod(x[:, :3], axis=1))
    for g, w in zip(tj.jit(f)(x), _numpy(f, x)):
        same(g, w, f16_ulps=2)


def test_float16_sum_accumulates_in_float32():
    x = np.full(5000, 0.1, np.float16)
    same(tj.jit(np.sum)(x), np.sum(x), f16_ulps=1)  # a float16 accumulator would stall at 256


def test_matmul_of_new_dtypes():
    a, b = rand(np.uint8, 12, seed=7).reshape(3, 4), rand(np.uint8, 8, seed=8).reshape(4, 2)
    same(tj.jit(np.matmul)(a, b), a @ b)
    h, k = (rand(np.float16, 12, seed=9) / 10).astype(np.float16).reshape(3, 4), np.ones((4, 2), np.float16)
    same(tj.jit(np.matmul)(h, k), h @ k, f16_ulps=2)


def test_creation_with_new_dtypes():
    f = lambda x: (np.zeros(3, dtype=np.uint8) + x, np.arange(3, dtype=np.int16), np.ones(3, np.float16) * 2)  # noqa: E731
    x = np.array([1, 2, 3], np.uint8)
    for g, w in zip(tj.jit(f)(x), f(x)):
        same(g, w)


def test_float16_gradient_and_integer_refusal():
    h = np.array([0.5, -1.5, 2.0], np.float16)
    g = tj.grad(lambda x: (x * x).sum())(h)
    same(g, 2 * h)
    with pytest.raises(TypeError, match="uint8"):
        tj.grad(lambda x: (x * x).sum())(np.ones(3, np.uint8))


def test_float16_nextafter_is_refused_clearly():
    with pytest.raises(TypeError, match="float16.*float32"):
        tj.jit(lambda x: np.nextafter(x, x + 1))(np.ones(2, np.float16))


# ------------------------------------------------------------------------------------------------ programs
def box_blur_and_stretch(img):
    """A 3x3 box blur summed in uint16, clipped back to uint8, then a contrast stretch computed in float32."""
    p = img.astype(np.uint16)
    s = (p[:-2, :-2] + p[:-2, 1:-1] + p[:-2, 2:] + p[1:-1, :-2] + p[1:-1, 1:-1] + p[1:-1, 2:]
         + p[2:, :-2] + p[2:, 1:-1] + p[2:, 2:])
    blur = np.clip(s // 9, 0, 255).astype(np.uint8)
    lo, hi = blur.min(), blur.max()
    scale = np.float32(255) / np.maximum(hi - lo, 1).astype(np.float32)
    stretched = np.clip((blur - lo).astype(np.float32) * scale + 0.5, 0, 255).astype(np.uint8)
    return blur, stretched, np.sum(stretched > 128), stretched.astype(np.uint32).sum()


def test_image_kernel_on_a_uint8_image():
    img = np.random.default_rng(10).integers(30, 200, (37, 41), dtype=np.uint8)
    for g, w in zip(tj.jit(box_blur_and_stretch)(img), box_blur_and_stretch(img)):
        same(g, w)


# ------------------------------------------------------------------------------------------------ differential
_OPS = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: np.maximum(a, b),
        lambda a, b: np.where(a > b, a, b), lambda a, b: a // (b | 1) if a.dtype.kind in "iu" and
        b.dtype.kind in "iu" else a * 0.5 + b, lambda a, b: np.minimum(a, 7) + b]
_SCALARS = [lambda a: a + 3, lambda a: a * 2, lambda a: 5 - a, lambda a: a + 1.5, lambda a: -a if
            a.dtype.kind != "b" else a]


@st.composite
def programs(draw):
    dts = [draw(st.sampled_from(NEW + [np.int32, np.float32])) for _ in range(2)]
    seeds = draw(st.lists(st.integers(0, 1000), min_size=2, max_size=2))
    steps = draw(st.lists(st.tuples(st.integers(0, len(_OPS) - 1), st.integers(0, len(_SCALARS) - 1),
                                    st.booleans()), min_size=1, max_size=4))
    return [rand(d, 10, s) for d, s in zip(dts, seeds)], steps


def _run_program(steps):
    def f(a, b):
        x = a
        for op, sc, use_scalar in steps:
            x = _OPS[op](x, b)
            if use_scalar:
                x = _SCALARS[sc](x)
        return x
    return f


@settings(max_examples=40, deadline=None)
@given(programs())
def test_random_programs_match_numpy(prog):
    (a, b), steps = prog
    f = _run_program(steps)
    try:
        want = _numpy(f, a, b)
    except (OverflowError, TypeError) as e:  # numpy refuses: so must tracejit, with the same exception type
        with pytest.raises(type(e)):
            tj.jit(f)(a, b)
        return
    same(tj.jit(f)(a, b), want, f16_ulps=2)
