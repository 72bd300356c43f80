"""Write verification against the real MariaDB: lost, changed, in-doubt, id reuse, CLI."""
import json
import secrets
import socket

import pytest

from fiswatch import events as E
from fiswatch.output.record import RecordWriter
from fiswatch.report.cli import main as cli_main
from fiswatch.report.verify import render_verify, verify


@pytest.fixture(scope="module")
def db(mariadb):
    """The test server with a user of this module's own.

    The shared probe user's password is reset by every test session that starts, and
    several sessions may share this server: a private user keeps these tests steady.
    """
    from conftest import MariaDB

    user, password = "fv_" + secrets.token_hex(4), "pw-" + secrets.token_hex(8)
    for host in ("127.0.0.1", "localhost"):
        mariadb.query("CREATE USER '%s'@'%s' IDENTIFIED BY %%s" % (user, host), (password,))
        mariadb.query("GRANT SELECT ON %s.* TO '%s'@'%s'" % (mariadb.database, user, host))
    yield MariaDB(mariadb.host, mariadb.port, user, password, mariadb.database)
    for host in ("127.0.0.1", "localhost"):
        mariadb.query("DROP USER IF EXISTS '%s'@'%s'" % (user, host))


@pytest.fixture
def table(mariadb):
    name = "verify_" + secrets.token_hex(4)
    mariadb.query("CREATE TABLE %s (id INT AUTO_INCREMENT PRIMARY KEY, value INT)" % name)
    yield name
    mariadb.query("DROP TABLE IF EXISTS %s" % name)


def connector(mariadb, calls=None):
    import pymysql

    def connect(name):
        conn = pymysql.connect(host=mariadb.host, port=mariadb.port, user=mariadb.user, password=mariadb.password,
                               database=mariadb.database, autocommit=True, connect_timeout=5, read_timeout=30)
        if calls is not None:
            calls.append(name)
        return conn

    return connect


def insert(mariadb, table, values):
    """Insert rows the way a probe does; return their ids."""
    conn = mariadb.root(mariadb.database)
    ids = []
    try:
        with conn.cursor() as cur:
            for value in values:
                cur.execute("INSERT INTO %s (value) VALUES (%%s)" % table, (value,))
                ids.append(cur.lastrowid)
    finally:
        conn.close()
    return ids


def run_events(table, writes, doubts=(), endpoint="aurora", url=None):
    """A record's events: run_start naming the table, then write / write_in_doubt lines."""
    events = [{"ts": 100.0, "event": E.RUN_START, "table": table,
               "endpoints": [{"name": endpoint, "url": url or "mysql://x@127.0.0.1:1/db", "source": "cli",
                              "table": table}]}]
    for n, (row_id, value) in enumerate(writes):
        events.append({"ts": 101.0 + n * 0.01, "event": E.WRITE, "probe": "%s/pymysql" % endpoint,
                       "endpoint": endpoint, "id": row_id, "value": value, "address": "127.0.0.1"})
    for n, (row_id, value) in enumerate(doubts):
        events.append({"ts": 150.0 + n, "event": E.WRITE_IN_DOUBT, "probe": "%s/mysql-connector" % endpoint,
                       "endpoint": endpoint, "id": row_id, "value": value, "address": "127.0.0.1",
                       "error": "2013 lost"})
    return events


def test_every_acknowledged_write_present_is_ok(db, table):
    values = list(range(100, 150))
    ids = insert(db, table, values)
    result = verify(run_events(table, zip(ids, values)), connector(db))
    item = result.endpoint("aurora")
    assert result.ok and item.ok
    assert item.acknowledged == 50 and item.lost == () and item.changed == ()
    assert item.table == table
    assert "OK - 50 acknowledged, 0 lost, 0 changed" in render_verify(result)[0]


def test_deleted_row_is_lost_and_updated_row_is_changed(db, table):
    values = [11, 22, 33, 44, 55]
    ids = insert(db, table, values)
    db.query("DELETE FROM %s WHERE id = %%s" % table, (ids[1],))
    db.query("UPDATE %s SET value = 999 WHERE id = %%s" % table, (ids[3],))
    result = verify(run_events(table, zip(ids, values)), connector(db))
    item = result.endpoint("aurora")
    assert not result.ok and result.lost == 2
    assert item.lost_ids == (ids[1],)
    assert item.changed_ids == (ids[3],)
    assert (item.changed[0].value, item.changed[0].found) == (44, 999)
    text = "\n".join(render_verify(result))
    assert "LOST WRITES" in text and "lost ids: %d" % ids[1] in text and "(44 -> 999)" in text


