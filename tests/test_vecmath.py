"""Accuracy and vectorization tests for tracejit.backends.cpu.vecmath (compared with numpy in ulps)."""

from __future__ import annotations

import os
import re
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(__file__))
import vecmath_harness as H  # noqa: E402

vecmath = H.vecmath

REQUIRED = {"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan", "arcsin",
            "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh",
            "cbrt", "power", "hypot", "logaddexp"}
NAMES = sorted(vecmath.FUNCTIONS)
DTYPES = ["float64", "float32"]
CASES = [(n, d) for n in NAMES for d in DTYPES]
MAX_ULP = 4


def _ref(name, *args):
    with np.errstate(all="ignore"):
        return getattr(np, name)(*args)


def _run(name, dt, *args):
    return H.compiled(name, dt)(*args)


def _allowed(name, args, expected):
    """Allowed ulp distance per element: 4 ulp, except where numpy's own formula cancels
    (logaddexp: max(x, y) + log1p(exp(-|x-y|)) near zero), where 4 ulp of the terms are allowed."""
    tol = np.full(expected.shape, float(MAX_ULP))
    if name == "logaddexp":
        dt = expected.dtype
        with np.errstate(all="ignore"):
            m = np.maximum(np.abs(args[0]), np.abs(args[1])).astype(dt)
            scale = np.maximum(m, dt.type(1.0))
            ratio = np.spacing(scale) / np.spacing(np.abs(expected))
            tol = np.where(np.isfinite(ratio) & (ratio > 1), MAX_ULP * ratio.astype(np.float64), tol)
    return tol


def _check(name, dt, args, got=None):
    args = [np.asarray(a, dtype=dt) for a in args]
    if got is None:
        got = _run(name, dt, *args)
    exp = _ref(name, *args)
    d = H.ulp_distance(got, exp)
    bad = d > _allowed(name, args, exp)
    if bad.any():
        i = int(np.argmax(np.where(bad, d, -1)))
        raise AssertionError(f"{name}[{dt}]{tuple(a[i] for a in args)}: got {got[i]!r}, numpy {exp[i]!r}, "
                             f"{d[i]} ulp ({int(bad.sum())} bad of {bad.size})")
    # exact agreement where numpy's result is special (inf, nan, zero with sign) or equals the input
    # (a zero where ours is the nearest subnormal is allowed: numpy's float32 exp2 flushes early)
    special = np.isinf(exp) | np.isinf(got) | ((exp == 0) & (got == 0))
    if len(args) == 1:
        special |= (exp == args[0]) & (np.abs(args[0]) < np.finfo(dt).tiny * 2 ** 30)
    ib = got.view(f"u{got.itemsize}")
    eb = exp.view(f"u{exp.itemsize}")
    mismatch = special & (ib != eb) & ~(np.isnan(got) & np.isnan(exp))
    if mismatch.any():
        i = int(np.argmax(mismatch))
        raise AssertionError(f"{name}[{dt}]{tuple(a[i] for a in args)}: got {got[i]!r}, "
                             f"numpy {exp[i]!r} (special value must match exactly)")
    return d


# ---------------------------------------------------------------------------------------------------------
# interface
# ---------------------------------------------------------------------------------------------------------

def test_interface():
    assert REQUIRED <= vecmath.FUNCTIONS
    assert vecmath.symbol("exp", np.float64) == "tj_exp_f64"
    assert vecmath.symbol("exp", "float32") == "tj_exp_f32"
    assert vecmath.symbol("power", np.dtype("float64")) == "tj_power_f64"
    text = vecmath.module_ir([("exp", "float64"), ("arctan2", np.float32), ("exp", np.float64)])
    assert text.count("define linkonce_odr double @tj_exp_f64(double") == 1
    assert "define linkonce_odr float @tj_arctan2_f32(float %x, float %y)" in text
    assert "alwaysinline" in text
    assert "br " not in text                     # branch-free
    with pytest.raises(KeyError):
        vecmath.symbol("gamma", "float64")


