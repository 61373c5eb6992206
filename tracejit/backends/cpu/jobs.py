"""Compiles on background threads that never outlive the interpreter and never cross a fork() inside LLVM; a
timer thread for work planned for later."""
from __future__ import annotations

import _thread
import atexit
import heapq
import itertools
import os
import queue
import threading
import time


class Cancelled(Exception):
    """A background compile stopped because the interpreter is exiting."""


class BackgroundJob:
    """A compile run by a worker thread. The atexit hook below asks running jobs to stop at their next checkpoint
    and joins them, so no thread is still inside LLVM while the process tears LLVM's globals down."""

    def __init__(self, fn, name):
        self._fn = fn
        self.name = name
        # true when the job will never run to its end: in a forked child (the thread did not come along), or a
        # planned job whose condition was false when due (tier_up starts another)
        self.lost = False
        self.started_at = None  # time.perf_counter() when a worker was handed it
        self._pending = None  # the condition of a job planned for later (``submit``'s ``go``), until it is due
        self._done = threading.Event()

    def _run(self):
        try:
            self._fn(_exiting.is_set)
        finally:
            with _jobs_lock:
                _jobs.discard(self)
            self._done.set()

    def join(self, timeout=None):
        return self._done.wait(timeout)


class _Worker:
    """A thread that runs the jobs handed to it. Started before it is needed (``prestart``): handing a job to a
    waiting worker costs a queue put, where starting a thread costs a user's call the thread's creation."""

    def __init__(self):
        self._inbox = queue.SimpleQueue()
        _spawn(self._main)

    def hand(self, job):
        self._inbox.put(job)

    def _main(self):
        _no_wakeup_preemption()
        while True:
            job = self._inbox.get()  # waits without the GIL
            if job is None:
                return
            # give the GIL back at once: a user's call running meanwhile would otherwise wait for the switch
            # interval (5 ms) while this one runs Python code
            time.sleep(0)
            threading.current_thread().name = job.name  # (what a profiler or a debugger shows)
            job._run()
            threading.current_thread().name = "tracejit compiler"
            with _jobs_lock:
                if _exiting.is_set() or len(_idle) >= MAX_IDLE_WORKERS:
                    return
                _idle.append(self)


class _Timer:
    """A thread that makes planned calls (``submit``'s planned jobs) when they are due, in order."""

    def __init__(self):
        self._inbox = queue.SimpleQueue()
        self._order = itertools.count()
        _spawn(self._main)

    def plan(self, delay, fn):
        """Call ``fn()`` on this thread in ``delay`` seconds (it holds the GIL meanwhile: keep it short)."""
        self._inbox.put((time.monotonic() + delay, next(self._order), fn))

    def _main(self):
        _no_wakeup_preemption()
        with _jobs_lock:
            wanted = not _idle and not _exiting.is_set()
        if wanted:  # a worker waiting for the first job, started here rather than in a user's call
            worker = _Worker()
            with _jobs_lock:
                _idle.append(worker)
        due: list = []
        while True:
            try:
                item = self._inbox.get(timeout=max(0.0, due[0][0] - time.monotonic()) if due else None)
                if item is None:
                    return
                heapq.heappush(due, item)
            except queue.Empty:
                pass
            while due and due[0][0] <= time.monotonic():
                fn = heapq.heappop(due)[2]
                try:
                    fn()
                except Exception:  # noqa: BLE001 - a planned call's failure must not stop later ones
                    pass


def _spawn(main):
    """Start a thread running ``main()`` and return at once. threading.Thread.start waits until the new thread
    runs (milliseconds on a busy machine), and the caller is a user's call. Like a daemon thread, it never
    delays the interpreter's exit (the atexit hook below stops what it runs)."""
    _thread.start_new_thread(main, ())


def _no_wakeup_preemption():
    """Schedule this thread as a batch job (Linux): the same share of the CPU, but waking it (a job handed over
    by a user's call) never preempts that call's thread on its core; it runs at the next tick or on an idle
    core. Elsewhere, or where the call fails, a no-op."""
    if hasattr(os, "SCHED_BATCH"):
        try:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))  # 0: the calling thread
        except OSError:
            pass


