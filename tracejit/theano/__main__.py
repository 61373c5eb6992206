"""``python -m tracejit.theano script.py [args...]``: run a Theano script on tracejit, unchanged.

``import theano``, ``theano.tensor``, ``theano.tensor.nnet``, ``theano.printing`` and ``theano.ifelse`` are answered by this
package for the script's whole run; what tracejit lacks fails at its first use with Python's own error.
"""
from __future__ import annotations

import sys


def alias_theano():
    """Make ``import theano`` (and its submodules that tracejit has) import tracejit.theano."""
    import tracejit.theano as package
    from . import conv, ifelse, nnet, printing, sandbox, shared_randomstreams, signal, tensor
    for name, module in {"theano": package, "theano.tensor": tensor, "theano.tensor.nnet": nnet,
                         "theano.printing": printing, "theano.ifelse": ifelse,
                         "theano.tensor.shared_randomstreams": shared_randomstreams,
                         "theano.sandbox": sandbox, "theano.sandbox.rng_mrg": sandbox.rng_mrg,
                         "theano.tensor.nnet.conv": conv, "theano.tensor.signal": signal,
                         "theano.tensor.signal.pool": signal.pool,
                         "theano.tensor.signal.downsample": signal.downsample,
                         "theano.tensor.extra_ops": tensor.extra_ops, "theano.compile": package.compile,
                         "theano.compile.io": package.compile.io, "theano.compile.ops": package.compile.ops,
                         "theano.gof": package.gof,
                         "theano.compile.sharedvalue": package.compile.sharedvalue,
                         "theano.gradient": package.gradient, "theano.scan_module": package.scan_module}.items():
        sys.modules[name] = module


def main(argv=None) -> int:
    from ..scripts import run_aliased
    return run_aliased(sys.argv[1:] if argv is None else argv, alias_theano, "python -m tracejit.theano", "Theano")


if __name__ == "__main__":
    sys.exit(main())
