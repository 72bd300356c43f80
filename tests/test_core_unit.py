"""Unit tests of the pure core: endpoint parsing, passwords, backend specs, errors, monitor."""
import pytest

from fiswatch import events as E
from fiswatch.backends.base import BackendOptionError, classify_error
from fiswatch.backends.registry import UnknownBackend, make_backend, parse_backend_spec
from fiswatch.config.checks import ConfigError, parse_endpoint, password_for, with_password
from fiswatch.model import BackendInfo, Op, Secret, Snapshot, State
from fiswatch.engine.monitor import Monitor
from fiswatch.engine.resolve import HostsFile, Resolver, parse_nameserver


def test_endpoint_url_parsed():
    e = parse_endpoint("aurora=mysql://admin@db.example.com:3307/testdb")
    assert (e.name, e.user, e.host, e.port, e.database, e.table) == ("aurora", "admin", "db.example.com", 3307,
                                                                     "testdb", "test")
    assert parse_endpoint("rds=mysql://u@h/d").port == 3306


@pytest.mark.parametrize("text, fragment", [
    ("aurora=mysql://admin:hunter2@db/testdb", "remove the password"),
    ("aurora", "NAME=mysql://"),
    ("aurora=http://admin@db/testdb", "must start with mysql://"),
    ("aurora=mysql://db/testdb", "no user"),
    ("aurora=mysql://admin@db", "name one database"),
    ("aurora=mysql://admin@db:notaport/x", "malformed URL"),
    ("1x=mysql://admin@db/x", "must start with a letter"),
])
def test_bad_endpoint_is_one_clear_line(text, fragment):
    with pytest.raises(ConfigError) as err:
        parse_endpoint(text)
    msg = str(err.value)
    assert fragment in msg and "\n" not in msg
    assert "hunter2" not in msg


def test_password_precedence_and_never_in_repr():
    env = {"FISWATCH_PASSWORD_AURORA": "s3cret", "MYSQL_PWD": "other"}
    assert password_for("aurora", env, prompt=False).reveal() == "s3cret"
    assert password_for("rds", env, prompt=False).reveal() == "other"
    assert password_for("rds", {}, prompt=False) is None
    e = with_password(parse_endpoint("aurora=mysql://admin@db/testdb"), env, prompt=False)
    assert e.password.reveal() == "s3cret"
    assert "s3cret" not in repr(e) and "s3cret" not in e.url() and "s3cret" not in repr(Secret("s3cret"))


def test_backend_specs_and_options():
    spec = parse_backend_spec("mysql-connector:read_timeout=1,use_pure=true")
    assert spec.label == "mysql-connector:read_timeout=1,use_pure=true"
    backend = make_backend(spec)
    assert dict(backend.effective_timeouts()) == {"connect": 1.0, "read": 1.0, "write": None}
    info = make_backend(parse_backend_spec("mysql-connector")).info()
    assert info.available and info.timeout("read") is None
    assert "read none" in info.timeouts_text()
    assert dict(make_backend(parse_backend_spec("pymysql")).effective_timeouts()) == {
        "connect": 1.0, "read": 1.0, "write": 1.0}
    with pytest.raises(BackendOptionError, match="unknown option bogus"):
        make_backend(parse_backend_spec("pymysql:bogus=1"))
    with pytest.raises(BackendOptionError, match="number of seconds"):
        make_backend(parse_backend_spec("pymysql:read_timeout=soon"))
    with pytest.raises(BackendOptionError, match="KEY=VALUE"):
        parse_backend_spec("pymysql:read_timeout")
    with pytest.raises(UnknownBackend, match="fiswatch backends"):
        make_backend(parse_backend_spec("nosuchdriver"))


def test_missing_driver_is_unavailable_not_a_crash(monkeypatch):
    backend = make_backend(parse_backend_spec("pymysql"))

    def broken():
        raise ImportError("No module named 'pymysql'")

    monkeypatch.setattr(backend, "import_driver", broken)
    info = backend.info()
    assert not info.available and "pip install PyMySQL" in info.reason


