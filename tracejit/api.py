"""The public transformations: ``jit`` (signature -> cache -> executable), ``make_ir``, ``Lowered``."""
from __future__ import annotations

import functools
import inspect
import threading
import time
import warnings
import weakref
from collections import namedtuple

import numpy as np

from .compile import CompileOptions, build_executable, check_device, compile as compile_graph, \
    optimize as optimize_graph
from .call_path import HITS, MAX_FAST_ENTRIES, generate_call, layout as _layout
from .errors import filter_traceback
from .trace import guards as _guards
from .trace.trace import as_runtime_array, leaf_signature, trace, tree_flatten, \
    tree_unflatten
from .trace.tracer import Tracer
from .trace.unify import unify_equal_lengths

CacheInfo = namedtuple("CacheInfo", ["hits", "misses", "size"])
_ndarray = np.ndarray


class _Entry(tuple):
    """(exe, out_tree, shared): one compiled specialization of a signature: it serves a call when ``check`` (its guards) holds. ``mutated``:
    the argument leaves the function writes into; their final values follow the outputs (numpy's in-place meaning).
    The CPU backend stores them into the caller's arrays where that is safe (lower/inplace.py); the others are
    copied into the caller's arrays after the call."""
    def __new__(cls, exe, out_tree, shared, guards, check, mutated):
        self = super().__new__(cls, (exe, out_tree, shared))
        self.exe, self.out_tree, self.shared = exe, out_tree, shared
        self.guards, self.check, self.mutated = guards, check, mutated
        self.layout = None  # per positional argument, what the generated call path tests (see _layout)
        self.same_objects = ()  # ((j, i), ...): leaf j was the same array as leaf i in the call traced
        return self

    def serves(self, leaves) -> bool:
        return self.check is None or self.check(leaves)


class _ArgSpec:
    """Splits a call's arguments into static values and traced pytree leaves, and back."""

    def __init__(self, fun, static_argnums, static_argnames):
        self.fun = fun
        try:
            self.sig = inspect.signature(fun)
        except (TypeError, ValueError):
            self.sig = None
        if isinstance(static_argnums, int):
            static_argnums = (static_argnums,)
        if isinstance(static_argnames, str):
            static_argnames = (static_argnames,)
        self.static_argnums = tuple(static_argnums)
        self.static_argnames = tuple(static_argnames)
        if self.sig is not None:
            params = list(self.sig.parameters.values())
            for n in self.static_argnames:
                for i, p in enumerate(params):
                    if p.name == n and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) \
                            and i not in self.static_argnums:
                        self.static_argnums += (i,)
            for i in self.static_argnums:
                if i < len(params) and params[i].kind == params[i].POSITIONAL_OR_KEYWORD \
                        and params[i].name not in self.static_argnames:
                    self.static_argnames += (params[i].name,)
        # a plain signature (every parameter positional-or-keyword): a call by keyword is the same call by position
        plain = self.sig is not None and all(p.kind == p.POSITIONAL_OR_KEYWORD for p in self.sig.parameters.values())
        self.names = tuple(self.sig.parameters) if plain else None

    def positional(self, args, kwargs):
        """``args`` extended by keyword arguments that name the next parameters in order (``f(x, y=2.0)`` is
        ``f(x, 2.0)``: one cache entry and the fast call path for both), or None for any other call."""
        names = self.names
        n, m = len(args), len(args) + len(kwargs)
        if names is None or m > len(names):
            return None
        try:
            return args + tuple([kwargs[k] for k in names[n:m]])
        except KeyError:  # a gap (a later parameter by keyword, an earlier one left to its default) or a bad name
            return None

    def check(self, args, kwargs):
        """A TypeError as Python gives for arguments that do not fit fun's signature."""
        if self.sig is not None:
            try:
                self.sig.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{getattr(self.fun, '__name__', 'function')}(): {e}") from None

    def split(self, args, kwargs, validate=True):
        if validate:
            self.check(args, kwargs)
        nargs = len(args)
        statics = []
        dyn_args = []
        for i, a in enumerate(args):
            if i in self.static_argnums or (i - nargs) in self.static_argnums:
                statics.append(("pos", i, _hashable(a, f"static argument {i}")))
            else:
                dyn_args.append(a)
        dyn_kwargs = {}
        for k in sorted(kwargs):
            if k in self.static_argnames:
                statics.append(("kw", k, _hashable(kwargs[k], f"static argument {k!r}")))
            else:
                dyn_kwargs[k] = kwargs[k]
        return tuple(statics), (tuple(dyn_args), dyn_kwargs)

    @staticmethod
    def join(statics, dyn_args, dyn_kwargs):
        args = list(dyn_args)
        kwargs = dict(dyn_kwargs)
        for kind, k, v in statics:
            if kind == "pos":
                args.insert(k, v)
            else:
                kwargs[k] = v
        return args, kwargs


