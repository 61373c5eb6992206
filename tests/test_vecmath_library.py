"""The precompiled vector math library (backends/cpu/vecmath_library.py): kernels call its vector variants
instead of inlining the polynomials, with results bit for bit those of the inlined code (vecmath_harness)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import vecmath_harness as H  # noqa: E402

from tracejit.backends.cpu import module as M  # noqa: E402
from tracejit.backends.cpu import vecmath_library as L  # noqa: E402

FAST = [("sin", np.float64), ("exp", np.float32), ("log", np.float64), ("power", np.float64),
        ("arctan2", np.float32), ("tanh", np.float64)]
ALL = [(n, d) for n in sorted(H.vecmath.FUNCTIONS) for d in (np.float64, np.float32)]


def _inputs(name, dtype, n=4099):
    """Random values over many binades, with the specials (odd length: the scalar remainder runs too)."""
    rng = np.random.default_rng(7)
    mags = np.exp2(rng.uniform(-30, 12, n)) * rng.choice([-1, 1], n)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, 1e-310, 710.0, -745.0, np.pi, 1e300]
    with np.errstate(over="ignore"):  # 1e300 and the large magnitudes are inf in float32
        x = np.concatenate([mags, special, rng.uniform(-4, 4, n)]).astype(dtype)
    if name in H.vecmath.BINARY:
        return x, np.roll(x, 17)
    return (x,)


def _bitwise_equal(name, dtype):
    args = _inputs(name, dtype)
    got, want = H.library_compiled(name, dtype)(*args), H.compiled(name, dtype)(*args)
    same = (got.view(np.uint8) == want.view(np.uint8)).reshape(got.size, -1).all(axis=1)
    same |= np.isnan(got) & np.isnan(want)
    bad = np.flatnonzero(~same)
    assert bad.size == 0, f"{name} {np.dtype(dtype)}: inputs {[a[bad[:3]] for a in args]} give " \
                          f"{got[bad[:3]]}, inlined {want[bad[:3]]}"


@pytest.mark.parametrize("name,dtype", FAST)
def test_library_matches_inlined_code_bit_for_bit(name, dtype):
    _bitwise_equal(name, dtype)


@pytest.mark.slow
@pytest.mark.parametrize("name,dtype", ALL)
def test_every_library_function_matches_inlined_code(name, dtype):
    _bitwise_equal(name, dtype)


def test_vectorized_loop_calls_the_vector_variant():
    kernel = H.library_compiled("sin", np.float64)
    assert any(f"tj_sin_f64_v{w}" in kernel.asm for w in L.vector_widths("f64"))  # the machine code's callee
    ir_text = kernel.ir
    widths = L.vector_widths("f64")
    calls = [line for line in ir_text.splitlines() if " call " in line]
    assert any(f"@tj_sin_f64_v{w}(" in line for line in calls for w in widths), calls
    assert not any(line.startswith("define") and "tj_sin" in line for line in ir_text.splitlines()), \
        "the polynomial was linked into the kernel"


def test_undefined_symbols_of_an_object():
    obj = M.target_machine().emit_object(_parse(H.kernel_ir("cosh", np.float64)))
    assert "tj_cosh_f64" in L.undefined_symbols(obj)
    assert "kernel" not in L.undefined_symbols(obj)


def _parse(text):
    import llvmlite.binding as llvm
    mod = llvm.parse_assembly(text)
    mod.triple = M.target_machine().triple
    return mod


def test_cached_kernel_loads_its_library_functions_in_a_fresh_process(tmp_path):
    """A kernel from the disk cache calls library functions this process has not built: loading it must make
    them resolvable first (an unresolved symbol aborts inside LLVM)."""
    code = ("import numpy as np, tracejit as tj\n"
            "f = tj.jit(lambda x: np.sin(x) * 2.0 + np.arcsinh(x)); x = np.linspace(-3, 3, 1001)\n"
            "f.compile(x); np.testing.assert_allclose(f(x), np.sin(x) * 2.0 + np.arcsinh(x), rtol=1e-14)\n"
            "from tracejit.backends.cpu import vecmath_library as L\n"
            "print(sorted(L._loaded))\n")
    env = dict(os.environ, TRACEJIT_CACHE_DIR=str(tmp_path))
    env.pop("TRACEJIT_VECMATH_INLINE", None)
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for p in runs:
        assert p.returncode == 0, p.stderr[-2000:]
        assert "('arcsinh', 'f64')" in p.stdout and "('sin', 'f64')" in p.stdout, p.stdout


def test_policy_calls_long_functions_and_inlines_short_ones(monkeypatch):
    decl = 'declare double @"tj_{}_f64"(double %".1")\ndeclare float @"tj_exp_f32"(float %".1")\n'
    pairs = {("sin", np.dtype(np.float64)), ("exp", np.dtype(np.float32))}
    text, extra = M.math_link(decl.format("sin"), pairs, 1)
    assert text.count("vector-function-abi-variant") == 2 and not any("define" in t for t in extra)
    # float64 exp is short: a call would cost more than the polynomial's own work, so it stays inlined
    pairs = {("exp", np.dtype(np.float64)), ("exp", np.dtype(np.float32))}
    text, extra = M.math_link(decl.format("exp"), pairs, 1)
    assert text.count("vector-function-abi-variant") == 1 and "define linkonce_odr double @tj_exp_f64" in extra[-1]
    assert not L.called("exp", np.float64) and L.called("sin", np.float64)
    # sin and cos together share their range reduction inlined
    both = {("sin", np.dtype(np.float64)), ("cos", np.dtype(np.float64)), ("sin", np.dtype(np.float32))}
    assert L.called_in(both) == {("sin", np.dtype(np.float32))}
    # the quick tier links definitions; TRACEJIT_VECMATH_INLINE=1 makes the optimized tier do so too
    assert "vector-function-abi-variant" not in M.math_link(decl.format("sin"), pairs, 0)[0]
    monkeypatch.setattr(L, "INLINE", True)
    text, extra = M.math_link(decl.format("sin"), {("sin", np.dtype(np.float64))}, 1)
    assert "vector-function-abi-variant" not in text and "define" in extra[0]
