"""Kernels compiled once per structure (issue 16): programs made of the same step bodies share their machine code
within a process and through the disk cache, kernel by kernel; damaged kernel entries cost only a recompile."""
import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tracejit as tj
from tracejit.backends import cache
from tracejit.backends.cpu import kernel_library, module
from tracejit.backends.cpu.executable import LLVMExecutable
from tracejit.compile import CompileOptions, build_executable

ROOT = Path(__file__).resolve().parent.parent
rng = np.random.default_rng(16)


def _layers(depth):
    def loss(x, *ws):
        h = x
        for w in ws[:depth]:
            h = np.tanh(h @ w) + 0.1 * np.exp(-h * h)
        return np.sum(h * h, axis=0), h
    return loss


def _numpy_layers(depth, x, ws):
    h = x
    for w in ws[:depth]:
        h = np.tanh(h @ w) + 0.1 * np.exp(-h * h)
    return np.sum(h * h, axis=0), h


ARGS = [rng.standard_normal((16, 16)) / 4 for _ in range(4)]


def _build(depth):
    exe = build_executable(tj.make_ir(_layers(depth))(*ARGS), CompileOptions(tiered=False))
    assert isinstance(exe, LLVMExecutable) and exe.tier == 1
    return exe


def _check(exe, depth):
    got = exe.run([np.ascontiguousarray(a) for a in ARGS])
    for g, w in zip(got, _numpy_layers(depth, ARGS[0], ARGS[1:])):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
    return got


@pytest.fixture
def fresh_library(monkeypatch):
    kernel_library.LIBRARY.clear()
    yield kernel_library.LIBRARY
    kernel_library.LIBRARY.clear()


def test_programs_sharing_kernels_compile_each_once(fresh_library, monkeypatch):
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    one = _build(2)
    assert one.compiled.kernels and one.compile_stats.get("kernels_compiled", 0) == len(one.compiled.kernels)
    before = list(module.COMPILES)
    three = _build(3)  # three layers of the same kernels: a new program, no new kernel
    assert three.compile_stats.get("kernels_compiled", 0) == 0
    assert three.compile_stats["kernels_reused"] == len(three.compiled.kernels)
    assert sum(module.COMPILES) - sum(before) == 1  # LLVM compiled the new program's entry only
    assert {id(k) for k in three.compiled.kernels} <= {id(k) for k in one.compiled.kernels}
    _check(one, 2)
    _check(three, 3)


def test_shared_kernels_give_the_results_of_one_whole_module(fresh_library, monkeypatch):
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    split = _check(_build(3), 3)
    monkeypatch.setattr(kernel_library, "SPLIT_MIN_FUNCTIONS", 10 ** 9)
    whole_exe = _build(3)
    assert whole_exe.compiled.kernels == ()
    for a, b in zip(split, _check(whole_exe, 3)):
        assert np.array_equal(a, b)


def test_a_dropped_program_leaves_its_kernels_to_the_next(fresh_library, monkeypatch):
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    exe = _build(2)
    import weakref
    entry = weakref.ref(exe.compiled)
    n = len(exe.compiled.kernels)
    del exe
    gc.collect()
    assert entry() is None  # the program's own machine code is freed
    exe = _build(2)  # its kernels are not: the same program again compiles only its entry
    assert exe.compile_stats.get("kernels_compiled", 0) == 0 and exe.compile_stats["kernels_reused"] == n
    _check(exe, 2)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_kernel_entries_fall_back_to_compiling(fresh_library, tmp_path, monkeypatch, damage):
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TRACEJIT_DISABLE_CACHE", raising=False)
    exe = _build(2)
    keys = [k.kernel_key for k in exe.compiled.kernels]
    want = _check(exe, 2)
    del exe
    fresh_library.clear()
    gc.collect()
    for k in keys:
        path = cache.entry_path(k)
        blob = path.read_bytes()
        path.write_bytes(blob[:len(blob) // 2] if damage == "truncate" else b"\x00garbage" * 64)
    again = _build(2)  # the program's entry is on disk, but not the kernels it calls: a miss, compiled afresh
    assert again.compile_stats["disk_cache"] == "miss"
    assert again.compile_stats["kernels_compiled"] == len(keys)
    for a, b in zip(want, _check(again, 2)):
        assert np.array_equal(a, b)
    fresh_library.clear()
    third = _build(2)  # and the rewritten entries serve the next one
    assert third.compile_stats["disk_cache"] == "hit"


def test_a_new_program_of_known_kernels_compiles_only_its_entry_in_a_fresh_process(tmp_path):
    code = """
        import sys, numpy as np
        sys.path.insert(0, {tests!r})
        from test_kernel_cache import _build, _check
        from tracejit.backends.cpu import module
        exe = _build(int(sys.argv[1]))
        _check(exe, int(sys.argv[1]))
        print(exe.compile_stats.get("kernels_compiled", 0), exe.compile_stats.get("kernels_from_disk", 0),
              sum(module.COMPILES))
    """.format(tests=str(ROOT / "tests"))
    env = dict(os.environ, TRACEJIT_CACHE_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    env.pop("TRACEJIT_DISABLE_CACHE", None)

    def run(depth):
        p = subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(depth)], env=env, capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stderr[-2000:]
        return [int(v) for v in p.stdout.split()]
    compiled, from_disk, llvm = run(2)
    assert compiled >= 2 and from_disk == 0 and llvm == compiled + 1
    compiled, from_disk, llvm = run(3)  # a program never seen, made of the kernels on disk
    assert compiled == 0 and from_disk >= 2 and llvm == 1


def test_a_jitted_program_of_known_kernels_starts_in_the_optimized_tier(fresh_library, monkeypatch):
    """No quick tier for a program whose kernels are all compiled already: only its entry is compiled."""
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    keep = _build(2)  # the optimized kernels, alive in this process
    before = sum(module.COMPILES)
    f = tj.jit(_layers(3))
    got = f(*ARGS)
    exe = next(iter(f._cache.values()))[0]
    assert exe.tier == 1 and exe.compile_stats.get("kernels_compiled", 0) == 0
    assert sum(module.COMPILES) - before == 1
    for g, w in zip(got, _numpy_layers(3, ARGS[0], ARGS[1:])):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
    del keep
