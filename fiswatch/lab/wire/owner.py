"""Which process owns a client connection on this machine: /proc, read-only. See accounting.py for the rule."""
import os
from typing import List, Optional, Tuple


def process_facts(pid: int) -> Tuple[str, List[int]]:
    """(command line, ancestors nearest first) of a live process; ('', []) when it is gone."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            cmdline = fh.read(400).replace(b"\x00", b" ").strip().decode("utf-8", "replace")
    except OSError:
        return "", []
    ancestors: List[int] = []
    current = pid
    while len(ancestors) < 16:
        try:
            with open("/proc/%d/stat" % current) as fh:
                stat = fh.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            break
        if ppid <= 1:
            break
        ancestors.append(ppid)
        current = ppid
    return cmdline, ancestors


def pid_of_connection(peer: Tuple[str, int]) -> Optional[int]:
    """The process holding the client socket bound to peer (host, port): /proc/net/tcp, then /proc/*/fd."""
    host, port = peer
    want = "%s:%04X" % ("".join("%02X" % int(b) for b in reversed(host.split("."))), port)
    inode = None
    for table in ("/proc/net/tcp",):
        with open(table) as fh:
            next(fh, None)
            for line in fh:
                fields = line.split()
                if len(fields) > 9 and fields[1] == want:
                    inode = fields[9]
                    break
    if not inode or inode == "0":
        return None
    target = "socket:[%s]" % inode
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fd_dir = "/proc/%s/fd" % entry
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd_dir + "/" + fd) == target:
                    return int(entry)
            except OSError:
                continue
    return None
