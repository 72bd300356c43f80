"""After a lab RDS failover (the A record moves while connects to the old, fenced address
hang), the probe's first attempt that starts after the flip goes to the new address.

Attempts are read from the run's events: a `connect` (success) or an `error` with op
resolve/connect carries `address` and `took` (seconds since the attempt started).
"""
import threading

from _lab_fixture import lab  # noqa: F401
from conftest import wait_for
from fiswatch import events as E
from fiswatch.backends.registry import parse_backend_spec
from fiswatch.lab.api import failover, lab_status
from fiswatch.engine.runner import Output, RunOptions, Runner


def _attempts(events, probe):
    """(start, end, address, ok) of every connect attempt of `probe`, in start order."""
    out = []
    for e in events:
        if e.get("probe") != probe:
            continue
        if e.event == E.CONNECT or (e.event == E.ERROR and e.get("op") in ("resolve", "connect")):
            took = float(e.get("took") or 0.0)
            out.append((e.ts - took, e.ts, e.get("address"), e.event == E.CONNECT))
    return sorted(out)


def test_first_attempt_after_the_rds_flip_goes_to_the_new_address(lab):  # noqa: F811
    rds = lab.endpoint("rds")
    before = lab_status(lab.dir).instance("rds", "primary").address
    lock = threading.Lock()
    events = []

    def sink(view, batch):
        with lock:
            events.extend(batch)
    runner = Runner([rds], [parse_backend_spec("pymysql")],
                    RunOptions(interval=0.05, stall_after=2.0, nameserver=tuple(lab.nameserver)),
                    outputs=[Output(sink, "test")])
    runner.start()
    probe = runner.probes[0]
    steps = []
    try:
        wait_for(lambda: probe.snapshot.iterations >= 5, 60, message="probe writing to rds")
        failover(lab.dir, "rds", emit=steps.append, profile="fast")
        after = lab_status(lab.dir).instance("rds", "primary").address
        assert after != before
        done = probe.snapshot.iterations
        wait_for(lambda: probe.snapshot.iterations >= done + 5 and probe.snapshot.address == after, 60,
                 message="probe writing to the new primary")
    finally:
        runner.stop()
        probe.join(5)
    flip = next(s.ts for s in steps if s.get("step") == "dns_flip")
    with lock:
        attempts = _attempts(list(events), probe.id)
    later = [a for a in attempts if a[0] >= flip]
    assert later, attempts
    start, end, address, ok = later[0]
    assert address == after, (flip, attempts)
    # and not one attempt that began after the flip went to the old, fenced address
    assert all(a[2] == after for a in later), (flip, later)
    # the attempts before the flip went to the old address (the fenced one), as they should
    assert any(a[2] == before and not a[3] for a in attempts if a[0] < flip), attempts
