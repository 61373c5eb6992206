"""SSA text of a Graph (``str(graph)``), and a small HTML rendering for Jupyter."""
from __future__ import annotations

import html

import numpy as np

from .types import shape_str


def _type_str(v):
    t = v.type
    return f"{'~' if t.weak else ''}{t.dtype.name}{shape_str(t.shape)}"


def _param_str(k, p):
    if isinstance(p, np.dtype):
        return f"{k}={p.name}"
    if isinstance(p, tuple):
        return f"{k}=({', '.join(map(str, p))}{',' if len(p) == 1 else ''})"
    return f"{k}={p}"


def namer(graph):
    names = {}
    for i, v in enumerate(graph.inputs):
        names[v.id] = v.name or f"in{i}"
    counter = [0]

    def name(v):
        if v.id not in names:
            if v.is_const:
                c = v.const
                names[v.id] = (repr(c.item()) if c.size == 1 and c.ndim == 0
                               else f"const{{{c.dtype.name}{list(c.shape)}}}")
            else:
                names[v.id] = f"%{counter[0]}"
                counter[0] += 1
        return names[v.id]
    return name


def graph_text(graph) -> str:
    name = namer(graph)
    lines = ["{ lambda " + ", ".join(f"{name(v)}:{_type_str(v)}" for v in graph.inputs) + " ."]
    for e in graph.eqns:
        args = " ".join(name(v) for v in e.inputs)
        params = " ".join(_param_str(k, p) for k, p in e.params)
        lines.append(f"    {name(e.out)}:{_type_str(e.out)} = {e.prim}"
                     f"{'[' + params + ']' if params else ''} {args}".rstrip())
    lines.append("  return " + ", ".join(name(v) for v in graph.outputs) + " }")
    return "\n".join(lines)


def graph_html(graph) -> str:
    return "<pre>" + html.escape(graph_text(graph)) + "</pre>"
