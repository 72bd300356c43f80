"""Which process owns a connection (/proc): the lookup the wire accounting uses for clients without `_pid`."""
import os
import socket

from fiswatch.lab.wire.owner import pid_of_connection


def _listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    return srv


def _reuse(port, to):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.connect(to)
    return s


def test_a_live_socket_is_found_beside_a_time_wait_line_from_the_same_port():
    """Under a busy suite an ephemeral port is reused while an earlier connection from it sits in
    TIME_WAIT (inode 0 in /proc/net/tcp). Which line comes first is the kernel's hash order (the
    doctest of socket_inode covers the TIME_WAIT line first): here the real sockets, whatever order."""
    first, second = _listener(), _listener()
    try:
        for _ in range(20):
            old = _reuse(0, first.getsockname())
            port = old.getsockname()[1]
            accepted, _ = first.accept()
            old.close()  # the client closes first: its side stays in TIME_WAIT
            accepted.close()
            live = _reuse(port, second.getsockname())
            peer, _ = second.accept()
            try:
                with open("/proc/net/tcp") as fh:
                    inodes = [f[9] for f in (line.split() for line in fh) if f[1:2] == ["0100007F:%04X" % port]]
                assert "0" in inodes and len(inodes) == 2, inodes  # the TIME_WAIT line is really there
                assert pid_of_connection(("127.0.0.1", port)) == os.getpid()
            finally:
                live.close()
                peer.close()
    finally:
        first.close()
        second.close()
