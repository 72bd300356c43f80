"""The fleet's model and pure views on a fake room of 30 hosts; its curses screen in a pty (pyte)."""
import json
import sys

import pytest

from _fleet_fixture import COLUMNS, fake_fleet, host_name, probe_samples
from fiswatch import events as E
from fiswatch.aws.fleet_cli import parse_since
from fiswatch.aws.fleet_model import ProbeSeries, SeriesKey, build_fleet, longest_gap
from fiswatch.aws.fleet_view import FleetUi, fleet_event, handle_key, page_rows, plain_lines, render
from test_dashboard_pty import PtyTerminal

NOW = 1795660000.0


def test_model_counts_stalls_gaps_and_silent_hosts():
    fleet = fake_fleet(NOW)
    assert len(fleet.hosts) == 30 and fleet.columns == COLUMNS
    totals = {t.name: t for t in fleet.totals}
    mc = totals["aurora/mysql-connector"]
    assert (mc.probes, mc.stalled, mc.never_recovered, mc.silent, mc.writing) == (30, 10, 10, 1, 19)
    assert mc.worst_gap == pytest.approx(100.05) and mc.median_gap == pytest.approx(0.05)
    assert mc.worst_host in {host_name(i) for i in range(0, 30, 3)}
    py = totals["aurora/pymysql"]
    assert (py.stalled, py.never_recovered, py.writing, py.silent) == (0, 0, 29, 1)
    assert py.worst_gap == pytest.approx(5.05) and py.median_gap == pytest.approx(3.05)
    backends = {t.name: t for t in fleet.backends}
    assert backends["mysql-connector"].probes == 60 and backends["mysql-connector"].never_recovered == 10
    silent = fleet.hosts[[r.host for r in fleet.hosts].index(host_name(29))]
    assert all(cell.silent for cell in silent.cells)


def test_since_bounds_the_gaps_and_the_stalls():
    fleet = fake_fleet(NOW, since=NOW - 50)  # the stall began 100 s ago: counted from since
    totals = {t.name: t for t in fleet.totals}
    assert totals["aurora/mysql-connector"].worst_gap == pytest.approx(50.0)
    assert totals["aurora/pymysql"].worst_gap == pytest.approx(0.05)  # its gap was before since
    assert longest_gap(((10.0, 0.5),), 0.0, 40.0, True) == 30.5  # an open gap counts up to now


def test_two_runs_on_one_host_do_not_mix():
    old_states, old_gaps = probe_samples(NOW, stall_at=NOW - 300, end=NOW - 200)
    new_states, new_gaps = probe_samples(NOW)
    series = {SeriesKey("aurora", "mysql-connector", "alice", "run-1"): ProbeSeries(old_states, old_gaps),
              SeriesKey("aurora", "mysql-connector", "alice", "run-2"): ProbeSeries(new_states, new_gaps)}
    fleet = build_fleet(series, NOW, NOW - 3600, NOW - 600)
    assert len(fleet.hosts) == 1
    row = fleet.hosts[0]
    assert (row.run, row.runs) == ("run-2", 2)
    assert row.cells[0].state == "OK" and not row.cells[0].stalled and not row.cells[0].silent


def test_render_80x24_pages_through_30_hosts():
    fleet = fake_fleet(NOW)
    ui = FleetUi()
    lines = render(fleet, 80, 24, ui, NOW)
    texts = [line.text for line in lines]
    assert len(lines) == 24 and all(len(t) <= 80 for t in texts)
    rows = page_rows(fleet, 24)
    assert rows == 15
    assert "30 hosts" in texts[0] and "1-15/30" in texts[0]
    assert "AURORA" in texts[1] and "RDS" in texts[1] and texts[2].split() == ["connector", "pymysql"] * 2
    assert texts[3].startswith(host_name(0)) and "STALLED 1m40" in texts[3] and "writing" in texts[3]
    assert texts[-6].startswith("ROOM") and texts[-5].startswith("aurora/mysql-connector")
    assert texts[-5].split()[1:6] == ["30", "19", "10", "10", "0"]
    assert "q quit" in texts[-1]
    stalled_styles = [style for text, style in lines[3].segments if text.startswith("STALLED")]
    assert stalled_styles == ["stalled"]

    ui, action = handle_key(" ", ui, fleet, 24)
    assert action is None and ui.top == 15
    texts = [line.text for line in render(fleet, 80, 24, ui, NOW)]
    assert "16-30/30" in texts[0]
    assert any(t.startswith(host_name(29)) and "silent 2m00" in t for t in texts)
    ui, _ = handle_key(" ", ui, fleet, 24)
    assert ui.top == 15  # the last page stays
    ui, _ = handle_key("KEY_UP", ui, fleet, 24)
    assert ui.top == 14
    ui, _ = handle_key("?", ui, fleet, 24)
    assert any("silent 45s" in line.text for line in render(fleet, 80, 24, ui, NOW))
    assert handle_key("q", ui, fleet, 24)[1] == "quit"


