"""``python -m tracejit.autograd script.py [args...]``: run an autograd script on tracejit, unchanged.

``autograd`` is answered by tracejit.autograd, ``autograd.numpy`` by numpy itself and ``autograd.scipy.*`` by scipy
(tracejit's tracers reach both); what tracejit lacks fails at its first use with Python's own error.
"""
from __future__ import annotations

import sys
import types


def _namespace(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def check_grads(fun, modes=("fwd", "rev"), order=2, eps=1e-6, rtol=1e-5, atol=1e-6):
    """autograd.test_util.check_grads: ``check_grads(fun)(*args)`` compares the gradient of ``fun`` along a random
    direction with central differences (first order; ``order`` is accepted for autograd's signature)."""
    import numpy as np

    from .. import vjp

    def check(*args):
        rng = np.random.default_rng(0)
        args = [np.asarray(a, dtype=float) for a in args]
        dirs = [rng.standard_normal(a.shape) for a in args]
        out, pull = vjp(fun, *args)
        ct = rng.standard_normal(np.shape(out))
        grads = pull(ct)
        analytic = sum(float(np.sum(g * d)) for g, d in zip(grads, dirs))
        plus = fun(*[a + eps * d for a, d in zip(args, dirs)])
        minus = fun(*[a - eps * d for a, d in zip(args, dirs)])
        numeric = float(np.sum(ct * (np.asarray(plus) - np.asarray(minus)) / (2 * eps)))
        if not np.isclose(analytic, numeric, rtol=rtol, atol=atol):
            raise AssertionError(f"check_grads: reverse mode gives {analytic}, central differences {numeric}")
    return check


def alias_autograd():
    """Make ``import autograd`` (and the submodules tracejit answers) import tracejit.autograd, numpy and scipy."""
    import numpy
    import scipy.linalg
    import scipy.special
    import scipy.stats

    import tracejit.autograd as package
    from .misc import flatten as flatten_fn, optimizers
    scipy_misc = _namespace("autograd.scipy.misc", logsumexp=scipy.special.logsumexp)
    scipy_ns = _namespace("autograd.scipy", special=scipy.special, stats=scipy.stats, misc=scipy_misc,
                          linalg=scipy.linalg)
    extend = _namespace("autograd.extend", primitive=package.primitive, defvjp=package.defvjp)
    test_util = _namespace("autograd.test_util", check_grads=check_grads)
    flatten_module = _namespace("autograd.misc.flatten", flatten=flatten_fn)
    modules = {"autograd": package, "autograd.numpy": numpy, "autograd.numpy.random": numpy.random,
               "autograd.numpy.linalg": numpy.linalg, "autograd.numpy.fft": numpy.fft, "autograd.scipy": scipy_ns,
               "autograd.scipy.special": scipy.special, "autograd.scipy.stats": scipy.stats,
               "autograd.scipy.misc": scipy_misc, "autograd.scipy.linalg": scipy.linalg,
               "autograd.misc": package.misc, "autograd.misc.flatten": flatten_module,
               "autograd.misc.optimizers": optimizers, "autograd.extend": extend, "autograd.test_util": test_util}
    for dist in ("norm", "multivariate_normal", "t", "beta", "gamma", "poisson", "dirichlet", "bernoulli"):
        if hasattr(scipy.stats, dist):
            modules[f"autograd.scipy.stats.{dist}"] = getattr(scipy.stats, dist)
    package.extend, package.test_util, package.scipy = extend, test_util, scipy_ns
    package.numpy = numpy
    sys.modules.update(modules)


def main(argv=None) -> int:
    from ..scripts import run_aliased
    return run_aliased(sys.argv[1:] if argv is None else argv, alias_autograd, "python -m tracejit.autograd", "autograd")


if __name__ == "__main__":
    sys.exit(main())
