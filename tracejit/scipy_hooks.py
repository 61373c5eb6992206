"""The one place where tracejit changes scipy objects, so that scipy is called on traced values as users call it.

- scipy.special's ufuncs (gammaln, ndtr, erfinv, gammainc, betainc, ...) need nothing here: numpy hands a tracer
  to ``Tracer.__array_ufunc__`` under the ufunc's name; ``scipy_special.register()`` and
  ``scipy_incomplete.register()`` add those names to tracejit's numpy table.
- scipy.special's Python functions (polygamma, logsumexp, softmax, log_softmax) call ``np.asarray`` on their input,
  which a tracer cannot satisfy. Each such function object gets a trampoline body (its ``__code__``; signature and
  docstring kept) that calls tracejit's version when an argument is a tracer and the original body otherwise.
  Changing the function object rather than the module attribute also covers ``from scipy.special import
  logsumexp`` run before ``import tracejit``.
- scipy.stats: the public methods of ``rv_continuous`` / ``rv_discrete`` (``pdf``, ``logpdf``, ``cdf``, ``logcdf``,
  ``pmf``, ``logpmf``, ``sf``, ``logsf`` and, to refuse them clearly, ``ppf``, ``isf``) and of
  ``multivariate_normal`` / ``dirichlet`` (and their frozen forms) are wrapped the same way; frozen univariate
  distributions call the wrapped methods.
Non-traced calls cost one scan of the arguments for a tracer and run scipy's code untouched.

Importing tracejit does not import scipy (0.5-4 s): modules already imported are patched by ``install()``, later
ones by a meta-path hook right after they load.
"""
from __future__ import annotations

import functools
import importlib.abc
import inspect
import sys
import types

from .trace.tracer import Tracer

_DISPATCH = "__tracejit_dispatch__"  # the one name added to a patched scipy module's globals
_DONE: set = set()


def has_tracer(args, kwargs) -> bool:
    for v in (*args, *kwargs.values()):
        if isinstance(v, Tracer) or (isinstance(v, (list, tuple)) and any(isinstance(e, Tracer) for e in v)):
            return True
    return False


def _divert_function(fn, impl):
    """Give ``fn`` a body that runs ``impl`` when an argument is traced, its original body otherwise."""
    if getattr(fn, "__tracejit_original__", None) is not None:
        return
    orig = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    orig.__kwdefaults__ = fn.__kwdefaults__
    sig = inspect.signature(fn)

    def dispatch(args, kwargs):
        return (impl if has_tracer(args, kwargs) else orig)(*args, **kwargs)
    fn.__globals__.setdefault(_DISPATCH, {})[fn.__name__] = dispatch
    ns: dict = {}
    exec(f"def {fn.__name__}(*args, **kwargs):\n    return {_DISPATCH}[{fn.__name__!r}](args, kwargs)\n", {}, ns)
    fn.__code__ = ns[fn.__name__].__code__
    fn.__defaults__, fn.__kwdefaults__ = None, None
    fn.__signature__ = sig
    fn.__tracejit_original__ = orig


def _divert_method(cls, name, route):
    """Wrap ``cls.name``: ``route(self, name, args, kwargs)`` when an argument is traced."""
    orig = cls.__dict__.get(name)
    if orig is None or getattr(orig, "__tracejit_original__", None) is not None:
        return

    @functools.wraps(orig)
    def method(self, *args, **kwargs):
        if has_tracer(args, kwargs):
            return route(self, name, args, kwargs)
        return orig(self, *args, **kwargs)
    method.__tracejit_original__ = orig
    setattr(cls, name, method)


def _install_special():
    import scipy.special as sp
    from . import scipy_special as ts

    def polygamma(n, x):
        return ts.polygamma(n, x)
    for fn, impl in ((sp.polygamma, polygamma), (sp.logsumexp, ts.logsumexp), (sp.softmax, ts.softmax),
                     (sp.log_softmax, ts.log_softmax)):
        _divert_function(fn, impl)


def _install_stats():
    from scipy.stats import _distn_infrastructure as di, _multivariate as mv
    from . import scipy_stats as tst

    def univariate(self, name, args, kwargs):
        return tst.call(self.name, name, args, kwargs)
    for cls, names in ((di.rv_continuous, ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", "ppf", "isf")),
                       (di.rv_discrete, ("pmf", "logpmf", "cdf", "logcdf", "sf", "logsf", "ppf", "isf"))):
        for n in names:
            _divert_method(cls, n, univariate)

    def multivariate(dist):
        def route(self, name, args, kwargs):
            f = tst.MULTIVARIATE.get((dist, name))
            if f is None:
                raise tst._unsupported(dist, name)
            return f(*args, **kwargs)
        return route

    def frozen_mvn(self, name, args, kwargs):
        return multivariate("multivariate_normal")(self, name, args, {**kwargs, "mean": self.mean, "cov": self.cov})
    for cls, route in ((mv.multivariate_normal_gen, multivariate("multivariate_normal")),
                       (mv.dirichlet_gen, multivariate("dirichlet")), (mv.multivariate_normal_frozen, frozen_mvn)):
        for n in ("pdf", "logpdf", "cdf", "logcdf", "rvs", "entropy"):
            _divert_method(cls, n, route)
    # freezing with a traced mean / cov: scipy's constructor would factor them with numpy
    _divert_method(mv.multivariate_normal_gen, "__call__", lambda self, name, args, kwargs:
                   tst.FrozenMultivariateNormal(*args, **kwargs))


_INSTALLERS = {"scipy.special": _install_special, "scipy.stats": _install_stats}


def _run(name):
    if name not in _DONE:
        _DONE.add(name)
        _INSTALLERS[name]()


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs an installer right after scipy.special / scipy.stats finish loading (then steps aside)."""

    def find_spec(self, name, path, target=None):
        if name not in _INSTALLERS or name in _DONE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_then_install(module):
            exec_module(module)
            _run(name)
            if _DONE >= set(_INSTALLERS) and self in sys.meta_path:
                sys.meta_path.remove(self)
        loader.exec_module = exec_then_install
        return spec


def install():
    """Register the scipy.special ufunc names and patch the scipy modules loaded now or later."""
    from . import scipy_incomplete, scipy_special
    scipy_special.register()
    scipy_incomplete.register()
    for name in _INSTALLERS:
        if name in sys.modules:
            _run(name)
    if not _DONE >= set(_INSTALLERS) and not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())