def _same_objects(leaves) -> tuple:
    """((j, i), ...): array leaf j is the same object as the earlier leaf i."""
    first, out = {}, []
    for j, x in enumerate(leaves):
        if type(x) is _ndarray:
            i = first.setdefault(id(x), j)
            if i != j:
                out.append((j, i))
    return tuple(out)


def _contiguous(x):
    return np.ascontiguousarray(x) if type(x) is _ndarray and not x.flags.c_contiguous else x


def _hashable(v, what):
    try:
        hash(v)
    except TypeError:
        raise TypeError(f"{what} must be hashable to be static (it is baked into the trace), got an object of "
                        f"type {type(v).__name__}; pass a tuple instead of a list, or make it a traced argument")
    return v


def _arg_names(treedef_args, n):
    return [f"arg{i}" for i in range(n)]


class Jitted:
    """A function compiled per input signature. Calls with a known signature go straight to machine code."""

    def __init__(self, fun, static_argnums=(), static_argnames=(), device="cpu", strict_ieee=False,
                 passes=None, transform=None):
        self.fun = fun
        self.options = CompileOptions(device=check_device(device), strict_ieee=strict_ieee, passes=passes)
        self.device, self.strict_ieee, self.passes = self.options.device, strict_ieee, passes
        self.transform = transform  # Graph -> Graph applied after tracing (autodiff)
        self.spec = _ArgSpec(fun, static_argnums, static_argnames)
        self._cache: dict = {}  # signature (or (signature, n) for further specializations) -> _Entry
        self._specs: dict = {}  # signature -> [_Entry], tried in order
        self._count = 0
        self._warned = False
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        functools.update_wrapper(self, fun)
        # the call path is generated per function (see _make_call); a one-off subclass makes it __call__ itself
        # (a subclass with a __call__ of its own keeps it, and the general path)
        cls = type(self)
        if cls.__call__ is Jitted.__call__:
            self.__class__ = type(cls.__name__, (cls,), {"__module__": cls.__module__, "_generated_call": True})

    # ------------------------------------------------------------------------------------------------ calls
    def __call__(self, *args, **kwargs):
        __tracebackhide__ = True  # IPython and pytest hide this re-raising frame (the only tracejit frame left)
        try:
            return self._call(args, kwargs)
        except Exception as e:
            raise e.with_traceback(filter_traceback(e.__traceback__))

    def _key(self, args, kwargs, validate=True):
        statics, dyn = self.spec.split(args, kwargs, validate)
        leaves, treedef = tree_flatten(dyn)
        if any(isinstance(x, Tracer) for x in leaves):
            return None, statics, leaves, treedef
        sig = tuple(leaf_signature(x, i) for i, x in enumerate(leaves))
        same = _same_objects(leaves)  # f(a, a): traced with one tracer for both (trace._one_tracer_per_array)
        return ((statics, treedef, sig, same) if same else (statics, treedef, sig)), statics, leaves, treedef

    def _call(self, args, kwargs):
        if kwargs and (b := self.spec.positional(args, kwargs)) is not None:
            args, kwargs = b, {}
        # the arguments are checked against fun's signature only on a miss: a hit has a known-good structure
        key, statics, leaves, treedef = self._key(args, kwargs, validate=False)
        if key is None:
            return self.fun(*args, **kwargs)  # called inside another trace (jit, grad): inline
        entry = self._lookup(key, leaves)
        if entry is None:
            self.spec.check(args, kwargs)
            entry = self._compile(key, statics, leaves, treedef)
            self._maybe_fast(args, kwargs, statics, entry)
        else:
            self._hits += 1
        if getattr(entry.exe, "segmented", False):  # its steps copy what they need contiguous (library calls
            arrays = [as_runtime_array(x) for x in leaves]  # read a complex argument's parts as they are)
        else:
            arrays = [_contiguous(as_runtime_array(x)) for x in leaves]
        if entry.shared:  # shared variables the function reads: their current values, at every call
            arrays += [s.get_value(borrow=True) for s in entry.shared]
        outs = entry.exe.run(arrays)
        out = tree_unflatten(entry.out_tree, outs)
        if entry.mutated:  # numpy's in-place meaning: the written arguments are updated for the caller
            out, finals = out
            for i, v in zip(entry.mutated, finals):
                if v is not leaves[i]:  # else stored into the argument by the program (lower/inplace.py)
                    np.copyto(leaves[i], v)
        return out

    def _lookup(self, key, leaves):
        for entry in self._specs.get(key, ()):
            if entry.serves(leaves):
                return entry
        return None

    def _maybe_fast(self, args, kwargs, statics, entry):
        """Describe a new entry for the generated call path when its calls can take it (positional arrays, Python
        scalars and static values; no shared variables), and regenerate that path."""
        if not kwargs and not entry.shared:
            nargs = len(args)
            static_pos = {i for i in range(nargs) if i in self.spec.static_argnums
                          or (i - nargs) in self.spec.static_argnums}
            entry.layout = _layout(args, static_pos)
            if (entry.mutated or entry.same_objects) and entry.layout and \
                    any(s[0] == "complex" for s in entry.layout):
                entry.layout = None  # writes into a complex argument are copied back by the general path
        with self._lock:
            self._make_call()

    def _make_call(self):
        """Generate this function's ``__call__``: for each argument count seen, a chain of tests on the arguments
        (type, dtype object, rank and size-1 dims, layout, static values) and the guards of each entry, in the
        order the general path tries them, that runs the entry's executable with no signature built, no dict
        looked up and no loop. Anything else (keywords, pytrees, a new signature, failing guards) takes the
        general path, which compiles and calls this again."""
        cls = type(self)
        if "_generated_call" not in cls.__dict__:
            return
        entries = [e for es in self._specs.values() for e in es if e.layout is not None][:MAX_FAST_ENTRIES]
        self._collect_fast_hits()
        cls.__call__ = generate_call(entries, Jitted._call, self.spec.names) if entries else Jitted.__call__

    def _collect_fast_hits(self):
        """Move the generated call path's count of the calls it served into ``_hits`` (a global of that function
        counts them: cheaper per call than an attribute of this object)."""
        counts = getattr(type(self).__dict__.get("__call__"), "__globals__", {})
        if HITS in counts:
            self._hits += counts[HITS]
            counts[HITS] = 0

    def _optimized_tier_ready(self):
        """A tiered executable's optimized code is in place: the call path inlines its driver from now on."""
        with self._lock:
            self._make_call()

    def _compile(self, key, statics, leaves, treedef):
        with self._lock:
            entry = self._lookup(key, leaves)
            if entry is not None:
                self._hits += 1
                return entry
            info: dict = {}
            t0 = time.perf_counter()
            info["share_same_objects"] = self.transform is None  # (a gradient needs each argument's own input)
            graph, out_tree = self._trace(statics, leaves, treedef, info)
            # outputs that are an argument's final value may be stored into the argument itself
            updates = info["updates"] if self.transform is None else None
            exe = compile_graph(graph, self.options, name=getattr(self.fun, "__qualname__", "function"),
                                trace_s=time.perf_counter() - t0, updates=updates)
            self._misses += 1
            from .theano.shared import shared_inputs_of
            entry = _Entry(exe, out_tree, shared_inputs_of(graph), info["guards"],
                           _guards.compile_check(info["guards"], graph.symbols), info["mutated"])
            entry.symbols = graph.symbols  # where each length symbol is read (the guards' lengths)
            entry.same_objects = key[3] if len(key) == 4 else ()
            when_optimized = getattr(exe, "when_optimized", None)
            if when_optimized is not None:  # (weakly: the executable must not keep this function alive)
                when_optimized(weakref.WeakMethod(self._optimized_tier_ready))
            self._store(key, entry)
            return entry

    def _store(self, key, entry):
        """Add a specialization; past TRACEJIT_MAX_SPECIALIZATIONS the oldest is dropped (warned once)."""
        entries = self._specs.setdefault(key, [])
        limit = _guards.max_specializations()
        if len(entries) >= limit:
            old = entries.pop(0)
            self._cache = {k: e for k, e in self._cache.items() if e is not old}
            if not self._warned:
                self._warned = True
                lines = sorted({g.line for g in entry.guards if g.line})
                warnings.warn(f"tracejit: {getattr(self.fun, '__qualname__', self.fun)} was specialized more than "
                              f"{limit} times for one signature (the trace needed concrete values at "
                              f"{', '.join(lines) or 'an unknown line'}: len(), range(), int() or an `if` on a length "
                              f"or int argument); the oldest specialization is dropped at each new one. Keep such "
                              f"values symbolic, make the argument static, or raise TRACEJIT_MAX_SPECIALIZATIONS.",
                              RuntimeWarning, stacklevel=4)
        entries.append(entry)
        self._count += 1
        self._cache[key if key not in self._cache else (key, self._count)] = entry
        self._make_call()  # an entry may have been dropped: the call path must not run it any more

    def _trace(self, statics, leaves, treedef, info=None):
        def rebuild(tracers):
            dyn_args, dyn_kwargs = tree_unflatten(treedef, tracers)
            return self.spec.join(statics, dyn_args, dyn_kwargs)
        from .trace.complex_functions import PAIR_FORM_MATMUL
        on_host = PAIR_FORM_MATMUL.set(self.options.device != "cpu")
        try:  # raw leaves: Python scalars stay weak
            graph, out_tree = trace(self.fun, list(leaves), treedef, rebuild, info=info)
        finally:
            PAIR_FORM_MATMUL.reset(on_host)
        graph = unify_equal_lengths(graph)  # input lengths the checks force equal: one symbol from here on
        if self.transform is not None:
            graph = self.transform(graph)
        from .theano.shared import add_shared_inputs
        return add_shared_inputs(graph), out_tree

    # ------------------------------------------------------------------------------------------------ introspection
    def cache_info(self) -> CacheInfo:
        self._collect_fast_hits()
        return CacheInfo(self._hits, self._misses, len(self._cache))

    def cache_clear(self):
        with self._lock:
            self._cache.clear()
            self._specs.clear()
            self._collect_fast_hits()
            self._hits = self._misses = 0
            self._make_call()

    def compile(self, *args, **kwargs) -> "Jitted":
        """Compile ahead of time for these arguments' signature and wait for the optimized code (a first call
        would otherwise run quick first-tier code while the optimized tier compiles in the background); returns
        this function, whose calls with that signature then run optimized code from the start."""
        __tracebackhide__ = True
        try:
            key, statics, leaves, treedef = self._key(args, kwargs)
            if key is None:
                raise TypeError("compile() takes concrete arguments, not values being traced")
            entry = self._lookup(key, leaves)
            if entry is None:
                self.spec.check(args, kwargs)
                entry = self._compile(key, statics, leaves, treedef)
                self._maybe_fast(args, kwargs, statics, entry)
            wait = getattr(entry.exe, "wait", None)
            if wait is not None:
                wait()
            return self
        except Exception as e:
            raise e.with_traceback(filter_traceback(e.__traceback__))

    def lower(self, *args, **kwargs) -> "Lowered":
        __tracebackhide__ = True
        try:
            key, statics, leaves, treedef = self._key(args, kwargs)
            info: dict = {}
            graph, _ = self._trace(statics, leaves, treedef, info)
            opt, log = optimize_graph(graph, self.options, with_log=True)
            return Lowered(graph, opt, log, self.options, [as_runtime_array(x) for x in leaves], info["guards"])
        except Exception as e:
            raise e.with_traceback(filter_traceback(e.__traceback__))

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self, obj)

    def __repr__(self):
        return f"<tracejit.jit of {getattr(self.fun, '__qualname__', self.fun)!r}>"


