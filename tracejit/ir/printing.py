"""How a Graph looks: SSA text (``str(graph)``), graphviz DOT, and SVG/HTML for Jupyter.

Pictures need graphviz's ``dot`` program (Debian: ``apt-get install graphviz``; conda: ``graphviz``). Without it,
or for graphs too large to lay out quickly, the HTML is the SSA text, so a notebook never shows an error.
``TRACEJIT_DOT`` names the program to use (a path), or turns pictures off (``TRACEJIT_DOT=off``).
"""
from __future__ import annotations

import functools
import html
import os
import shutil
import subprocess

import numpy as np

from .types import shape_str

MAX_DRAWN_EQUATIONS = 400  # beyond this dot takes seconds and the picture is unreadable: show text

# fill colours by primitive kind; inputs, constants and outputs each get their own shape as well
_KIND_FILL = {"elementwise": "#fff7e0", "reduce": "#e3f4e1", "view": "#eeeeee", "other": "#ece3f7"}
_INPUT_FILL, _CONST_FILL, _OUTPUT_FILL = "#dbe9fb", "#f7f7f7", "#fbe0e0"
_CLUSTER_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


# ------------------------------------------------------------------------------------------------ SSA text
def type_str(v) -> str:
    t = v.type
    return f"{'~' if t.weak else ''}{t.dtype.name}{shape_str(t.shape)}"


_type_str = type_str


def _param_str(k, p):
    if isinstance(p, np.dtype):
        return f"{k}={p.name}"
    if isinstance(p, tuple):
        return f"{k}=({', '.join(map(str, p))}{',' if len(p) == 1 else ''})"
    return f"{k}={p}"


def params_str(eqn) -> str:
    return " ".join(_param_str(k, p) for k, p in eqn.params)


def namer(graph):
    """A function Value -> its printed name: inputs by name (or in0..), constants by value, others %0, %1..."""
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


def eqn_text(eqn, name) -> str:
    args = " ".join(name(v) for v in eqn.inputs)
    params = params_str(eqn)
    return (f"{name(eqn.out)}:{type_str(eqn.out)} = {eqn.prim}"
            f"{'[' + params + ']' if params else ''} {args}").rstrip()


def graph_text(graph, name=None) -> str:
    """SSA text; ``name`` (a :func:`namer`) can be shared between graphs so unchanged values keep their names."""
    name = name or namer(graph)
    lines = ["{ lambda " + ", ".join(f"{name(v)}:{type_str(v)}" for v in graph.inputs) + " ."]
    for e in graph.eqns:
        lines.append("    " + eqn_text(e, name))
    lines.append("  return " + ", ".join(name(v) for v in graph.outputs) + " }")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ DOT
def _q(s: str) -> str:
    """A DOT double-quoted string."""
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(**kw) -> str:
    return "[" + ", ".join(f"{k}={_q(v)}" for k, v in kw.items() if v is not None) + "]"


def _prim_kind(prim: str) -> str:
    from .primitives import PRIMS
    p = PRIMS.get(prim)
    return p.kind if p is not None else "other"


