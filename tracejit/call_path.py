"""The generated call path of a jitted function (``Jitted.__call__``, made per function by ``generate_call``).

For each entry it can serve it tests the arguments (type, dtype object, rank, size-1 dims, layout, static
values, the same array twice, guards) and runs the entry: where the entry is final CPU code its driver's lines
(backends/cpu/driver.py) are inlined, so a call of a small function is one Python frame that reads the shapes
once, allocates the outputs, calls the native entry and returns the output itself (no list of arguments or
outputs built); otherwise it calls the executable's ``run``.
"""
from __future__ import annotations

import functools

import numpy as np

from .errors import filter_traceback
from .trace import guards as _guards
from .trace.trace import _WEAK as _WEAK_DTYPE, join_complex, tree_flatten, tree_unflatten

_ndarray = np.ndarray
_COMPLEX = (np.dtype(np.complex64), np.dtype(np.complex128))
LEAF_TREE = tree_flatten(0)[1]
MAX_FAST_ENTRIES = 64  # entries the generated call path tests; further ones take the general path
HITS = "_fast_hits"  # the generated function's global counting the calls it served (Jitted.cache_info)


def layout(args, static_pos):
    """What the generated call path tests of each positional argument to serve a call with this entry, or None
    when some argument needs the general path (a pytree, a numpy scalar, a device array, an unusual dtype
    object): ("static", value), ("array", dtype, which dims are 1, C-contiguous) or ("scalar", type). The test is
    never weaker than the signature (``leaf_signature``): a call that passes it has this entry's signature."""
    out = []
    for i, a in enumerate(args):
        t = type(a)
        if i in static_pos:
            out.append(("static", a))
        elif t is _ndarray:
            dt = a.dtype
            canon = np.dtype(dt.type)
            if canon is not dt or (dt.kind == "c" and dt not in _COMPLEX):  # compared by identity on the call
                return None  # path: only the canonical dtype objects
            kind = "complex" if dt.kind == "c" else "array"  # complex: its two parts are the leaves
            out.append((kind, canon, tuple(d == 1 for d in a.shape), a.flags.c_contiguous))
        elif t is float or t is int or t is bool:
            out.append(("scalar", t))
        else:
            return None
    return tuple(out)


def final_executable(exe):
    """The executable whose driver can be inlined (``inline_driver``): CPU code that is final, ``exe`` itself or a
    tiered one's optimized tier once calls run it; None for any other (a first tier, which is swapped later;
    CUDA; programs with loops)."""
    optimized = getattr(exe, "optimized_executable", None)
    return optimized() if optimized is not None else None


def generate_call(entries, general_call, names=None):
    """Python source of a ``__call__`` serving these entries, compiled; anything else (keywords, pytrees, a new
    signature, failing guards) takes ``general_call(self, args, kwargs)``. ``names``: the function's parameter
    names when every parameter is positional-or-keyword (keywords naming the next parameters in order are then
    the same call by position, as _ArgSpec.positional says)."""
    ns = {"_nd": _ndarray, "_filter": filter_traceback, "_unflatten": tree_unflatten, "_asarray": np.asarray,
          "_contig": np.ascontiguousarray, "_call": general_call, HITS: 0, "_names": names}
    by_count: dict = {}
    for e in entries:
        by_count.setdefault(len(e.layout), []).append(e)
    body = []
    for nargs, group in by_count.items():
        names = [f"a{i}" for i in range(nargs)]
        body.append(f"if len(args) == {nargs}:")
        if nargs:
            body.append(f"    {', '.join(names)}{',' if nargs == 1 else ''} = args")
        for e in group:
            body += ["    " + ln for ln in _entry_lines(e, names, ns)]
    lines = ["def __call__(self, *args, **kwargs):",
             f"    global {HITS}",
             "    __tracebackhide__ = True  # IPython and pytest hide this frame",
             "    if kwargs:  # keywords naming the next parameters: the call by position (_ArgSpec.positional)",
             "        try:",  # a KeyError, or fewer names than keywords: another call, for the general path
             "            b = [kwargs[k] for k in _names[len(args):len(args) + len(kwargs)]]",
             "            if len(b) == len(kwargs):",
             "                args, kwargs = args + tuple(b), {}",
             "        except (KeyError, TypeError):",
             "            pass",
             "    if not kwargs:",
             "        try:"]
    lines += ["            " + ln for ln in body]
    lines += ["        except Exception as e:",
              "            raise e.with_traceback(_filter(e.__traceback__))",
              "    try:",  # the general path, with no frame of its own: one tracejit frame in a traceback
              "        return _call(self, args, kwargs)",
              "    except Exception as e:",
              "        raise e.with_traceback(_filter(e.__traceback__))"]
    src = "\n".join(lines) + "\n"
    # compiled under the package's file name: filtered from tracebacks
    exec(compile(src, __file__ + ":<generated call>", "exec"), ns)
    fn = ns["__call__"]
    fn.source = src
    return fn


