"""Condense gdb's ``thread apply all bt`` (file 1) and ``thread apply all py-bt`` (file 2) of a crash's core: the
crashing thread first, then each thread that is not parked in a wait (a futex, a condition, a queue, a sleep),
each with its top native frames and its Python frames. CI's log keeps only its tail."""
import re
import sys

IDLE = re.compile(r"futex|pthread_cond_|sem_wait|sem_timedwait|epoll_wait|poll \(|nanosleep|clock_nanosleep|"
                  r"sched_yield|select \(|accept|recv|__GI___wait4|do_futex_wait|pthread_join")


def threads(path):
    """{thread number: [header, lines...]} of one gdb output, in its order."""
    out, current = {}, None
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return out
    for line in lines:
        m = re.match(r"Thread (\d+) ", line)
        if m:
            current = out.setdefault(int(m.group(1)), [line])
        elif current is not None and line.strip() and not line.startswith("warning:"):
            current.append(line.rstrip()[:160])
    return out


native = threads(sys.argv[1])
python = threads(sys.argv[2]) if len(sys.argv) > 2 else {}
crashed = [n for n, t in native.items() if any("SIGSEGV" in ln or "<signal handler called>" in ln for ln in t[1:8])]
busy = [n for n, t in native.items() if n not in crashed and not any(IDLE.search(ln) for ln in t[1:4])]
print(f"{len(native)} threads; crashed: {crashed}; not waiting: {busy}")
for n in crashed + busy:
    print("\n".join(native[n][:13]))
    py = [ln for ln in python.get(n, [])[1:] if not ln.startswith("Traceback")]
    if py:
        print("  Python, innermost first:\n" + "\n".join(py[:16]))
rest = [n for n in python if n not in crashed and n not in busy]
if rest:
    print("waiting threads' innermost Python frame:")
    for n in rest:
        frames = [ln.strip() for ln in python[n][1:] if ln.strip().startswith("File ")]
        print(f"  thread {n}: {frames[0] if frames else '(no Python frame)'}")
