"""A real socket that stops answering: the workshop's lockup, reproduced.

A fault proxy sits between the probes and the real MariaDB server. When it stops
forwarding (blackhole), mysql-connector with the workshop's defaults (no read timeout)
hangs inside the driver and shows STALLED for good; PyMySQL (read_timeout=1) errors after
about a second, reconnects, and writes again once forwarding resumes.
"""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, EventLog, wait_for
from fiswatch import events as E
from fiswatch.backends.registry import parse_backend_spec
from fiswatch.lab.proxy import FaultProxy
from fiswatch.model import Endpoint, Secret, State
from fiswatch.engine.runner import Output, RunOptions, Runner

MC, PY = "db/mysql-connector", "db/pymysql"


@pytest.fixture
def proxy(mariadb):
    p = FaultProxy("127.0.0.1", 0, mariadb.host, mariadb.port, name="stall-test").start()
    yield p
    p.stop()


def endpoint_via(proxy, mariadb, name="db"):
    host, port = proxy.address
    return Endpoint(name=name, host=host, port=port, user=mariadb.user, database=mariadb.database,
                    password=Secret(mariadb.password))


def probe_view(runner, pid):
    return next(p for p in runner.view.probes if p.probe == pid)


def test_defaults_stall_forever_pymysql_recovers(proxy, mariadb):
    specs = [parse_backend_spec("mysql-connector"), parse_backend_spec("pymysql")]
    log = EventLog()
    runner = Runner([endpoint_via(proxy, mariadb)], specs, RunOptions(interval=0.05, stall_after=2.0),
                    outputs=[Output(log, "test")])
    runner.start()
    try:
        wait_for(lambda: all(probe_view(runner, p).snapshot.iterations >= 3 for p in (MC, PY)), 30,
                 message="both probes writing")
        proxy.set_mode("blackhole")
        wait_for(lambda: probe_view(runner, MC).state is State.STALLED, 30, message="mysql-connector STALLED")
        # PyMySQL's read timeout fires: an error, not a stall
        wait_for(lambda: probe_view(runner, PY).snapshot.errors >= 1, 30, message="pymysql error")
        err = probe_view(runner, PY).snapshot.last_error
        assert err is not None and err.code == 2013, err
        # while the proxy black-holes, PyMySQL stays out of OK (ERROR for the retry pause, then
        # RECONNECTING through the black hole): wait until the monitor has seen it, rather than
        # hoping its 0.1 s tick catches a short window after the proxy lets traffic pass again
        wait_for(lambda: any(e.event == E.STATE and e.get("probe") == PY and e.get("state") in ("ERROR", "RECONNECTING")
                             for e in log.events), 30, message="pymysql ERROR or RECONNECTING seen")
        ticks_before = runner.view.ts
        mc_ops = probe_view(runner, MC).snapshot.iterations
        proxy.set_mode("pass")
        py_ops = probe_view(runner, PY).snapshot.iterations
        wait_for(lambda: probe_view(runner, PY).snapshot.iterations >= py_ops + 5
                 and probe_view(runner, PY).state is State.OK, 30, message="pymysql writing again")
        mc = probe_view(runner, MC)
        # the fenced connection stays dead: still inside the same call, still STALLED, no new rows
        assert mc.state is State.STALLED and mc.snapshot.iterations == mc_ops
        assert mc.stalled_for > 2.0 and str(mc.snapshot.op) in ("INSERT", "COMMIT", "SELECT")
        assert probe_view(runner, PY).snapshot.reconnects >= 1
        # the monitor (the UI's source) kept ticking while a probe was blocked
        assert runner.view.ts > ticks_before
        assert runner.flush_outputs(10)
        states = [(e.get("probe"), e.get("state")) for e in log.events if e.event == E.STATE]
        # PyMySQL's error shows for the 50 ms retry pause (the monitor samples every 0.1 s, so
        # it may show it only as RECONNECTING with the error); every error is an event
        assert (MC, "STALLED") in states
        assert any(e.event == E.ERROR and e.get("probe") == PY and e.get("code") == 2013 for e in log.events)
        assert (MC, "ERROR") not in states
    finally:
        summary = runner.stop().as_dict()["probes"]
    assert summary[MC]["stalled_now"] is True and summary[MC]["longest_stall_s"] > 2.0
    assert summary[PY]["stalled_now"] is False and summary[PY]["errors"] >= 1


def test_mysql_connector_with_read_timeout_recovers(proxy, mariadb):
    """The honest lesson: it is the unset read timeout, not the library."""
    spec = parse_backend_spec("mysql-connector:read_timeout=1")
    log = EventLog()
    runner = Runner([endpoint_via(proxy, mariadb)], [spec], RunOptions(interval=0.05, stall_after=2.0),
                    outputs=[Output(log, "test")])
    pid = "db/" + spec.label
    runner.start()
    try:
        wait_for(lambda: probe_view(runner, pid).snapshot.iterations >= 3, 30, message="writing")
        proxy.set_mode("blackhole")
        wait_for(lambda: probe_view(runner, pid).snapshot.errors >= 1, 30, message="read timeout error")
        proxy.set_mode("pass")
        ops = probe_view(runner, pid).snapshot.iterations
        wait_for(lambda: probe_view(runner, pid).snapshot.iterations >= ops + 5, 30, message="writing again")
        assert runner.flush_outputs(10)
        assert not any(e.get("state") == "STALLED" for e in log.events if e.event == E.STATE)
    finally:
        runner.stop()


@pytest.mark.slow
def test_watch_json_exits_promptly_while_a_probe_hangs(proxy, mariadb):
    """`fiswatch watch --json --duration` ends even with a driver blocked forever."""
    host, port = proxy.address
    env = dict(os.environ, FISWATCH_PASSWORD_DB=mariadb.password, PYTHONPATH=ROOT)
    # --stall-after 4: above PyMySQL's own 1 s timeouts plus a connect attempt's two of them (TCP, then
    # the handshake read) and a busy machine's slack, so PyMySQL retrying into the blackhole is never
    # STALLED at the end, while mysql-connector (no read timeout) is stalled for the rest of the run.
    cmd = [sys.executable, "-m", "fiswatch", "watch", "--json", "--duration", "10", "--stall-after", "4",
           "--endpoint", "db=mysql://%s@%s:%d/%s" % (mariadb.user, host, port, mariadb.database)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                            stdin=subprocess.DEVNULL)
    lines = []
    try:
        started = time.monotonic()
        for line in proc.stdout:
            lines.append(json.loads(line))
            if lines[-1]["event"] == E.STATE and lines[-1]["state"] == "OK" and proxy.mode == "pass":
                if sum(1 for x in lines if x["event"] == E.STATE and x["state"] == "OK") == 2:
                    proxy.set_mode("blackhole")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr.read()
    assert elapsed < 10 + 10, elapsed  # generous: the point is that it ends at all
    assert all("ts" in x and "event" in x for x in lines)
    assert lines[-1]["event"] == E.SUMMARY
    probes = lines[-1]["probes"]
    assert probes[MC]["stalled_now"] is True
    assert probes[PY]["stalled_now"] is False
    assert any(x["event"] == E.STATE and x["probe"] == MC and x["state"] == "STALLED" for x in lines)
    assert mariadb.password not in json.dumps(lines)
