"""Theano's printers: ``pp`` (an expression as infix text) and ``debugprint`` (a graph, one equation a line)."""
from __future__ import annotations

import sys

import numpy as np

from ..ir import types as T
from ..ir.graph import Graph, Value
from ..trace.symbolic import type_name, value_of
from .shared import shared_of

_INFIX = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "floor_divide": "//", "remainder": "%",
          "power": "**", "matmul": "@", "less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">=",
          "equal": "==", "not_equal": "!=", "bitwise_and": "&", "bitwise_or": "|", "bitwise_xor": "^"}
_PREFIX_OPS = {"negative": "-", "invert": "~"}


def _leaf_text(v: Value) -> str:
    if v.is_const:
        c = v.const
        if c.ndim == 0:
            return repr(c.item())
        if c.size <= 10:
            return np.array2string(c, separator=", ")
        return f"<constant {c.dtype.name}{T.shape_str(c.shape)}>"
    if v.name:
        return v.name
    sv = shared_of(v)
    return f"<{'shared ' if sv is not None else ''}{type_name(v.dtype, v.ndim)}>"


def _eqn_text(e, args) -> str:
    p = e.p
    if e.prim in _INFIX:
        return f"({args[0]} {_INFIX[e.prim]} {args[1]})"
    if e.prim in _PREFIX_OPS:
        return f"{_PREFIX_OPS[e.prim]}{args[0]}"
    if e.prim == "convert":
        return f"{p['dtype'].name}({args[0]})"
    if "axes" in p and len(e.inputs) == 1:
        axes = p["axes"]
        if len(axes) == e.inputs[0].ndim:
            return f"{e.prim}({args[0]})"
        return f"{e.prim}({args[0]}, axis={axes[0] if len(axes) == 1 else axes})"
    if e.prim == "transpose" and tuple(p["perm"]) == tuple(reversed(range(len(p["perm"])))):
        return f"{args[0]}.T"
    from ..ir.printing import _param_str
    params = [_param_str(k, x) for k, x in e.params]
    return f"{e.prim}({', '.join(list(args) + params)})"


def pp(var) -> str:
    """Readable infix text of an expression: ``pp(x + y - x)`` -> ``((x + y) - x)``."""
    from .function import Function  # function.py prints with pp: imported at use
    if isinstance(var, Function):
        return "\n".join(pp(o) for o in var.outputs)
    if isinstance(var, (list, tuple)):
        return "[" + ", ".join(pp(x) for x in var) + "]"
    root = value_of(var, "pp's argument")
    memo: dict = {}
    stack = [root]
    while stack:  # iterative post-order: deep graphs do not hit the recursion limit
        v = stack[-1]
        if v.id in memo:
            stack.pop()
            continue
        if v.eqn is None:
            memo[v.id] = _leaf_text(v)
            stack.pop()
            continue
        todo = [x for x in v.eqn.inputs if x.id not in memo]
        if todo:
            stack.extend(reversed(todo))
            continue
        memo[v.id] = _eqn_text(v.eqn, [memo[x.id] for x in v.eqn.inputs])
        stack.pop()
    return memo[root.id]


def debugprint(obj, file=None):
    """Print the graph of a variable (or list of them) or of a compiled function: one equation a line, with
    dtypes and shapes. ``file='str'`` returns the text instead of printing it."""
    from ..ir.printing import graph_text, value_graph
    from .function import Function  # function.py prints with pp: imported at use
    if isinstance(obj, Function):
        text = graph_text(obj.graph)
        names = [t.name or f"<shared {t.type_name}>" for t in obj._update_targets]
        if names:
            outs = ", ".join(f"{n} <- output {obj._nout + k}" for k, n in enumerate(names))
            text += f"\n  updates: {outs}"
    elif isinstance(obj, Graph):
        text = graph_text(obj)
    else:
        objs = obj if isinstance(obj, (list, tuple)) else [obj]
        text = graph_text(value_graph([value_of(o, "debugprint's argument") for o in objs]))
    if file == "str":
        return text
    print(text, file=sys.stdout if file is None else file)
    return None




class Print:
    """Theano's ``printing.Print(message, attrs=('__str__',))``: ``Print('x')(x)`` is x, and each call of a
    compiled function that computes it prints ``x __str__ = <value>`` (one line per attribute, e.g. 'shape')."""

    def __init__(self, message="", attrs=("__str__",), global_fn=None):
        if global_fn is not None:
            raise NotImplementedError("Print(global_fn=...) is not supported by tracejit; print the attributes "
                                      "with attrs=(...)")
        self.message, self.attrs = str(message), tuple(attrs)

    def __call__(self, x):
        from ..ir import ops
        from ..trace.symbolic import symbolic_apply
        return symbolic_apply(lambda v: ops.bind("debug_print", ops.as_value(v), message=self.message,
                                                 attrs=self.attrs), x)