class Lowered:
    """A traced, optimized and compiled program for one signature, not yet run."""

    def __init__(self, traced, optimized, log, options, example_args, guards=()):
        self.guards = list(guards)  # what this specialization relies on (guards.Guard), shown by as_text
        self.traced = traced
        self.optimized = optimized
        self.pass_log = log
        self.options = options.replace(tiered=False)  # lower() shows and runs the optimized tier only
        self.device = options.device
        self._exe = None
        self._args = example_args

    @property
    def executable(self):
        if self._exe is None:
            self._exe = build_executable(self.optimized, self.options)
        return self._exe

    def compile(self) -> "Lowered":
        """Compile now (the optimized tier: lower() never uses the quick one) instead of at first use."""
        _ = self.executable
        return self

    @property
    def num_kernels(self) -> int:
        return self.executable.num_kernels

    def as_text(self, stage="optimized") -> str:
        head = "".join(f"# guard: {g}\n" for g in self.guards)
        if stage == "traced":
            return head + str(self.traced)
        if stage == "optimized":
            return head + str(self.optimized)
        if stage == "llvm":  # the generated code: LLVM IR on the CPU, the kernels' Python source on CUDA
            exe = self.executable
            return exe.cuda_source() if hasattr(exe, "cuda_source") else exe.llvm_ir()
        if stage == "asm":
            return self.executable.asm()
        raise ValueError(f"unknown stage {stage!r}: use 'traced', 'optimized', 'llvm' or 'asm'")

    def memory_plan(self):
        return self.executable.memory_plan(self._args)

    def explain(self):
        """The graph after each pass with what each changed, then the kernels (see tracejit.inspect)."""
        from .inspect import explain
        return explain(self)

    def __str__(self):
        return self.as_text("optimized")

    def _repr_html_(self):
        from .inspect import lowered_html
        return lowered_html(self)


