"""Memory that tracejit keeps, measured as resident set size (RSS), for the two patterns of issue 17.

    python benchmarks/memory.py                          # this tree: both patterns + the three-output timing
    python benchmarks/memory.py --before /tmp/tj-base    # the same beside another tree (e.g. `git archive` of main)
    python benchmarks/memory.py --cycles 400 --quick     # shorter

Patterns, each in a fresh process so that one does not inherit the other's memory:
- outputs: 10 jitted functions, each called once on a 10^7-element float64 array, every result dropped, then
  gc.collect(): the RSS still held beyond the inputs is memory kept for recycling.
- compile: distinct small jitted functions compiled, called and dropped in a loop (the disk cache off, so each one
  runs LLVM); RSS at 0, 1/4, 1/2, 3/4 and all of the cycles: flat when dead executables give everything back.
- diff3: median time of ``d = x - y; return d, abs(d), d ** 2`` on 4000x2500 float64 matrices (benchmarks/run.py's
  three-output workload), results dropped each call, with recycling on and (this tree) off; several processes per
  row, in turn, since memory bandwidth differs from process to process on these machines.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------------ workers
def worker_outputs(args):
    import gc
    import numpy as np
    import tracejit as tj
    x = np.ones(10**7)
    fns = [tj.jit(eval(f"lambda x: x * {i + 2}.0 + 1.0")) for i in range(10)]
    fns[0](np.ones(10))  # compiler loaded before the baseline
    gc.collect()
    base = rss_mb()
    for f in fns:
        f(x)
    del f
    gc.collect()
    held = rss_mb() - base
    del fns
    gc.collect()
    return {"held_mb": held, "after_drop_mb": rss_mb() - base}


def worker_compile(args):
    import gc
    import numpy as np
    import tracejit as tj
    x = np.ones(16)
    n = args.cycles
    marks = sorted({0, n // 4, n // 2, 3 * n // 4, n})
    out = {}
    for i in range(n + 1):
        if i in marks:
            gc.collect()
            out[str(i)] = rss_mb()
        if i == n:
            break
        f = tj.jit(eval(f"lambda x: x * {i}.25 + 1.0"))
        f(x)
        del f
    return out


def worker_diff3(args):
    import statistics
    import time
    import numpy as np
    import tracejit as tj
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4000, 2500)), rng.standard_normal((4000, 2500))

    @tj.jit
    def diff3(x, y):
        d = x - y
        return d, abs(d), d ** 2
    for _ in range(3):
        diff3(x, y)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        diff3(x, y)  # results dropped at once, as in a loop that overwrites them
        times.append(time.perf_counter() - t0)
    return {"ms": statistics.median(times) * 1e3}


WORKERS = {"outputs": worker_outputs, "compile": worker_compile, "diff3": worker_diff3}


# ------------------------------------------------------------------------------------------------ driver
def run_worker(name, tree, args, env_extra=None):
    """Run one worker in a fresh process importing tracejit from ``tree``; its JSON result (or the error)."""
    env = dict(os.environ, PYTHONPATH=tree + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env_extra or {}))
    with tempfile.TemporaryDirectory() as cache:
        env["TRACEJIT_CACHE_DIR"] = cache
        if name == "compile":
            env["TRACEJIT_DISABLE_CACHE"] = "1"
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--cycles", str(args.cycles),
               "--repeats", str(args.repeats)]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if p.returncode:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", help="another source tree of tracejit to measure beside this one")
    ap.add_argument("--cycles", type=int, default=2000, help="compile-and-drop cycles (default 2000)")
    ap.add_argument("--repeats", type=int, default=30, help="timed calls of the three-output workload")
    ap.add_argument("--rounds", type=int, default=5, help="processes per three-output row, taken in turn")
    ap.add_argument("--quick", action="store_true", help="400 cycles, 10 timed calls, 3 rounds")
    ap.add_argument("--only", default="outputs,compile,diff3")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.cycles, args.repeats, args.rounds = min(args.cycles, 400), 10, 3
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return
    trees = ([("before", os.path.abspath(args.before))] if args.before else []) + [("this tree", ROOT)]
    only = args.only.split(",")
    if "outputs" in only:
        print("## 10 functions x 10^7-element float64 outputs, results dropped, gc.collect()")
        print("| tree | RSS held (MB) | after the functions are dropped (MB) |\n|---|---:|---:|")
        for label, tree in trees:
            r = run_worker("outputs", tree, args)
            print(f"| {label} | " + (f"{r['held_mb']:.0f} | {r['after_drop_mb']:.0f} |" if "error" not in r
                                     else f"{r['error']} | |"), flush=True)
    if "compile" in only:
        print(f"\n## {args.cycles} distinct small functions compiled, called and dropped (disk cache off)")
        marks = sorted({0, args.cycles // 4, args.cycles // 2, 3 * args.cycles // 4, args.cycles})
        print("| tree | " + " | ".join(f"RSS at {m} (MB)" for m in marks) + " | growth per cycle (KB) |")
        print("|---|" + "---:|" * (len(marks) + 1))
        for label, tree in trees:
            r = run_worker("compile", tree, args)
            if "error" in r:
                print(f"| {label} | {r['error']} |")
                continue
            vals = [r[str(m)] for m in marks]
            per = (vals[-1] - vals[1]) * 1024 / max(marks[-1] - marks[1], 1)  # from the first mark past warm-up
            print(f"| {label} | " + " | ".join(f"{v:.1f}" for v in vals) + f" | {per:.1f} |", flush=True)
    if "diff3" in only:
        print(f"\n## three-output difference, 4000x2500 float64: median of {args.repeats} calls per process, "
              f"{args.rounds} processes per row, taken in turn (memory bandwidth changes from process to process)")
        print("| tree | recycling | median of the processes (ms) | fastest process (ms) | per process |")
        print("|---|---|---:|---:|---|")
        rows = [(label, tree, "on", None) for label, tree in trees]
        rows.append(("this tree", ROOT, "off (TRACEJIT_RECYCLE_BYTES=0)", {"TRACEJIT_RECYCLE_BYTES": "0"}))
        got = {i: [] for i in range(len(rows))}
        for _ in range(args.rounds):
            for i, (label, tree, rec, env) in enumerate(rows):
                r = run_worker("diff3", tree, args, env)
                got[i].append(r.get("ms", float("nan")))
        for i, (label, tree, rec, env) in enumerate(rows):
            ms = got[i]
            print(f"| {label} | {rec} | {statistics.median(ms):.1f} | {min(ms):.1f} | "
                  f"{', '.join(f'{m:.1f}' for m in ms)} |")

if __name__ == "__main__":
    main()
