"""The end-of-run table pairs a client only with the failovers of its own database that happened while it
ran: a program started after a failover, or an Aurora client beside an RDS failover, is not paired.

The record is the shape a demo with `--exec` writes (tests/test_report.py's lab run plus a `wire_client`
line for the program); what it is checked against is report/build.py and failover_table.py, pure.
"""
import pytest

from fiswatch import events as E
from fiswatch.report.build import build_report
from fiswatch.report.failover_table import comparison_lines
from fiswatch.report.render_text import summary_lines
from test_report import T0, make_run, probe


def rds_failover(events, at=20.0):
    """An RDS failover at t+at .. t+at+3 added to a run's events (before its run_stop)."""
    steps = [(at, "start", {"outage_start": T0 + at}), (at + 1.5, "promote", {}), (at + 2.5, "dns_flip", {}),
             (at + 3.0, "done", {"outage_end": T0 + at + 3.0})]
    for ts, step, extra in steps:
        events.append(dict({"ts": T0 + ts, "event": E.LAB, "target": "rds", "step": step, "detail": "", "crash": False},
                           **extra))
    return events


def program(events, endpoint, start, end, name="loop.sh", gap=None):
    """The program's wire_client line: it wrote from t+start to t+end (but for `gap`: (from, to)), seen at the
    run's end."""
    segments = [[T0 + start, T0 + end]] if gap is None else [[T0 + start, T0 + gap[0]], [T0 + gap[1], T0 + end]]
    events.append({"ts": T0 + 30.0, "event": E.WIRE_CLIENT, "probe": "%s/program" % endpoint, "endpoint": endpoint,
                   "backend": name, "acked": int((end - start) * 10), "segments": segments,
                   "gap_min": 0.2, "errors": {}, "last_error": None, "refused": 0, "last_refused": None,
                   "dropped": 0, "last_dropped": None, "faults": []})
    return events


def test_a_program_started_after_the_failover_is_not_paired_with_it():
    report = build_report(program(make_run(), "aurora", 18.0, 29.8))
    late = probe(report, "aurora/program")
    assert late.outages == () and late.outage_gap is None
    assert probe(report, "aurora/pymysql").outages[0].gap is not None  # the probes that ran then still are
    table = comparison_lines(report, 100, "aurora")
    assert "started later" in table[2] and "not running then" in table[3], table
    line = next(line for line in summary_lines(report, 100) if line.startswith("aurora/program"))
    assert "vs outage" not in line and "NEVER" not in line, line


def test_a_program_that_ran_through_the_failover_is_paired():
    report = build_report(program(make_run(), "aurora", 0.5, 29.8, gap=(10.0, 18.5)))
    pairs = probe(report, "aurora/program").outages
    assert [p.failover.target for p in pairs] == ["aurora"] and pairs[0].gap.duration == pytest.approx(8.5)


def test_an_rds_failover_is_not_paired_with_an_aurora_client():
    """The gate's case: a program that wrote only to Aurora, a run whose one failover is RDS's."""
    events = rds_failover([e for e in make_run() if e["event"] != E.LAB])
    events = [e for e in events if e.get("probe") in (None, "aurora/pymysql") or e["event"] not in (E.WRITE, E.STATE)]
    events[0]["probes"] = [p for p in events[0]["probes"] if p["probe"] == "aurora/pymysql"]
    report = build_report(events)
    assert {p.endpoint for p in report.probes} == {"aurora"} and [f.target for f in report.failovers] == ["rds"]
    assert probe(report, "aurora/pymysql").outages == ()  # one endpoint in the run, yet not rds's failover
    assert report.failover_for("aurora") is None and comparison_lines(report, 100, "aurora") == []


def test_a_single_endpoint_named_by_the_user_still_takes_the_runs_failovers():
    events = make_run()
    for ev in events:  # `watch --endpoint db=...` against the lab: the failover's target is the lab's name
        if ev.get("probe", "").startswith("aurora/"):
            ev["probe"] = "db/" + ev["probe"].split("/", 1)[1]
        if ev.get("endpoint") == "aurora":
            ev["endpoint"] = "db"
    for item in events[0]["probes"]:
        item["probe"], item["endpoint"] = "db/" + item["backend"], "db"
    report = build_report(events)
    assert [p.failover.target for p in probe(report, "db/pymysql").outages] == ["aurora"]


def test_a_programs_rolled_back_transactions_are_reported_and_never_lost():
    from fiswatch.report.render_json import report_as_dict
    from fiswatch.report.render_text import render_text

    events = program(make_run(), "aurora", 1.0, 29.8)
    events[-1].update(rolled_back=1, rolled_back_writes=2)
    report = build_report(events)
    mine = probe(report, "aurora/program")
    assert (mine.rolled_back, mine.rolled_back_writes, mine.acknowledged) == (1, 2, 288)
    text = "1 transaction rolled back (2 writes not acknowledged)"
    assert "  " + text in render_text(report).splitlines()
    assert any(line.strip() == text for line in summary_lines(report, 100))  # the end-of-run lines
    as_json = next(p for p in report_as_dict(report)["probes"] if p["probe"] == "aurora/program")
    assert (as_json["rolled_back"], as_json["rolled_back_writes"]) == (1, 2)
    from fiswatch.report.render_markdown import render_markdown

    assert "- **aurora/program**: " + text in render_markdown(report).splitlines()
    assert probe(build_report(program(make_run(), "aurora", 1.0, 29.8)), "aurora/program").rolled_back_text == ""
