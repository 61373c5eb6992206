"""Theano's ``function``: compile outputs and updates as a function of symbolic inputs.

``function(inputs, outputs, updates)`` cuts the graph between the inputs (plus the shared variables it reaches,
read at every call) and the outputs and update expressions, and compiles it with ``tracejit.compile``, the path
``jit`` takes: the same passes, tiers, ``strict_ieee`` and disk cache (see ``config.Mode``).
"""
from __future__ import annotations

import warnings

import numpy as np

from ..compile import compile as compile_graph
from ..errors import filter_traceback
from ..ir import ops
from ..ir import types as T
from ..ir.constraints import ConstraintKind
from ..ir.graph import Graph, Value, toposort
from ..ir.types import Dim, TensorType
from ..trace.symbolic import (BUILDER, Variable, atoms, constraints_of, roots, shorten, symbolic_apply, symbols_of,
                              value_of)
from .arguments import make_converter
from .config import compile_options
from .printing import pp
from .shared import SharedVariable, shared_of
from .substitute import may_alias, replay, subst_dim, unify_equal_axes


class MissingInputError(ValueError):
    """An output depends on a symbolic variable that is neither an input of the function nor shared."""


class UnusedInputError(ValueError):
    """An input of the function is not needed by any output or update (``on_unused_input='raise'``)."""


def _pairs(x, what) -> list:
    if x is None:
        return []
    if isinstance(x, dict):
        return list(x.items())
    try:
        pairs = list(x)
    except TypeError:
        raise TypeError(f"{what} must be a list of (variable, expression) pairs or a dict") from None
    for p in pairs:
        if not isinstance(p, (tuple, list)) or len(p) != 2:
            raise TypeError(f"{what} must be a list of (variable, expression) pairs or a dict, got an item {p!r}")
    return [tuple(p) for p in pairs]