def test_module_parses_all():
    import llvmlite.binding as llvm
    text = vecmath.module_ir([(n, d) for n, d in CASES])
    mod = llvm.parse_assembly(text)
    mod.verify()
    defined = {f.name for f in mod.functions if not f.is_declaration}
    assert {vecmath.symbol(n, d) for n, d in CASES} <= defined
    for f in mod.functions:
        if f.is_declaration:
            assert f.name.startswith("llvm."), f.name       # no libm


# ---------------------------------------------------------------------------------------------------------
# (d) vectorized, no libm calls
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,dt", CASES)
def test_vectorized(name, dt):
    ir = H.compiled(name, dt).ir
    if dt == "float64":
        assert re.search(r"<(4|8|16) x double>", ir), "loop not vectorized"
    else:
        assert re.search(r"<(4|8|16|32) x (float|double)>", ir), "loop not vectorized"
    calls = set(re.findall(r"call [^@]*@([\w.]+)", ir))
    assert all(c.startswith("llvm.") for c in calls), calls


# ---------------------------------------------------------------------------------------------------------
# (b) special values
# ---------------------------------------------------------------------------------------------------------

def _specials(dt):
    fi = np.finfo(dt)
    v = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0, 10.0, 0.1,
         float(fi.tiny), -float(fi.tiny), float(fi.smallest_subnormal), -float(fi.smallest_subnormal),
         float(fi.tiny) / 3, -float(fi.tiny) / 7, float(fi.max), -float(fi.max), float(fi.eps),
         float(fi.epsneg), 1e-300, -1e-300, 1e300, -1e300, 1e-30, 1e30,
         709.782712893384, 709.7827128933841, 710.0, 710.4758600739439, 710.476, 711.0, -708.4, -709.1,
         -745.1332191019411, -745.1332191019412, -746.0, 88.72283, 88.72284, 89.5, 89.4159, -87.33655,
         -103.97208, -103.97209, -104.0, 1023.99, 1024.0, -1022.0, -1074.0, -1075.0, -1076.0, 127.99, 128.0,
         -126.0, -149.0, -150.0, -151.0, 2.0 ** -54, -2.0 ** -54, 2.0 ** -60, 2.0 ** -30, 1.0 - 2.0 ** -53,
         1.0 + 2.0 ** -52, -1.0 + 2.0 ** -53, np.pi, -np.pi, np.pi / 2, -np.pi / 2, np.pi / 4, 3 * np.pi / 2,
         1e22, 2.0 ** 1023, 2.0 ** 52 + 1, 0.999999, 19.0, 20.0, 22.0, 30.0, -30.0, -37.0, -40.0, 0.75,
         1.0000001, 0.9999999, 2.0 ** 28, 2.0 ** 29, -(2.0 ** 28)]
    with np.errstate(all="ignore"):
        return np.array(v, dtype=dt)


@pytest.mark.parametrize("name,dt", CASES)
def test_special_values(name, dt):
    s = _specials(dt)
    if name in vecmath.BINARY:
        xs, ys = (a.ravel() for a in np.meshgrid(s, s))
        _check(name, dt, (xs, ys))
    else:
        _check(name, dt, (s,))


