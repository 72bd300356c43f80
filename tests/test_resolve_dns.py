"""Resolution against a real DNS server on loopback (the lab's), and probes living through NXDOMAIN."""
import pytest

from conftest import EventLog, wait_for
from fiswatch import events as E
from fiswatch.backends.registry import parse_backend_spec
from fiswatch.lab.dnsserver import DnsServer, Zone
from fiswatch.lab.proxy import ProxyLoop
from fiswatch.model import Endpoint, Secret, State
from fiswatch.engine.resolve import Resolver
from fiswatch.engine.runner import Output, RunOptions, Runner

ORIGIN = "test.rds.local"
CLUSTER = "db.cluster-x." + ORIGIN
INSTANCE1 = "db-1.x." + ORIGIN
INSTANCE2 = "db-2.x." + ORIGIN


@pytest.fixture
def dns():
    loop = ProxyLoop("test-dns").start()
    zone = Zone(ORIGIN)
    zone.set(INSTANCE1, "A", ("127.0.0.1",))
    zone.set(INSTANCE2, "A", ("127.0.0.2",))
    zone.set(CLUSTER, "CNAME", (INSTANCE1,), ttl=5)
    server = DnsServer(zone, "127.0.0.1", 0, loop).start()
    yield zone, server.address
    server.stop()
    loop.stop()


def test_cname_chain_ttl_flip_empty_and_nxdomain(dns):
    zone, address = dns
    r = Resolver(address)
    res = r.resolve(CLUSTER)
    assert res.addresses == ("127.0.0.1",) and res.cname == INSTANCE1 and res.ttl == 5 and res.error is None
    zone.blank(CLUSTER, "empty")
    res = r.resolve(CLUSTER)
    assert res.addresses == () and res.error == "empty"
    zone.blank(CLUSTER, "nxdomain")
    assert r.resolve(CLUSTER).error == "NXDOMAIN"
    zone.set(CLUSTER, "CNAME", (INSTANCE2,))
    res = r.resolve(CLUSTER)
    assert res.addresses == ("127.0.0.2",) and res.cname == INSTANCE2
    assert r.resolve("missing." + ORIGIN).error == "NXDOMAIN"


def test_probe_retries_through_nxdomain_then_connects(dns, mariadb):
    """A name that does not resolve is an error in the column, retried, never a crash."""
    zone, address = dns
    name = "late.x." + ORIGIN
    ep = Endpoint("late", name, mariadb.port, mariadb.user, mariadb.database, password=Secret(mariadb.password))
    log = EventLog()
    runner = Runner([ep], [parse_backend_spec("pymysql")], RunOptions(nameserver=address), outputs=[Output(log, "test")])
    runner.start()
    try:
        pid = "late/pymysql"
        view = lambda: next(p for p in runner.view.probes if p.probe == pid)  # noqa: E731
        wait_for(lambda: view().snapshot.errors >= 2, 20, message="dns errors")
        err = view().snapshot.last_error
        # retried every pass (fiswatch/engine/retry.py): between attempts ERROR lasts 50 ms, so a probe
        # that never connected is mostly seen CONNECTING again, with the DNS error kept
        assert view().state in (State.ERROR, State.CONNECTING) and err.kind == "dns" and "NXDOMAIN" in err.message
        zone.set(name, "A", ("127.0.0.1",))
        wait_for(lambda: view().snapshot.iterations >= 3, 20, message="writing after the name appeared")
        assert view().snapshot.address == "127.0.0.1"
        assert runner.flush_outputs(10)
        dns_events = [e for e in log.events if e.event == E.DNS]
        assert dns_events[0].get("error") == "NXDOMAIN"
        wait_for(lambda: any(e.event == E.DNS and e.get("addresses") == ("127.0.0.1",) for e in log.events), 10,
                 message="dns watcher saw the new answer")
    finally:
        runner.stop()
