"""The reconnect policy (fiswatch.engine.retry): what it promises, checked on a fake clock and on
real sockets. Timing targets (how close to the workshop's loop) live in the benchmark
(figure 3); here only the promises, with generous deadlines and upper bounds.
"""
import socket
import threading
import time

import pytest

from conftest import wait_for
from fiswatch import events as E
from fiswatch.backends.registry import make_backend, parse_backend_spec
from fiswatch.engine.dnswatch import DnsWatcher
from fiswatch.lab.proxy import FaultProxy
from fiswatch.model import Endpoint, Secret, State
from fiswatch.engine.probe import Probe
from fiswatch.engine.retry import FAST_FOR, MAX_RATE, PAUSE, SLOW_PAUSE, RetryPolicy


def test_policy_retries_every_pass_like_the_workshop_loop():
    p = RetryPolicy()
    # a round fails on a long-lived connection: the workshop's 50 ms pause, nothing more
    assert p.next_attempt(100.0, 250.0) == 250.0 + PAUSE
    # a connect that hung for its 1 s timeout: again only the pause
    assert abs(p.next_attempt(10.0, 11.0) - 11.05) < 1e-9
    # however many attempts failed before: no growing backoff
    t = 0.0
    for _ in range(100):
        at = p.next_attempt(t, t + 0.3)
        assert abs(at - (t + 0.3 + PAUSE)) < 1e-9
        t = at


def test_policy_dns_change_means_at_once_but_never_a_hot_loop():
    p = RetryPolicy()
    # the flip was seen while the attempt hung: the next one starts right after it fails
    assert p.next_attempt(10.0, 11.0, dns_changed=True) == 11.0
    # an attempt that failed at once: not before 1/max_rate after its start
    assert abs(p.next_attempt(10.0, 10.001, dns_changed=True) - (10.0 + 1.0 / MAX_RATE)) < 1e-9
    assert p.next_attempt(None, 5.0, dns_changed=True) == 5.0


def test_policy_attempt_rate_is_bounded_on_a_fake_clock():
    """An endpoint failing instantly, with a DNS change after every attempt (the worst
    case): over 10 simulated seconds no more than max_rate attempts a second."""
    for policy in (RetryPolicy(), RetryPolicy(pause=0.0, max_rate=5.0)):
        clock, starts = 0.0, []
        while clock < 10.0:
            starts.append(clock)
            failed = clock + 0.0005
            clock = policy.next_attempt(starts[-1], failed, dns_changed=True)
        assert len(starts) <= policy.max_rate * 10.0 + 1
        assert min(b - a for a, b in zip(starts, starts[1:])) >= policy.spacing - 1e-9


def test_policy_a_long_outage_is_tried_twice_a_second_but_a_flip_at_once():
    """Simulate 120 s of an endpoint refusing at once: the workshop's pace for FAST_FOR
    seconds, then SLOW_PAUSE; a DNS change in the slow phase still means at once."""
    p = RetryPolicy()
    clock, since, starts = 0.0, 0.0, []
    while clock < 120.0:
        starts.append(clock)
        clock = p.next_attempt(clock, clock + 0.001, failing_since=since)
    fast = [t for t in starts if t < FAST_FOR]
    slow = [t for t in starts if t >= FAST_FOR + 1.0]
    assert len(fast) >= FAST_FOR / (PAUSE + 0.001) - 1
    assert all(abs((b - a) - (SLOW_PAUSE + 0.001)) < 1e-6 for a, b in zip(slow, slow[1:]))
    assert p.next_attempt(100.0, 101.0, dns_changed=True, failing_since=0.0) == 101.0
    # a completed round starts the count again (the probe passes failing_since=None)
    assert abs(p.next_attempt(100.0, 101.0, failing_since=None) - (101.0 + PAUSE)) < 1e-9


def _endpoint(host, port, mariadb):
    return Endpoint(name="db", host=host, port=port, user=mariadb.user, database=mariadb.database,
                    password=Secret(mariadb.password))


class Events:
    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def __call__(self, event):
        with self.lock:
            self.items.append(event)

    def of(self, kind):
        with self.lock:
            return [e for e in self.items if e.event == kind]


def _probe(endpoint, emit, spec="pymysql"):
    spec = parse_backend_spec(spec)
    return Probe(endpoint, spec, make_backend(spec), emit, interval=0.05)


