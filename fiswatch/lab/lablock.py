"""The lab's failover lock (`DIR/failover.lock`): one failover, crash, reboot, patch or switchover at a time.

Whoever runs one holds an exclusive flock on the file for as long as it runs (an fd: the kernel drops
the lock when the process dies, so a killed run never leaves the lab locked). Each caller says in its
own words what it found running when the lock is taken.
"""
import fcntl
import os
from typing import Optional

LOCK_NAME = "failover.lock"


def try_lock(lab_dir: str) -> Optional[int]:
    """The lock held (its fd, for the caller to close), or None when another run holds it.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> fd = try_lock(d)
    >>> fd is not None
    True
    >>> os.close(fd)
    """
    fd = os.open(os.path.join(lab_dir, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def is_locked(lab_dir: str) -> bool:
    """Whether a run holds the lock now (asked without keeping it; a dir that cannot be opened: False)."""
    try:
        fd = try_lock(lab_dir)
    except OSError:
        return False
    if fd is None:
        return True
    os.close(fd)
    return False


__all__ = ["LOCK_NAME", "is_locked", "try_lock"]