def test_boundaries():
    def one(name, dt, *vals):
        return _run(name, dt, *[np.array([v], dtype=dt) for v in vals])[0]

    assert one("exp", "float64", 710.0) == np.inf
    assert one("exp", "float64", -746.0) == 0.0
    assert one("exp", "float64", 709.782712893384) == np.exp(709.782712893384)
    assert one("exp", "float32", 89.0) == np.inf
    assert one("log", "float64", 0.0) == -np.inf
    assert np.isnan(one("log", "float64", -1.0))
    assert one("log", "float64", 5e-324) == np.log(5e-324)
    assert one("expm1", "float64", 1e-300) == 1e-300
    assert one("expm1", "float64", -5e-324) == -5e-324
    assert one("log1p", "float64", -1.0) == -np.inf
    assert np.signbit(one("expm1", "float64", -0.0))
    assert np.signbit(one("sin", "float64", -0.0))
    assert one("sinh", "float64", 710.4758600739439) == np.sinh(710.4758600739439)
    assert one("sinh", "float64", 711.0) == np.inf
    assert one("power", "float64", -2.0, 3.0) == -8.0
    assert np.isnan(one("power", "float64", -2.0, 0.5))
    assert one("power", "float64", np.nan, 0.0) == 1.0
    assert one("power", "float64", 1.0, np.nan) == 1.0
    assert one("power", "float64", -0.0, -3.0) == -np.inf
    assert one("arctan2", "float64", -0.0, -0.0) == -np.pi
    assert one("hypot", "float64", np.inf, np.nan) == np.inf


# ---------------------------------------------------------------------------------------------------------
# (a) hypothesis over the whole range
# ---------------------------------------------------------------------------------------------------------

def _floats(dt):
    return st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True,
                     width=64 if dt == "float64" else 32)


_HSET = settings(max_examples=40, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("name,dt", CASES)
def test_hypothesis(name, dt):
    H.compiled(name, dt)     # compile outside the timed examples
    if name in vecmath.BINARY:
        @_HSET
        @given(st.lists(st.tuples(_floats(dt), _floats(dt)), min_size=1, max_size=32))
        def run(pairs):
            _check(name, dt, ([p[0] for p in pairs], [p[1] for p in pairs]))
    else:
        @_HSET
        @given(st.lists(_floats(dt), min_size=1, max_size=32))
        def run(xs):
            _check(name, dt, (xs,))
    run()


# ---------------------------------------------------------------------------------------------------------
# (c) dense random arrays: max ulp error vs numpy
# ---------------------------------------------------------------------------------------------------------

_DOMAIN = {   # magnitude range (log10) where the function is not trivially saturated
    "arcsin": (-20, 0), "arccos": (-20, 0), "arctanh": (-20, 0),
}


def _dense(dt, n, name, rng):
    it = np.int64 if dt == "float64" else np.int32
    info = np.iinfo(it)
    bits = rng.integers(info.min, info.max, n, dtype=it, endpoint=True).view(dt)
    lo, hi = _DOMAIN.get(name, (-30 if dt == "float32" else -300, 30 if dt == "float32" else 300))
    mag = 10.0 ** rng.uniform(lo, hi, n) * rng.choice([-1.0, 1.0], n)
    small = rng.uniform(-2, 2, n)
    mid = rng.uniform(-50, 50, n)
    if name in ("arccosh",):
        small = 1 + np.abs(small)
    with np.errstate(all="ignore"):
        return np.concatenate([bits, mag.astype(dt), small.astype(dt), mid.astype(dt)])


@pytest.mark.parametrize("name,dt", CASES)
def test_dense_random(name, dt):
    rng = np.random.default_rng(abs(hash((name, dt))) % 2 ** 32)
    n = 25_000
    x = _dense(dt, n, name, rng)
    if name in vecmath.BINARY:
        y = _dense(dt, n, name, rng)[rng.permutation(4 * n)]
        d = _check(name, dt, (x, y))
    else:
        d = _check(name, dt, (x,))
    fin = d[np.isfinite(d)]
    print(f"\n{name:10s} {dt}: max {fin.max():.0f} ulp, mean {fin.mean():.3f} ulp over {d.size} values")


def test_link_twice():
    """Two modules defining overlapping functions/tables link into one kernel module (linkonce_odr)."""
    import llvmlite.binding as llvm
    mod = llvm.parse_assembly(H.kernel_ir("log", "float64"))
    mod.link_in(llvm.parse_assembly(vecmath.module_ir([("log", "float64"), ("exp", "float32")])))
    mod.link_in(llvm.parse_assembly(vecmath.module_ir([("log", "float64"), ("power", "float64")])))
    mod.verify()
