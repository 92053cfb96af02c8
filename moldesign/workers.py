"""Worker processes that never outlive their command.

Every process pool in moldesign (screen, data preparation, property tables for surrogate and
prior fitting) is made here, so that three rules hold everywhere:

- a worker dies with its parent, even when the parent is killed with SIGKILL and runs no cleanup:
  Linux's PR_SET_PDEATHSIG sends it SIGKILL, and a watchdog thread that polls the parent's pid
  covers systems without it (and the race where the parent died before the worker started);
- a worker ignores SIGINT: Ctrl-C reaches the whole process group, and the parent alone decides
  what to do (stop within seconds, remove its temp files, print one line) instead of every worker
  printing a KeyboardInterrupt traceback. RDKit's own SIGINT handler inside substructure matching
  cannot swallow the parent's interrupt either, since the matching runs in the workers;
- on any exception or interrupt in the parent the pool is torn down at once: queued work is
  cancelled and running workers are terminated (killed after a 2 s grace), not waited for.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Iterator

PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCHDOG_SECONDS = 0.5


def _die_with_parent(parent_pid: int) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the watchdog alone
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="moldesign-parent-watchdog", daemon=True).start()


def _init_worker(parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's stop() terminates workers with it
    _die_with_parent(parent_pid)


def new_pool(workers: int) -> ProcessPoolExecutor:
    """A ProcessPoolExecutor whose workers follow the rules above; close it with stop() or shutdown()."""
    return ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(os.getpid(),))


def stop(pool: ProcessPoolExecutor, grace: float = 2.0) -> None:
    """Cancel queued work and end the workers now (SIGTERM, then SIGKILL after `grace` seconds).

    The call queue's feeder thread may be part-way through writing a task into the pipe of a worker
    about to be terminated; the pool's manager thread joins that feeder, and interpreter exit joins
    the manager. cancel_join_thread() makes the first join a no-op (the feeder is a daemon thread),
    so a stopped pool cannot hold up the exit of its command."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    queue = getattr(pool, "_call_queue", None)
    if queue is not None:
        with contextlib.suppress(Exception):
            queue.cancel_join_thread()
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.time() + grace
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.time()))
            if p.is_alive():
                p.kill()
                p.join(1.0)


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """`with process_pool(n) as pool:` — normal exit waits for the workers to finish cleanly; an
    exception or interrupt (KeyboardInterrupt, a SIGTERM turned into one) stops them at once."""
    pool = new_pool(workers)
    try:
        yield pool
    except BaseException:
        stop(pool)
        raise
    pool.shutdown(wait=True)
