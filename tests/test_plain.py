"""Plain output: the workshop's column text from a View."""
import dataclasses
import io
import os
import time

from dashboard_app import failover_view, probe
from fiswatch import events as E
from fiswatch.model import BackendInfo, State
from fiswatch.output.plain import plain_event_line, plain_lines, plain_wanted

NOW = 1000.0


def one_backend_view():
    view = failover_view(now=NOW)
    return dataclasses.replace(view, probes=(view.probes[1], view.probes[3]))  # aurora/pymysql, rds/pymysql


def test_workshop_layout_with_one_backend():
    view = one_backend_view()
    lines = plain_lines(view)
    aurora, rds = (p.snapshot for p in view.probes)
    assert lines[0] == "AURORA" + " " * 24 + "RDS"
    assert lines[1].startswith(aurora.address) and lines[1][30:].startswith(rds.address)
    for i in range(10):
        row = lines[2 + i]
        assert row[:30].rstrip() == "(%d, %d)" % aurora.rows[i]
        assert row[30:] == "(%d, %d)" % rds.rows[i]
    assert lines[12].split() == ["aurora/pymysql", "OK", "17", "ops/s", "4ms"]
    assert len(lines) == 14


def test_one_column_per_probe_when_several_backends():
    view = failover_view(now=NOW)
    wide = plain_lines(view, 120)
    assert wide[0].split("  ")[0] == "AURORA mysql-connector"
    assert [wide[0][i * 30:(i + 1) * 30].strip() for i in range(4)] == [
        "AURORA mysql-connector", "AURORA pymysql", "RDS mysql-connector", "RDS pymysql"]
    assert "127.0.10.12 (was 127.0.10.11)" in wide[1]
    narrow = plain_lines(view, 80)
    assert narrow[0].split() == ["AURORA", "AURORA", "RDS", "RDS"]
    assert narrow[1].split() == ["mysql-connector", "pymysql", "mysql-connector", "pymysql"]
    assert all(len(line) <= 80 for line in narrow)


def test_state_lines_carry_stall_age_call_and_read_timeout():
    lines = plain_lines(failover_view(now=NOW, stalled_for=12.3), 80)
    stalled = [l for l in lines if "STALLED" in l]
    assert len(stalled) == 1
    assert stalled[0].split() == ["aurora/mysql-connector", "STALLED", "12.3s", "in", "INSERT",
                                  "read_timeout:", "none"]


def test_unavailable_probe_and_missing_address():
    info = BackendInfo("pymysql", "PyMySQL", "-", available=False, reason="PyMySQL not installed: pip install PyMySQL")
    view = failover_view(now=NOW)
    view = dataclasses.replace(view, probes=(view.probes[0], probe("rds", "pymysql", State.UNAVAILABLE,
                                                                   info=info, address=None, nrows=0)))
    lines = plain_lines(view, 80)
    assert lines[1][30:] == "UNAVAILABLE"
    assert lines[-1].startswith("rds/pymysql") and "pip install PyMySQL" in lines[-1]


def test_probe_without_address_uses_dns_answer():
    view = one_backend_view()
    first = view.probes[0]
    first = dataclasses.replace(first, snapshot=dataclasses.replace(first.snapshot, address=None,
                                                                    previous_address=None))
    lines = plain_lines(dataclasses.replace(view, probes=(first, view.probes[1])))
    assert lines[1].startswith("127.0.10.12")  # the endpoint's DNS answer


def test_narrow_width_truncates():
    lines = plain_lines(failover_view(now=NOW), 40)
    assert all(len(l) <= 40 for l in lines)
    assert any(l.endswith("~") for l in lines)


def test_no_probes():
    assert plain_lines(failover_view(now=NOW).__class__(ts=time.time(), probes=())) == ["no probes"]


def test_event_line():
    ts = time.mktime((2024, 5, 1, 16, 2, 12, 0, 0, -1))
    ev = E.dns("aurora", "aurora.lab", addresses=[], previous=["127.0.10.11"], error="empty", ts=ts)
    assert plain_event_line(ev) == "16:02:12 dns aurora 127.0.10.11 -> empty"


def test_plain_wanted_for_pipes_dumb_terminals_and_ttys():
    assert plain_wanted(io.StringIO(), {"TERM": "xterm"})
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            assert not plain_wanted(tty, {"TERM": "xterm"})
            assert plain_wanted(tty, {"TERM": "dumb"})
            assert plain_wanted(tty, {})
    finally:
        os.close(master)
        os.close(slave)