def test_in_doubt_writes_are_resolved(db, table):
    ids = insert(db, table, [1, 2, 3])
    gone = ids[-1] + 1000  # an id that was never committed
    doubts = [(ids[0], 1), (gone, 7), (ids[2], 12345), (None, 5)]
    result = verify(run_events(table, [(ids[1], 2)], doubts), connector(db))
    item = result.endpoint("aurora")
    assert item.ok  # in-doubt writes never count as lost
    assert [r.id for r in item.in_doubt_committed] == [ids[0]]
    assert sorted(r.id for r in item.in_doubt_not_committed) == sorted([gone, ids[2]])
    assert [r.note for r in item.in_doubt_unknown] == ["no id recorded"]
    assert "in doubt: 1 committed, 2 not committed, 1 without id" in render_verify(result)[0]


def test_id_handed_out_again_by_a_new_writer_is_a_lost_write(db, table):
    """Crash failover: the promoted replica never got row N and gives id N to a new row."""
    ids = insert(db, table, [500, 600])
    new_value = 777
    writes = [(ids[0], 500), (ids[1], 321), (ids[1], new_value)]  # id ids[1]: acked twice, old row lost
    db.query("UPDATE %s SET value = %%s WHERE id = %%s" % table, (new_value, ids[1]))
    events = run_events(table, writes)
    result = verify(events, connector(db))
    item = result.endpoint("aurora")
    assert item.lost_ids == (ids[1],)
    assert item.lost[0].value == 321 and item.lost[0].found == new_value
    assert "id reused" in item.lost[0].note
    assert item.changed == ()
    assert "now holds a later write" in "\n".join(render_verify(result))


def test_range_by_range_lookup_gives_the_same_verdict_as_one_range(db, table, monkeypatch):
    """verify looks ids up one id range at a time (bounded memory): with ranges of 3 writes, the same
    verdict as with one range, ids reused, deleted, changed and in doubt across the range edges."""
    from fiswatch.report import writes as writes_module

    values = list(range(1000, 1040))
    ids = insert(db, table, values)
    db.query("DELETE FROM %s WHERE id IN (%%s, %%s)" % table, (ids[4], ids[29]))
    db.query("UPDATE %s SET value = 5 WHERE id = %%s" % table, (ids[17],))
    db.query("UPDATE %s SET value = 6 WHERE id = %%s" % table, (ids[8],))
    writes = list(zip(ids, values)) + [(ids[8], 6)]  # id ids[8] acknowledged again: its first row is lost
    writes.reverse()  # out of id order, as several probes interleave
    events = run_events(table, writes, doubts=[(ids[12], values[12]), (ids[4], values[4])])

    def verdict():
        item = verify(events, connector(db), chunk=7).endpoint("aurora")
        return (item.acknowledged, [(r.id, r.value, r.found, r.note) for r in item.lost],
                [(r.id, r.value, r.found) for r in item.changed], [r.id for r in item.in_doubt_committed],
                [r.id for r in item.in_doubt_not_committed])

    whole = verdict()
    monkeypatch.setattr(writes_module, "BUCKET", 3)
    assert verdict() == whole
    assert whole[0] == 41
    assert [(i, n) for i, _, _, n in whole[1]] == [(ids[4], "missing"), (ids[8], "id reused by a later write"),
                                                  (ids[29], "missing")]
    assert whole[2] == [(ids[17], values[17], 5)]
    assert whole[3] == [ids[12]] and whole[4] == [ids[4]]


