"""Name resolution with dnspython: addresses, CNAME chain, TTL, empty answers.

During an Aurora failover the cluster endpoint's CNAME moves to another instance, and for
a few seconds the name may resolve to nothing (NXDOMAIN or an empty answer). Probes
resolve on every connect and connect to the address they got, so the IP on screen is the
IP in use. An IP literal needs no lookup; a name in /etc/hosts resolves as the system
would (without asking any DNS server); everything else goes to the DNS server given with
--nameserver, or to the system's configured servers.
"""
import ipaddress
import os
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from fiswatch.model import Resolution

HOSTS_PATH = "/etc/hosts"


def parse_nameserver(text: str) -> Tuple[str, int]:
    """`IP` or `IP:PORT` -> (ip, port); raises ValueError with a clear message.

    >>> parse_nameserver('127.0.0.1:5353')
    ('127.0.0.1', 5353)
    >>> parse_nameserver('::1')
    ('::1', 53)
    """
    text = text.strip()
    host, port = text, 53
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = _port(p, text)
    if not is_ip(host):
        raise ValueError("--nameserver takes an IP address with an optional :PORT, not %r" % text)
    return host, port


def _port(text: str, whole: str) -> int:
    from fiswatch.config.checks import ConfigError, check_port

    try:
        return check_port(text)
    except ConfigError as exc:
        raise ValueError("--nameserver %s: %s (use IP:PORT)" % (whole, exc))


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostsFile:
    """Parsed /etc/hosts: lower-cased name -> addresses in file order."""

    entries: Tuple[Tuple[str, Tuple[str, ...]], ...]

    @classmethod
    def parse(cls, text: str) -> "HostsFile":
        found: Dict[str, List[str]] = {}
        for line in text.splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) < 2 or not is_ip(fields[0]):
                continue
            for name in fields[1:]:
                found.setdefault(name.lower().rstrip("."), []).append(fields[0])
        return cls(tuple((k, tuple(v)) for k, v in found.items()))

    def lookup(self, name: str) -> Tuple[str, ...]:
        key = name.lower().rstrip(".")
        for entry, addresses in self.entries:
            if entry == key:
                # IPv4 first: the lab and RDS are IPv4, and drivers prefer it too
                return tuple(sorted(addresses, key=lambda a: ":" in a))
        return ()


def read_hosts(path: str = HOSTS_PATH) -> HostsFile:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return HostsFile.parse(fh.read())
    except OSError:
        return HostsFile(())


class Resolver:
    """Resolves endpoint host names. One per thread (dnspython resolvers are cheap)."""

    def __init__(self, nameserver: Optional[Tuple[str, int]] = None, hosts_path: str = HOSTS_PATH,
                 timeout: float = 1.0) -> None:
        self.nameserver = nameserver
        self.hosts_path = hosts_path
        self.timeout = timeout
        self._dns = None
        self._hosts: Optional[HostsFile] = None
        self._hosts_mtime: Optional[float] = None

    def _hosts_file(self) -> HostsFile:
        try:
            mtime = os.stat(self.hosts_path).st_mtime
        except OSError:
            mtime = None
        if self._hosts is None or mtime != self._hosts_mtime:
            self._hosts, self._hosts_mtime = read_hosts(self.hosts_path), mtime
        return self._hosts

    def _resolver(self):
        if self._dns is None:
            import dns.resolver

            if self.nameserver is not None:
                res = dns.resolver.Resolver(configure=False)
                res.nameservers = [self.nameserver[0]]
                res.port = self.nameserver[1]
            else:
                res = dns.resolver.Resolver(configure=True)
            res.lifetime = self.timeout
            res.timeout = self.timeout
            res.cache = None
            self._dns = res
        return self._dns

    def resolve(self, name: str) -> Resolution:
        """Never raises: failures come back as Resolution.error."""
        now = time.time()
        if is_ip(name):
            return Resolution(name, (name,), source="literal", ts=now)
        if self.nameserver is None:
            addresses = self._hosts_file().lookup(name)
            if addresses:
                return Resolution(name, addresses, source="hosts", ts=now)
        return self._query(name, now)

    def _query(self, name: str, now: float) -> Resolution:
        import dns.exception
        import dns.rdatatype
        import dns.resolver

        try:
            answer = self._resolver().resolve(name, "A", raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return Resolution(name, error="NXDOMAIN", ts=now)
        except dns.resolver.NoNameservers:
            return Resolution(name, error="SERVFAIL", ts=now)
        except (dns.exception.Timeout, dns.resolver.LifetimeTimeout):
            return Resolution(name, error="timeout", ts=now)
        except dns.exception.DNSException as exc:
            return Resolution(name, error=type(exc).__name__, ts=now)
        except OSError as exc:
            return Resolution(name, error="unreachable: %s" % exc.strerror, ts=now)
        chain: List[str] = []
        addresses: List[str] = []
        ttls: List[int] = []
        for rrset in answer.response.answer:
            ttls.append(rrset.ttl)
            for rdata in rrset:
                if rrset.rdtype == dns.rdatatype.CNAME:
                    chain.append(str(rdata.target).rstrip("."))
                elif rrset.rdtype == dns.rdatatype.A:
                    addresses.append(rdata.address)
        ttl = min(ttls) if ttls else None
        if not addresses:
            return Resolution(name, (), tuple(chain), ttl, error="empty", ts=now)
        return Resolution(name, tuple(addresses), tuple(chain), ttl, ts=now)
