"""A Blue/Green deployment in the real lab (`lab up --blue-green`, `lab switchover`): docs/lab.md, Blue/Green."""
import fcntl
import json
import os
import subprocess
import sys
import threading
import time

import pymysql
import pytest

from _lab_fixture import private_lab, resolver_for

from fiswatch.lab import bg_answers as A
from fiswatch.lab import layout as L


@pytest.fixture(scope="module")
def bg(tmp_path_factory):
    """A lab with a green environment; torn down at the end of the module."""
    with private_lab(tmp_path_factory, "bglab", blue_green=True) as info:
        yield info


def _layout(info):
    from fiswatch.lab.control import request

    return L.Layout.from_dict(request(os.path.join(info.dir, L.CONTROL_SOCKET), "state")["layout"])


def _password(info):
    from fiswatch.lab.files import password_of

    return password_of(os.path.join(info.dir, L.CREDENTIALS_FILE), info.dir)


def _client(info, host, **kw):
    """The lab's non-admin user, as an application connects (through the instance's proxy)."""
    kw.setdefault("connect_timeout", 3)
    return pymysql.connect(host=host, port=3306, user=L.CLIENT_USER, password=_password(info), database=L.DATABASE,
                           autocommit=True, **kw)


def _writers(layout):
    """(blue aurora writer, green aurora writer, blue rds, green rds) proxy addresses."""
    specs = (L.INSTANCES[0], L.GREEN_INSTANCES[0], L.INSTANCES[2], L.GREEN_INSTANCES[2])
    return [layout.proxy_address(s)[0] for s in specs]


def _status(layout, spec):
    from fiswatch.lab.mariadb import sql

    return sql(layout.server_socket(spec), ["SELECT role, status FROM %s ORDER BY role" % A.RDS_TOPOLOGY])


def test_rds_topology_answers_the_wrappers_queries_on_both_sides(bg):
    layout = _layout(bg)
    for host in _writers(layout):
        conn = _client(bg, host)
        try:
            with conn.cursor() as cur:
                cur.execute(A.EXISTS_QUERY)
                assert cur.fetchall() == ((1,),) and cur.description[0][0] == "tmp"
                cur.execute(A.STATUS_QUERY)
                rows = cur.fetchall()
                assert [r[3] for r in rows] == [A.SOURCE, A.TARGET], host
                assert {(r[0], r[2], r[4]) for r in rows} == {("1.0", 3306, "AVAILABLE")}
                cur.execute("SELECT * FROM mysql.rds_topology")
                assert [d[0] for d in cur.description] == ["id", "endpoint", "port", "role", "status", "version"]
                by_role = {r[3]: r for r in cur.fetchall()}
                cur.execute("SELECT @@server_id")
                own = cur.fetchone()[0]
        finally:
            conn.close()
        blue = host in _writers(layout)[0::2]
        assert by_role[A.SOURCE if blue else A.TARGET][0] == own  # id = @@server_id of the side's writer
        assert ("-green-c0ffee" in by_role[A.TARGET][1]) and "-green-" not in by_role[A.SOURCE][1]


def test_green_names_resolve_in_the_lab_only_to_green(bg):
    layout, resolver = _layout(bg), resolver_for(bg)
    assert [r.address for r in resolver.resolve(L.GREEN_ENDPOINT_NAMES["aurora-green"], "A")] == \
        [layout.proxy_address(L.GREEN_INSTANCES[0])[0]]
    for spec in L.GREEN_INSTANCES:
        assert [r.address for r in resolver.resolve(str(spec.dns_name), "A")] == [layout.proxy_address(spec)[0]]


@pytest.mark.skipif(sys.version_info < (3, 10), reason="the AWS wrapper needs Python >= 3.10 (3.9: the test above)")
def test_green_names_are_shaped_as_the_wrappers_rds_utils_expects():
    from aws_advanced_python_wrapper.utils.rds_utils import RdsUtils

    rds = RdsUtils()
    for name in [L.GREEN_ENDPOINT_NAMES["aurora-green"]] + [str(s.dns_name) for s in L.GREEN_INSTANCES]:
        assert rds.is_green_instance(name), name
        assert not rds.is_green_instance(rds.remove_green_instance_prefix(name))
    assert rds.is_rds_cluster_dns(L.GREEN_ENDPOINT_NAMES["aurora-green"])


