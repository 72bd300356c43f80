"""The `lab` fixture: a real local failover lab in a temp dir, one per test process, shared.

Use it from a test module with `from _lab_fixture import lab  # noqa: F401`, or for the
whole suite add `pytest_plugins = ["_lab_fixture"]` to tests/conftest.py.

Each session picks a random loopback prefix 127.X.Y (and a random DNS port) that is free,
so parallel runs do not collide. The session's end runs `lab_down` even when tests fail.
"""
import contextlib
import os
import shutil
import socket

import pytest

from fiswatch.bench.own_lab import free_lab_addresses as pick_lab_addresses  # (base, port, dns_port) free now


def start_lab(lab_dir: str):
    from fiswatch.lab.api import lab_up

    base, port, dns_port = pick_lab_addresses()
    return lab_up(lab_dir, base=base, port=port, dns_port=dns_port)


_SHARED = {}  # this process's shared lab: started by the first test that asks, stopped at the session's end


def shared_lab(tmp_path_factory):
    """This process's shared lab, started once (at the first call), as it is NOW: a LabInfo read afresh
    from the lab (`lab_status`), so a test sees the writer an earlier test's failover left, not the
    writer the lab started with (xdist runs modules in any order on a worker)."""
    from fiswatch.lab.api import LabNotRunning, lab_down, lab_status

    if "dir" not in _SHARED:
        lab_dir = str(tmp_path_factory.mktemp("lab"))
        try:
            start_lab(lab_dir)
        except Exception:
            try:
                lab_down(lab_dir)
            except LabNotRunning:
                pass
            raise
        _SHARED["dir"] = lab_dir
    return lab_status(_SHARED["dir"])


def stop_shared_lab():
    """The session ends (tests/conftest.py: pytest_sessionfinish): the shared lab goes, even when tests failed."""
    from fiswatch.lab.api import LabNotRunning, lab_down

    lab_dir = _SHARED.pop("dir", None)
    if lab_dir is None:
        return
    try:
        lab_down(lab_dir)
    except LabNotRunning:
        pass
    shutil.rmtree(lab_dir, ignore_errors=True)  # the datadirs, ~400 MB


@pytest.fixture
def lab(tmp_path_factory):
    """A running lab (LabInfo), shared by the tests of this process, read afresh for each test."""
    return shared_lab(tmp_path_factory)


@contextlib.contextmanager
def private_lab(tmp_path_factory, name, **options):
    """A lab of a test module's own (its own shape or knobs: `lab_up` options), on a free prefix;
    down and removed at the end, also when it failed to start halfway."""
    from fiswatch.lab.api import LabNotRunning, lab_down, lab_up

    lab_dir = str(tmp_path_factory.mktemp(name))
    base, port, dns_port = pick_lab_addresses()
    try:
        yield lab_up(lab_dir, base=base, port=port, dns_port=dns_port, **options)
    finally:
        try:
            lab_down(lab_dir)
        except LabNotRunning:
            pass
        shutil.rmtree(lab_dir, ignore_errors=True)


def resolver_for(info):
    """A dnspython resolver that asks only the lab's DNS server (never the system's)."""
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [info.nameserver[0]]
    resolver.port = info.nameserver[1]
    resolver.lifetime = 5.0
    resolver.cache = None
    return resolver


def answer_of(info, name):
    """('ok', [addresses], [cname targets], ttl) | ('empty', ...) | ('nxdomain', ...)."""
    import dns.rdatatype
    import dns.resolver

    try:
        result = resolver_for(info).resolve(name, "A", raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return ("nxdomain", [], [], None)
    cnames, addresses, ttl = [], [], None
    for rrset in result.response.answer:
        for rdata in rrset:
            if rrset.rdtype == dns.rdatatype.CNAME:
                cnames.append(rdata.target.to_text().rstrip("."))
            elif rrset.rdtype == dns.rdatatype.A:
                addresses.append(rdata.address)
                ttl = rrset.ttl
        if rrset.rdtype == dns.rdatatype.CNAME and ttl is None:
            ttl = rrset.ttl
    return ("ok" if addresses else "empty", addresses, cnames, ttl)


def port_free(host: str, port: int) -> bool:
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def lab_processes(lab_dir: str):
    """Processes whose command line mentions the lab dir (daemon, mariadbd)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or ())
        except (psutil.Error, TypeError):
            continue
        if lab_dir in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE and proc.pid != os.getpid():
            found.append(proc.pid)
    return found
