"""The on-disk compile cache: atomic writes, damaged entries ignored, size bound, shared across processes."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tracejit.backends import cache

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cdir(tmp_path, monkeypatch):
    d = tmp_path / "tjcache"
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(d))
    monkeypatch.delenv("TRACEJIT_DISABLE_CACHE", raising=False)
    monkeypatch.delenv("TRACEJIT_CACHE_MAX_BYTES", raising=False)
    return d


def _run(code, env_dir, timeout=60):
    env = dict(os.environ, TRACEJIT_CACHE_DIR=str(env_dir), PYTHONPATH=str(ROOT))
    env.pop("TRACEJIT_DISABLE_CACHE", None)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=timeout, check=True).stdout


# ------------------------------------------------------------------------------------------------ settings
def test_cache_dir_defaults_and_overrides(monkeypatch, tmp_path):
    monkeypatch.delenv("TRACEJIT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "tracejit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "tracejit"
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"


def test_disable(cdir, monkeypatch):
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    cache.store("k", b"data")
    assert cache.load("k") is None
    assert not cdir.exists()
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "0")
    cache.store("k", b"data")
    assert cache.load("k") == b"data"


def test_max_bytes_setting(monkeypatch):
    monkeypatch.delenv("TRACEJIT_CACHE_MAX_BYTES", raising=False)
    assert cache.max_bytes() == 256 * 1024 * 1024
    monkeypatch.setenv("TRACEJIT_CACHE_MAX_BYTES", "1e6")
    assert cache.max_bytes() == 1_000_000
    monkeypatch.setenv("TRACEJIT_CACHE_MAX_BYTES", "lots")
    with pytest.raises(ValueError, match="TRACEJIT_CACHE_MAX_BYTES"):
        cache.max_bytes()


def test_bad_arguments(cdir):
    with pytest.raises(TypeError, match="bytes"):
        cache.store("k", "not bytes")
    with pytest.raises(TypeError, match="str"):
        cache.load(b"k")


# ------------------------------------------------------------------------------------------------ keys
def test_make_key_is_sha256_and_unambiguous():
    k = cache.make_key("graph", "znver5", "tracejit=0.1")
    assert len(k) == 64 and int(k, 16) >= 0
    assert k == cache.make_key("graph", "znver5", "tracejit=0.1")
    assert cache.make_key("ab", "c") != cache.make_key("a", "bc")
    assert cache.make_key("a") != cache.make_key("a", "")
    assert cache.make_key(b"x") == cache.make_key("x")


def test_graph_key_depends_on_graph_constants_and_target():
    import tracejit as tj
    x = np.ones(3)
    g1 = tj.make_ir(lambda x: x * 2.0)(x)
    g2 = tj.make_ir(lambda x: x * 3.0)(x)
    g1b = tj.make_ir(lambda x: x * 2.0)(x)
    big1, big2 = np.arange(100.0), np.arange(100.0) + 1
    g3 = tj.make_ir(lambda x: x + big1)(np.ones(100))
    g4 = tj.make_ir(lambda x: x + big2)(np.ones(100))
    assert cache.graph_key(g1) == cache.graph_key(g1b)
    assert cache.graph_key(g1) != cache.graph_key(g2)
    assert str(g3) == str(g4)  # the text abbreviates large constants...
    assert cache.graph_key(g3) != cache.graph_key(g4)  # ...the key does not
    assert cache.graph_key(g1, "cpu") != cache.graph_key(g1, "cuda")
    assert "cpu:" in cache.target_description()
    assert any(v.startswith("llvmlite=") for v in cache.versions())


# ------------------------------------------------------------------------------------------------ entries
@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=2000), key=st.text(min_size=1, max_size=200))
def test_roundtrip_any_key_and_payload(data, key, tmp_path_factory):
    os.environ["TRACEJIT_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "roundtrip")
    try:
        cache.store(key, data)
        assert cache.load(key) == data
        assert cache.load(key + "x") is None
    finally:
        del os.environ["TRACEJIT_CACHE_DIR"]


def test_miss_then_hit(cdir):
    key = cache.make_key("f")
    assert cache.load(key) is None
    cache.store(key, b"\x7fELF object code")
    assert cache.load(key) == b"\x7fELF object code"
    assert cache.entry_path(key).parent == cdir
    assert cache.info()["entries"] == 1


@pytest.mark.parametrize("damage", ["truncate", "flip_payload", "flip_header", "foreign", "empty", "old_format",
                                    "other_key"])
def test_damaged_entry_is_ignored_deleted_and_replaced(cdir, damage):
    key = cache.make_key("g", damage)
    payload = bytes(range(256)) * 8
    cache.store(key, payload)
    path = cache.entry_path(key)
    blob = path.read_bytes()
    if damage == "truncate":
        blob = blob[:len(blob) // 2]
    elif damage == "flip_payload":
        blob = blob[:-10] + bytes([blob[-10] ^ 1]) + blob[-9:]
    elif damage == "flip_header":
        blob = blob[:3] + b"X" + blob[4:]
    elif damage == "foreign":
        blob = b"#!/bin/sh\nrm -rf /\n"
    elif damage == "empty":
        blob = b""
    elif damage == "old_format":
        blob = blob[:8] + (99).to_bytes(4, "little") + blob[12:]
    elif damage == "other_key":
        other = cache.make_key("other")
        blob = cache._encode(other, payload)
    path.write_bytes(blob)
    assert cache.load(key) is None
    assert not path.exists()
    cache.store(key, payload)
    assert cache.load(key) == payload


def test_unreadable_dir_is_a_miss_not_a_crash(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(blocker / "sub"))
    monkeypatch.setattr(cache, "_warned", False)
    with pytest.warns(RuntimeWarning, match="TRACEJIT_CACHE_DIR"):
        cache.store("k", b"x")
    assert cache.load("k") is None


# ------------------------------------------------------------------------------------------------ size bound
def test_eviction_drops_least_recently_used(cdir, monkeypatch):
    monkeypatch.setenv("TRACEJIT_CACHE_MAX_BYTES", str(10_000))
    keys = [cache.make_key(i) for i in range(8)]
    for i, k in enumerate(keys[:4]):
        cache.store(k, bytes(2000))
        os.utime(cache.entry_path(k), (1000 + i, 1000 + i))
    assert all(cache.load(k) is not None for k in keys[:4])  # 4 x ~2.1 kB: under the limit
    for i, k in enumerate(keys[:4]):
        os.utime(cache.entry_path(k), (1000 + i, 1000 + i))
    os.utime(cache.entry_path(keys[0]), (2000, 2000))  # keys[0] used most recently
    cache.store(keys[4], bytes(2000))  # over the limit: evict down to 3/4 of it
    present = [cache.load(k) is not None for k in keys[:5]]
    assert present == [True, False, False, True, True]
    assert cache.info()["bytes"] <= 10_000


def test_eviction_removes_stale_temporary_files(cdir):
    cache.store("k", b"x")
    tmp = cdir / ".tmp-crashed.part"
    tmp.write_bytes(b"half")
    os.utime(tmp, (1, 1))
    fresh = cdir / ".tmp-writing.part"
    fresh.write_bytes(b"in progress")
    cache.evict()
    assert not tmp.exists() and fresh.exists()


# ------------------------------------------------------------------------------------------------ processes
def test_cold_then_warm_across_processes(cdir):
    writer = """
        from tracejit.backends import cache
        key = cache.make_key("graph text", cache.target_description(), *cache.versions())
        print("cold" if cache.load(key) is None else "warm")
        cache.store(key, b"machine code " * 100)
    """
    reader = """
        from tracejit.backends import cache
        key = cache.make_key("graph text", cache.target_description(), *cache.versions())
        data = cache.load(key)
        print("warm" if data == b"machine code " * 100 else "cold")
    """
    assert _run(writer, cdir).strip() == "cold"
    assert _run(reader, cdir).strip() == "warm"


def test_processes_racing_on_one_entry(cdir):
    """Four processes store and load one key 300 times each. Writes are atomic, so once the entry exists every
    load sees one writer's whole payload: never a mix, never a torn file (which would read as a miss)."""
    code = """
        import sys
        from tracejit.backends import cache
        me = int(sys.argv[1])
        payloads = {bytes([i]) * (50_000 + 997 * i) for i in range(4)}
        bad = 0
        for it in range(300):
            cache.store("shared-entry", bytes([me]) * (50_000 + 997 * me))
            got = cache.load("shared-entry")
            if got not in payloads:
                bad += 1
        print(bad)
    """
    env = dict(os.environ, TRACEJIT_CACHE_DIR=str(cdir), PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(i)], env=env,
                              stdout=subprocess.PIPE, text=True) for i in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert [int(o) for o in outs] == [0, 0, 0, 0]
    assert cache.load("shared-entry") in {bytes([i]) * (50_000 + 997 * i) for i in range(4)}
    assert not list(cdir.glob(".tmp-*"))  # no writer left its temporary file behind