def jit(fun=None, *, static_argnums=(), static_argnames=(), device="cpu", strict_ieee=False, passes=None):
    """Compile ``fun`` per input signature (dtype, rank, size-1 dims, layout); lengths stay symbolic."""
    if fun is None:
        return lambda f: jit(f, static_argnums=static_argnums, static_argnames=static_argnames, device=device,
                             strict_ieee=strict_ieee, passes=passes)
    if isinstance(fun, Jitted) and not static_argnums and not static_argnames and device == fun.device:
        return fun
    return Jitted(fun, static_argnums, static_argnames, device, strict_ieee, passes)


def make_ir(fun, optimize=True, static_argnums=(), passes=None, strict_ieee=False):
    """``make_ir(f)(*args)`` returns f's IR Graph (optimized by default; ``passes`` picks a subset)."""
    j = fun if isinstance(fun, Jitted) else Jitted(fun, static_argnums, (), "cpu", strict_ieee, passes)

    @functools.wraps(getattr(fun, "fun", fun))
    def build(*args, **kwargs):
        key, statics, leaves, treedef = j._key(args, kwargs)
        graph, _ = j._trace(statics, leaves, treedef, {})
        if not optimize:
            return graph
        chosen = passes if passes is not None else j.passes
        return optimize_graph(graph, j.options.replace(strict_ieee=strict_ieee, passes=chosen))
    return build