@pytest.mark.parametrize("code, message, kind", [
    (1045, "Access denied for user", "auth"),
    (1290, "The MariaDB server is running with the --read-only option", "read-only"),
    (2003, "Can't connect to MySQL server", "refused"),
    (2013, "Lost connection to MySQL server during query", "lost"),
    (2013, "Lost connection to MySQL server during query (timed out)", "read-timeout"),
    (3024, "Query execution was interrupted, maximum statement execution time exceeded", "query-timeout"),
    (1969, "Query execution was interrupted (max_statement_time exceeded)", "query-timeout"),
    (3024, "The Read Operation timed out. As a consequence the current connection has been closed", "read-timeout"),
    (3024, "The Write Operation timed out. As a consequence the current connection has been closed", "write-timeout"),
    (2003, "Can't connect to MySQL server on '10.0.0.1' (timed out)", "connect-timeout"),
    (2003, "Can't connect to MySQL server on '10.0.0.1:3306' (110)", "connect-timeout"),
    (2003, "Can't connect to MySQL server on '10.0.0.1' ([Errno 111] Connection refused)", "refused"),
    (2006, "MySQL server has gone away (TimeoutError('timed out'))", "write-timeout"),
    (2013, "Lost connection to MySQL server at 'waiting for initial communication packet', system error: 110",
     "timeout"),
    (1146, "Table 'x.test' doesn't exist", "no-table"),
])
def test_error_kinds(code, message, kind):
    info = classify_error(code, message)
    assert info.kind == kind and info.short() == "%d %s" % (code, kind)


def test_nameserver_and_hosts_parsing(tmp_path):
    assert parse_nameserver("127.0.0.53") == ("127.0.0.53", 53)
    assert parse_nameserver("[::1]:5353") == ("::1", 5353)
    for bad in ("dns.example", "127.0.0.1:0", "127.0.0.1:x"):
        with pytest.raises(ValueError):
            parse_nameserver(bad)
    hosts = tmp_path / "hosts"
    hosts.write_text("# comment\n127.0.0.1 localhost\n127.0.9.9 aurora.lab aurora # trailing\n::1 aurora\n")
    assert HostsFile.parse(hosts.read_text()).lookup("AURORA.lab.") == ("127.0.9.9",)
    r = Resolver(hosts_path=str(hosts))
    res = r.resolve("aurora")
    assert res.addresses == ("127.0.9.9", "::1") and res.source == "hosts"
    assert r.resolve("127.0.0.7").source == "literal"


class _Fixed:
    def __init__(self, snap):
        self.id = snap.probe
        self.snapshot = snap


def test_monitor_derives_stall_and_emits_state_changes():
    snap = Snapshot("a/b", "a", "b", state=State.OK, op=Op.INSERT, op_started=100.0, iterations=5)
    probe = _Fixed(snap)
    m = Monitor([probe], {"a/b": BackendInfo("b", "lib", "1")}, stall_after=2.0)
    view, events = m.tick(now=100.5, wall=1000.0)
    assert view.probes[0].state is State.OK
    assert [e.get("state") for e in events if e.event == E.STATE] == ["OK"]
    view, events = m.tick(now=102.6, wall=1001.2)
    pv = view.probes[0]
    assert pv.state is State.STALLED and pv.stalled_for == pytest.approx(2.6)
    assert [(e.get("previous"), e.get("state"), e.get("op")) for e in events if e.event == E.STATE] == [
        ("OK", "STALLED", "INSERT")]
    ticks = [e for e in events if e.event == E.TICK]
    assert ticks and ticks[0].get("probes")["a/b"]["ops"] == 0
    m.emit(E.info("hello"))
    view, events = m.tick(now=110.0, wall=1002.0)
    assert view.probes[0].longest_stall == pytest.approx(10.0)
    assert any(e.event == E.INFO for e in view.events)
    summary = m.summary(view).as_dict()["probes"]["a/b"]
    assert summary["stalled_now"] is True and summary["longest_stall_s"] == 10.0 and summary["ops"] == 5


def test_verify_events_read_well_in_the_log():
    from fiswatch.ui.event_text import event_style, event_text

    lost = E.verify("aurora", ok=False, acknowledged=120, lost=18, changed=0, in_doubt_committed=0,
                    in_doubt_not_committed=0, lost_ids=[19, 20, 21], error=None, server=None, warnings=[])
    assert event_text(lost) == "verify aurora: 18 LOST, 0 changed of 120 acknowledged (ids 19, 20, 21...)"
    assert event_style(lost) == "error"
    ok = E.verify("rds", ok=True, acknowledged=7, lost=0, changed=0, in_doubt_committed=0, in_doubt_not_committed=0,
                  lost_ids=[], error=None, server=None, warnings=[])
    assert event_text(ok) == "verify rds: OK, 7 acknowledged writes all there" and event_style(ok) == "ok"
