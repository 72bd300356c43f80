"""Waiting for the lab daemon to end (`lab down`, a failed `lab up`): what it still waits for, and SIGKILL.

lab/api.py's lab_down and lab_up use it.
"""
import os
import signal
import time
from typing import Callable


def gone(pid: int) -> bool:
    """The process `pid` has ended (reaped if it was our child)."""
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child (a zombie still has a pid)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    from fiswatch.lab.orphans import ended

    return ended(pid)


def wait_gone(pid: int, timeout: float) -> bool:
    """Whether `pid` ended within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return gone(pid)


DOWN_WAIT = 30.0  # seconds `lab down` waits for the daemon (it gives each mariadbd 10 s) before killing it
DOWN_QUIET = 2.0  # seconds before it says what it waits for


def waiting_for(lab_dir: str) -> str:
    """What the daemon still waits for: its mariadbd that run, and whether the disk is full."""
    from fiswatch.lab.orphans import disk_full, servers, waits_for_space

    left = servers(lab_dir)
    if not left:
        return "the lab daemon to end"
    full = disk_full(lab_dir)
    return "mariadbd of %s to shut down" % ", ".join(
        o.name + (" (disk full)" if full or waits_for_space(o.datadir) else "") for o in left)


def stop_daemon(lab_dir: str, pid: int, say: Callable[[str], None]) -> None:
    """Wait for the daemon (it stops its servers), saying what for; SIGKILL it after DOWN_WAIT."""
    start = time.monotonic()
    next_say = start + DOWN_QUIET
    while time.monotonic() - start < DOWN_WAIT:
        if wait_gone(pid, 0.2):
            return
        if time.monotonic() >= next_say:
            say("waiting for %s ... (%.0fs; at most %.0fs)" % (waiting_for(lab_dir), time.monotonic() - start,
                                                                DOWN_WAIT))
            next_say = time.monotonic() + 5.0
    say("the lab daemon (pid %d) did not stop within %.0fs: killing it and its servers" % (pid, DOWN_WAIT))
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    wait_gone(pid, 10)