def graph_dot(graph, kernel_groups=None, title=None) -> str:
    """The graph in graphviz's DOT language.

    Inputs are blue ellipses, constants grey dashed boxes, outputs red; each equation a rounded box labelled
    with its primitive (and parameters), then dtype and symbolic shape, coloured by kind. ``kernel_groups``
    (a list of lists of Equations, one per compiled kernel) draws each fused kernel as a cluster.
    """
    name = namer(graph)
    node_of: dict = {}  # Value id -> DOT node id
    lines = ["digraph tracejit {",
             '  graph [rankdir=TB, fontname="Helvetica", fontsize=10, nodesep=0.25, ranksep=0.3];',
             '  node [fontname="Helvetica", fontsize=10, height=0.3, margin="0.08,0.03"];',
             '  edge [arrowsize=0.6, color="#555555"];']
    if title:
        lines.append(f"  labelloc=t; label={_q(title)};")
    for i, v in enumerate(graph.inputs):
        node_of[v.id] = f"in{i}"
        lines.append(f"  in{i} " + _attrs(label=f"{name(v)}\n{type_str(v)}", shape="ellipse", style="filled",
                                           fillcolor=_INPUT_FILL, tooltip=f"input {i}: {name(v)}"))
    for v in graph.constants():
        node_of[v.id] = f"c{v.id}"
        lines.append(f"  c{v.id} " + _attrs(label=f"{name(v)}\n{type_str(v)}", shape="box", style="dashed,filled",
                                             fillcolor=_CONST_FILL, fontsize="8", color="#999999",
                                             tooltip="constant"))
    eqn_node = {}
    for k, e in enumerate(graph.eqns):
        nid = f"e{k}"
        eqn_node[id(e)] = nid
        node_of[e.out.id] = nid
    body: dict = {}
    for k, e in enumerate(graph.eqns):
        params = params_str(e)
        label = e.prim + (f"\n{params}" if params else "") + f"\n{type_str(e.out)}"
        body[id(e)] = f"e{k} " + _attrs(label=label, shape="box", style="rounded,filled",
                                        fillcolor=_KIND_FILL.get(_prim_kind(e.prim), "#ffffff"),
                                        tooltip=eqn_text(e, name))
    clustered = set()
    for g, group in enumerate(kernel_groups or ()):
        members = [body[id(e)] for e in group if id(e) in body and id(e) not in clustered]
        if not members:
            continue
        clustered.update(id(e) for e in group)
        color = _CLUSTER_COLORS[g % len(_CLUSTER_COLORS)]
        lines.append(f"  subgraph cluster_kernel{g} {{")
        lines.append(f'    label={_q(f"kernel {g}")}; fontcolor={_q(color)}; color={_q(color)}; '
                     f'style="rounded,dashed"; penwidth=1.5;')
        lines.extend("    " + m + ";" for m in members)
        lines.append("  }")
    lines.extend("  " + body[id(e)] + ";" for e in graph.eqns if id(e) not in clustered)
    for k, e in enumerate(graph.eqns):
        for v in e.inputs:
            src = node_of.get(v.id)
            if src is not None:
                lines.append(f"  {src} -> e{k};")
    for j, v in enumerate(graph.outputs):
        lines.append(f"  out{j} " + _attrs(label=f"output {j}" if len(graph.outputs) > 1 else "output",
                                            shape="ellipse", style="filled", fillcolor=_OUTPUT_FILL, fontsize="9"))
        src = node_of.get(v.id)
        if src is not None:
            lines.append(f"  {src} -> out{j};")
    lines.append("}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ SVG / HTML
def dot_program():
    """The path of graphviz's ``dot``, or None when it is missing or turned off (``TRACEJIT_DOT=off``)."""
    env = os.environ.get("TRACEJIT_DOT")
    if env is not None:
        if env.strip().lower() in ("", "0", "off", "no", "none", "false"):
            return None
        return shutil.which(env) or (env if os.path.isfile(env) else None)
    return shutil.which("dot")


@functools.lru_cache(maxsize=128)
def _run_dot(program: str, source: str):
    try:
        r = subprocess.run([program, "-Tsvg"], input=source.encode(), capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if r.returncode != 0:
        return None
    svg = r.stdout.decode("utf-8", "replace")
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else None


def dot_to_svg(source: str):
    """SVG markup for DOT ``source`` (ready to inline in HTML), or None when ``dot`` is missing or fails."""
    program = dot_program()
    return _run_dot(program, source) if program else None


def graph_svg(graph, kernel_groups=None, title=None):
    """The graph drawn as SVG, or None (no ``dot``, or more than MAX_DRAWN_EQUATIONS equations)."""
    if len(graph.eqns) > MAX_DRAWN_EQUATIONS:
        return None
    return dot_to_svg(graph_dot(graph, kernel_groups, title))


def text_html(text: str) -> str:
    return '<pre style="line-height:1.25">' + html.escape(text) + "</pre>"


def graph_html(graph, kernel_groups=None, title=None) -> str:
    """The picture with the SSA text folded under it; just the SSA text when no picture can be made."""
    text = graph_text(graph)
    svg = graph_svg(graph, kernel_groups, title)
    if svg is None:
        return text_html(text)
    return ('<div class="tracejit-graph"><div style="overflow:auto; max-height:60em">' + svg + "</div>"
            "<details><summary>SSA text</summary>" + text_html(text) + "</details></div>")


# ------------------------------------------------------------------------------------------------ loose values
def value_graph(outputs, inputs=None):
    """The Graph computing ``outputs`` (Values) from the leaf Values they depend on (symbolic variables)."""
    from .graph import Graph, toposort
    outputs = list(outputs)
    eqns = toposort(outputs)
    if inputs is None:
        inputs, seen = [], set()
        for v in [x for e in eqns for x in e.inputs] + outputs:
            if v.eqn is None and not v.is_const and v.id not in seen:
                seen.add(v.id)
                inputs.append(v)
    return Graph(inputs=list(inputs), outputs=outputs, eqns=eqns)