def _entry_lines(e, names, ns) -> list:
    """The test of one entry and, when it passes, the lines serving the call."""
    k = len(ns)
    tests, runtime, leaf_pos, shapes = [], [], [], {}
    for i, spec in enumerate(e.layout):
        a = names[i]
        if spec[0] == "static":
            ns[f"_s{k}_{i}"], ns[f"_t{k}_{i}"] = spec[1], type(spec[1])
            tests.append(f"type({a}) is _t{k}_{i} and {a} == _s{k}_{i}")
            continue
        leaf_pos.append(i)
        if spec[0] == "scalar":
            ns[f"_t{k}_{i}"], ns[f"_w{k}_{i}"] = spec[1], _WEAK_DTYPE[spec[1]]
            tests.append(f"type({a}) is _t{k}_{i}")
            runtime.append(f"_asarray({a}, _w{k}_{i})")
            continue
        kind, dt, ones, contiguous = spec
        ns[f"_d{k}_{i}"] = dt
        tests.append(f"type({a}) is _nd and {a}.dtype is _d{k}_{i}")
        tests.append(f"len(s{i} := {a}.shape) == {len(ones)}")
        shapes[len(leaf_pos) - 1] = f"s{i}"
        tests += [f"s{i}[{ax}] {'==' if one else '!='} 1" for ax, one in enumerate(ones)]
        tests.append(f"{'' if contiguous else 'not '}{a}.flags.c_contiguous")
        if kind == "complex":  # two leaves: the parts (trace.tree_flatten), of the array's shape
            leaf_pos.append(i)
            shapes[len(leaf_pos) - 1] = f"s{i}"
            if getattr(e.exe, "segmented", False):  # its steps copy what they need contiguous (see api._call)
                runtime += [f"{a}.real", f"{a}.imag"]
            else:
                runtime += [f"_contig({a}.real)", f"_contig({a}.imag)"]
        else:
            runtime.append(a if contiguous else f"_contig({a})")
    tests += _identity_tests(e, [names[i] for i in leaf_pos])
    if e.check is not None:
        tests.append(_guards.guard_source(e.guards, e.symbols, lambda j: names[leaf_pos[j]]))
    out = [f"if {' and '.join(tests) or 'True'}:", f"    {HITS} += 1"]
    final = final_executable(e.exe)
    if final is not None:
        return out + ["    " + ln for ln in _inlined(e, final, names, leaf_pos, runtime, shapes, ns, k)]
    ns[f"_x{k}"], ns[f"_o{k}"] = e.exe, e.out_tree
    plain = len(leaf_pos) == len(names) and all(r == names[i] for i, r in enumerate(runtime))
    arrays = "args" if plain else "[" + ", ".join(runtime) + "]"
    # run is looked up at each call: a tiered executable swaps it once its optimized code is in place
    return out + ["    " + ln for ln in _results(e, f"_x{k}.run({arrays})", None, names, leaf_pos, ns, k)]


def _inlined(e, exe, names, leaf_pos, runtime, shapes, ns, k) -> list:
    """The driver's lines on this call's arrays, then the results. An argument the function writes into gets a
    name of its own (``d{j}``, j its leaf): the driver may rebind it to a private copy, which is then copied back."""
    lines, inputs = [], []
    for j, (i, r) in enumerate(zip(leaf_pos, runtime)):
        if r == names[i] and j not in e.mutated:
            inputs.append(r)
        else:
            lines.append(f"d{j} = {r}")
            inputs.append(f"d{j}")
    driver = exe.inline_driver(inputs, shapes=shapes, prefix=f"_k{k}_")
    ns.update(driver.globals)
    return lines + driver.lines + _results(e, None, driver.outputs, names, leaf_pos, ns, k)


