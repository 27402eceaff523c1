"""Which process owns a run, and whether that process is still alive.

Every run records the process that writes it: host name, pid and the process's start time
(``psutil.Process.create_time()``, seconds since the epoch). A ``running`` run is
**abandoned** when this machine can prove that its process is gone:

* same host name, and no process with that pid exists, or one exists but started at another
  time (the pid was reused after a reboot or a restart), or it is a zombie (killed, not yet
  reaped by its parent);
* no owner recorded (a run written before migration 0002, which added these columns).

A run owned by another host is never marked: this machine cannot see that host's processes
(a PostgreSQL ledger shared by two machines, or two containers on one SQLite volume). The
rule errs on the side of leaving a run ``running``: a process that cannot be inspected
(access denied) counts as alive.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import lru_cache

#: Two start times of one process read at different moments agree to well within this (s).
START_TIME_TOLERANCE = 1.0


@dataclass(frozen=True)
class Owner:
    """A process: host name, pid, start time (s since the epoch, UTC)."""

    host: str
    pid: int
    started: float

    def columns(self) -> dict:
        """The runs table's owner columns."""
        return {"owner_host": self.host, "owner_pid": self.pid, "owner_started": self.started}


@lru_cache(maxsize=8)
def _identity(pid: int) -> Owner:
    import psutil

    return Owner(socket.gethostname()[:255], pid, psutil.Process(pid).create_time())


def this_process() -> Owner:
    """The current process (recomputed after a fork: the pid is part of the cache key)."""
    return _identity(os.getpid())


def is_alive(host: str | None, pid: int | None, started: float | None) -> bool:
    """Whether the recorded owner may still be running (see the module docstring).

    Returns False only when the owner is provably gone: recorded on this host and no live,
    non-zombie process with that pid and start time exists, or no owner recorded at all.
    """
    if host is None or pid is None:
        return False
    if host != this_process().host:
        return True  # another machine: we cannot tell, so it is not ours to mark
    import psutil

    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return started is None or abs(created - float(started)) <= START_TIME_TOLERANCE
