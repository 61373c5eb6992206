"""Keyword cases of issue 14's functions (trace/numpy_more*.py) for test_edges' keyword audit: each call differs
in numpy from the call without that keyword, so a keyword tracejit ignored would fail it."""
import numpy as np

A = np.array([[1.5, -2.0, 3.0, 0.5], [0.25, 4.0, -1.0, 2.0], [3.0, 1.0, -0.5, 7.0]])
AI = np.array([[3, 1, 4, 1], [5, 9, 2, 6], [5, 3, 5, 8]])
N = np.array([[1.0, np.nan, np.inf], [-np.inf, 2.0, np.nan]])
V = np.array([0.5, -1.0, 2.0, 3.5, 1.0])
S = np.array([-1.0, 0.5, 0.5, 1.0, 2.0, 3.5])
B, C = np.array([[1.0, 2, 3], [4, 5, 6], [7, 8, 10]]), np.array([[0.5, -1, 2], [3, 1, 0], [2, 2, -4]])
XB = np.array([0, 3, 3, 1, 5])
W = np.array([0.5, 1.0, 2.0, -1.0, 4.0])
P0, P1 = np.array([0.0, 1.0]), np.array([2.0, 5.0])

MORE_KEYWORD_CASES = {
    "roll": {"axis": ((A, 1), {"axis": 1})},
    "diff": {"n": ((A,), {"n": 2}), "axis": ((A,), {"axis": 0}), "prepend": ((A,), {"prepend": 0.0}),
             "append": ((A,), {"append": 1.0})},
    "flip": {"axis": ((A,), {"axis": 1})},
    "rot90": {"k": ((A,), {"k": 2}), "axes": ((A,), {"axes": (1, 0)})},
    "cumsum": {"axis": ((A,), {"axis": 0}), "dtype": ((AI,), {"dtype": np.float32})},
    "cumprod": {"axis": ((A,), {"axis": 1}), "dtype": ((AI,), {"dtype": np.float64})},
    "repeat": {"axis": ((A, 2), {"axis": 1})},
    "pad": {"mode": ((A, 1), {"mode": "edge"})},
    "take": {"axis": ((A, np.array([0, 2])), {"axis": 1}), "mode": ((A, np.array([5, -13])), {"mode": "wrap"})},
    "take_along_axis": {"axis": ((A, np.array([[2, 0, 1, 2]])), {"axis": 0})},
    "array_split": {"axis": ((A, 2), {"axis": 1})},
    "split": {"axis": ((A, 2), {"axis": 1})},
    "meshgrid": {"indexing": ((V, S), {"indexing": "ij"})},
    "indices": {"dtype": (((2, 3),), {"dtype": np.float32})},
    "triu": {"k": ((A,), {"k": 1})},
    "tril": {"k": ((A,), {"k": -1})},
    "diagonal": {"offset": ((A,), {"offset": 1})},
    "diag": {"k": ((A,), {"k": -1})},
    "trace": {"offset": ((A,), {"offset": 1}), "dtype": ((AI,), {"dtype": np.float32})},
    "cross": {"axisa": ((B, C), {"axisa": 0}), "axisb": ((B, C), {"axisb": 0}), "axisc": ((B, C), {"axisc": 0}),
              "axis": ((B, C), {"axis": 0})},
    "round": {"decimals": ((A * 1.234,), {"decimals": 1})},
    "around": {"decimals": ((A * 1.234,), {"decimals": -1})},
    "isclose": {"rtol": ((A, A * 1.05), {"rtol": 0.1}), "atol": ((A, A + 0.05), {"atol": 0.1}),
                "equal_nan": ((N, N), {"equal_nan": True})},
    "allclose": {"rtol": ((A, A * 1.05), {"rtol": 0.1}), "atol": ((A, A + 0.05), {"atol": 0.1}),
                 "equal_nan": ((V * np.nan, V * np.nan), {"equal_nan": True})},
    "nan_to_num": {"nan": ((N,), {"nan": -1.0}), "posinf": ((N,), {"posinf": 9.0}),
                   "neginf": ((N,), {"neginf": -9.0})},
    "nansum": {"axis": ((N,), {"axis": 0}), "dtype": ((N,), {"dtype": np.float32}),
               "keepdims": ((N,), {"keepdims": True}), "initial": ((N,), {"initial": 2.0})},
    "nanprod": {"axis": ((A,), {"axis": 1}), "dtype": ((A,), {"dtype": np.float32}),
                "keepdims": ((A,), {"keepdims": True}), "initial": ((A,), {"initial": 2.0})},
    "nanmean": {"axis": ((A,), {"axis": 0}), "dtype": ((A,), {"dtype": np.float32}),
                "keepdims": ((A,), {"keepdims": True})},
    "nanmax": {"axis": ((A,), {"axis": 0}), "keepdims": ((A,), {"keepdims": True}),
               "initial": ((A,), {"initial": 9.0})},
    "nanmin": {"axis": ((A,), {"axis": 1}), "keepdims": ((A,), {"keepdims": True}),
               "initial": ((A,), {"initial": -9.0})},
    "count_nonzero": {"axis": ((AI - 5,), {"axis": 0}), "keepdims": ((AI - 5,), {"keepdims": True})},
    "average": {"axis": ((A,), {"axis": 1}), "weights": ((A,), {"weights": A * A}),
                "returned": ((A,), {"returned": True}), "keepdims": ((A,), {"keepdims": True})},
    "searchsorted": {"side": ((S, V), {"side": "right"}),
                     "sorter": ((S[::-1], V), {"sorter": np.arange(5, -1, -1)})},
    "bincount": {"weights": ((XB,), {"minlength": 7, "weights": W}), "minlength": ((XB,), {"minlength": 9})},
    "lexsort": {"axis": ((np.stack([AI % 2, AI % 3]),), {"axis": 0})},  # two (3, 4) keys
    "interp": {"left": ((V, S[1:], A[0, :1].repeat(5)), {"left": -5.0}),
               "right": ((V, S[:5], A[0, :1].repeat(5)), {"right": 5.0})},
    "convolve": {"mode": ((V, S[:3]), {"mode": "same"})},
    "correlate": {"mode": ((V, S[:3]), {"mode": "full"})},
    "linspace": {"num": ((P0, P1), {"num": 5}), "endpoint": ((P0, P1), {"endpoint": False}),
                 "dtype": ((P0, P1), {"dtype": np.int32}),
                 "axis": ((P0, P1), {"num": 3, "axis": 1})},
    "logspace": {"num": ((P0, P1), {"num": 5}), "endpoint": ((P0, P1), {"endpoint": False}),
                 "base": ((P0, P1), {"base": 2.0}), "dtype": ((P0, P1), {"dtype": np.int32}),
                 "axis": ((P0, P1), {"num": 3, "axis": 1})},
}
# the library primitives' functions (tests/test_library_prims.py, tests/test_data_dependent.py)
_Q = np.array([[1.5, -2.0, 3.0], [0.25, 4.0, -1.0]])
_TIES = np.array([1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 0, 1] * 3)
_NANS = np.array([1.0, np.nan, 2.0, np.nan])
MORE_KEYWORD_CASES.update({
    "sort": {"axis": ((_Q,), {"axis": 0})},
    "argsort": {"axis": ((_Q,), {"axis": 0}), "kind": ((_TIES,), {"kind": "stable"}),
                "stable": ((_TIES,), {"stable": True})},
    "quantile": {"axis": ((_Q, 0.3), {"axis": 1}), "method": ((_Q, 0.3), {"method": "lower"}),
                 "keepdims": ((_Q, 0.3), {"keepdims": True})},
    "percentile": {"axis": ((_Q, 30), {"axis": 0}), "method": ((_Q, 30), {"method": "hazen"}),
                   "keepdims": ((_Q, 30), {"keepdims": True})},
    "median": {"axis": ((_Q,), {"axis": 1}), "keepdims": ((_Q,), {"keepdims": True})},
    "compress": {"axis": ((np.array([True, False]), _Q), {"axis": 0})},
    "unique": {"return_index": ((_TIES,), {"return_index": True}), "return_counts": ((_TIES,), {"return_counts": True}),
               "equal_nan": ((_NANS,), {"equal_nan": False}),
               "axis": ((np.array([[1, 2], [0, 5], [1, 2]]),), {"axis": 0})},
    "partition": {"axis": ((_Q, 1), {"axis": 0})},
    "argpartition": {"axis": ((_Q, 1), {"axis": 0})},
})
# keywords tested in test_numpy_more instead: refused with a clear error (period), tracejit's own (inplace), or
# giving tuples of unequal shapes, which the keyword harness cannot compare
MORE_REFUSED = {"interp": {"period"}, "put_along_axis": {"inplace"}, "histogram": {"bins", "range", "density",
                                                                                 "weights"},
                "meshgrid": {"sparse"}, "indices": {"sparse"}, "linspace": {"retstep"},
                # a sort's values do not depend on its kind; overwrite_input and sorted=False only allow numpy
                # to save work; weights and unique(axis=) are refused; interpolation= was removed from numpy;
                # unique's inverse has another length than its values (tests/test_data_dependent.py)
                "sort": {"kind", "stable"}, "median": {"overwrite_input"},
                "quantile": {"overwrite_input", "weights", "interpolation"},
                "percentile": {"overwrite_input", "weights", "interpolation"},
                "unique": {"return_inverse", "sorted"},
                # numpy has one partition kind (introselect): a keyword with one valid value changes nothing
                "partition": {"kind"}, "argpartition": {"kind"}}
