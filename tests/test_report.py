"""build_report on handcrafted event lists, the renderers, `fiswatch report`, and the plot."""
import json
import os
import struct
import subprocess
import sys

import pytest

from fiswatch import events as E
from fiswatch.output.record import RecordWriter, read_record
from fiswatch.report.build import build_report
from fiswatch.report.render_json import report_as_dict
from fiswatch.report.render_markdown import render_markdown
from fiswatch.report.render_text import render_text, summary_lines
from fiswatch.report.cli import main as cli_main

T0 = 1764088000.0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_run(t0=T0, crash=False, end=30.0):
    """A realistic lab run: aurora failover, mysql-connector hangs, PyMySQL recovers."""
    ev = []
    def add(ts, event, **f):
        ev.append(dict(ts=round(t0 + ts, 3), event=event, **f))
    probes = ["aurora/mysql-connector", "aurora/pymysql"]
    add(0, "run_start", probes=[
        {"probe": probes[0], "endpoint": "aurora", "backend": "mysql-connector", "library": "mysql-connector-python",
         "version": "9.4.0", "timeouts": {"connect": 1, "read": None}, "available": True},
        {"probe": probes[1], "endpoint": "aurora", "backend": "pymysql", "library": "PyMySQL",
         "version": "1.1.1", "timeouts": {"connect": 1, "read": 1}, "available": True}],
        endpoints=[{"name": "aurora", "url": "mysql://probe@127.0.0.11:3306/testdb", "source": "lab:/tmp/lab"}],
        stall_after=2.0, interval=0.05)
    add(0.1, "dns", endpoint="aurora", name="aurora.lab", addresses=["127.0.0.11"], previous=[], cname="w1.lab",
        ttl=5, error=None)
    for p in probes:
        add(0.2, "state", probe=p, endpoint="aurora", backend=p.split("/")[1], state="OK", previous="CONNECTING",
            op=None, error=None, address="127.0.0.11")
        add(0.2, "connect", probe=p, endpoint="aurora", address="127.0.0.11", port=3306)
    next_id = [1]
    writes = []

    def write(p, ts, addr):
        i = next_id[0]
        next_id[0] += 1
        writes.append((p, i))
        add(ts, "write", probe=p, endpoint="aurora", id=i, value=(i * 7919) % 32768, address=addr)

    t = 0.3
    while t < 10.0:
        write(probes[0], t, "127.0.0.11")
        write(probes[1], t + 0.01, "127.0.0.11")
        t += 0.1
    add(10.0, "lab", target="aurora", step="start", detail="failover aurora", outage_start=t0 + 10.0, crash=crash)
    add(10.0, "lab", target="aurora", step="blackhole", detail="writer stops answering", crash=crash)
    # mysql-connector: COMMIT in flight forever
    add(12.05, "state", probe=probes[0], endpoint="aurora", backend="mysql-connector", state="STALLED",
        previous="OK", op="COMMIT", error=None, address="127.0.0.11")
    # PyMySQL: read timeout, in-doubt commit, reconnect attempts
    i = next_id[0]
    next_id[0] += 1
    add(11.05, "error", probe=probes[1], endpoint="aurora", code=2013, kind="lost", message="Lost connection",
        op="COMMIT")
    add(11.05, "write_in_doubt", probe=probes[1], endpoint="aurora", id=i, value=(i * 7919) % 32768,
        address="127.0.0.11", error="2013 lost")
    add(11.05, "state", probe=probes[1], endpoint="aurora", backend="pymysql", state="RECONNECTING", previous="OK",
        op=None, error="2013 lost", address="127.0.0.11")
    for k in range(3):
        add(12.1 + k, "error", probe=probes[1], endpoint="aurora", code=2003, kind="refused",
            message="Can't connect", op="connect")
    add(13.5, "lab", target="aurora", step="promote", detail="reader promoted", crash=crash)
    add(14.0, "lab", target="aurora", step="dns_empty", detail="", crash=crash)
    add(14.04, "dns", endpoint="aurora", name="aurora.lab", addresses=[], previous=["127.0.0.11"], cname=None,
        ttl=5, error="empty")
    add(14.1, "error", probe=probes[1], endpoint="aurora", code=None, kind="dns", message="empty answer",
        op="resolve")
    add(16.0, "lab", target="aurora", step="dns_flip", detail="127.0.0.12", crash=crash)
    add(16.04, "dns", endpoint="aurora", name="aurora.lab", addresses=["127.0.0.12"], previous=[], cname="w2.lab",
        ttl=5, error=None)
    add(17.0, "lab", target="aurora", step="done", detail="", outage_end=t0 + 17.0, crash=crash)
    add(17.4, "connect", probe=probes[1], endpoint="aurora", address="127.0.0.12", port=3306)
    add(17.4, "state", probe=probes[1], endpoint="aurora", backend="pymysql", state="OK", previous="RECONNECTING",
        op=None, error=None, address="127.0.0.12")
    t = 17.5
    while t < end - 0.2:
        write(probes[1], t, "127.0.0.12")
        t += 0.1
    for s in range(1, int(end)):
        ops0 = 10 if s <= 10 else 0
        ops1 = 10 if s <= 11 or s >= 18 else 0
        add(s + 0.001, "tick", probes={
            probes[0]: {"state": "OK" if s < 12 else "STALLED", "ops": ops0, "errors": 0,
                        "latency_ms": 4.0 if ops0 else None, "stalled_for": max(0, s - 10)},
            probes[1]: {"state": "OK", "ops": ops1, "errors": 0, "latency_ms": 3.0 if ops1 else None,
                        "stalled_for": 0}})
    add(end, "run_stop")
    add(end, "summary", probes={
        probes[0]: {"ops": 99, "errors": 0, "longest_stall_s": end - 10, "stalled_now": True, "state": "STALLED"},
        probes[1]: {"ops": 225, "errors": 5, "longest_stall_s": 1.0, "stalled_now": False, "state": "OK"}})
    return ev


def probe(report, name):
    return next(p for p in report.probes if p.probe == name)


def write_times(events, name):
    return [e["ts"] for e in events if e["event"] == E.WRITE and e["probe"] == name]


def test_clean_failover_gaps_stalls_and_beyond_outage():
    events = make_run()
    report = build_report(events)
    py_writes = write_times(events, "aurora/pymysql")
    last_before = max(t for t in py_writes if t < T0 + 11)
    first_after = min(t for t in py_writes if t > T0 + 11)
    assert first_after == pytest.approx(T0 + 17.5, abs=0.01)
    assert report.start == T0 and report.end == T0 + 30.0 and report.complete
    mc, py = probe(report, "aurora/mysql-connector"), probe(report, "aurora/pymysql")
    # PyMySQL: one gap from its last write before the fault to its first after (t+17.5)
    assert len(py.write_gaps) == 1
    gap = py.write_gaps[0]
    assert (gap.start, gap.end) == (last_before, first_after)
    assert gap.anchored and not gap.open and gap.errors == 5 and gap.in_doubt == 1
    assert py.beyond_outage == pytest.approx(0.5, abs=0.02)
    assert py.recovered and py.stalls == ()
    assert dict(py.errors_by_kind) == {"2003 refused": 3, "2013 lost": 1, "dns": 1}
    assert (py.address_before, py.address_after) == ("127.0.0.11", "127.0.0.12")
    assert py.in_doubt == 1 and py.ops == 225 and py.final_state == "OK"
    # mysql-connector: COMMIT hung from t+10.05 (STALLED at t+12.05 minus stall_after 2 s) to the end
    assert not mc.recovered and mc.final_state == "STALLED"
    assert len(mc.stalls) == 1 and mc.stalls[0].open
    assert mc.stalls[0].start == pytest.approx(T0 + 10.05) and mc.stalls[0].end == T0 + 30.0
    assert len(mc.write_gaps) == 1 and mc.write_gaps[0].open
    assert mc.write_gaps[0].start == max(write_times(events, "aurora/mysql-connector"))
    assert mc.outage_gap is mc.write_gaps[0] and mc.beyond_outage is None
    assert (mc.address_before, mc.address_after) == ("127.0.0.11", "127.0.0.11")


def test_dns_flip_empty_answer_and_flaps():
    events = make_run()
    events += [
        {"ts": T0 + 18.0, "event": E.DNS, "endpoint": "aurora", "addresses": ["127.0.0.11"], "previous": ["127.0.0.12"]},
        {"ts": T0 + 19.0, "event": E.DNS, "endpoint": "aurora", "addresses": ["127.0.0.12"], "previous": ["127.0.0.11"]},
        # a probe's own lookup is ignored when the watcher reports
        {"ts": T0 + 5.0, "event": E.DNS, "endpoint": "aurora", "probe": "aurora/pymysql", "addresses": ["10.9.9.9"],
         "previous": []},
    ]
    report = build_report(events)
    dns = report.dns_for("aurora")
    assert dns.initial == ("127.0.0.11",) and dns.flipped_to == ("127.0.0.12",)
    assert dns.flip_at == pytest.approx(T0 + 16.04) and dns.empty_at == pytest.approx(T0 + 14.04)
    assert dns.flaps == 1
    assert any(m.kind == "dns" and m.ts == dns.flip_at for m in report.markers)
    assert "DNS aurora: 127.0.0.11 -> 127.0.0.12 at t+16.0, empty from t+14.0, 1 flap(s) back" in render_text(report)


def test_lab_window_and_steps():
    report = build_report(make_run(crash=True))
    (fo,) = report.failovers
    assert fo.target == "aurora" and fo.crash
    assert (fo.outage_start, fo.outage_end) == (T0 + 10.0, T0 + 17.0) and fo.outage == pytest.approx(7.0)
    assert [step for _, step, _ in fo.steps] == ["start", "blackhole", "promote", "dns_empty", "dns_flip", "done"]
    assert [m.text for m in report.markers if m.kind == "lab"][0] == "aurora start"
    assert "Lab failover aurora (crash): outage t+10.0..t+17.0 (7.0s injected)" in render_text(report)


def test_failover_of_one_endpoint_does_not_touch_the_other():
    events = make_run()
    events[0]["probes"].append({"probe": "rds/pymysql", "endpoint": "rds", "backend": "pymysql"})
    for n in range(250):
        events.append({"ts": T0 + 0.5 + n * 0.1, "event": E.WRITE, "probe": "rds/pymysql", "endpoint": "rds",
                       "id": n + 1, "value": n, "address": "127.0.0.21"})
    report = build_report(events)
    rds = probe(report, "rds/pymysql")
    assert rds.write_gaps == () and rds.outage_gap is None and rds.beyond_outage is None
    assert report.failover_for("rds") is None and report.failover_for("aurora") is not None


def writes_at(times, name="e/p"):
    return [{"ts": T0 + t, "event": E.WRITE, "probe": name, "endpoint": "e", "id": i, "value": 1,
             "address": "127.0.0.1"} for i, t in enumerate(times)]


def test_silent_pause_counts_only_when_long():
    times = [i * 0.1 for i in range(50)]  # every 0.1 s, then a 0.6 s hiccup, then a 3 s pause
    times += [times[-1] + 0.6 + i * 0.1 for i in range(20)]
    times += [times[-1] + 3.0 + i * 0.1 for i in range(20)]
    report = build_report([{"ts": T0, "event": E.RUN_START, "probes": []}] + writes_at(times))
    (p,) = report.probes
    assert len(p.write_gaps) == 1
    (gap,) = p.write_gaps
    assert not gap.anchored and gap.duration == pytest.approx(3.0)
    assert "(silent)" in render_text(report)


def test_short_gap_with_an_error_inside_is_a_gap():
    events = [{"ts": T0, "event": E.RUN_START}] + writes_at([0.1, 0.2, 0.3, 0.4, 0.6, 0.7])
    events.append({"ts": T0 + 0.45, "event": E.ERROR, "probe": "e/p", "endpoint": "e", "code": 1290,
                   "kind": "read-only", "message": "read-only", "op": "INSERT"})
    (p,) = build_report(events).probes
    assert [(round(g.start - T0, 2), round(g.end - T0, 2)) for g in p.write_gaps] == [(0.4, 0.6)]
    assert p.write_gaps[0].errors == 1 and dict(p.errors_by_kind) == {"1290 read-only": 1}


def test_closed_stall_uses_stalled_for_and_errors_before_first_write():
    events = [{"ts": T0, "event": E.RUN_START, "stall_after": 2.0}]
    events.append({"ts": T0 + 0.5, "event": E.ERROR, "probe": "e/p", "endpoint": "e", "code": 1045, "kind": "auth",
                   "message": "denied", "op": "connect"})
    events += writes_at([1.0 + i * 0.1 for i in range(10)])
    events.append({"ts": T0 + 5.0, "event": E.STATE, "probe": "e/p", "state": "STALLED", "stalled_for": 3.5})
    events.append({"ts": T0 + 7.0, "event": E.STATE, "probe": "e/p", "state": "OK"})
    events += writes_at([7.1, 7.2])
    (p,) = build_report(events).probes
    (stall,) = p.stalls
    assert (stall.start - T0, stall.end - T0, stall.open) == (pytest.approx(1.5), pytest.approx(7.0), False)
    assert p.write_gaps[0].from_start and p.write_gaps[0].end == T0 + 1.0
    assert p.write_gaps[1].start == pytest.approx(T0 + 1.9) and p.write_gaps[1].end == pytest.approx(T0 + 7.1)
    assert p.recovered


def test_probe_that_never_wrote_and_missing_lines_give_notes():
    events = [{"ts": T0 + 1, "event": E.ERROR, "probe": "e/p", "endpoint": "e", "code": 2003, "kind": "refused",
               "message": "x", "op": "connect"},
              {"ts": T0 + 4, "event": E.STATE, "probe": "e/p", "state": "RECONNECTING"}]
    report = build_report(events)
    (p,) = report.probes
    assert len(p.write_gaps) == 1 and p.write_gaps[0].open and p.write_gaps[0].from_start
    assert not p.recovered and not report.complete
    assert any("no run_start" in n for n in report.notes) and any("no summary" in n for n in report.notes)
    assert "NEVER WROTE (2003 refused)" in "\n".join(summary_lines(report))
    assert "never wrote (faults from the start, 1 err)" in render_text(report)
    assert build_report([]).notes == ("no events",)


