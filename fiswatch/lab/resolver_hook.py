"""The lab's names inside fiswatch itself: the process's own lookups answer them from the lab's DNS.

The AWS wrapper learns instance names from the topology (SERVER_ID + the host pattern, e.g.
fiswatch-lab-instance-2.c0ffee0c0ffe.lab-1.rds.amazonaws.com) and its `bg` plugin calls
socket.gethostbyname itself: both ask the system resolver, which does not know the lab's names
(and must never be asked them: they are shaped as AWS's, so the machine's resolver would
forward them to the internet). When fiswatch runs clients against a lab (`fiswatch demo`,
`watch --lab`), `install(nameserver)` makes socket.getaddrinfo, gethostbyname and
gethostbyname_ex answer a name of the lab's zones (lab/layout.py ZONES) from the lab's DNS
server (dnspython, the same server fiswatch's probes ask), and pass every other name to the
functions they replace, unchanged. Pure-Python drivers look names up through these functions;
a C library (mysql-connector's C extension, libmysqlclient) does not: `fiswatch lab exec` runs
such programs in a namespace whose resolver is the lab's (lab/exec_ns.py).

Installed once per process, never at import; `install` again only changes the server asked.
"""
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

MARK = "fiswatch_lab_names"  # attribute on the replacing functions: the holder of the server asked
LIFETIME = 3.0  # seconds one lookup may take (the lab's DNS server is on loopback)
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Server:
    """The lab DNS server the hook asks (swapped whole by `install`)."""

    address: str
    port: int


class _Holder:
    def __init__(self, server: Server) -> None:
        self.server = server


def installed() -> Optional[Server]:
    """The server the process's lookups ask for lab names, or None (not installed)."""
    holder = getattr(socket.getaddrinfo, MARK, None)
    return holder.server if holder is not None else None


def install(nameserver: Tuple[str, int]) -> Server:
    """From now on this process resolves the lab's names through `nameserver` (ip, port)."""
    server = Server(str(nameserver[0]), int(nameserver[1]))
    with _LOCK:
        holder = getattr(socket.getaddrinfo, MARK, None)
        if holder is not None:
            holder.server = server
            return server
        holder = _Holder(server)
        for name, make in (("getaddrinfo", _getaddrinfo), ("gethostbyname", _gethostbyname),
                           ("gethostbyname_ex", _gethostbyname_ex)):
            func = make(getattr(socket, name), holder)
            setattr(func, MARK, holder)
            setattr(socket, name, func)
    return server


def install_for(endpoints: Any, nameserver: Optional[Tuple[str, int]]) -> Optional[Server]:
    """`install` when any endpoint is a lab's (source lab:DIR) and a nameserver is known."""
    if nameserver and any((getattr(ep, "source", "") or "").startswith("lab:") for ep in endpoints):
        return install(nameserver)
    return None


def install_for_endpoint(endpoint: Any) -> Optional[Server]:
    """`install` the lab's DNS server when `endpoint` is a running lab's (the AWS wrapper's connect)."""
    source = getattr(endpoint, "source", "") or ""
    if not source.startswith("lab:"):
        return None
    from fiswatch.lab import api

    try:
        host, port = api.lab_status(source[4:]).nameserver
    except Exception:  # noqa: BLE001 - no lab there (any more): the connect itself says so
        return None
    return install((str(host), int(port)))


def refuse_c_lookup(host: str) -> Optional[str]:
    """One line when a C library (which asks the system resolver, not this hook) would be handed a
    lab name outside `lab exec` (where the system resolver is the lab's: FISWATCH_LAB_DNS is set);
    None when it may have `host`."""
    import os

    from fiswatch.lab.layout import in_lab_zone

    if not in_lab_zone(host) or os.environ.get("FISWATCH_LAB_DNS"):
        return None
    return ("%s is a lab name that only the lab's DNS answers, and a C driver library looks names up with the "
            "machine's resolver: use the pure-Python driver (use_pure=true), or run fiswatch in `fiswatch lab exec`"
            % host)


def lab_addresses(host: str, server: Server) -> List[str]:
    """The IPv4 addresses the lab's DNS server gives `host`; socket.gaierror as getaddrinfo raises it."""
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [server.address]
    resolver.port = server.port
    resolver.lifetime = LIFETIME
    resolver.cache = None
    try:
        answer = resolver.resolve(host, "A", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (the lab's DNS: %s)" % host)
    except (dns.exception.DNSException, OSError) as exc:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution (the lab's DNS: %s)"
                              % (type(exc).__name__,))
    return [r.address for r in answer]


def _lab_host(host: Any) -> Optional[str]:
    from fiswatch.lab.layout import in_lab_zone

    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return host if isinstance(host, str) and in_lab_zone(host) else None


def _getaddrinfo(original: Callable, holder: _Holder) -> Callable:
    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0):
        name = _lab_host(host)
        if name is None:
            return original(host, port, family, type, proto, flags)
        if family not in (0, socket.AF_INET, socket.AF_UNSPEC):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (the lab has IPv4 only)")
        out: List[Any] = []
        for address in lab_addresses(name, holder.server):
            out.extend(original(address, port, socket.AF_INET, type, proto, flags | socket.AI_NUMERICHOST))
        return out

    return getaddrinfo


def _gethostbyname(original: Callable, holder: _Holder) -> Callable:
    def gethostbyname(host: Any) -> str:
        name = _lab_host(host)
        return original(host) if name is None else lab_addresses(name, holder.server)[0]

    return gethostbyname


def _gethostbyname_ex(original: Callable, holder: _Holder) -> Callable:
    def gethostbyname_ex(host: Any):
        name = _lab_host(host)
        return original(host) if name is None else (name, [], lab_addresses(name, holder.server))

    return gethostbyname_ex
