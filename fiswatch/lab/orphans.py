"""The lab's own mariadbd left running by a daemon that died (SIGKILL, OOM killer): found,
named and ended.

A server is the lab's when its pid file is in one of the lab dir's datadirs (`DIR/dbN/mysqld.pid`)
and that process's command line names the same datadir (`--datadir=DIR/dbN`): a recycled pid
of some other program is never taken for it. They are orphans only while no daemon holds the
lab's lock.
"""
import os
import signal
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

from fiswatch.lab import layout as L
from fiswatch.lab.files import read_pid

Say = Callable[[str], None]


@dataclass(frozen=True)
class Orphan:
    name: str  # the instance, e.g. fiswatch-lab-instance-1
    pid: int
    datadir: str


def lab_server_pid(lab_dir: str, spec: L.InstanceSpec) -> Optional[int]:
    """The pid of this instance's mariadbd if it runs (whoever its parent is), else None."""
    datadir = os.path.join(lab_dir, L.datadir_name(spec))
    pid = read_pid(os.path.join(datadir, "mysqld.pid"))
    if pid is None:
        return None
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            argv = fh.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return None
    return pid if "--datadir=" + datadir in argv and not ended(pid) else None


def lock_holder(lab_dir: str) -> Optional[int]:
    """The pid holding the lab lock (a daemon, even one that no longer answers), 0 if held but unknown,
    None if free."""
    import fcntl

    path = os.path.join(lab_dir, L.LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return read_pid(path) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def servers(lab_dir: str) -> List[Orphan]:
    """Every mariadbd of this lab dir that runs now."""
    lab_dir = os.path.abspath(lab_dir)
    found = []
    for spec in L.EVERY_INSTANCE:  # green's too (lab up --blue-green)
        pid = lab_server_pid(lab_dir, spec)
        if pid is not None:
            found.append(Orphan(spec.name, pid, os.path.join(lab_dir, L.datadir_name(spec))))
    return found


def find_orphans(lab_dir: str) -> List[Orphan]:
    """The lab's servers still running although no daemon holds the lock; [] otherwise."""
    if lock_holder(lab_dir) is not None:
        return []
    return servers(lab_dir)


def orphan_message(lab_dir: str, orphans: Sequence[Orphan]) -> str:
    names = ", ".join("%s (pid %d)" % (o.name, o.pid) for o in orphans)
    return ("the lab daemon in %s is gone (killed?) but %d of its mariadbd still run%s: %s; "
            "`fiswatch lab down --dir %s` ends them, or `fiswatch lab up --dir %s` takes them down first"
            % (lab_dir, len(orphans), "" if len(orphans) != 1 else "s", names, lab_dir, lab_dir))


def take_down(orphans: Sequence[Orphan], say: Optional[Say] = None, timeout: float = 10.0) -> int:
    """SIGKILL each orphan (the next `up` copies fresh datadirs: nothing in them is kept); how many ended."""
    if orphans and say is not None:
        say("ending %d mariadbd left by a lab daemon that died: %s"
            % (len(orphans), ", ".join("%s (pid %d)" % (o.name, o.pid) for o in orphans)))
    ended = 0
    for orphan in orphans:
        try:
            os.kill(orphan.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        ended += 1
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_exists(o.pid) for o in orphans):
        time.sleep(0.05)
    return ended


def _exists(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return not ended(pid)


def ended(pid: int) -> bool:
    """Has the process ended, all its threads too? A zombie leader whose other threads still exit keeps
    its sockets and ports; a zombie with no thread left holds nothing."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    if state not in ("Z", "X"):
        return False
    try:
        return len(os.listdir("/proc/%d/task" % pid)) <= 1
    except OSError:
        return True


def disk_full(path: str) -> bool:
    """No block left for an unprivileged writer on the file system holding `path` (mariadbd waits for space)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail == 0


DISK_FULL_WORDS = (b"Disk is full", b"Disk full", b"disk full", b"No space left on device", b"Errcode: 28", b"errno: 28")


def waits_for_space(datadir: str) -> bool:
    """Did this server say, lately, that its disk was full? (It then waits for space, even at shutdown,
    and keeps waiting after others freed some: the file system alone does not tell.)"""
    try:
        with open(os.path.join(datadir, "error.log"), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            tail = fh.read()
    except OSError:
        return False
    return any(word in tail for word in DISK_FULL_WORDS)
