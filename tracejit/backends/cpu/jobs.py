"""Compiles on background threads that never outlive the interpreter and never cross a fork() inside LLVM."""
from __future__ import annotations

import atexit
import os
import threading
import time


class Cancelled(Exception):
    """A background compile stopped because the interpreter is exiting."""


class BackgroundJob:
    """A compile on a daemon thread. Daemon: an interpreter exiting never waits on a thread it cannot see; the
    atexit hook below asks running jobs to stop at their next checkpoint and joins them, so no thread is still
    inside LLVM while the process tears LLVM's globals down."""

    def __init__(self, fn, name):
        self._fn = fn
        self.lost = False  # true in a forked child: the thread did not come along (tier_up starts another)
        self._done = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)

    def _main(self):
        try:
            # give the GIL back at once: the thread that started this one is finishing a call, which would
            # otherwise wait for the switch interval (5 ms) while this one runs Python code
            time.sleep(0)
            self._fn(_exiting.is_set)
        finally:
            with _jobs_lock:
                _jobs.discard(self)
            self._done.set()

    def join(self, timeout=None):
        return self._done.wait(timeout)


_jobs: set = set()
_jobs_lock = threading.Lock()
_exiting = threading.Event()


def start_background(fn, name):
    """Run ``fn(cancelled)`` on a daemon thread; ``cancelled()`` turns true when the interpreter exits."""
    job = BackgroundJob(fn, name)
    with _jobs_lock:
        if _exiting.is_set():
            return None  # nothing new starts once the interpreter exits: the first tier keeps running
        _jobs.add(job)
    job.thread.start()
    return job


def _after_fork_in_child():
    """A forked child has none of the parent's threads: its jobs will never finish, and a lock one of them held
    stays taken. Mark them lost (done, so nobody waits on them) and start with a fresh lock."""
    global _jobs_lock
    _jobs_lock = threading.Lock()
    for job in list(_jobs):
        job.lost = True
        job._done.set()
    _jobs.clear()


def _finish_jobs_before_fork():
    """fork() while a thread is inside LLVM would hand the child LLVM's locks taken, forever: compiles in flight
    finish first (fork is rare; a compile takes a second or so)."""
    with _jobs_lock:
        jobs = list(_jobs)
    for job in jobs:
        job.join()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_finish_jobs_before_fork, after_in_child=_after_fork_in_child)


@atexit.register
def _stop_background_jobs():
    """At exit: tell running compiles to stop at their next checkpoint and wait for them (a native LLVM call in
    progress finishes first; a thread left inside LLVM while its static objects are destroyed can crash)."""
    _exiting.set()
    with _jobs_lock:
        jobs = list(_jobs)
    for job in jobs:
        job.join()



def running() -> list:
    """The background compiles in flight (benchmarks wait for them to time the optimized tier)."""
    with _jobs_lock:
        return list(_jobs)