LLVM_PROGRAM = """
    import ctypes
    import llvmlite.binding as llvm
    from tracejit.backends import cache
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    ir = ("define double @poly(double %x) {\\n  %a = fmul double %x, %x\\n"
          "  %b = fadd double %a, 3.0\\n  ret double %b\\n}\\n")
    tm = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=2)
    key = cache.make_key(ir, cache.target_description(), *cache.versions())
    obj = cache.load(key)
    state = "warm" if obj is not None else "cold"
    if obj is None:
        obj = tm.emit_object(llvm.parse_assembly(ir))
        cache.store(key, obj)
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), tm)
    engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
    engine.finalize_object()
    poly = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double)(engine.get_function_address("poly"))
    print(state, poly(2.0))
"""


def test_llvm_object_code_cold_then_warm_across_processes(cdir):
    """Object code emitted by LLVM in one process is loaded from the cache and runs in the next."""
    assert _run(LLVM_PROGRAM, cdir).split() == ["cold", "7.0"]
    assert _run(LLVM_PROGRAM, cdir).split() == ["warm", "7.0"]


def test_compiled_code_survives_a_restart(cdir):
    """With a compiling backend: the first process stores machine code, the second loads it and compiles nothing.

    Skipped while graphs run on the numpy reference interpreter (no machine code to cache) or while the backend
    does not consult the cache."""
    probe = """
        import numpy as np
        import tracejit as tj
        from tracejit.backends import cache
        from tracejit.backends.interpreter import InterpretedExecutable
        from tracejit.compile import CompileOptions, build_executable
        calls = []
        real_load = cache.load
        cache.load = lambda key: calls.append(key) or real_load(key)
        exe = build_executable(tj.make_ir(lambda x: x + 1.0)(np.ones(3)), CompileOptions(tiered=False))
        print(isinstance(exe, InterpretedExecutable), len(calls))
    """
    interpreted, loads = _run(probe, cdir).split()
    assert interpreted == "False" and loads != "0"  # the compiling backend goes through the disk cache
    cache.clear()
    user = """
        import numpy as np, tracejit as tj
        from tracejit.backends import cache

        @tj.jit
        def f(x, y):
            for _ in range(5):
                x = np.tanh(x * y + 1.0) - 0.5 * x
            return x

        x, y = np.linspace(-1, 1, 1000), np.linspace(0, 2, 1000)
        before = cache.info()["entries"]
        out = f(x, y)
        print(before, cache.info()["entries"], repr(float(out.sum())))
    """
    cold = _run(user, cdir).split()
    warm = _run(user, cdir).split()
    assert cold[0] == "0" and int(cold[1]) >= 1  # the cold run stored its machine code
    assert warm[0] == warm[1] == cold[1]  # the warm run found it and stored nothing new
    assert warm[2] == cold[2]  # and computed the same result


