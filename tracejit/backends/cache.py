"""On-disk cache of compiled code, so a restarted kernel does not pay for LLVM again.

The backend calls ``load(key)`` before compiling and ``store(key, data)`` after, with
``key = make_key(optimized_graph_text, target_description(), *versions())`` (or ``graph_key(graph)``).

Where: ``$TRACEJIT_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/tracejit``, else ``~/.cache/tracejit``.
``TRACEJIT_DISABLE_CACHE=1`` turns the cache off (load misses, store does nothing).

Robustness, because a cache that can crash or run wrong code is worse than none:
- a writer fills a temporary file in the cache directory, then ``os.replace``-s it onto the entry's name, so a
  reader sees either the old entry, the new one, or none, never half of one, even with many writers at once;
- each entry starts with a header (magic, format version, the full key, payload length, sha256 of the payload);
  a truncated, corrupt, foreign or old-format file fails the check, is deleted and reported as a miss;
- the total size is bounded: after a store, if the entries exceed ``TRACEJIT_CACHE_MAX_BYTES`` (default 256 MiB)
  the least recently used ones (oldest modification time; a hit refreshes it) are deleted until the total is
  under 3/4 of the limit.
No function here raises on I/O trouble: a broken cache only costs a recompile.
"""
from __future__ import annotations

import hashlib
import os
import re
import struct
import tempfile
import time
import warnings
from pathlib import Path

MAGIC = b"TJCACHE\x00"
FORMAT_VERSION = 1
SUFFIX = ".tjc"
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_HEAD = struct.Struct("<8sIH")    # magic, format version, key length
_TAIL = struct.Struct("<Q32s")    # payload length, sha256 of the payload
_SAFE_NAME = re.compile(r"^[0-9A-Za-z_.-]{1,128}$")
_STALE_TMP_SECONDS = 3600
_warned = False


