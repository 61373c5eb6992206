"""Theano's extension API: ``Op`` subclasses with ``make_node`` / ``perform`` / ``grad`` (or ``itypes`` / ``otypes``),
``Apply``, and the ``as_op`` decorator, as the "Extending Theano" tutorial writes them.

An Op's ``perform`` is Python code on numpy arrays, so each output is a ``python_op`` library call: the compiled
program runs up to it, calls ``perform`` on the arrays, and goes on (as numpy's sort or LAPACK are called). The
output lengths are data-dependent (bound from the arrays ``perform`` stores), except the axes the output type
marks broadcastable. ``grad`` is Theano's symbolic rule, called with the inputs and output gradients as
variables when ``tensor.grad`` differentiates through the op.
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir import types as T
from ..trace.symbolic import Variable, VariableType, symbolic_apply


class Apply:
    """One application of an op: ``Apply(op, inputs, outputs)``; the outputs give the result types (``x.type()``)."""

    def __init__(self, op, inputs, outputs):
        self.op, self.inputs, self.outputs = op, list(inputs), list(outputs)

    @property
    def nin(self):
        return len(self.inputs)

    @property
    def nout(self):
        return len(self.outputs)


def _as_type(t, what):
    """A VariableType from what Theano accepts as a type: ``x.type``, ``T.dmatrix`` (a variable maker), or a
    variable."""
    if isinstance(t, VariableType):
        return t
    if isinstance(t, Variable):
        return t.type
    if callable(t):
        v = t()
        if isinstance(v, Variable):
            return v.type
    raise TypeError(f"{what} must be a tensor type (e.g. tensor.dmatrix or x.type), got {type(t).__name__}")


class Op:
    """Base class of user-defined ops. Subclasses define ``perform(node, inputs, output_storage)`` and either
    ``make_node(*inputs)`` returning an ``Apply`` or the class attributes ``itypes`` / ``otypes``; optionally
    ``grad(inputs, output_grads)``. Ops with equal ``__props__`` values are equal, as Theano's."""

    __props__ = ()
    itypes = None
    otypes = None
    default_output = None

    def _props(self):
        return tuple(getattr(self, p) for p in self.__props__)

    def __eq__(self, other):
        return type(self) is type(other) and self._props() == other._props()

    def __hash__(self):
        return hash((type(self), self._props()))

    def __str__(self):
        props = ", ".join(f"{p}={getattr(self, p)!r}" for p in self.__props__)
        return f"{type(self).__name__}{{{props}}}" if props else type(self).__name__

    def make_node(self, *inputs):
        if self.itypes is None or self.otypes is None:
            raise NotImplementedError(f"{type(self).__name__} must define make_node(), or itypes and otypes")
        from .tensor import as_tensor_variable
        if len(inputs) != len(self.itypes):
            raise TypeError(f"{self} takes {len(self.itypes)} input(s), got {len(inputs)}")
        xs = [as_tensor_variable(x) for x in inputs]
        for i, (x, t) in enumerate(zip(xs, self.itypes)):
            want = _as_type(t, f"{self}.itypes[{i}]")
            if x.type != want:
                raise TypeError(f"{self}: input {i} has type {x.type_name} ({x.type.broadcastable}), but itypes[{i}] "
                                f"is {want.dtype}{list(want.broadcastable)}")
        return Apply(self, xs, [_as_type(t, f"{self}.otypes[{j}]")() for j, t in enumerate(self.otypes)])

    def __call__(self, *inputs, **kwargs):
        node = self.make_node(*inputs, **kwargs)
        if not isinstance(node, Apply):
            raise TypeError(f"{type(self).__name__}.make_node must return theano.Apply(op, inputs, outputs), got "
                            f"{type(node).__name__}")
        outs = [_call(self, node, j) for j in range(node.nout)]
        if len(outs) == 1:
            return outs[0]
        return outs if self.default_output is None else outs[self.default_output]

    def perform(self, node, inputs, output_storage, params=None):
        raise NotImplementedError(f"{type(self).__name__} defines no perform()")

    def grad(self, inputs, output_grads):
        raise NotImplementedError(f"{type(self).__name__}.grad is not implemented: define grad(inputs, output_grads) "
                                  f"to differentiate through this op")


def _call(op, node, j):
    """Output ``j`` of ``node`` as a python_op library call on the node's inputs."""
    t = _as_type(node.outputs[j], f"output {j} of {op}")
    shape = tuple(1 if b else T.unbacked_dim() for b in t.broadcastable)
    dtype = np.dtype(getattr(t, "declared", t.dtype))
    inputs = [x for x in node.inputs]
    return symbolic_apply(lambda *vs: ops.bind("python_op", *[ops.as_value(v) for v in vs], op=OpCall(op, node),
                                               index=j, dtype=dtype, length=shape), *inputs)


class OpCall:
    """What the ``python_op`` primitive calls: the op and its node, run on arrays and differentiated through
    ``op.grad`` (the IR knows nothing of Theano)."""

    def __init__(self, op, node):
        self.op, self.node = op, node

    def __repr__(self):
        return str(self.op)

    def run(self, arrays, index, dtype, length):
        return run_perform(*arrays, op=self.op, node=self.node, index=index, dtype=dtype, shape=length)

    def vjp(self, e, g, need):
        return vjp(e, g, need)


def run_perform(*arrays, op, node, index, dtype, shape):
    """``op.perform`` on the arrays, output ``index`` checked against its declared type."""
    storage = [[None] for _ in node.outputs]
    op.perform(node, [np.asarray(a) for a in arrays], storage)
    out = storage[index][0]
    if out is None:
        raise ValueError(f"{op}.perform stored nothing in output_storage[{index}][0]")
    out = np.asarray(out)
    if out.ndim != len(shape):
        raise ValueError(f"{op}.perform returned a {out.ndim}-d array for output {index}, whose type has {len(shape)} "
                         f"dimension(s)")
    for ax, d in enumerate(shape):
        if isinstance(d, int) and out.shape[ax] != d:
            raise ValueError(f"{op}.perform returned shape {out.shape} for output {index}, whose axis {ax} is "
                             f"broadcastable (length 1)")
    return np.ascontiguousarray(out, dtype=dtype)


def vjp(e, g, need):
    """``op.grad`` with the inputs and this output's gradient as variables (the other outputs' as zeros)."""
    call, j = e.p["op"], e.p["index"]
    op, node = call.op, call.node
    xs = [Variable(v) for v in e.inputs]
    gs = [Variable(ops.as_value(g)) if k == j else None for k in range(len(node.outputs))]
    if any(x is None for x in gs):
        from .tensor import zeros_like
        gs = [x if x is not None else zeros_like(Variable(e.out)) for x in gs]
    grads = op.grad(xs, gs)
    if len(grads) != len(xs):
        raise ValueError(f"{op}.grad returned {len(grads)} gradient(s) for {len(xs)} input(s)")
    return [None if (gr is None or not n) else ops.as_value(gr) for gr, n in zip(grads, need)]


def as_op(itypes, otypes, infer_shape=None):
    """Theano's ``@as_op(itypes=[...], otypes=[...])``: a Python function on numpy arrays made an op."""
    def wrap(fn):
        def perform(self, node, inputs, output_storage, params=None):
            outs = fn(*inputs)
            if len(otypes) == 1:
                outs = [outs]
            for store, o in zip(output_storage, outs):
                store[0] = o
        cls = type(getattr(fn, "__name__", "FromFunctionOp"), (Op,), {"itypes": list(itypes), "otypes": list(otypes),
                                                                      "perform": perform,
                                                                      "__doc__": fn.__doc__})
        return cls()
    return wrap
