"""Which BLAS kernels call: numpy's bundled ILP64 OpenBLAS when present, scipy's otherwise or on request."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tracejit.backends.cpu import blas

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = """
import numpy as np, tracejit as tj
from tracejit.backends.cpu import blas
rng = np.random.default_rng(0)
for dt in (np.float32, np.float64):
    a, b, v = rng.random((70, 50)).astype(dt), rng.random((50, 40)).astype(dt), rng.random(50).astype(dt)
    f = tj.jit(lambda a, b, v: (a @ b, a @ v, 2.0 * a.T @ a - a.T @ a))
    for got, want in zip(f(a, b, v), (a @ b, a @ v, a.T @ a)):
        np.testing.assert_allclose(got, want, rtol=1e-4 if dt == np.float32 else 1e-12)
print(blas.fingerprint())
"""


def _run(env_value):
    env = dict(os.environ, TRACEJIT_BLAS=env_value, TRACEJIT_CACHE_DIR=os.devnull, PYTHONPATH=REPO)
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_scipy_blas_on_request():
    assert _run("scipy") == "scipy.linalg.cython_blas/i32"


@pytest.mark.skipif(blas._numpy_openblas_path() is None, reason="this numpy does not bundle scipy-openblas64")
def test_numpy_bundled_openblas_by_default():
    """The library numpy's own matmul uses (one BLAS thread pool in the process), with 64-bit integers."""
    got = _run("numpy")
    assert got.startswith("numpy's OpenBLAS") and got.endswith("/i64")
    if not os.environ.get("TRACEJIT_BLAS"):
        assert blas.provider().int_bits == 64 and blas.fingerprint() == got


def test_unknown_choice_is_named(monkeypatch):
    monkeypatch.setenv("TRACEJIT_BLAS", "mkl")
    with pytest.raises(ValueError, match=r"TRACEJIT_BLAS='mkl'.*'numpy'.*'scipy'"):
        blas._choice()


def test_provider_is_part_of_the_cache_key():
    """Code compiled for one integer width must never be loaded for the other: the fingerprint names it."""
    assert blas.fingerprint().endswith(("/i32", "/i64"))
    assert blas.fingerprint() == f"{blas.provider().name}/i{blas.provider().int_bits}"


def test_lengths_beyond_a_32_bit_blas_raise():
    """With scipy's LP64 BLAS a length of 2**31 or more would wrap around: the driver refuses it before any work
    (the limit is lowered here so that small arrays reach it)."""
    code = """
import numpy as np, pytest, tracejit as tj
from tracejit.backends.cpu import executable
executable.LP64_MAX = 50
f = tj.jit(lambda a, b: a @ b)
np.testing.assert_allclose(f(np.ones((40, 30)), np.ones((30, 20))), np.full((40, 20), 30.0))
with pytest.raises(ValueError, match=r"above 50.*32-bit integers.*scipy.linalg.cython_blas.*TRACEJIT_BLAS=numpy"):
    f(np.ones((60, 30)), np.ones((30, 20)))
np.testing.assert_allclose(f(np.ones((40, 30)), np.ones((30, 20))), np.full((40, 20), 30.0))  # no state left
print("ok")
"""
    env = dict(os.environ, TRACEJIT_BLAS="scipy", TRACEJIT_CACHE_DIR=os.devnull, PYTHONPATH=REPO)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr
