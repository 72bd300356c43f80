"""The dashboard layout as text: pure render() on Views built by hand."""
import dataclasses
import time

import pytest

from dashboard_app import CONNECTOR, column_facts, demo_view, endpoint, failover_view, probe, rows, screen_columns
from fiswatch import events as E
from fiswatch.model import BackendInfo, ErrorInfo, Op, State, View
from fiswatch.ui import layout
from fiswatch.ui.layout import Line, UiState, render
from fiswatch.ui.sparkline import sparkline

NOW = 1000.0


def screen(view, width=80, height=24, ui=UiState(), now=NOW):
    lines = render(view, width, height, ui, now)
    return lines, [line.text for line in lines]


def check_bounds(lines, width, height):
    assert len(lines) <= height
    for line in lines:
        assert isinstance(line, Line)
        assert len(line.text) <= width, line.text
        for text, style in line.segments:
            assert style in layout.STYLES, style


def column_of(texts, needle):
    """(row, col) of the first occurrence of `needle` on the screen."""
    for y, text in enumerate(texts):
        x = text.find(needle)
        if x >= 0:
            return y, x
    raise AssertionError("%r not on screen:\n%s" % (needle, "\n".join(texts)))


def test_80x24_two_endpoints_two_backends_shows_every_probe():
    view = failover_view(now=NOW)
    lines, texts = screen(view)
    check_bounds(lines, 80, 24)
    assert len(lines) == 24
    # endpoint groups, AURORA left of RDS, on the header line
    y_a, x_a = column_of(texts, "AURORA")
    y_r, x_r = column_of(texts, "RDS")
    assert y_a == y_r and x_a < x_r
    # the four columns in display order: each probe's newest rows, at least 5, in its own column
    lefts = []
    for p in view.probes:
        first = p.snapshot.rows
        ys, xs = zip(*[column_of(texts, layout.T.row_text(r)) for r in first[:5]])
        assert len(set(xs)) == 1, "rows of %s not aligned" % p.probe
        assert list(ys) == sorted(ys) and ys[-1] - ys[0] == 4
        lefts.append(xs[0])
    assert lefts == sorted(lefts) and len(set(lefts)) == 4
    # state and address of every probe, in its column
    state_row = texts[1 + column_of(texts[1:], "STALLED")[0]]  # below the title bar and its counts
    assert state_row[lefts[0]:].startswith("STALLED")
    for x in lefts[1:]:
        assert state_row[x:].startswith("OK")
    addr_row = texts[column_of(texts, "127.0.10.11 stale")[0]]
    for p, x in zip(view.probes, lefts):
        assert addr_row[x:].startswith(p.snapshot.address)
    # the timeout that explains the hang
    assert "read_timeout: none" in "\n".join(texts)
    # log pane and keys
    assert any("lab aurora: promote" in t for t in texts)
    assert "q quit" in texts[-1] and "f failover aurora" in texts[-1]


def test_stalled_line_carries_age_and_call_and_keeps_counting():
    view = failover_view(now=NOW, stalled_for=12.3)
    _, wide = screen(view, 120, 40)
    assert any("STALLED 12.3s in INSERT" in t for t in wide)
    _, narrow = screen(view, 80, 24)
    assert any("STALLED 12s INSERT" in t for t in narrow)
    # the age is taken at render time from op_started, not frozen at the monitor's tick
    _, later = screen(view, 120, 40, now=NOW + 5)
    assert any("STALLED 17.3s in INSERT" in t for t in later)
    # and the STALLED line is painted in its own style across the whole column
    lines, texts = screen(view, 120, 40)
    y = 1 + column_of(texts[1:], "STALLED")[0]
    styles = [style for text, style in lines[y].segments if "STALLED" in text]
    assert styles == ["stalled"]


def test_stall_age_falls_back_to_monitor_without_start_time():
    p = probe("aurora", "pymysql", State.STALLED, op=Op.COMMIT, op_started=None, stalled_for=4.5)
    view = View(ts=time.time(), probes=(p,), endpoints=(endpoint("aurora"),))
    _, texts = screen(view, 80, 24)
    assert any("STALLED 4.5s in COMMIT" in t for t in texts)


@pytest.mark.parametrize("width,height", [(120, 40), (100, 30), (80, 24), (75, 16)])
def test_resizes_keep_everything_inside(width, height):
    view = failover_view(now=NOW)
    lines, texts = screen(view, width, height)
    check_bounds(lines, width, height)
    assert len(lines) == height
    assert sum(t.count("STALLED") for t in texts) >= 1
    for p in view.probes:
        assert any(p.snapshot.address in t for t in texts)
        for r in p.snapshot.rows[:5]:
            assert any(layout.T.row_text(r) in t for t in texts), (width, height, r)


def test_bigger_terminal_shows_more():
    view = failover_view(now=NOW)
    _, small = screen(view, 80, 24)
    _, big = screen(view, 120, 40)
    # all 10 rows, the full library version and more of the log
    last_row = layout.T.row_text(view.probes[0].snapshot.rows[9])
    assert not any(last_row in t for t in small)
    assert any(last_row in t for t in big)
    assert any("mysql-connector 9.4.0" in t for t in big)
    assert sum(":" in t[:9] for t in big) > sum(":" in t[:9] for t in small)


@pytest.mark.parametrize("width,height", [(59, 24), (80, 15), (74, 21), (20, 5), (1, 1)])
def test_too_small_asks_for_a_larger_terminal(width, height):
    lines, texts = screen(failover_view(now=NOW), width, height)
    check_bounds(lines, width, height)
    joined = " ".join(t.strip() for t in texts)
    if width >= 20:
        assert "too small" in joined and "75x16" in joined
    assert "STALLED" not in joined


def test_zero_size_renders_nothing():
    assert render(failover_view(now=NOW), 0, 24, UiState(), NOW) == []
    assert render(failover_view(now=NOW), 80, 0, UiState(), NOW) == []


def test_six_probes_wrap_into_bands_on_80x24():
    base = failover_view(now=NOW)
    extra = (
        probe("aurora", "mysql-connector:read_timeout=1", first_id=9100,
              info=dataclasses.replace(CONNECTOR, timeouts=(("connect", 1.0), ("read", 1.0), ("write", None)))),
        probe("rds", "mysql-connector:read_timeout=1", first_id=9200),
    )
    probes = base.probes[:2] + extra[:1] + base.probes[2:] + extra[1:]
    view = dataclasses.replace(base, probes=probes)
    lines, texts = screen(view, 80, 24)
    check_bounds(lines, 80, 24)
    assert "too small" not in " ".join(texts)
    for p in probes:
        assert any(layout.T.row_text(p.snapshot.rows[0]) in t for t in texts), p.probe
    # an endpoint's columns stay together: three Aurora columns over three RDS ones
    assert sum(t.count("RDS") for t in texts) == 1 and sum(t.count("AURORA") for t in texts) == 1
    assert column_of(texts, "AURORA")[0] < column_of(texts, "RDS")[0]
    # at least 3 rows per probe (MIN_ROWS_BANDED), backend and its read timeout on one line
    for p in probes:
        for r in p.snapshot.rows[:3]:
            assert any(layout.T.row_text(r) in t for t in texts), (p.probe, r)
    assert any("read none" in t for t in texts)


def test_states_distinct_without_colour():
    err = ErrorInfo(2013, "lost", "Lost connection to MySQL server during query")
    states = [
        probe("a", "b1", State.OK),
        probe("a", "b2", State.STALLED, op=Op.SELECT, op_started=NOW - 3, stalled_for=3),
        probe("b", "b1", State.ERROR, error=err),
        probe("b", "b2", State.RECONNECTING, error=err),
    ]
    view = View(ts=time.time(), probes=tuple(states), endpoints=(endpoint("a"), endpoint("b")))
    _, texts = screen(view, 80, 24)
    row = texts[1 + column_of(texts[1:], "STALLED")[0]]
    words = [cell.split()[0] for cell in row.split("|")]
    assert words == ["OK", "STALLED", "ERROR", "RECONNECTING"]
    assert any("2013 lost" in t for t in texts)


def test_monochrome_palette_distinguishes_stalled():
    import curses

    from fiswatch.ui.shell import make_palette

    mono = make_palette(curses, False)
    assert mono["stalled"] & curses.A_REVERSE
    assert mono["stalled"] != mono["ok"] != mono["error"]
    assert set(mono) == set(layout.STYLES)


def test_stale_address_and_previous_address():
    view = failover_view(now=NOW)
    _, texts = screen(view, 80, 24)
    # mysql-connector is still on the old writer while DNS points at the new one
    assert any("127.0.10.11 stale" in t for t in texts)
    assert any("was 127.0.10.11" in t for t in texts)
    _, wide = screen(view, 120, 40)
    assert any("127.0.10.12 (was 127.0.10.11)" in t for t in wide)