def test_lookups_are_batched_per_endpoint_and_an_unreachable_endpoint_is_reported(db, table):
    values = [n % 32768 for n in range(2500)]
    ids = insert(db, table, values)
    events = run_events(table, zip(ids, values))
    events += run_events(table, [(1, 1)], endpoint="rds")[1:]
    statements = []
    real = connector(db)

    class Counting:
        """The real connection, counting the statements verify sends through it."""

        def __init__(self, conn):
            self.conn = conn

        def cursor(self):
            cur = self.conn.cursor()
            execute = cur.execute

            def counted(sql, args=None):
                statements.append(sql)
                return execute(sql, args)

            cur.execute = counted
            return cur

        def close(self):
            self.conn.close()

    def connect(name):
        if name == "rds":
            raise ConnectionRefusedError("nothing listens on the rds writer")
        return Counting(real(name))

    result = verify(events, connect, chunk=1000)
    aurora, rds = result.endpoint("aurora"), result.endpoint("rds")
    assert aurora.ok and aurora.acknowledged == 2500
    lookups = [s for s in statements if s.startswith("SELECT id, value")]
    assert len(lookups) == 3  # 2500 ids in chunks of 1000
    assert rds.error.startswith("ConnectionRefusedError") and not rds.ok
    assert result.failed and not result.ok and result.lost == 0
    assert any("rds (table %s): NOT VERIFIED" % table in line for line in render_verify(result))
    assert json.loads(json.dumps(result.as_dict()))["endpoints"][1]["error"]


def write_record(path, events):
    with RecordWriter(str(path)) as writer:
        for ev in events:
            writer.write(ev)


