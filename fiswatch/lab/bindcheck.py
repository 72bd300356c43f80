"""Are the lab's addresses free: the check `lab up`, the test fixtures and the benchmarks make before a start.

LabStartError is the one-line reason the lab could not start.
"""
import socket

from fiswatch.lab import layout as L
from fiswatch.lab import rdsproxy


class LabStartError(RuntimeError):
    """Why the lab could not start; one line."""


def check_free(layout: L.Layout) -> None:
    """Every address the lab binds is free, or LabStartError naming the first taken one."""
    wanted = [(layout.dns_address, socket.SOCK_DGRAM, "DNS server (UDP)"),
              (layout.dns_address, socket.SOCK_STREAM, "DNS server (TCP)")]
    for spec in layout.instances:
        wanted.append((layout.proxy_address(spec), socket.SOCK_STREAM, "proxy of " + spec.name))
        wanted.append((layout.server_address(spec), socket.SOCK_STREAM, "mariadbd of " + spec.name))
    wanted += [(rdsproxy.proxy_address(layout), socket.SOCK_STREAM, "RDS Proxy")] if layout.rds_proxy else []
    for address, kind, what in wanted:
        sock = socket.socket(socket.AF_INET, kind)
        try:
            if kind == socket.SOCK_STREAM:  # on UDP it would let two labs share a port
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except OSError as exc:
            raise LabStartError("%s:%d is taken (%s, wanted by the %s): stop what uses it, or start the lab "
                                "with another --base/--port/--dns-port" % (address[0], address[1],
                                                                         exc.strerror or exc, what))
        finally:
            sock.close()
