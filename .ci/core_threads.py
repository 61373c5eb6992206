"""Condense gdb's ``thread apply all bt`` output (stdin): the crashing thread first, then each thread that is not
parked in a wait (a futex, a condition, a queue, a sleep), a few frames each. CI's log keeps only its tail."""
import re
import sys

IDLE = re.compile(r"futex|pthread_cond_|sem_wait|sem_timedwait|epoll_wait|poll \(|nanosleep|clock_nanosleep|"
                  r"sched_yield|select \(|accept|recv|__GI___wait4|do_futex_wait|pthread_join")
threads, current = [], None
for line in sys.stdin:
    line = line.rstrip()
    if line.startswith("Thread "):
        current = [line]
        threads.append(current)
    elif current is not None and line.startswith("#"):
        current.append(line[:160])
    elif line.startswith("Program terminated") or line.startswith("#0 ") and current is None:
        print(line[:160])
crashed = [t for t in threads if any("SIGSEGV" in ln or "raise" in ln for ln in t[1:3])]
busy = [t for t in threads if t not in crashed and not any(IDLE.search(ln) for ln in t[1:4])]
print(f"{len(threads)} threads, {len(busy)} not waiting")
for t in crashed + busy:
    print("\n".join(t[:13]))