def test_green_is_a_read_only_replica_of_blue_with_greens_topology(bg):
    layout = _layout(bg)
    blue = _client(bg, layout.proxy_address(L.INSTANCES[0])[0])
    green = _client(bg, layout.proxy_address(L.GREEN_INSTANCES[0])[0])
    try:
        with blue.cursor() as cur:
            cur.execute("INSERT INTO test (value) VALUES (4242)")
            new_id = cur.lastrowid
        with green.cursor() as cur:
            deadline = time.monotonic() + 30
            while True:
                cur.execute("SELECT value FROM test WHERE id = %s", (new_id,))
                if cur.fetchall() == ((4242,),) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert cur.execute("SELECT value FROM test WHERE id = %s", (new_id,)) == 1
            with pytest.raises(pymysql.err.OperationalError) as err:
                cur.execute("INSERT INTO test (value) VALUES (1)")
            assert err.value.args[0] == 1290
            cur.execute("SELECT @@aurora_server_id, @@aurora_server_id")
            assert cur.fetchone()[0] == L.GREEN_INSTANCES[0].name
    finally:
        blue.close()
        green.close()


def test_bad_input_is_one_line_and_starts_nothing(bg, tmp_path):
    from fiswatch.lab.switchover import SwitchoverError, run_switchover

    with pytest.raises(SwitchoverError) as err:
        run_switchover(bg.dir, lambda *a, **k: None, profile="slow")
    assert err.value.usage and "unknown switchover profile 'slow': use aws or fast" in str(err.value)
    with pytest.raises(SwitchoverError) as err:
        run_switchover(bg.dir, lambda *a, **k: None, fault="slow-dns")
    assert err.value.usage and str(err.value).startswith("unknown switchover fault 'slow-dns': use one of rollback, ")
    fd = os.open(os.path.join(bg.dir, "failover.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running failover/crash/switchover holds it
        with pytest.raises(SwitchoverError) as err:
            run_switchover(bg.dir, lambda *a, **k: None)
        assert err.value.usage and "already runs" in str(err.value)
    finally:
        os.close(fd)
    assert [s for _, s in _status(_layout(bg), L.INSTANCES[0])] == ["AVAILABLE", "AVAILABLE"]


def test_a_switchover_cancelled_in_progress_rolls_back_and_blue_serves_writes(bg):
    from fiswatch.lab.switchover import SwitchoverError, run_switchover

    layout, cancel, steps = _layout(bg), threading.Event(), []

    def emit(step, detail, **extra):
        steps.append(step)
        if step == "SWITCHOVER_IN_PROGRESS":
            cancel.set()

    with pytest.raises(SwitchoverError) as err:
        run_switchover(bg.dir, emit, cancel=cancel)
    assert not err.value.usage and "rolled back at SWITCHOVER_IN_PROGRESS" in str(err.value)
    assert steps == ["SWITCHOVER_INITIATED", "SWITCHOVER_IN_PROGRESS", "rolled_back"]
    conn = _client(bg, layout.proxy_address(L.INSTANCES[0])[0])
    try:
        with conn.cursor() as cur:
            assert cur.execute("INSERT INTO test (value) VALUES (7)") == 1
    finally:
        conn.close()
    assert [s for _, s in _status(layout, L.INSTANCES[0])] == ["AVAILABLE", "AVAILABLE"]


def test_fault_rollback_is_rolled_back_in_progress_as_aws_does_on_its_timeout(bg):
    from fiswatch.lab.switchover import run_switchover

    layout, steps = _layout(bg), []
    run_switchover(bg.dir, lambda step, detail, **extra: steps.append(step), fault="rollback")
    assert steps == ["SWITCHOVER_INITIATED", "SWITCHOVER_IN_PROGRESS", "rolled_back"]
    conn = _client(bg, layout.proxy_address(L.INSTANCES[0])[0])
    try:
        with conn.cursor() as cur:
            assert cur.execute("INSERT INTO test (value) VALUES (9)") == 1  # blue serves writes again
    finally:
        conn.close()
    assert [s for _, s in _status(layout, L.INSTANCES[0])] == ["AVAILABLE", "AVAILABLE"]


def test_a_killed_green_server_rolls_the_switchover_back(bg):
    from fiswatch.lab.control import request
    from fiswatch.lab.mariadb import sql
    from fiswatch.lab.switchover import SwitchoverError, run_switchover

    layout, green = _layout(bg), L.GREEN_INSTANCES[0]
    request(layout.control_socket, "kill", instance=green.name)
    try:
        with pytest.raises(SwitchoverError) as err:
            run_switchover(bg.dir, lambda *a, **k: None)
        assert not err.value.usage and "rolled back at SWITCHOVER_IN_PROGRESS" in str(err.value), str(err.value)
        conn = _client(bg, layout.proxy_address(L.INSTANCES[0])[0])
        try:
            with conn.cursor() as cur:
                assert cur.execute("INSERT INTO test (value) VALUES (8)") == 1  # blue serves writes
        finally:
            conn.close()
    finally:
        request(layout.control_socket, "start", instance=green.name, read_only=True)
        sql(layout.server_socket(green), ["START SLAVE"])
    assert [s for _, s in _status(layout, L.INSTANCES[0])] == ["AVAILABLE", "AVAILABLE"]


class Writer(threading.Thread):
    """PyMySQL writing by the cluster's name (resolved by the lab's DNS), reconnecting after each error."""

    def __init__(self, info, name):
        super().__init__(daemon=True)
        self.info, self.name_, self.stop, self.acked, self.errors, self.server_ids = info, name, threading.Event(), [], [], []

    def run(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = _client(self.info, self.name_, connect_timeout=2, read_timeout=2, write_timeout=2)
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO test (value) VALUES (99)")
                    self.acked.append(cur.lastrowid)
                    cur.execute("SELECT @@server_id")
                    self.server_ids.append(cur.fetchone()[0])
            except pymysql.err.MySQLError as exc:
                self.errors.append((time.time(), exc.args[0] if exc.args else None))
                try:
                    conn.close() if conn is not None else None
                except Exception:  # noqa: BLE001 - closing a broken connection
                    pass
                conn = None
                time.sleep(0.05)
            time.sleep(0.02)


class WrapperRun:
    """`fiswatch watch --lab` with the AWS wrapper and its `bg` plugin, recording (as the demo runs it)."""

    def __init__(self, info, tmp_path):
        self.record = str(tmp_path / "bg-wrapper.jsonl")
        self.probe = "aurora/aws-wrapper:plugins=bg+failover_v2"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fiswatch", "watch", "--lab", info.dir, "--backend", self.probe, "--plain",
             "--duration", "120", "--record", self.record], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, AWS_EC2_METADATA_DISABLED="true"))

    def events(self):
        try:
            with open(self.record) as fh:
                return [json.loads(line) for line in fh if line.strip()]
        except (OSError, ValueError):
            return []

    def writes(self):
        return [e for e in self.events() if e.get("event") == "write" and e.get("probe") == self.probe]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def test_switchover_goes_through_every_status_renames_and_pymysql_recovers(bg, tmp_path):
    from fiswatch.lab.api import lab_status
    from fiswatch.lab.mariadb import sql
    from fiswatch.lab.resolver_hook import install
    from fiswatch.lab.switchover import SwitchoverError, old1, run_switchover

    layout = _layout(bg)
    install(tuple(bg.nameserver))
    green_writer = L.GREEN_INSTANCES[0]
    seen, watching = [], threading.Event()

    def watch():  # what green's writer answers, as the bg plugin polls it (every 100 ms during a switchover)
        while not watching.is_set():
            try:
                rows = sql(layout.server_socket(green_writer), ["SELECT status FROM %s" % A.RDS_TOPOLOGY])
            except Exception:  # noqa: BLE001 - the poller keeps polling
                rows = []
            status = rows[0][0] if rows else "(empty)"
            if not seen or seen[-1] != status:
                seen.append(status)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    writer = Writer(bg, L.ENDPOINT_NAMES["aurora"])
    writer.start()
    wrapper = WrapperRun(bg, tmp_path) if sys.version_info >= (3, 10) else None  # the wrapper needs 3.10+
    deadline = time.monotonic() + 60
    while (len(writer.acked) < 5 or (wrapper and not wrapper.writes())) and time.monotonic() < deadline:
        time.sleep(0.1)
    steps = []
    result = run_switchover(bg.dir, lambda step, detail, **extra: steps.append((step, time.time())), profile="fast")
    phases = dict(steps)
    steps = [step for step, _ in steps]
    deadline = time.monotonic() + 60  # blue's name answers green's address within its TTL (5 s)
    while not writer.server_ids or writer.server_ids[-1] != green_writer.index:
        assert time.monotonic() < deadline, "PyMySQL never wrote to green: errors %s" % writer.errors[-5:]
        time.sleep(0.1)
    writer.stop.set()
    writer.join(10)
    deadline = time.monotonic() + 60  # the table empties a while after COMPLETED (the profile's wait)
    while seen[-1] != "(empty)" and time.monotonic() < deadline:
        time.sleep(0.1)
    watching.set()
    watcher.join(5)
    if wrapper is not None:
        _wrapper_is_reported_as_it_behaved(wrapper, bg, phases)
    assert seen == list(A.STATUSES) + ["(empty)"], seen
    assert steps == ["SWITCHOVER_INITIATED", "SWITCHOVER_IN_PROGRESS", "promote", "SWITCHOVER_IN_POST_PROCESSING",
                     "topology-renamed", "blue-dns", "green-dns-removed", "SWITCHOVER_COMPLETED", "done"]
    assert result["outage_end"] > result["outage_start"]
    codes = {code for _, code in writer.errors}
    assert codes and codes <= {1290, 3032, 2013, 2003, 2006, 0}, codes  # what the drop, the refusal, -old1 answer
    ids = ",".join(str(i) for i in writer.acked)
    found = sql(layout.server_socket(green_writer), ["SELECT COUNT(*) FROM %s.%s WHERE id IN (%s)"
                                                     % (L.DATABASE, L.TABLE, ids)])[0][0]
    assert found == len(writer.acked)  # every acknowledged write is on green: 0 lost
    resolver = resolver_for(bg)
    import dns.resolver

    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve(L.GREEN_ENDPOINT_NAMES["aurora-green"], "A")
    old = _client(bg, old1(L.ENDPOINT_NAMES["aurora"]))
    try:
        with old.cursor() as cur:
            cur.execute("SELECT @@server_id")
            assert cur.fetchone()[0] == L.INSTANCES[0].index
            with pytest.raises(pymysql.err.OperationalError) as err:
                cur.execute("INSERT INTO test (value) VALUES (1)")
            assert err.value.args[0] == 1290
    finally:
        old.close()
    conn = _client(bg, L.ENDPOINT_NAMES["aurora"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@aurora_server_id, @@aurora_server_id")
            assert cur.fetchone()[0] == L.INSTANCES[0].name  # green's SERVER_ID renamed to the blue name
    finally:
        conn.close()
    last = lab_status(bg.dir).last_failover if hasattr(lab_status(bg.dir), "last_failover") else None
    from fiswatch.lab.control import request

    last = request(os.path.join(bg.dir, L.CONTROL_SOCKET), "state")["last_failover"]
    assert (last["target"], last["phase"], last["state"]) == ("switchover", "done", "done")
    with pytest.raises(SwitchoverError) as again:
        run_switchover(bg.dir, lambda *a, **k: None)
    assert again.value.usage and "switched over already" in str(again.value)


def _wrapper_is_reported_as_it_behaved(wrapper, info, phases):
    """The wrapper with `bg` through the switchover, and what fiswatch's record says of it.

    Whatever the wrapper does (in this lab, 3.1.0 holds the call from IN_PROGRESS until it reaches green),
    a call it holds shows as STALLED in its column while it is held, and writes resume on green's address
    or the column stays STALLED to the end: fiswatch reports the hang as the wrapper's, never as OK."""
    layout = _layout(info)
    green = layout.proxy_address(L.GREEN_INSTANCES[0])[0]
    deadline = time.monotonic() + 45  # PyW's measured COMPLETED is at +54.7 s; the fast profile ends in ~6 s
    while time.monotonic() < deadline and not any(w["address"] == green for w in wrapper.writes()):
        time.sleep(0.2)
    wrapper.stop()
    events = wrapper.events()
    start = phases["SWITCHOVER_IN_PROGRESS"]
    before = [w["ts"] for w in wrapper.writes() if w["ts"] < start]
    after = [w for w in wrapper.writes() if w["ts"] > start]
    assert before, "the wrapper never wrote before the switchover"
    gap_start = before[-1]
    gap_end = after[0]["ts"] if after else events[-1]["ts"]
    states = [e for e in events if e.get("event") == "state" and e.get("probe") == wrapper.probe
              and gap_start <= e["ts"] <= gap_end]
    if gap_end - gap_start > 2.0:  # a held call: the column says STALLED while it is held
        assert any(e["state"] == "STALLED" for e in states), states
    if after:
        assert after[-1]["address"] == green  # it ended on green, under the blue name
    else:
        last_tick = [e for e in events if e.get("event") == "tick"][-1]
        assert last_tick["probes"][wrapper.probe]["state"] == "STALLED"