def test_refused_then_accepted_next_attempt_comes_at_the_workshop_pace(mariadb):
    """A proxy that refuses (its port closed) for a while, then forwards to MariaDB: the probe
    keeps trying every pass (no backoff to 1 s) and connects on the attempt after."""
    proxy = FaultProxy("127.0.0.1", 0, mariadb.host, mariadb.port, name="retry-test").start()
    events = Events()
    probe = None
    try:
        proxy.set_mode("refuse")
        probe = _probe(_endpoint(*proxy.address, mariadb=mariadb), events).start()
        wait_for(lambda: len(events.of(E.ERROR)) >= 12, 60, message="12 refused attempts")
        errors = events.of(E.ERROR)
        assert all(e.get("kind") == "refused" and e.get("op") == "connect" for e in errors), errors[:3]
        assert errors[0].get("address") == "127.0.0.1"
        gaps = sorted(b.ts - a.ts for a, b in zip(errors[4:], errors[5:]))
        # the old backoff had reached 0.8-1.0 s by the 5th attempt; the policy promises 0.05
        # s, allowed ten times that on a loaded machine
        assert gaps[len(gaps) // 2] <= 10 * PAUSE, gaps
        proxy.set_mode("pass")
        opened = time.time()
        wait_for(lambda: events.of(E.CONNECT), 30, message="a connect after the port opened")
        wait_for(lambda: probe.snapshot.state is State.OK, 30, message="writing")
        first = events.of(E.CONNECT)[0]
        # at most one attempt could still have been refused after the port opened
        late = [e for e in events.of(E.ERROR) if e.ts > opened]
        assert len(late) <= 1, late
        assert first.ts - opened <= 10 * PAUSE + 1.0
        assert first.get("took") is not None and first.get("took") >= 0
    finally:
        if probe is not None:
            probe.stop()
            probe.join(5)
        proxy.stop()


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens: every connect is refused at once
    return port


@pytest.mark.slow
def test_refused_port_does_not_exceed_the_attempt_rate(mariadb):
    events = Events()
    probe = _probe(_endpoint("127.0.0.1", _closed_port(), mariadb), events)
    probe.start()
    try:
        wait_for(lambda: events.of(E.ERROR), 30, message="a first refused attempt")
        t0 = time.monotonic()
        n0 = len(events.of(E.ERROR))
        time.sleep(3.0)
        seconds = time.monotonic() - t0
        attempts = len(events.of(E.ERROR)) - n0
        assert probe.is_alive() and probe.snapshot.state in (State.ERROR, State.CONNECTING)
    finally:
        probe.stop()
        probe.join(5)
    # upper bound only: the promise is "at most MAX_RATE attempts a second"
    assert 1 <= attempts <= MAX_RATE * seconds + 2, (attempts, seconds)
    # and a wake from the DNS side cannot turn it into a hot loop either
    events2 = Events()
    probe2 = _probe(_endpoint("127.0.0.1", _closed_port(), mariadb), events2)
    stop = threading.Event()

    def poke():
        while not stop.is_set():
            probe2.wake.set()
            time.sleep(0.001)
    poker = threading.Thread(target=poke, daemon=True)
    probe2.start()
    poker.start()
    try:
        wait_for(lambda: events2.of(E.ERROR), 30, message="a first refused attempt")
        t0, n0 = time.monotonic(), len(events2.of(E.ERROR))
        time.sleep(2.0)
        seconds, attempts = time.monotonic() - t0, len(events2.of(E.ERROR)) - n0
    finally:
        stop.set()
        probe2.stop()
        probe2.join(5)
        poker.join(5)
    assert attempts <= MAX_RATE * seconds + 2, (attempts, seconds)


def test_stop_ends_a_retry_wait_at_once(mariadb):
    events = Events()
    slow = RetryPolicy(pause=60.0)
    spec = parse_backend_spec("pymysql")
    probe = Probe(_endpoint("127.0.0.1", _closed_port(), mariadb), spec, make_backend(spec), events,
                  retry=slow).start()
    wait_for(lambda: events.of(E.ERROR), 30, message="a refused attempt")
    wait_for(lambda: probe.snapshot.retry_at is not None, 30, message="waiting to retry")
    probe.stop()
    probe.join(10)
    assert not probe.is_alive()


def test_dns_watcher_wakes_the_endpoints_probes(mariadb):
    """A probe waiting a long pause is woken by a DNS change of its endpoint (the watcher's
    `wakes`, wired by the Runner), tries again at once, and goes to the new address."""
    from fiswatch.lab.dnsserver import DnsServer, Zone
    from fiswatch.lab.proxy import ProxyLoop
    from fiswatch.engine.runner import RunOptions, Runner

    name, port = "db.cluster-x.retry.test", _closed_port()
    loop = ProxyLoop("retry-dns").start()
    zone = Zone("retry.test")
    zone.set(name, "A", ("127.0.0.1",), ttl=5)
    server = DnsServer(zone, "127.0.0.1", 0, loop).start()
    events = Events()
    spec = parse_backend_spec("pymysql")
    endpoint = _endpoint(name, port, mariadb)
    probe = Probe(endpoint, spec, make_backend(spec), events, nameserver=server.address,
                  retry=RetryPolicy(pause=600.0)).start()
    watcher = DnsWatcher(endpoint, events, nameserver=server.address, wakes=[probe.wake])
    try:
        wait_for(lambda: len(events.of(E.ERROR)) == 1 and probe.snapshot.retry_at is not None, 30,
                 message="first attempt refused, waiting 600 s")
        assert events.of(E.ERROR)[0].get("address") == "127.0.0.1"
        watcher.poll()  # the first answer is not a change
        first = watcher.answer
        assert first.latest.addresses == ("127.0.0.1",) and first.previous == ()
        time.sleep(0.3)
        assert len(events.of(E.ERROR)) == 1
        zone.set(name, "A", ("127.0.0.2",), ttl=5)  # the flip
        watcher.poll()
        # one frozen value, swapped whole: the new answer and the one before it together
        flipped = watcher.answer
        assert flipped.latest.addresses == ("127.0.0.2",) and flipped.previous == ("127.0.0.1",)
        assert first.latest.addresses == ("127.0.0.1",)  # the value the monitor read earlier never changes
        wait_for(lambda: len(events.of(E.ERROR)) >= 2, 30, message="a second attempt at once")
        assert events.of(E.ERROR)[1].get("address") == "127.0.0.2"
    finally:
        probe.stop()
        probe.join(5)
        server.stop()
        loop.stop()
    # the Runner wires each endpoint's watcher to the wake events of that endpoint's probes
    other = _endpoint("127.0.0.1", port, mariadb)
    runner = Runner([endpoint, other], [spec, parse_backend_spec("mysql-connector")], RunOptions())
    for w in runner.watchers:
        mine = [p.wake for p in runner.probes if p.endpoint is w.endpoint]
        assert len(mine) == 2 and w.wakes == tuple(mine)
