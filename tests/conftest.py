"""Shared test setup: hypothesis profiles and numpy comparison helpers.

The ``ci`` profile (the default) keeps the example count bounded and has no deadline, because the first call of a
jitted function traces and compiles, which is slow next to hypothesis' per-example deadline. Select another one
with ``HYPOTHESIS_PROFILE=dev`` (more examples) or ``=quick``.
"""
from __future__ import annotations

import faulthandler
import os
import sys
import tempfile

import numpy as np
from hypothesis import HealthCheck, settings

# Every buffer the compiled programs allocate starts as 0xFF bytes, so reading memory no kernel wrote is a wrong
# result in some test rather than a lucky zero; and the session compiles into its own disk cache.
os.environ.setdefault("TRACEJIT_POISON_BUFFERS", "1")
os.environ.setdefault("TRACEJIT_CACHE_DIR", tempfile.mkdtemp(prefix="tracejit-test-cache-"))

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("quick", max_examples=10, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# tolerances per result dtype: float32 kernels may use other (vectorized) approximations than numpy's libm
TOLERANCES = {np.dtype(np.float32): dict(rtol=2e-5, atol=1e-6), np.dtype(np.float64): dict(rtol=1e-12, atol=1e-14)}


def assert_same(actual, expected, rtol=None, atol=None, check_dtype=True, err_msg=""):
    """numpy-equal results: same shape and dtype, exact for ints/bools, dtype-aware allclose for floats
    (nan positions must match)."""
    expected = np.asarray(expected)
    assert isinstance(actual, np.ndarray), f"expected a numpy array, got {type(actual).__name__} {err_msg}"
    assert actual.shape == expected.shape, f"shape {actual.shape} != numpy's {expected.shape} {err_msg}"
    if check_dtype:
        assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != numpy's {expected.dtype} {err_msg}"
    if expected.dtype.kind in "biu" and actual.dtype.kind in "biu":
        np.testing.assert_array_equal(actual, expected, err_msg=err_msg)
        return
    tol = dict(TOLERANCES.get(np.dtype(actual.dtype), TOLERANCES[np.dtype(np.float64)]))
    if rtol is not None:
        tol["rtol"] = rtol
    if atol is not None:
        tol["atol"] = atol
    np.testing.assert_allclose(actual, expected, equal_nan=True, err_msg=err_msg, **tol)


def pytest_configure(config):
    # A crash prints the crashing thread's Python stack first (pytest's own handler, switched off in
    # pyproject.toml, lists every thread, newest first, and CI's log keeps only the head of the list: the idle
    # compiler threads). Written where pytest's handler writes: a copy of stderr from before output capture.
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError):
        fd = sys.__stderr__.fileno()
    faulthandler.enable(file=os.dup(fd), all_threads=False)
    config.addinivalue_line("markers", "slow: a test that takes more than a few seconds")


_TRACE_FILE = os.environ.get("TRACEJIT_TEST_TRACE_FILE")


def pytest_runtest_logstart(nodeid, location):
    """With TRACEJIT_TEST_TRACE_FILE set (CI does), the file names the test running now: after a crash, which
    kills the process before pytest reports anything, CI prints it (.ci/diagnose)."""
    if _TRACE_FILE:
        try:
            with open(_TRACE_FILE, "w") as f:
                f.write(nodeid)
        except OSError:
            pass