def test_cache_key_follows_the_source_not_only_the_release(tmp_path):
    """An editable install changes code under one release number: the key carries a digest of the sources, so a
    kernel compiled by other code is never served."""
    from tracejit.backends import cache
    assert any(v == f"source={cache.source_digest()}" for v in cache.versions())
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    (pkg / "notes.txt").write_text("ignored")
    first = cache.tree_digest(pkg)
    assert cache.tree_digest(pkg) == first
    (pkg / "notes.txt").write_text("still ignored")
    assert cache.tree_digest(pkg) == first
    (pkg / "sub" / "b.py").write_text("y = 3\n")
    assert cache.tree_digest(pkg) != first


def test_the_codegen_fingerprint_covers_every_backend_and_lowering_module():
    """Every module of the CPU backend and of lower/ is in the cache key, found by walking the directories: a hand
    list once missed lower/matvec.py (which changes the plan) and backends/cpu/driver.py (which lays out the
    entry's arguments), and a stale cached entry then crashed the process."""
    import os
    import tracejit
    from tracejit.backends.cpu import module
    here = os.path.dirname(module.__file__)
    covered = {os.path.normpath(os.path.join(here, rel)) for rel in module.codegen_sources()}
    pkg = os.path.dirname(tracejit.__file__)
    for sub in ("backends/cpu", "backends/cpu/vecmath", "lower"):
        for f in os.listdir(os.path.join(pkg, sub)):
            if f.endswith(".py"):
                assert os.path.join(pkg, sub, f) in covered, f"{sub}/{f} is not in the codegen fingerprint"


def test_stores_do_not_rescan_the_directory_each_time(cdir, monkeypatch):
    """A program stores one entry per kernel: the size check lists the directory only when this process's stores
    may have crossed the limit (or after cache.RESCAN_STORES stores), not at every store."""
    monkeypatch.setenv("TRACEJIT_CACHE_MAX_BYTES", str(1_000_000))
    scans = []
    real = cache._entries
    monkeypatch.setattr(cache, "_entries", lambda: scans.append(1) or real())
    for i in range(10):
        cache.store(cache.make_key("kernel", i), bytes(1000))
    assert len(scans) <= 1
    monkeypatch.setenv("TRACEJIT_CACHE_MAX_BYTES", str(12_000))  # a new limit: the next store checks again
    for i in range(10, 14):
        cache.store(cache.make_key("kernel", i), bytes(1000))
    assert 2 <= len(scans) <= 4
    assert cache.info()["bytes"] <= 12_000