def test_render_small_and_empty():
    fleet = fake_fleet(NOW)
    small = [line.text for line in render(fleet, 50, 10, FleetUi(), NOW)]
    assert any("too small" in t for t in small) and all(len(t) <= 50 for t in small)
    empty = build_fleet({}, NOW, NOW - 3600, NOW - 3600)
    texts = [line.text for line in render(empty, 80, 24, FleetUi(), NOW)]
    assert any("no fiswatch host published" in t for t in texts)


def test_plain_and_json_views():
    fleet = fake_fleet(NOW)
    lines = plain_lines(fleet, 80, NOW)
    assert all(len(line) <= 80 for line in lines)
    assert len([line for line in lines if line.startswith("i-0")]) == 30
    event = json.loads(json.dumps(fleet_event(fleet, NOW)))
    assert event["event"] == E.FLEET and event["ts"] == NOW
    assert len(event["hosts"]) == 30
    first = event["hosts"][0]["probes"]["aurora/mysql-connector"]
    assert first["status"] == "stalled" and first["never_recovered"] and first["for_s"] == pytest.approx(100.0, abs=0.2)
    assert event["totals"]["aurora/mysql-connector"]["never_recovered"] == 10
    assert event["backends"]["pymysql"]["probes"] == 60


def test_parse_since():
    assert parse_since("90s", NOW) == NOW - 90
    assert parse_since("2026-11-26T03:40:00Z", NOW) == 1795664400.0
    assert parse_since("03:40", NOW) <= NOW
    for bad in ("yesterday", "25:00", "5x"):
        with pytest.raises(ValueError):
            parse_since(bad, NOW)


def test_curses_screen_80x24_with_30_hosts_in_a_pty():
    from conftest import ROOT

    t = PtyTerminal([sys.executable, ROOT + "/tests/fleet_app.py", "30"], rows=24, cols=80)
    try:
        t.wait_text("1-15/30")
        lines = t.lines
        assert "AURORA" in lines[1] and lines[3].startswith(host_name(0)) and "STALLED" in lines[3]
        assert lines[-6].startswith("ROOM") and "q quit" in lines[-1]
        t.send(b" ")
        t.wait_text("16-30/30")
        t.wait_text("silent 2m")
        t.send(b"q")
        assert t.wait_exit() == 0
        t.wait_text("fleet_app: done")
    finally:
        t.close()


def test_fleet_state_events_name_what_changed():
    from fiswatch.aws.fleet_view import fleet_changes

    before = fake_fleet(NOW - 200, anchor=NOW)  # 200 s earlier: no stall yet, host 29 still publishing
    after = fake_fleet(NOW)
    assert fleet_changes(None, after, NOW) == []
    events = fleet_changes(before, after, NOW)
    stalled = [e for e in events if e["status"] == "stalled"]
    assert len(stalled) == 10 and all(e["previous"] == "writing" and e["probe"] == "aurora/mysql-connector"
                                      for e in stalled)
    silent = [e for e in events if e["status"] == "silent"]
    assert {e["host"] for e in silent} == {host_name(29)} and len(silent) == 4
    assert all(set(e) >= {"ts", "event", "host", "run", "probe", "status", "previous", "for_s"} for e in events)


def test_curses_screen_ends_when_its_terminal_goes_away():
    import os

    from conftest import ROOT

    t = PtyTerminal([sys.executable, ROOT + "/tests/fleet_app.py", "30"], rows=24, cols=80)
    try:
        t.wait_text("1-15/30")
        os.close(t.master)  # the terminal hangs up, as when an SSM session drops
        t.master = os.open(os.devnull, os.O_RDONLY)  # for close()
        t.proc.wait(30)
        assert t.proc.returncode in (4, -1)  # "lost", or SIGHUP's default action
    finally:
        t.close()


def test_curses_screen_with_stdin_not_a_tty_does_not_spin():
    import os
    import subprocess
    import time

    import psutil

    from conftest import ROOT

    t = PtyTerminal([sys.executable, "-c", "pass"], rows=24, cols=80)  # only for its pty and screen
    t.wait_exit()
    env = dict(os.environ, TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8", PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, ROOT + "/tests/fleet_app.py", "30"], stdin=subprocess.DEVNULL,
                            stdout=t.slave, stderr=t.slave, env=env, start_new_session=True)
    try:
        t.proc = proc
        t.wait_text("1-15/30")
        before = psutil.Process(proc.pid).cpu_times()
        time.sleep(3)
        after = psutil.Process(proc.pid).cpu_times()
        used = (after.user + after.system) - (before.user + before.system)
        assert used < 1.5, "%.2fs of CPU in 3s: the loop spins" % used  # a spin burns ~3 s
        assert proc.poll() is None
    finally:
        t.close()


def test_plain_view_on_an_80x24_terminal_never_wraps():
    import pyte

    lines = plain_lines(fake_fleet(NOW), 80, NOW)
    screen = pyte.Screen(80, 24)
    pyte.Stream(screen).feed("\r\n".join(lines))
    assert [row.rstrip() for row in screen.display] == lines[-24:]  # a wrapped line would shift them