def test_renderers_fit_and_serialise():
    report = build_report(make_run())
    lines = summary_lines(report, width=80)
    assert all(len(line) <= 80 for line in lines)
    assert any(line.startswith("aurora/mysql-connector") and "NEVER RECOVERED from t+10.0" in line for line in lines)
    assert any(line.startswith("aurora/pymysql") and "gap 7.5s (+0.5s vs outage)" in line for line in lines)
    assert all(len(line) <= 40 for line in summary_lines(report, width=40))
    md = render_markdown(report)
    assert "| aurora/pymysql | 225 | 5 |" in md and "| never |" in md
    data = json.loads(json.dumps(report_as_dict(report)))
    py = data["probes"][1]
    assert py["probe"] == "aurora/pymysql" and py["beyond_outage_s"] == pytest.approx(0.5, abs=0.02)
    assert data["failovers"][0]["outage_s"] == 7.0 and data["dns"][0]["t_flip"] == pytest.approx(16.04)
    assert data["probes"][0]["recovered"] is False


def record_file(path, events, tail=""):
    with RecordWriter(str(path)) as writer:
        for ev in events:
            writer.write(ev)
    if tail:
        with open(str(path), "a") as handle:
            handle.write(tail)
    return str(path)


def test_truncated_last_line_is_tolerated(tmp_path, capsys):
    events = make_run()
    path = record_file(tmp_path / "run.jsonl", events[:-1], tail='{"ts": %.3f, "event": "summ' % (T0 + 30))
    reader = read_record(path)
    from_file = build_report(list(reader))
    assert reader.skipped == 1 and reader.skipped_last
    assert probe(from_file, "aurora/pymysql").write_gaps == probe(build_report(events[:-1]), "aurora/pymysql").write_gaps
    assert cli_main(["report", path]) == 0
    out = capsys.readouterr().out
    assert "skipped a truncated last line" in out and "aurora/pymysql" in out


def test_report_command_formats_and_bad_file(tmp_path, capsys):
    path = record_file(tmp_path / "run.jsonl", make_run())
    assert cli_main(["report", path, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["probes"][1]["probe"] == "aurora/pymysql"
    assert cli_main(["report", path, "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("# fiswatch report")
    assert cli_main(["report", str(tmp_path / "missing.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "cannot read record" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "junk").write_text("not json\n")
    assert cli_main(["report", str(tmp_path / "junk")]) == 2
    assert "not a fiswatch record" in capsys.readouterr().err


def png_size(path):
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def has_matplotlib():
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


@pytest.mark.slow
def test_plot_makes_a_png_or_says_how_to_get_one(tmp_path, capsys):
    path = record_file(tmp_path / "run.jsonl", make_run())
    out = str(tmp_path / "timeline.png")
    assert cli_main(["report", path, "--plot", out]) == 0
    captured = capsys.readouterr()
    assert "aurora/pymysql" in captured.out  # the text report prints either way
    if has_matplotlib():
        width, height = png_size(out)
        assert width >= 600 and height >= 300
        assert "timeline written to" in captured.err
    else:
        assert not os.path.exists(out)
        assert "pip install 'fiswatch[plot]'" in captured.err


def test_without_matplotlib_the_text_report_still_prints(tmp_path):
    path = record_file(tmp_path / "run.jsonl", make_run())
    out = str(tmp_path / "timeline.png")
    code = ("import sys; sys.modules['matplotlib'] = None; from fiswatch.report.cli import main; "
            "sys.exit(main(['report', %r, '--plot', %r]))" % (path, out))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "aurora/pymysql" in proc.stdout
    assert proc.stderr.strip() == "fiswatch report: install the plot extra for --plot: pip install 'fiswatch[plot]'"
    assert not os.path.exists(out)


def test_verify_events_of_the_run_show_in_the_headline():
    events = make_run()
    events.append({"ts": T0 + 20.0, "event": E.VERIFY, "endpoint": "aurora", "ok": True, "acknowledged": 100,
                   "lost": 0, "changed": 0, "error": None})
    events.append({"ts": T0 + 30.0, "event": E.VERIFY, "endpoint": "aurora", "ok": False, "acknowledged": 319,
                   "lost": 2, "changed": 0, "error": None})
    report = build_report(events)
    text = render_text(report)
    assert "Writes aurora (verified t+30.0): LOST WRITES, 319 acknowledged, 2 lost" in text
    assert "verified t+20.0" not in text
    assert report_as_dict(report)["verified"][0]["verdict"] == "OK, 100 acknowledged, 0 lost"
