"""numpy-named functions that work on tracers and on plain arrays (``import tracejit.numpy as tnp``)."""
from __future__ import annotations

import builtins as _builtins

import numpy as _np

import types as _types

from .trace.numpy_api import IMPLS as _IMPLS
from .trace.numpy_more_math import FFT_NAMES as _FFT, LINALG_NAMES as _LINALG
from .trace.tracer import Tracer as _Tracer, call_numpy as _call_numpy


def _has_tracer(x):
    if isinstance(x, _Tracer):
        return True
    if isinstance(x, (list, tuple)):
        return _builtins.any(_has_tracer(e) for e in x)
    return False


def _make(name, np_fun=None):
    np_fun = np_fun if np_fun is not None else getattr(_np, name, None)

    def f(*args, **kwargs):
        if _has_tracer(args) or _has_tracer(tuple(kwargs.values())):
            return _call_numpy(name, args, kwargs)
        if np_fun is not None:
            return np_fun(*args, **kwargs)
        from .ir.interpret import evaluate  # nn-style names without a numpy twin: trace and evaluate
        from .api import make_ir
        g = make_ir(lambda *a: _call_numpy(name, a, kwargs), optimize=False)(*args)
        out = evaluate(g, [_np.asarray(a) for a in args])
        return out[0]
    f.__name__ = name
    f.__qualname__ = name
    f.__doc__ = f"tracejit version of numpy.{name}: works on traced values and on plain arrays."
    return f


for _name in _IMPLS:
    if _name not in ("sigmoid", "softplus", "relu", "softmax", "log_softmax", "logsumexp", "expit", "stop_gradient",
                     *_LINALG, *_FFT):
        globals()[_name] = _make(_name)
linalg = _types.SimpleNamespace(**{_n: _make(_n, getattr(_np.linalg, _n)) for _n in _LINALG})
fft = _types.SimpleNamespace(**{_n: _make(_n, getattr(_np.fft, _n)) for _n in _FFT})

def stop_gradient(x):
    """``x`` (arrays or a pytree of them), through which no gradient flows, as JAX's ``lax.stop_gradient``: for
    values a function uses but must not be differentiated through (targets, shifts, running statistics)."""
    from .trace.trace import tree_flatten, tree_unflatten
    leaves, tree = tree_flatten(x)
    return tree_unflatten(tree, [_call_numpy("stop_gradient", (v,), {}) if _has_tracer((v,)) else _np.asarray(v)
                                 for v in leaves])


newaxis = None
pi, e, inf, nan = _np.pi, _np.e, _np.inf, _np.nan
float32, float64, int32, int64 = _np.float32, _np.float64, _np.int32, _np.int64
bool_ = _np.bool_
