"""Slices whose bounds are computed from data (``x[:np.argmax(x)]``): a result of run-time length, as numpy's."""
import numpy as np

import tracejit as tj


def test_slice_bounded_by_a_computed_index_under_jit():
    f = tj.jit(lambda x: x[:np.argmax(x)].sum() + x[np.argmin(x):].size)
    for x in [np.array([1.0, 5.0, 2.0, 0.5]), np.array([9.0, 1.0]), np.arange(6.0)]:
        assert f(x) == x[:np.argmax(x)].sum() + x[np.argmin(x):].size


def test_descending_slice_from_a_computed_index():
    f = tj.jit(lambda x: x[np.argmax(x)::-2] * 2)
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])
    np.testing.assert_array_equal(f(x), x[np.argmax(x)::-2] * 2)