def test_cli_verify_finds_the_loss_and_exits_1(db, table, tmp_path, monkeypatch, capsys):
    ids = insert(db, table, [5, 6, 7])
    db.query("DELETE FROM %s WHERE id = %%s" % table, (ids[0],))
    url = "mysql://%s@%s:%d/%s" % (db.user, db.host, db.port, db.database)
    record = tmp_path / "run.jsonl"
    write_record(record, run_events(table, zip(ids, [5, 6, 7]), url=url))
    monkeypatch.delenv("MYSQL_PWD", raising=False)
    monkeypatch.setenv("FISWATCH_PASSWORD_AURORA", db.password)
    assert cli_main(["verify", str(record)]) == 1
    out = capsys.readouterr().out
    assert "LOST WRITES" in out and "lost ids: %d" % ids[0] in out
    assert db.password not in out
    db.query("INSERT INTO %s (id, value) VALUES (%%s, 5)" % table, (ids[0],))
    assert cli_main(["verify", str(record), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["endpoints"][0]["acknowledged"] == 3


def test_cli_verify_endpoint_override_and_bad_inputs(db, table, tmp_path, monkeypatch, capsys):
    ids = insert(db, table, [9])
    record = tmp_path / "run.jsonl"
    write_record(record, run_events(table, [(ids[0], 9)]))  # the record's URL points nowhere useful
    monkeypatch.delenv("MYSQL_PWD", raising=False)
    monkeypatch.delenv("FISWATCH_PASSWORD_AURORA", raising=False)
    override = "aurora=mysql://%s@%s:%d/%s" % (db.user, db.host, db.port, db.database)
    # no password anywhere and no terminal to ask on: one line, exit 2
    assert cli_main(["verify", str(record), "--endpoint", override]) == 2
    err = capsys.readouterr().err
    assert "FISWATCH_PASSWORD_AURORA" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("MYSQL_PWD", db.password)
    assert cli_main(["verify", str(record), "--endpoint", override]) == 0
    assert "OK - 1 acknowledged" in capsys.readouterr().out
    # a writer that is not there: the endpoint is reported not verified, exit 2
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    dead = "aurora=mysql://%s@127.0.0.1:%d/%s" % (db.user, closed_port, db.database)
    assert cli_main(["verify", str(record), "--endpoint", dead, "--timeout", "3"]) == 2
    assert "NOT VERIFIED" in capsys.readouterr().out
    # a password in the URL is refused, a missing file is one line
    assert cli_main(["verify", str(record), "--endpoint", "aurora=mysql://u:pw@127.0.0.1/db"]) == 2
    assert "remove the password" in capsys.readouterr().err
    assert cli_main(["verify", str(tmp_path / "nope.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "cannot read record" in err and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- from real lab runs

# `lab` is the session fixture of tests/_lab_fixture.py (a real local failover lab).

ROOT = __import__("os").path.dirname(__import__("os").path.dirname(__import__("os").path.abspath(__file__)))


def lab_connect(info):
    from fiswatch.report.verify_cli import make_connect

    return make_connect({e.name: e for e in info.endpoints}, tuple(info.nameserver), timeout=10)


@pytest.mark.lab
@pytest.mark.slow
def test_demo_record_of_two_failovers_reports_gaps_and_verifies_clean(lab, tmp_path):
    """`fiswatch demo` on the lab: both failovers recorded, gaps found, nothing lost."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import wait_for

    from fiswatch.lab.api import lab_status
    from fiswatch.output.record import read_record
    from fiswatch.report.build import build_report
    from fiswatch.report.render_text import summary_lines

    record = str(tmp_path / "demo.jsonl")
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "fiswatch", "demo", "--dir", lab.dir, "--json", "--duration", "60",
                             "--aurora-after", "4", "--rds-after", "13", "--record", record],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def both_recovered():
        """Both failovers done, each endpoint's PyMySQL probe has written after its failover's end, and the
        record holds each name's DNS flip."""
        try:
            with open(record) as fh:
                events = [json.loads(line) for line in fh if line.endswith("\n")]
        except FileNotFoundError:
            return False
        done = {e.get("target"): e["ts"] for e in events if e["event"] == E.LAB and e.get("step") == "done"}
        if not all(name in done and any(e["event"] == E.WRITE and e.get("probe") == name + "/pymysql"
                                        and e["ts"] > done[name] for e in events) for name in ("aurora", "rds")):
            return False
        # and the run's DNS watcher has seen each name flip (it looks on its own pace: beside two busy
        # loops the probe was seen writing on the new RDS writer before the watcher's next look)
        report = build_report(events)
        return all(report.dns_for(name) is not None and report.dns_for(name).flip_at is not None
                   for name in ("aurora", "rds"))

    try:
        wait_for(both_recovered, timeout=120, message="both failovers done and PyMySQL writing after each")
        # --duration 60 is only the bound; once seen, SIGTERM ends the demo like q (verify, record and summary kept)
        proc.send_signal(signal.SIGTERM)
        stderr = proc.communicate(timeout=180)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr[-2000:]
    events = list(read_record(record))
    report = build_report(events)
    assert report.complete
    assert [f.target for f in report.failovers] == ["aurora", "rds"]
    for name in ("aurora", "rds"):
        fo = report.failover_for(name)
        assert fo.outage_start is not None and fo.outage_end is not None and not fo.crash
        py = next(p for p in report.probes if p.probe == name + "/pymysql")
        mc = next(p for p in report.probes if p.probe == name + "/mysql-connector")
        # PyMySQL (read_timeout=1) has one closed gap around the outage and moved to the new writer
        assert py.recovered, (name, py.write_gaps)
        assert py.outage_gap is not None and not py.outage_gap.open
        assert py.outage_gap.start < fo.outage_end <= py.outage_gap.end
        assert py.beyond_outage is not None and py.beyond_outage >= 0
        assert py.address_before != py.address_after
        # mysql-connector without a read timeout hangs on the fenced writer until the end
        assert not mc.recovered and mc.stalls and mc.stalls[-1].open
        assert mc.outage_gap is not None and mc.outage_gap.open and mc.beyond_outage is None
        assert report.dns_for(name).flip_at is not None
    assert any("NEVER RECOVERED" in line for line in summary_lines(report))

    result = verify(events, lab_connect(lab_status(lab.dir)))
    assert result.ok, render_verify(result)
    assert {e.endpoint for e in result.endpoints} == {"aurora", "rds"}
    acked = sum(1 for e in events if e["event"] == E.WRITE)
    assert sum(e.acknowledged for e in result.endpoints) == acked > 0


class Writer:
    """A PyMySQL probe loop (read_timeout=1) that records its writes as events."""

    def __init__(self, info, target, emit):
        import threading

        from fiswatch.engine.resolve import Resolver

        self.endpoint = {e.name: e for e in info.endpoints}[target]
        self.target, self.emit = target, emit
        self.resolver = Resolver(nameserver=tuple(info.nameserver))
        self.acked = []  # (monotonic time the COMMIT returned, id)
        self.commit_sent = {}  # id -> time.time() just before its COMMIT was sent
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        import random
        import time

        import pymysql

        ep, probe, conn, address = self.endpoint, self.target + "/pymysql", None, None
        while not self.stop.is_set():
            try:
                if conn is None:
                    address = self.resolver.resolve(ep.host).address
                    if address is None:
                        raise OSError("no address for %s" % ep.host)
                    conn = pymysql.connect(host=address, port=ep.port, user=ep.user, password=ep.password.reveal(),
                                           database=ep.database, connect_timeout=1, read_timeout=1, write_timeout=1)
                value = random.randint(0, 32767)
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO test (value) VALUES (%s)", (value,))
                    row_id = cur.lastrowid
                self.commit_sent[row_id] = time.time()
                try:
                    conn.commit()
                except Exception as exc:
                    self.emit(E.write_in_doubt(probe, self.target, id=row_id, value=value, address=address,
                                               error=str(exc)[:60]))
                    raise
                self.acked.append((time.monotonic(), row_id))
                self.emit(E.write(probe, self.target, id=row_id, value=value, address=address))
                time.sleep(0.02)
            except Exception as exc:
                code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
                self.emit(E.error(probe, self.target, code=code, kind="lost", message=str(exc)[:60], op="COMMIT"))
                try:
                    if conn is not None:
                        conn.close()
                except Exception:
                    pass
                conn = None
                time.sleep(0.1)


@pytest.mark.lab
@pytest.mark.slow
def test_crash_failover_with_a_lagging_standby_loses_acknowledged_writes(lab, tmp_path, capsys):
    """Crash failover (the standby lags): verify names exactly the writes it never got."""
    import threading
    import time

    from conftest import wait_for
    from fiswatch.lab.api import failover, lab_status
    from fiswatch.output.record import read_record
    from fiswatch.report.build import build_report

    info = lab_status(lab.dir)
    record = str(tmp_path / "crash.jsonl")
    recorder = RecordWriter(record)
    lock = threading.Lock()

    def emit(event):
        with lock:
            recorder.write(event)

    emit(E.run_start([{"probe": "rds/pymysql", "endpoint": "rds", "backend": "pymysql"}],
                     [{"name": "rds", "url": {e.name: e for e in info.endpoints}["rds"].url(),
                       "source": "lab:" + lab.dir, "table": "test"}], stall_after=2.0, interval=0.02))
    writer = Writer(info, "rds", emit)
    writer.thread.start()
    try:
        wait_for(lambda: len(writer.acked) >= 20, 60, message="writes before the crash")
        # the lab's crash failover pauses replication to the standby, lets the writer take
        # writes for a second (`lag` step), then fences and kills it
        failover(lab.dir, "rds", emit=emit, crash=True)
        done_at = time.monotonic()
        wait_for(lambda: sum(1 for t, _ in writer.acked if t > done_at) >= 10, 60, message="writes after the crash")
    finally:
        writer.stop.set()
        writer.thread.join(30)
    emit(E.summary({"rds/pymysql": {"state": "OK"}}))
    recorder.close()

    events = list(read_record(record))
    result = verify(events, lab_connect(lab_status(lab.dir)))
    rds = result.endpoint("rds")
    lost = {(r.id, r.value) for r in rds.lost + rds.changed}
    steps = {e["step"]: e for e in events if e["event"] == E.LAB}
    lagging, fenced, killed = steps["lag"]["ts"], steps["start"]["outage_start"], steps["blackhole"]["ts"]
    acked = [(e["ts"], (e["id"], e["value"])) for e in events if e["event"] == E.WRITE]
    # a write whose COMMIT was sent after replication was paused: the record's ts is when the client had
    # the OK, which on a loaded machine came after the `lag` step for a COMMIT the standby had received
    missed = {w for ts, w in acked if lagging < writer.commit_sent.get(w[0], 0.0) and ts < fenced}
    assert not result.ok and rds.error is None and missed
    assert missed <= lost  # every write acknowledged while the standby lagged is found lost
    assert lost <= {w for ts, w in acked if ts < killed}  # nothing acknowledged by the new primary
    report = build_report(events)
    (probe,) = report.probes
    assert probe.recovered and probe.outage_gap is not None and report.failovers[0].crash

    # the command says so too: exit 1, the lost ids listed
    assert cli_main(["verify", record, "--lab", lab.dir]) == 1
    out = capsys.readouterr().out
    assert "LOST WRITES" in out and "lost ids:" in out