def _results(e, run, outputs, names, leaf_pos, ns, k) -> list:
    """Lines returning the call's result from ``run`` (an expression giving the list of outputs) or from the
    local ``outputs`` (their names), and updating the arguments the function wrote into."""
    ns[f"_o{k}"] = e.out_tree
    if outputs is None:
        lines, leaf = [f"o = {run}"], (lambda n: f"o[{n}]")
        listed = "o"
    else:
        lines, leaf = [], (lambda n: outputs[n])
        listed = "[" + ", ".join(outputs) + "]"
    counter = iter(range(10**9))
    built = _tree_source(e.out_tree, lambda: leaf(next(counter)), ns, k)  # the outputs' pytree, spelled out
    if built is None:  # run-time checks: their flags follow the outputs (tree_unflatten raises)
        lines.append(f"r = _unflatten(_o{k}, {listed})")
        finals = [f"r[1][{m}]" for m in range(len(e.mutated))]
        result = "r[0]" if e.mutated else "r"
    elif e.mutated:  # the tree is (result, (final value of each written argument, ...))
        main, final_trees = e.out_tree[1]
        counter = iter(range(10**9))
        result = _tree_source(main, lambda: leaf(next(counter)), ns, k)
        finals = [leaf(next(counter)) for _ in e.mutated]
    else:
        lines.append(f"return {built}")
        return lines
    # numpy's in-place meaning: the written arguments are updated for the caller (an item assignment: cheaper
    # than np.copyto's dispatch); a value the program stored into the argument itself is there already
    for m, j in enumerate(e.mutated):
        a = names[leaf_pos[j]]
        lines.append(f"if (v := {finals[m]}) is not {a}: {a}[...] = v")
    lines.append(f"return {result}")
    return lines


def _identity_tests(e, leaf_names) -> list:
    """Tests that a call passes the same array twice exactly where this entry's trace saw it (which matters
    only once the function writes into an argument, or was traced with one tracer for both)."""
    same = dict(e.same_objects)
    if not same and not e.mutated:
        return []
    arrays = [j for j, spec in enumerate(s for s in e.layout if s[0] != "static") if spec[0] == "array"]
    tests = []
    for q in arrays:
        for p in arrays:
            if p < q and (same or p in e.mutated or q in e.mutated):
                tests.append(f"{leaf_names[p]} {'is' if same.get(q) == p else 'is not'} {leaf_names[q]}")
    return tests


def _tree_source(t, leaf, ns, k):
    """Python source building the pytree ``t`` from its leaves (``leaf()`` spells the next one), as
    tree_unflatten does without its per-call recursion, or None for a tree with run-time checks."""
    if t is LEAF_TREE:
        return leaf()
    kind = t[0]
    if kind in ("t", "l", "nt"):
        kids = [_tree_source(e, leaf, ns, k) for e in (t[2] if kind == "nt" else t[1])]
        if any(c is None for c in kids):
            return None
        if kind == "l":
            return "[" + ", ".join(kids) + "]"
        if kind == "t":
            return "(" + "".join(c + ", " for c in kids) + ")"
        name = f"_nt{k}_{len(ns)}"
        ns[name] = t[1]
        return f"{name}(" + ", ".join(kids) + ")"
    if kind == "d":
        kids = [_tree_source(e, leaf, ns, k) for e in t[2]]
        if any(c is None for c in kids):
            return None
        name = f"_keys{k}_{len(ns)}"
        ns[name] = t[1]
        return "{" + ", ".join(f"{name}[{i}]: {c}" for i, c in enumerate(kids)) + "}"
    if kind == "n":
        return "None"
    if kind == "c":  # a complex output from its two parts
        name = f"_cx{k}_{len(ns)}"
        ns[name] = functools.partial(join_complex, t)
        re, im = leaf(), leaf()
        return f"{name}({re}, {im})"
    return None