def test_long_values_are_truncated_not_wrapped():
    long_err = ErrorInfo(2003, "refused", "Can't connect\nto MySQL server on 'x' " + "x" * 200)
    host = "fisworkshop-aurora-cluster." + "a" * 80 + ".us-east-1.rds.amazonaws.com"
    p = probe("aurora-with-a-very-long-endpoint-name", "mysql-connector:read_timeout=1,write_timeout=1",
              State.ERROR, error=long_err, address="fd00:1234:5678:9abc:def0:1234:5678:9abc")
    p = dataclasses.replace(p, snapshot=dataclasses.replace(p.snapshot, rows=((123456789012, 32767),) * 10))
    ev = E.warning("m" * 300, ts=time.time())
    view = View(ts=time.time(), probes=(p,), events=(ev,),
                endpoints=(endpoint("aurora-with-a-very-long-endpoint-name", host=host),))
    for width, height in ((60, 16), (80, 24)):
        lines, texts = screen(view, width, height)
        check_bounds(lines, width, height)
        assert all("\n" not in t for t in texts)
        assert any(t.rstrip().endswith("~") for t in texts)


def test_unavailable_backend_shows_its_reason():
    info = BackendInfo("pymysql", "PyMySQL", "-", (("connect", 1.0), ("read", 1.0)), available=False,
                       reason="PyMySQL not installed: pip install PyMySQL")
    view = failover_view(now=NOW)
    view = dataclasses.replace(view, probes=view.probes[:3] + (
        probe("rds", "pymysql", State.UNAVAILABLE, info=info, address=None, nrows=0),))
    lines, texts = screen(view, 80, 24)
    check_bounds(lines, 80, 24)
    screen_text = "\n".join(texts)
    y = 1 + column_of(texts[1:], "UNAVAILABLE")[0]
    x = texts[y].index("UNAVAILABLE")
    column = " ".join(t[x:x + 19].strip() for t in texts[y + 1:y + 6])
    assert "PyMySQL not installed: pip install PyMySQL" in column
    # the other columns are intact
    assert "STALLED" in screen_text


def test_help_pause_and_confirm_prompt():
    view = failover_view(now=NOW)
    _, texts = screen(view, ui=UiState(show_help=True, confirm_keys=("f",)))
    joined = "\n".join(texts)
    assert "Keys" in joined and "failover aurora (asks y/n)" in joined and "STALLED" in joined
    _, texts = screen(view, ui=UiState(show_help=True))  # a key without confirmation (the demo's)
    assert "failover aurora" in "\n".join(texts) and "(asks y/n)" not in "\n".join(texts)
    _, texts = screen(view, ui=UiState(paused=True))
    assert "PAUSED (display frozen" in texts[0] and "p resume" in texts[-1]
    _, texts = screen(dataclasses.replace(view, paused=True))
    assert "PAUSED" in texts[0] and "frozen" not in texts[0]
    _, texts = screen(view, ui=UiState(confirm="f", message="failover aurora? (y/n)"))
    assert texts[-1].startswith("failover aurora? (y/n)")


def test_event_log_lines():
    base = time.mktime((2024, 5, 1, 16, 2, 11, 0, 0, -1))
    events = (
        E.state("aurora/mysql-connector", "aurora", "mysql-connector", "STALLED", previous="OK", op="INSERT", ts=base),
        E.dns("aurora", "aurora.lab", addresses=[], previous=["127.0.10.11"], ts=base + 1),
        E.write("aurora/pymysql", "aurora", id=1, value=2, address=None, ts=base + 2),
        E.lab("aurora", "promote", "reader -> writer", crash=False, ts=base + 3),
        E.experiment("EXP1", "aurora", "running", ts=base + 4),
    )
    view = dataclasses.replace(failover_view(now=NOW), events=events, status=("FIS EXP1 running",))
    _, texts = screen(view, 100, 30)
    joined = "\n".join(texts)
    assert "16:02:11 aurora/mysql-connector OK -> STALLED (INSERT)" in joined
    assert "16:02:12 dns aurora 127.0.10.11 -> (empty)" in joined
    assert "16:02:14 lab aurora: promote reader -> writer" in joined
    assert "16:02:15 FIS EXP1 aurora: running" in joined
    assert "wrote" not in joined  # writes are too frequent for the log pane
    assert "FIS EXP1 running" in joined


def test_topology_lines_when_height_allows():
    view = failover_view(now=NOW)
    eps = (dataclasses.replace(view.endpoints[0], topology=("writer aurora-2 us-east-1b", "reader aurora-1")),
           view.endpoints[1])
    view = dataclasses.replace(view, endpoints=eps)
    _, tall = screen(view, 100, 40)
    assert any("writer aurora-2 us-east-1b" in t for t in tall)
    _, short = screen(view, 80, 24)  # topology outranks rows beyond the minimum of 5
    assert any("writer aurora-2 us-east-1b" in t for t in short)
    assert sum(1 for t in short if t.startswith("(77")) >= 5
    assert any("-- events" in t for t in short)
    _, tiny = screen(view, 80, 17)  # no room for it without starving rows and log: it gives way
    assert not any("writer aurora-2" in t for t in tiny)
    assert sum(1 for t in tiny if t.startswith("(77")) >= 5