MAX_IDLE_WORKERS = 1  # workers kept waiting for the next job (each is one parked thread)
_jobs: set = set()
_idle: list = []  # workers waiting for a job
_timer = None  # the _Timer, once started
_jobs_lock = threading.Lock()
_exiting = threading.Event()


def prestart():
    """Have the timer thread running, and through it a waiting worker, so that a later ``submit`` hands its job
    over instead of starting a thread (called while a first tier compiles: one thread starts inside that compile,
    none in a later call)."""
    global _timer
    with _jobs_lock:
        if _timer is None and not _exiting.is_set():
            _timer = _Timer()


def _plan_locked(delay, fn):
    global _timer
    if _timer is None:
        _timer = _Timer()
    _timer.plan(delay, fn)


def start_background(fn, name):
    """Run ``fn(cancelled)`` on a worker thread; ``cancelled()`` turns true when the interpreter exits. The job,
    or None once the interpreter exits (nothing new starts then: the first tier keeps running)."""
    return submit(BackgroundJob(fn, name))


def submit(job, delay=0.0, go=None):
    """Hand a BackgroundJob to a worker now (a lock, a queue put), or plan it: in ``delay`` seconds the timer
    thread hands it over if ``go()`` is true then, else drops it (``lost``); ``start_now`` starts a planned job at
    once. ``job``, or None once the interpreter exits."""
    with _jobs_lock:
        if _exiting.is_set():
            return None
        _jobs.add(job)
        if delay > 0:
            job._pending = go or (lambda: True)
            _plan_locked(delay, lambda: _due(job))
            return job
    _hand_over(job)
    return job


def _due(job):
    """On the timer thread: a planned job's time has come."""
    pending = job._pending
    if pending is not None and pending():
        start_now(job)
        return
    with _jobs_lock:
        if job._pending is None:
            return  # started meanwhile
        job._pending = None
        job.lost = True
        _jobs.discard(job)
    job._done.set()


def start_now(job):
    """Hand a planned job over now, before its time (no-op for a job running or done)."""
    with _jobs_lock:
        if job._pending is None:
            return
        job._pending = None
    _hand_over(job)


def _hand_over(job):
    with _jobs_lock:
        worker = _idle.pop() if _idle else None
    if worker is None:
        worker = _Worker()  # every worker is busy: jobs run in parallel (LLVM releases the GIL)
    job.started_at = time.perf_counter()
    worker.hand(job)


def _after_fork_in_child():
    """A forked child has none of the parent's threads: its jobs will never run or finish, and a lock one of them
    held stays taken. Mark them lost (done, so nobody waits on them), forget the threads and start with a fresh
    lock."""
    global _jobs_lock, _timer
    _jobs_lock = threading.Lock()
    for job in list(_jobs):
        job.lost = True
        job._done.set()
    _jobs.clear()
    _idle.clear()
    _timer = None


def _finish_jobs_before_fork():
    """fork() while a thread is inside LLVM would hand the child LLVM's locks taken, forever: compiles in flight
    finish first (fork is rare; a compile takes a second or so)."""
    with _jobs_lock:
        jobs = [job for job in _jobs if job._pending is None]  # (a planned job is in no LLVM call)
    for job in jobs:
        job.join()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_finish_jobs_before_fork, after_in_child=_after_fork_in_child)


@atexit.register
def _stop_background_jobs():
    """At exit: tell running compiles to stop at their next checkpoint and wait for them (a native LLVM call in
    progress finishes first; a thread left inside LLVM while its static objects are destroyed can crash); idle
    workers and the timer stop."""
    _exiting.set()
    with _jobs_lock:
        jobs, idle, timer = list(_jobs), list(_idle), _timer
        _idle.clear()
        planned = [job for job in jobs if job._pending is not None]
        for job in planned:  # planned jobs never start now
            job._pending = None
            job.lost = True
            _jobs.discard(job)
    for job in planned:
        job._done.set()
    for worker in idle:
        worker.hand(None)
    if timer is not None:
        timer._inbox.put(None)
    for job in jobs:
        job.join()


def running() -> list:
    """The background compiles in flight (benchmarks wait for them to time the optimized tier)."""
    with _jobs_lock:
        return list(_jobs)