# ------------------------------------------------------------------------------------------------ settings
def cache_dir() -> Path:
    """The directory holding the entries (it may not exist yet)."""
    env = os.environ.get("TRACEJIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tracejit"


def enabled() -> bool:
    return os.environ.get("TRACEJIT_DISABLE_CACHE", "").strip().lower() in ("", "0", "no", "false", "off")


def max_bytes() -> int:
    env = os.environ.get("TRACEJIT_CACHE_MAX_BYTES", "").strip()
    if not env:
        return DEFAULT_MAX_BYTES
    try:
        return max(0, int(float(env)))
    except ValueError:
        raise ValueError(f"TRACEJIT_CACHE_MAX_BYTES must be a number of bytes, got {env!r}") from None


# ------------------------------------------------------------------------------------------------ keys
def make_key(*parts) -> str:
    """sha256 (hex) of the parts. Each part is length-prefixed, so ('ab', 'c') and ('a', 'bc') differ."""
    h = hashlib.sha256(b"tracejit-key-v1")
    for p in parts:
        b = p if isinstance(p, (bytes, bytearray, memoryview)) else str(p).encode("utf-8")
        b = bytes(b)
        h.update(struct.pack("<Q", len(b)))
        h.update(b)
    return h.hexdigest()


def target_description(device: str = "cpu") -> str:
    """What the machine code depends on: CPU name and features from llvmlite (or the GPU's name)."""
    if device != "cpu":
        try:
            from numba import cuda
            dev = cuda.get_current_device()
            return f"{device}:{dev.name}:cc{dev.compute_capability}"
        except Exception:  # noqa: BLE001 - no GPU reachable: the device name is all we know
            return device
    try:
        import llvmlite.binding as llvm
        return f"cpu:{llvm.get_host_cpu_name()}:{llvm.get_host_cpu_features().flatten()}"
    except Exception:  # noqa: BLE001
        import platform
        return f"cpu:{platform.machine()}"


def versions() -> tuple:
    """Versions that change generated code: tracejit (its release and its source), llvmlite, this cache's format.

    The source counts because a working copy or an editable install changes code under one release number: a
    compiled kernel from yesterday's code must not answer for today's."""
    from .. import __version__ as tj_version
    try:
        import llvmlite
        ll = llvmlite.__version__
    except ImportError:
        ll = "none"
    return (f"tracejit={tj_version}", f"source={source_digest()}", f"llvmlite={ll}",
            f"cache-format={FORMAT_VERSION}")


_SOURCE_DIGEST = None


def source_digest() -> str:
    """A hash of the package's Python sources, computed once per process."""
    global _SOURCE_DIGEST
    if _SOURCE_DIGEST is None:
        _SOURCE_DIGEST = tree_digest(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return _SOURCE_DIGEST


def tree_digest(root) -> str:
    """sha256 over the names, sizes and modification times of the .py files under ``root``, in a fixed order (as
    Python's own .pyc files are invalidated: reading ~150 files' contents cost 7 ms of every first call)."""
    h = hashlib.sha256()
    root = os.fspath(root).rstrip(os.sep)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(n for n in dirnames if n != "__pycache__")
        rel = dirpath[len(root) + 1:]  # (os.path.relpath per file cost more than the stat)
        for name in sorted(filenames):
            if name.endswith(".py"):
                st = os.stat(os.path.join(dirpath, name))
                h.update(f"{rel}/{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:16]


def graph_fingerprint(graph) -> str:
    """The optimized graph's text, plus what the text abbreviates: large constants' bytes, shape constraints.
    Kept on the graph (an optimized graph is not edited): each tier's cache probe asks for it."""
    fp = getattr(graph, "_fingerprint", None)
    if fp is None:
        fp = _fingerprint(graph)
        try:
            graph._fingerprint = fp
        except AttributeError:  # a graph type without room for it: computed again next time
            pass
    return fp


def _fingerprint(graph) -> str:
    from ..ir.printing import graph_text
    parts = [graph_text(graph)]
    for v in graph.constants():
        c = v.const
        parts.append(f"const {c.dtype.str}{c.shape} {hashlib.sha256(c.tobytes()).hexdigest()}")
    parts.append(f"constraints {[(str(c.a), str(c.b)) for c in graph.constraints]!r}")
    parts += [f"region {p.key}" for e in graph.eqns for _, ps in e.params
              for p in (ps if isinstance(ps, tuple) else (ps,)) if hasattr(p, "witness")]  # bodies' constants
    parts.append(f"symbols {sorted(graph.symbols.items())!r}")
    return "\n".join(parts)


def graph_key(graph, device: str = "cpu", *extra) -> str:
    """The key of a compiled graph: its fingerprint, the target, the versions, and any backend options."""
    return make_key(graph_fingerprint(graph), target_description(device), *versions(), *extra)


# ------------------------------------------------------------------------------------------------ entries
def entry_path(key: str) -> Path:
    name = key if _SAFE_NAME.match(key) else hashlib.sha256(key.encode("utf-8")).hexdigest()
    return cache_dir() / (name + SUFFIX)


def _encode(key: str, data: bytes) -> bytes:
    k = key.encode("utf-8")
    return (_HEAD.pack(MAGIC, FORMAT_VERSION, len(k)) + k
            + _TAIL.pack(len(data), hashlib.sha256(data).digest()) + data)


def _decode(key: str, blob: bytes):
    """The payload if ``blob`` is a complete, intact entry for ``key``; None otherwise."""
    if len(blob) < _HEAD.size:
        return None
    magic, version, klen = _HEAD.unpack_from(blob, 0)
    if magic != MAGIC or version != FORMAT_VERSION:
        return None
    pos = _HEAD.size
    if blob[pos:pos + klen] != key.encode("utf-8"):
        return None
    pos += klen
    if len(blob) < pos + _TAIL.size:
        return None
    length, digest = _TAIL.unpack_from(blob, pos)
    pos += _TAIL.size
    data = blob[pos:]
    if len(data) != length or hashlib.sha256(data).digest() != digest:
        return None
    return data


def load(key: str) -> bytes | None:
    """The bytes stored under ``key``, or None (miss, disabled, or a damaged entry, which is then deleted)."""
    if not isinstance(key, str):
        raise TypeError(f"cache key must be a str, got {type(key).__name__}")
    if not enabled():
        return None
    path = entry_path(key)
    try:
        with open(path, "rb") as f:
            blob = f.read()
            st = os.fstat(f.fileno())
    except OSError:
        return None
    data = _decode(key, blob)
    if data is None:
        _discard(path, st)
        return None
    try:
        os.utime(path)  # a hit makes the entry most recently used
    except OSError:
        pass
    return data


def _discard(path: Path, st):
    """Delete a damaged entry, unless another process has already replaced it with a new file."""
    try:
        now = os.stat(path)
        if (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev):
            os.unlink(path)
    except OSError:
        pass


def store(key: str, data: bytes) -> None:
    """Save ``data`` under ``key`` atomically, then keep the directory under its size limit."""
    if not isinstance(key, str):
        raise TypeError(f"cache key must be a str, got {type(key).__name__}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"cache data must be bytes, got {type(data).__name__}")
    if not enabled():
        return
    data = bytes(data)
    path = entry_path(key)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
        blob = _encode(key, data)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        _warn_once(f"tracejit: could not write the compile cache in {path.parent} ({e}); "
                   f"set TRACEJIT_CACHE_DIR to a writable directory or TRACEJIT_DISABLE_CACHE=1")
        return
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    _evict_after_store(len(blob))


# What this process knows of the directory's size since its last scan: a store rescans (a stat per entry) only
# when its own stores may have crossed the limit, or after RESCAN_STORES stores or RESCAN_SECONDS (other
# processes write too), so that a program storing one entry per kernel does not rescan a big cache per kernel.
RESCAN_STORES = 32
RESCAN_SECONDS = 30.0
_scan = {"where": None, "bytes": 0, "stores": 0, "time": 0.0}


def _evict_after_store(nbytes):
    where = (str(cache_dir()), max_bytes())
    fresh = _scan["where"] == where and _scan["stores"] < RESCAN_STORES \
        and time.monotonic() - _scan["time"] < RESCAN_SECONDS
    if fresh and _scan["bytes"] + nbytes <= where[1]:
        _scan["bytes"] += nbytes
        _scan["stores"] += 1
        return
    evict()


def _warn_once(msg):
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


# ------------------------------------------------------------------------------------------------ housekeeping
def _entries():
    """(path, size, mtime) of every entry; also deletes temporary files abandoned by crashed writers."""
    out = []
    try:
        it = list(os.scandir(cache_dir()))
    except OSError:
        return out
    now = time.time()
    for d in it:
        try:
            st = d.stat(follow_symlinks=False)
        except OSError:
            continue
        if d.name.endswith(SUFFIX):
            out.append((d.path, st.st_size, st.st_mtime))
        elif d.name.startswith(".tmp-") and now - st.st_mtime > _STALE_TMP_SECONDS:
            try:
                os.unlink(d.path)
            except OSError:
                pass
    return out


def evict(limit: int | None = None) -> int:
    """Delete least recently used entries while the total exceeds ``limit``; returns the bytes freed."""
    limit = max_bytes() if limit is None else limit
    entries = _entries()
    total = sum(size for _, size, _ in entries)
    _scan.update(where=(str(cache_dir()), limit), bytes=total, stores=0, time=time.monotonic())
    if total <= limit:
        return 0
    target = limit * 3 // 4  # leave room, so the next stores do not each rescan and evict
    freed = 0
    for path, size, _ in sorted(entries, key=lambda e: e[2]):
        if total - freed <= target:
            break
        try:
            os.unlink(path)
            freed += size
        except FileNotFoundError:
            freed += size  # another process evicted it
        except OSError:
            pass
    _scan["bytes"] = total - freed
    return freed


def info() -> dict:
    """Where the cache is, how many entries, how many bytes, and its limit."""
    entries = _entries()
    return {"dir": str(cache_dir()), "enabled": enabled(), "entries": len(entries),
            "bytes": sum(s for _, s, _ in entries), "max_bytes": max_bytes()}


def clear() -> None:
    """Delete every entry (and leftover temporary file)."""
    try:
        it = list(os.scandir(cache_dir()))
    except OSError:
        return
    for d in it:
        if d.name.endswith(SUFFIX) or d.name.startswith(".tmp-"):
            try:
                os.unlink(d.path)
            except OSError:
                pass


__all__ = ["cache_dir", "enabled", "max_bytes", "make_key", "target_description", "versions", "graph_fingerprint",
           "graph_key", "load", "store", "evict", "info", "clear"]
