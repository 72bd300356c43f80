"""Which process owns a client connection on this machine: /proc, read-only. See accounting.py for the rule."""
import os
from typing import Iterable, List, Optional, Tuple


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


def socket_inode(table: Iterable[str], local: str) -> Optional[str]:
    """The inode of the live socket whose local address is `local` in a /proc/net/tcp listing.

    A TIME_WAIT line of an earlier connection from the same port (to another address) has inode 0;
    on a busy machine ports are reused that way, and the live socket's line may come after it.

    >>> head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
    >>> tw = "   1: 0100007F:B5E3 0200007F:0CEA 06 00000000:00000000 03:00000ee4 00000000     0        0 0 3"
    >>> live = "   2: 0100007F:B5E3 0300007F:0CEB 01 00000000:00000000 00:00000000 00000000     0        0 4242 1"
    >>> socket_inode([head, tw, live], "0100007F:B5E3")
    '4242'
    >>> socket_inode([head, tw], "0100007F:B5E3") is None
    True
    """
    lines = iter(table)
    next(lines, None)
    for line in lines:
        fields = line.split()
        if len(fields) > 9 and fields[1] == local and fields[9] != "0":
            return fields[9]
    return None


def pid_of_connection(peer: Tuple[str, int]) -> Optional[int]:
    """The process holding the client socket bound to peer (host, port): /proc/net/tcp, then /proc/*/fd."""
    host, port = peer
    want = "%s:%04X" % ("".join("%02X" % int(b) for b in reversed(host.split("."))), port)
    with open("/proc/net/tcp") as fh:
        inode = socket_inode(fh, want)
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