class In:
    """Theano's ``In``: a function input with a default ``value`` (used when a call leaves it out), a keyword
    ``name`` of its own, or its own ``allow_downcast``."""

    def __init__(self, variable, name=None, value=None, strict=False, allow_downcast=None, mutable=False,
                 borrow=False, update=None, implicit=None):
        if not isinstance(variable, Variable):
            raise TypeError(f"In: the input must be a symbolic variable, got an object of type "
                            f"{type(variable).__name__}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"In: name must be a string, got {type(name).__name__}")
        if mutable or update is not None or implicit:
            raise NotImplementedError("In: mutable, update and implicit inputs are not supported by tracejit; use a "
                                      "shared variable and updates= instead")
        self.variable, self.name, self.value = variable, name, value
        self.allow_downcast = False if strict else allow_downcast


def _unwrap_inputs(inputs, allow_input_downcast):
    """(variables, keyword names, defaults, allow_downcast per input) of a list of variables and ``In``s."""
    variables, names, defaults, downcasts = [], [], [], []
    for x in inputs:
        spec = x if isinstance(x, In) else None
        v = spec.variable if spec else x
        variables.append(v)
        names.append(spec.name if spec and spec.name else getattr(v, "name", None))
        defaults.append(spec.value if spec and spec.value is not None else _MISSING)
        own = spec.allow_downcast if spec else None
        downcasts.append(allow_input_downcast if own is None else own)
    return variables, names, defaults, downcasts


def _length_symbols(eqns, values) -> set:
    """The symbols of every length the equations and values use (result shapes, parameters, bodies)."""
    from ..ir.regions import Region
    out: set = set()

    def walk(x):
        if isinstance(x, Dim):
            out.update(x.atoms())
        elif isinstance(x, tuple):
            for y in x:
                walk(y)
        elif isinstance(x, Region):
            out.update(x.graph.symbols)
    for e in eqns:
        walk(tuple(e.out.shape))
        for _, p in e.params:
            walk(p)
    for v in values:
        walk(tuple(v.shape))
    return out


class Out:
    """Theano's ``Out(variable, borrow=False)``: an output; ``borrow`` changes nothing here (outputs are fresh
    arrays unless an update aliases them, which tracejit copies)."""

    def __init__(self, variable, borrow=False):
        self.variable, self.borrow = variable, borrow


def _unwrap_out(outputs):
    if isinstance(outputs, Out):
        return outputs.variable
    if isinstance(outputs, (list, tuple)) and any(isinstance(o, Out) for o in outputs):
        return [o.variable if isinstance(o, Out) else o for o in outputs]
    if isinstance(outputs, dict):
        return {k: o.variable if isinstance(o, Out) else o for k, o in outputs.items()}
    return outputs


def _shape_vector(x):
    """``x.shape`` as an output is one int64 vector, as in Theano (here a shape is a tuple of lengths)."""
    if not (isinstance(x, tuple) and x and all(isinstance(d, (Dim, int)) and not isinstance(d, bool) for d in x)
            and any(isinstance(d, Dim) for d in x)):
        return x
    from ..trace.tracer import wrap
    return symbolic_apply(lambda: np.stack([wrap(ops.dimsize(d)).astype(np.int64) for d in x]))


def _default_updates(out_vals, explicit, excluded) -> list:
    """(shared variable, its ``default_update``) for each shared variable the outputs and updates read that has
    one and no explicit update (Theano's rule; random streams advance this way). ``excluded``: True skips them all,
    a list skips those variables."""
    if excluded is True:
        return []
    skip = {x._tj_value.id for x in (excluded or ())} | {t._tj_value.id for t, _ in explicit}
    found, values = [], list(out_vals) + [v for _, v in explicit]
    while values:
        new = []
        for v in roots(toposort(values), values):
            sv = shared_of(v)
            if sv is None or sv.default_update is None or v.id in skip:
                continue
            skip.add(v.id)
            found.append((sv, sv.default_update))
            new.append(value_of(sv.default_update, f"the default update of {sv.label()}"))
        values = new
    return found


# ------------------------------------------------------------------------------------------------ function
class Function:
    """A compiled Theano-style function: ``f(*values)`` runs the outputs and applies the updates.

    The executable is compiled once per signature (which symbolic lengths are 1 at run time); other lengths and
    new values of shared variables never recompile.
    """

    def __init__(self, inputs, outputs=None, updates=None, givens=None, allow_input_downcast=None,
                 on_unused_input="raise", name=None, mode=None, device=None, no_default_updates=False):
        self.name = name
        self._args = dict(inputs=inputs, outputs=outputs, updates=updates, givens=givens,
                          allow_input_downcast=allow_input_downcast, on_unused_input=on_unused_input, mode=mode,
                          device=device, no_default_updates=no_default_updates)
        outputs = _unwrap_out(outputs)
        self.options = compile_options(mode, device)
        self.device = self.options.device
        self._update_targets, self._shared, self.outputs = [], [], []
        if on_unused_input not in ("raise", "warn", "ignore", None):
            raise ValueError(f"on_unused_input must be 'raise', 'warn' or 'ignore', got {on_unused_input!r}")
        if not isinstance(inputs, (list, tuple)):
            raise TypeError("the inputs of a function must be a list of symbolic variables, even when there is "
                            "only one: function([x], ...)")
        inputs, self._input_names, self._defaults, downcasts = _unwrap_inputs(inputs, allow_input_downcast)
        ins = self._check_inputs(inputs)
        self.inputs = list(inputs)
        self._keys = list(outputs) if isinstance(outputs, dict) else None  # dict outputs: a dict per call
        if self._keys is not None:
            outputs = list(outputs.values())
        outputs = _shape_vector(outputs)
        if isinstance(outputs, (list, tuple)):
            outputs = [_shape_vector(o) for o in outputs]
        self._single = outputs is not None and not isinstance(outputs, (list, tuple))
        outs = [] if outputs is None else [outputs] if self._single else list(outputs)
        self.outputs = outs
        out_vals = [value_of(o, f"output {i}") for i, o in enumerate(outs)]
        upd = self._check_updates(_pairs(updates, "updates"))
        upd += self._check_updates(_default_updates(out_vals, upd, no_default_updates))
        upd_vals = [v for _, v in upd]
        all_vals = out_vals + upd_vals
        extra_cons = []
        if givens is not None:
            all_vals, extra_cons = self._apply_givens(_pairs(givens, "givens"), all_vals)
        eqns = toposort(all_vals)
        self._shared = self._cut(ins, eqns, all_vals, on_unused_input)
        g_inputs = ins + [s._tj_value for s in self._shared]
        symbols = symbols_of(g_inputs)
        cons = constraints_of(eqns, set(symbols), extra_cons)
        self.traced = Graph(inputs=g_inputs, outputs=all_vals, eqns=eqns, constraints=cons, symbols=symbols)
        self._nout = len(out_vals)
        self._update_targets = [s for s, _ in upd]
        self._convs = [make_converter(v, f"input {self._input_label(i, v)}", downcasts[i])
                       for i, v in enumerate(self.inputs)]
        self._nin = len(self._convs)
        self._sym_axes = {i: [ax for ax, d in enumerate(v.shape) if isinstance(d, Dim)]
                          for i, v in enumerate(g_inputs)}
        self._sym_inputs = tuple(i for i, axes in self._sym_axes.items() if axes)
        self._execs: dict = {}
        # compiled at the first call, for the signature it has: a Theano program whose inputs have a length-1
        # axis at every call (LeNet's one channel) would otherwise compile the common signature for nothing
        self._exe = None
        # the call path is generated per function; a one-off subclass makes it the __call__ itself (no extra frame)
        self.__class__ = type("Function", (Function,), {"__call__": self._make_fast(), "__module__": __name__})

    # -------------------------------------------------------------------------------------------- checks
    @staticmethod
    def _input_label(i, v):
        return f"{v.name!r} ({v.type_name})" if v.name else f"{i} (an unnamed {v.type_name})"

    def _check_inputs(self, inputs) -> list:
        seen = {}
        for i, x in enumerate(inputs):
            if isinstance(x, SharedVariable):
                raise TypeError(f"input {i} is the shared variable {x.label()}: a shared variable is an implicit "
                                f"input of every function that uses it; leave it out of inputs (or replace it "
                                f"with givens=)")
            if not isinstance(x, Variable):
                raise TypeError(f"input {i} must be a symbolic variable (e.g. tensor.dmatrix('x')), got an object "
                                f"of type {type(x).__name__}")
            if not x.is_input:
                raise TypeError(f"input {i} is {x.label()}, not a symbolic input variable; inputs are variables "
                                f"made with tensor.dscalar(), tensor.dmatrix('x'), ... (substitute expressions "
                                f"with givens=)")
            j = seen.get(x._tj_value.id)
            if j is not None:
                raise ValueError(f"the variable {x.label()} is used twice in inputs, at positions {j} and {i}")
            seen[x._tj_value.id] = i
        return [x._tj_value for x in inputs]

    def _check_updates(self, pairs) -> list:
        out, seen = [], set()
        for target, expr in pairs:
            if not isinstance(target, SharedVariable):
                raise TypeError(f"update targets must be shared variables (tj.shared(...)), got "
                                f"{target.label() if isinstance(target, Variable) else type(target).__name__}")
            if target._tj_value.id in seen:
                raise ValueError(f"the shared variable {target.label()} is updated twice")
            seen.add(target._tj_value.id)
            v = value_of(expr, f"the update of {target.label()}")
            tv = target._tj_value
            if v.type.weak and v.dtype != tv.dtype and T.result_dtype(tv.type, v.type)[0] == tv.dtype:
                v = symbolic_apply(ops.convert, v, tv.dtype)._tj_value
            if v.dtype != tv.dtype:
                raise TypeError(f"the update of shared variable {target.label()} has dtype {v.dtype}, but the "
                                f"variable is {tv.dtype}; cast the expression (tensor.cast(expr, '{tv.dtype}'))")
            if v.ndim != tv.ndim:
                raise TypeError(f"the update of shared variable {target.label()} has {v.ndim} dimension(s) "
                                f"(shape {T.shape_str(v.shape)}), but the variable has {tv.ndim} "
                                f"(shape {T.shape_str(tv.shape)})")
            out.append((target, v))
        return out

    def _apply_givens(self, pairs, values):
        vmap, env = {}, {}
        for target, rep in pairs:
            if not isinstance(target, Variable) or not target.is_input:
                raise TypeError(f"givens: the variable to replace must be a symbolic input or shared variable, got "
                                f"{target.label() if isinstance(target, Variable) else type(target).__name__}")
            tv = target._tj_value
            rv = value_of(rep, f"the replacement of {target.label()} in givens")
            if rv.type.weak and rv.dtype != tv.dtype:
                rv = symbolic_apply(ops.convert, rv, tv.dtype)._tj_value
            if rv.dtype != tv.dtype or rv.ndim != tv.ndim:
                raise TypeError(f"givens: the replacement of {target.label()} is {rv.dtype}{T.shape_str(rv.shape)}"
                                f", but the variable is {tv.dtype}{T.shape_str(tv.shape)}: dtype and rank must "
                                f"match")
            vmap[tv.id] = rv
            for d, r in zip(tv.shape, rv.shape):
                if isinstance(d, Dim):
                    (s,) = d.atoms()
                    env[s] = r
        eqns = toposort(values)
        old = constraints_of(eqns, set(symbols_of(roots(eqns, values))))
        with BUILDER:
            return replay(values, vmap, env, old)

    def _cut(self, ins, eqns, values, on_unused_input) -> list:
        """Check every leaf is an input or shared; return the shared variables read, in first-use order."""
        input_ids = {v.id for v in ins}
        used, shared_vars = set(), []
        for v in roots(eqns, values):
            if v.id in input_ids:
                used.add(v.id)
                continue
            sv = shared_of(v)
            if sv is None:
                raise MissingInputError(
                    f"the outputs depend on the variable {Variable(v).label()}, which is neither an input of the "
                    f"function nor a shared variable; add it to the inputs (or give its value with givens=)")
            shared_vars.append(sv)
        if on_unused_input in ("raise", "warn", None):
            lengths = _length_symbols(eqns, values)  # an input whose length is read is used (arange(x.shape[0]))
            for i, v in enumerate(ins):
                if v.id not in used and not any(isinstance(d, Dim) and d.atoms() & lengths for d in v.shape):
                    msg = (f"input {self._input_label(i, self.inputs[i])} is not used by any output or update "
                           f"(pass on_unused_input='ignore' to allow it)")
                    if on_unused_input == "warn":
                        warnings.warn(msg, stacklevel=4)
                    else:
                        raise UnusedInputError(msg)
        return shared_vars

    # -------------------------------------------------------------------------------------------- compiling
    def _build(self, key):
        """Compile the executable for one signature: ``key`` lists the (input, axis) pairs whose length is 1."""
        graph = self.traced
        inv = {v: k for k, v in graph.symbols.items()}
        env = {inv[(i, ax)]: 1 for i, ax in key}
        renamed = unify_equal_axes(graph.constraints, env, graph.symbols)
        env.update({s: Dim.symbol(r) for s, r in renamed.items()})
        checks = tuple((graph.symbols[s], graph.symbols[r]) for s, r in renamed.items())
        if env:
            vmap = {}
            new_inputs = []
            for v in graph.inputs:
                shape = tuple(subst_dim(d, env) for d in v.shape)
                nv = v if shape == v.shape else Value(TensorType(v.dtype, shape), name=v.name)
                vmap[v.id] = nv
                new_inputs.append(nv)
            outs, cons = replay(graph.outputs, vmap, env, graph.constraints)
            symbols = symbols_of(new_inputs)
            cons = [c for c in cons if atoms(c.a) | atoms(c.b) <= set(symbols) and not
                    (c.kind is ConstraintKind.EQ and c.a == c.b)]
            graph = Graph(inputs=new_inputs, outputs=outs, eqns=toposort(outs), constraints=cons, symbols=symbols)
        exe = compile_graph(graph, self.options, name=f"function {self.name!r}" if self.name else "function")
        opt = exe.optimized
        in_ids = {v.id for v in opt.inputs}
        if not key:
            self._graph = opt  # the optimized graph of the common signature (debugprint, _repr_html_)
        alias_out = tuple(j for j in range(self._nout) if self._update_targets and may_alias(opt.outputs[j], in_ids))
        alias_upd = tuple(k for k in range(len(self._update_targets))
                          if may_alias(opt.outputs[self._nout + k], in_ids))
        entry = (exe, alias_out, alias_upd, checks)
        self._execs[key] = entry
        return entry

    def _common(self):
        """The entry of the common signature (no symbolic length equal to 1), compiled at its first use; the
        generated call path then runs it directly."""
        if self._exe is None:
            self._exe = self._build(())
            type(self).__call__ = self._make_fast()
        return self._exe

    @property
    def graph(self):
        """The optimized graph of the common signature."""
        self._common()
        return self._graph

    def _special(self, arrays):
        """The entry for a call where some symbolic length is 1 (compiled once per such pattern)."""
        key = tuple((i, ax) for i in self._sym_inputs for ax in self._sym_axes[i] if arrays[i].shape[ax] == 1)
        if not key:
            return self._common()
        self._check_no_broadcast(arrays, key)
        entry = self._execs.get(key)
        return entry if entry is not None else self._build(key)

    def _check_no_broadcast(self, arrays, key):
        """Symbolic lengths that must agree do not broadcast (Theano's rule): length 1 against 3 is an error."""
        g = self.traced
        env = {s: arrays[i].shape[ax] for s, (i, ax) in g.symbols.items()}
        for c in g.constraints:
            a, b = c.a, c.b
            if c.kind is not ConstraintKind.EQ or not isinstance(a, Dim) or not isinstance(b, Dim):
                continue
            va, vb = T.eval_dim(a, env), T.eval_dim(b, env)
            if va != vb:
                names = {s: self._axis_label(i, ax) for s, (i, ax) in g.symbols.items()}
                who = " and ".join(f"{d} = {vd} ({names[next(iter(d.atoms()))]})" if len(d.atoms()) == 1
                                   else f"{d} = {vd}" for d, vd in ((a, va), (b, vb)))
                raise ValueError(f"input dimension mismatch: the lengths {who} must be equal; the axes of "
                                 f"symbolic variables do not broadcast")

    def _axis_label(self, i, ax):
        if i < self._nin:
            v = self.inputs[i]
            return f"axis {ax} of input {self._input_label(i, v)}"
        return f"axis {ax} of shared variable {self._shared[i - self._nin].label()}"

    # -------------------------------------------------------------------------------------------- calling
    def __call__(self, *args, **kwargs):  # each instance's class replaces this by its generated call path
        raise RuntimeError("this function was not compiled completely")

    def _call_general(self, arrays):
        """A call whose arrays have some symbolic length equal to 1 (a specialized executable)."""
        entry = self._special(arrays)
        outs = entry[0].run(arrays)
        if self._update_targets:
            self._write_updates(outs, entry)
        if self._keys is not None:
            return dict(zip(self._keys, outs))
        return outs[0] if self._single else outs[:self._nout]

    def _make_fast(self):
        """Generate the call path: convert arguments, run the executable, write updates, with no loops or
        generic machinery per call (the tutorial's training step costs ~1 µs here beyond the executable)."""
        n, ns = self._nin, {}
        args = [f"a{i}" for i in range(n)]
        ns.update(_bind=self._bind_args, _general=self._call_general, _copyto=np.copyto, _replace=_replace_storage)
        ns["_filter"] = filter_traceback
        lines = ["def fast(*args, **kwargs):",
                 f"    if kwargs or len(args) != {n}:",
                 "        args = _bind(args, kwargs)"]
        if n:
            lines.append(f"    {', '.join(args)}{',' if n == 1 else ''} = args")
        for i, c in enumerate(self._convs):
            ns[f"_c{i}"] = c
            lines.append(f"    a{i} = _c{i}(a{i})")
        for k, sv in enumerate(self._shared):
            ns[f"_s{k}"] = sv
            lines.append(f"    a{n + k} = _s{k}._storage")
        arrays = "[" + ", ".join(f"a{i}" for i in range(n + len(self._shared))) + "]"
        if self._exe is None:  # nothing compiled yet: the general path compiles what the call needs
            lines.append(f"    return _general({arrays})")
            return self._generate(lines, ns)
        ns["_exe"] = self._exe[0]
        if self._sym_inputs:
            cond = " or ".join(f"1 in a{i}.shape" for i in self._sym_inputs)
            lines += [f"    if {cond}:", f"        return _general({arrays})"]
        _, alias_out, alias_upd, checks = self._exe
        if checks:  # axes unified at compile time must have equal lengths
            ns["_mismatch"] = self._check_no_broadcast
            cond = " or ".join(f"a{i}.shape[{ax}] != a{j}.shape[{bx}]" for (i, ax), (j, bx) in checks)
            lines += [f"    if {cond}:", f"        _mismatch({arrays}, ())"]
        # run is looked up at each call: a tiered executable swaps it once its optimized code is in place
        lines.append(f"    outs = _exe.run({arrays})")
        for j in alias_out:
            lines.append(f"    outs[{j}] = outs[{j}].copy()")
        m = self._nout
        for k, t in enumerate(self._update_targets):
            ns[f"_u{k}"] = t
            lines.append(f"    n{k} = outs[{m + k}]" + (".copy()" if k in alias_upd else ""))
        for k in range(len(self._update_targets)):
            lines += [f"    st = _u{k}._storage",
                      f"    if n{k}.shape == st.shape:",
                      f"        st[...] = n{k}",  # in place; cheaper than np.copyto's dispatch
                      "    else:",
                      f"        _replace(_u{k}, n{k})"]
        if self._keys is not None:
            ns["_keys"] = self._keys
            lines.append("    return dict(zip(_keys, outs))")  # zip stops at the outputs: updates are not shown
        else:
            lines.append("    return outs[0]" if self._single else f"    return outs[:{m}]")
        return self._generate(lines, ns)

    def _generate(self, lines, ns):
        head = ["def __call__(self, *args, **kwargs):",
                "    __tracebackhide__ = True  # IPython and pytest hide this frame",
                "    try:"]
        tail = ["    except Exception as e:",
                "        raise e.with_traceback(_filter(e.__traceback__))"]
        src = "\n".join(head + ["    " + ln for ln in lines[1:]] + tail)
        exec(compile(src, __file__ + ":<generated call>", "exec"), ns)  # under the package: filtered
        self.call_source = src
        return ns["__call__"]

    def _write_updates(self, outs, entry):
        """All updates were computed from the old values; now write them (in place when the shape is unchanged)."""
        _, alias_out, alias_upd, _ = entry
        n = self._nout
        for j in alias_out:
            outs[j] = outs[j].copy()
        news = outs[n:]
        for k in alias_upd:
            news[k] = news[k].copy()
        for target, new in zip(self._update_targets, news):
            st = target._storage
            if new.shape == st.shape:
                np.copyto(st, new)
            else:
                _replace_storage(target, new)

    def _bind_args(self, args, kwargs):
        """Positional and keyword arguments in input order, omitted ones taken from their ``In`` default."""
        names = self._input_names
        if len(args) > self._nin:
            raise TypeError(f"{self._what()} takes {self._nin} argument(s) ({self._arg_names()}), got {len(args)}")
        vals = list(args) + [_MISSING] * (self._nin - len(args))
        for k, val in kwargs.items():
            if k not in names:
                raise TypeError(f"{self._what()} got an unexpected keyword argument {k!r}; its inputs are "
                                f"({self._arg_names()})")
            i = names.index(k)
            if vals[i] is not _MISSING:
                raise TypeError(f"{self._what()} got multiple values for input {k!r}")
            vals[i] = val
        vals = [d if v is _MISSING else v for v, d in zip(vals, self._defaults)]
        missing = [self._input_label(i, self.inputs[i]) for i, v in enumerate(vals) if v is _MISSING]
        if missing:
            raise TypeError(f"{self._what()} takes {self._nin} argument(s) ({self._arg_names()}), got "
                            f"{len(args) + len(kwargs)}: missing a value for input {', '.join(missing)}")
        return vals

    def _what(self):
        return f"function {self.name!r}" if self.name else "the compiled function"

    def _arg_names(self):
        return ", ".join(n or f"<unnamed {v.type_name}>" for n, v in zip(self._input_names, self.inputs))

    # -------------------------------------------------------------------------------------------- introspection
    @property
    def executable(self):
        """The executable of the common signature (no symbolic length equal to 1): ``tier``, ``compile_stats``,
        ``wait()`` (compile the optimized tier now), ``llvm_ir()``."""
        return self._common()[0]

    @property
    def num_compiled(self) -> int:
        """How many executables this function holds (one per pattern of length-1 symbolic axes seen)."""
        return len(self._execs)

    def __repr__(self):
        outs = ", ".join(shorten(pp(o), 40) for o in self.outputs)
        ups = f", {len(self._update_targets)} update(s)" if self._update_targets else ""
        return f"<tracejit.function ({self._arg_names()}) -> ({outs}){ups}>"

    def copy(self, share_memory=False, swap=None, delete_updates=False, name=None, profile=None):
        """Theano's ``f.copy``: the same function, compiled again, with shared variables replaced as ``swap``
        says (``{old: new}``: read and updated in place of the old ones) and, with ``delete_updates``, no updates."""
        args = dict(self._args)
        swap = dict(swap or {})
        for old, new in swap.items():
            if not isinstance(old, SharedVariable) or not isinstance(new, SharedVariable):
                raise TypeError("copy: swap maps shared variables to shared variables ({old: new})")
        updates = [] if delete_updates else _pairs(args["updates"], "updates")
        args["updates"] = [(swap.get(t, t), e) for t, e in updates]
        args["givens"] = _pairs(args["givens"], "givens") + list(swap.items())
        if delete_updates:  # the inputs stay, even those only the updates read
            args["no_default_updates"], args["on_unused_input"] = True, "ignore"
        return function(name=name or self.name, **args)

    @property
    def maker(self):
        """Theano's ``f.maker.fgraph``: the optimized graph (``toposort()``, ``inputs``, ``outputs``)."""
        import types
        graph = self.graph
        fgraph = types.SimpleNamespace(toposort=lambda: list(graph.eqns), inputs=list(graph.inputs),
                                       outputs=list(graph.outputs), apply_nodes=list(graph.eqns))
        return types.SimpleNamespace(fgraph=fgraph, inputs=self.inputs, outputs=self.outputs)

    def _repr_html_(self):
        from ..ir.printing import graph_html
        return graph_html(self.graph)


_MISSING = object()


def _replace_storage(target, new):
    """An update that changes the shape: a new array (a copy, so no output the caller holds is aliased)."""
    target._storage = np.array(new, dtype=target._storage.dtype, order="C")


def function(inputs, outputs=None, updates=None, givens=None, allow_input_downcast=None, on_unused_input="raise",
             name=None, mode=None, device=None, no_default_updates=False):
    """Compile ``outputs`` as a function of ``inputs`` (Theano's ``theano.function``).

    ``outputs``: a variable (the call returns one array) or a list (the call returns a list). ``updates``: pairs
    ``(shared_variable, expression)``, all computed from the old values and then written. ``givens``: pairs
    ``(variable, replacement)`` substituted in the graph. Shared variables reached are read at every call.
    ``mode``: a ``Mode`` (``Mode(strict_ieee=True)``, ``Mode().excluding('stabilize')``) or 'FAST_RUN' /
    'FAST_COMPILE'; None follows ``tracejit.theano.config``. ``device``: 'cpu' or 'cuda' (None: config.device).
    Shared variables with a ``default_update`` (random streams' states) are updated too, unless
    ``no_default_updates`` is True (or lists them).
    """
    __tracebackhide__ = True
    try:
        return Function(inputs, outputs, updates, givens, allow_input_downcast, on_unused_input, name, mode,
                        device, no_default_updates)
    except Exception as e:
        raise e.with_traceback(filter_traceback(e.__traceback__))