def test_no_probes():
    lines, texts = screen(View(ts=time.time(), probes=()), 80, 24)
    check_bounds(lines, 80, 24)
    assert any("no probes" in t for t in texts)


def test_sparkline_shapes():
    assert sparkline([10, 10, 0, 0, 10], 5, ascii=True) == "##  #"
    assert sparkline([1, 2, 3], 6, ascii=True)[:3] == "   "
    assert len(sparkline(list(range(50)), 12)) == 12
    assert sparkline([0, 0, 0], 3) == "   "


def test_rows_helper_is_newest_first():
    assert [r[0] for r in rows(10, 3)] == [10, 9, 8]


def test_literal_address_header_and_cut_backend_name_keeps_version():
    from fiswatch.model import EndpointView, Resolution

    info = BackendInfo("mysql-connector", "mysql-connector-python", "26.10.0", (("connect", 1.0), ("read", None)))
    probes = tuple(probe("a", name, info=info if name == "mysql-connector" else None, address="127.0.0.1")
                   for name in ("pymysql", "mysql-connector"))
    ep = EndpointView("a", "127.0.0.1", resolution=Resolution("127.0.0.1", ("127.0.0.1",), source="literal"))
    view = View(ts=time.time(), probes=probes, endpoints=(ep,))
    probes4 = probes + tuple(dataclasses.replace(p, snapshot=dataclasses.replace(p.snapshot, endpoint="b"))
                             for p in probes)
    _, texts = screen(dataclasses.replace(view, probes=probes4), 80, 24)
    assert texts[1].startswith("A literal 127.0.0.1 ")
    assert texts[1].count("127.0.0.1") == 1  # the host is not repeated
    assert "mysql-connec~ 26.10" in texts[2]


@pytest.mark.parametrize("width,height,min_rows", [(80, 24, 3), (120, 30, 5)])
def test_demo_probes_each_show_state_address_and_rows(width, height, min_rows):
    """The demo's five probes (three on Aurora): every one's state, address and rows are on screen."""
    view = demo_view(now=NOW)
    lines, texts = screen(view, width, height)
    check_bounds(lines, width, height)
    columns = screen_columns(texts)
    assert len(columns) == len(view.probes) == 5
    for column in columns:
        state, address, shown = column_facts(column)
        assert state and address and shown >= min_rows, (column, "\n".join(texts))
    assert "aws-wrapper" in "\n".join(texts) and "ahead" in "\n".join(texts)
    assert any("failed over 127.0.10.1 -> 127.0.10.2" in t for t in texts)
    if width == 80:  # Aurora's three columns in one band, RDS's two below
        assert column_of(texts, "AURORA")[0] < column_of(texts, "RDS")[0]


def test_80x24_switchover_demo_names_all_three_clients_and_keeps_the_phase_line():
    """`demo --switchover` at 80x24: the Aurora band's headers name mysql-connector (whole), PyMySQL and
    the wrapper with `bg`; the switchover's phase line (lab/switchover_cli.py) sits under the events."""
    from fiswatch.lab.switchover_cli import SwitchoverPhase

    phase = SwitchoverPhase()
    sink = phase.wrap(lambda event: None)
    sink(E.lab("bluegreen", "SWITCHOVER_INITIATED", "x", crash=False, outage="switchover", ts=100.0))
    sink(E.lab("bluegreen", "SWITCHOVER_IN_PROGRESS", "y", crash=False, outage="switchover", ts=100.5))
    sink(E.lab("aurora", "start", "a failover's step", crash=False, ts=101.0))  # not the switchover's
    assert phase.lines(now=101.7) == ("Blue/Green SWITCHOVER_IN_PROGRESS 1.2s (t+1.7s)",)
    view = demo_view()
    bg = "aws-wrapper:plugins=bg+failover_v2"  # the demo's wrapper under --switchover
    probes = tuple(dataclasses.replace(p, snapshot=dataclasses.replace(p.snapshot, backend=bg))
                   if p.info.name == "aws-wrapper" else p for p in view.probes)
    view = dataclasses.replace(view, probes=probes, status=phase.lines(now=101.7))
    _, texts = screen(view)
    assert any(all(name in t for name in ("mysql-connector read none", "pymysql", "aws-wrapper bg socket 1s"))
               for t in texts), "\n".join(texts)
    assert "Blue/Green SWITCHOVER_IN_PROGRESS 1.2s (t+1.7s)" in texts[-2]
    sink(E.lab("bluegreen", "done", "z", crash=False, outage="switchover", ts=106.1))
    assert phase.lines(now=200.0) == ("Blue/Green switchover done at t+6.1s",)
