"""The report's numbers on records built event by event: pauses, two failovers, flips, the end.

Each test states a record a real run writes (docs/events.md) and the numbers a user must be
told; the lab versions of the same runs are in test_report_lab.py.
"""
import pytest

from fiswatch import events as E
from fiswatch.report.build import build_report
from fiswatch.report.render_json import report_as_dict
from fiswatch.report.render_markdown import render_markdown
from fiswatch.report.render_text import render_text, summary_lines

T0 = 1764088000.0
PY = "aurora/pymysql"
A, B = "127.0.0.11", "127.0.0.12"


class Run:
    """A one-probe aurora run written 0.1 s apart; faults, failovers and pauses added by hand."""

    def __init__(self):
        self.events = [{"ts": T0, "event": E.RUN_START, "stall_after": 2.0, "interval": 0.05,
                        "probes": [{"probe": PY, "endpoint": "aurora", "backend": "pymysql"}],
                        "endpoints": [{"name": "aurora", "url": "mysql://probe@aurora.lab:3306/testdb",
                                       "source": "cli"}]}]
        self.next_id = 1

    def add(self, t, event, **fields):
        self.events.append(dict(ts=round(T0 + t, 3), event=event, **fields))

    def writes(self, t0, t1, address=A):
        t = t0
        while t < t1 - 1e-9:
            self.add(t, E.WRITE, probe=PY, endpoint="aurora", id=self.next_id, value=self.next_id * 7 % 32768,
                     address=address)
            self.next_id += 1
            t += 0.1

    def error(self, t, code=2013, kind="lost"):
        self.add(t, E.ERROR, probe=PY, endpoint="aurora", code=code, kind=kind, message="x", op="COMMIT")

    def failover(self, t_start, t_done, flip_to):
        self.add(t_start, E.LAB, target="aurora", step="start", detail="", outage_start=T0 + t_start, crash=False)
        self.add(t_start + 0.5, E.LAB, target="aurora", step="dns_flip", detail=flip_to, crash=False)
        self.add(t_done, E.LAB, target="aurora", step="done", detail="", outage_end=T0 + t_done, crash=False)

    def dns(self, t, addresses, previous):
        self.add(t, E.DNS, endpoint="aurora", name="aurora.lab", addresses=addresses, previous=previous)

    def pause(self, t0, t1):
        self.add(t0, E.INFO, message="paused", pause=True)
        if t1 is not None:
            self.add(t1, E.INFO, message="resumed", pause=False)

    def end(self, t_stop, t_summary=None):
        self.add(t_stop, E.RUN_STOP)
        self.add(t_summary if t_summary is not None else t_stop, E.SUMMARY,
                 probes={PY: {"ops": self.next_id - 1, "errors": 0, "state": "OK"}})
        return build_report(self.events)


def only_probe(report):
    (p,) = report.probes
    return p


def test_a_pause_alone_is_a_pause_window_not_a_write_gap():
    run = Run()
    run.writes(0.1, 10.0)
    run.pause(10.0, 15.1)  # 5 s: the probe writes nothing, by the user's will
    run.writes(15.2, 20.0)
    report = run.end(20.0)
    p = only_probe(report)
    assert p.write_gaps == ()  # today: "gap 5.1s"
    (win,) = report.pauses
    assert (win.start - T0, win.end - T0) == (pytest.approx(10.0), pytest.approx(15.1))
    assert "no write gap" in "\n".join(summary_lines(report))
    assert "Paused (key p): t+10.0..t+15.1 5.1s; not counted in write gaps" in render_text(report)
    assert report_as_dict(report)["pauses"][0]["duration_s"] == pytest.approx(5.1)


def test_a_pause_during_a_failover_does_not_inflate_beyond_the_outage():
    run = Run()
    run.writes(0.1, 10.0)
    run.failover(10.0, 14.0, B)
    run.error(10.5)
    run.pause(12.0, 20.0)  # paused through the end of the outage: 6 s of it after t+14
    run.writes(20.5, 25.0, address=B)  # back 0.5 s after the resume
    report = run.end(25.0)
    p = only_probe(report)
    (gap,) = p.write_gaps
    assert gap.span == pytest.approx(20.5 - 9.9, abs=0.01)
    assert gap.paused == pytest.approx(8.0) and gap.duration == pytest.approx(20.5 - 9.9 - 8.0, abs=0.01)
    (pair,) = p.outages
    assert pair.gap is gap and pair.beyond == pytest.approx(0.5, abs=0.01)  # today: +6.5s
    line = next(l for l in summary_lines(report) if l.startswith(PY))
    assert "gap 2.6s (+0.5s vs outage)" in line
    assert "(1 err, +8.0s paused, not counted)" in render_text(report)


def test_two_failovers_each_paired_with_its_own_gap_and_the_summary_says_which():
    run = Run()
    run.dns(0.05, [A], [])
    run.writes(0.1, 10.0)
    run.failover(10.0, 12.0, B)  # first: writes come back only at t+20 (8 s beyond)
    run.error(10.2)
    run.dns(10.5, [B], [A])
    run.writes(20.0, 30.0, address=B)
    run.failover(30.0, 32.0, A)  # second: back to the first address, writes 0.5 s after
    run.error(30.2)
    run.dns(30.5, [A], [B])
    run.writes(32.5, 40.0)
    report = run.end(40.0)
    p = only_probe(report)
    first, second = p.outages
    assert (first.number, second.number) == (1, 2)
    assert first.gap.end - T0 == pytest.approx(20.0) and first.beyond == pytest.approx(8.0, abs=0.01)
    assert second.gap.end - T0 == pytest.approx(32.5) and second.beyond == pytest.approx(0.5, abs=0.01)
    assert first.gap is not second.gap
    line = next(l for l in summary_lines(report) if l.startswith(PY))
    # today: "gap 10.1s (+0.5s vs outage)", the first failover's gap with the second one's outage
    assert "gap 10.1s (+8.0s vs outage #1)" in line and line.endswith("#2 +0.5s")
    text = render_text(report)
    assert "Lab failover aurora #1: outage t+10.0..t+12.0" in text and "Lab failover aurora #2" in text
    assert "vs injected outage aurora #2: gap t+29.9, writes resumed 0.5s after the outage ended" in text
    assert "| #1 +8.0s; #2 +0.5s |" in render_markdown(report)
    # DNS: the second failover's flip back to the first address is a flip, not a flap
    dns = report.dns_for("aurora")
    assert dns.flaps == 0 and [(round(ts - T0, 1), to) for ts, _, to in dns.flips] == [(10.5, (B,)), (30.5, (A,))]
    assert "DNS aurora: flip 2 -> 127.0.0.11 at t+30.5" in text and "flap" not in text
    assert [m.label for m in report.markers if m.kind == "dns"] == ["DNS flip", "DNS flip 2"]


def test_flaps_while_the_dns_settles_are_flaps():
    run = Run()
    run.dns(0.05, [A], [])
    run.writes(0.1, 5.0)
    run.failover(5.0, 9.0, B)
    run.add(5.6, "lab", target="aurora", step="dns_flap", detail="alternates", crash=False)
    for n, t in enumerate([5.5, 6.5, 7.5, 8.5]):  # A->B, B->A (flap), A->B, B->A (flap)...
        run.dns(t, [B] if n % 2 == 0 else [A], [A] if n % 2 == 0 else [B])
    run.dns(9.5, [B], [A])
    report = run.end(12.0)
    dns = report.dns_for("aurora")
    assert dns.flaps == 2 and len(dns.flips) == 1


def test_a_gap_into_the_next_failover_is_not_counted_against_the_first():
    run = Run()
    run.writes(0.1, 10.0)
    run.failover(10.0, 12.0, B)
    run.error(10.2)
    run.failover(20.0, 22.0, A)
    run.writes(23.0, 30.0)
    report = run.end(30.0)
    first, second = only_probe(report).outages
    assert first.gap is second.gap and first.into_next and first.beyond is None
    assert second.beyond == pytest.approx(1.0, abs=0.01)


def test_open_gaps_and_stalls_end_when_the_probes_stop_not_after_verifying():
    run = Run()
    run.writes(0.1, 10.0)
    run.add(12.0, "state", probe=PY, endpoint="aurora", state="STALLED", stalled_for=2.0, op="COMMIT")
    run.add(20.0, "run_stop")
    run.add(23.5, "verify", endpoint="aurora", ok=True, acknowledged=99, lost=0, changed=0)  # 3.5 s verifying
    run.add(23.6, "summary", probes={PY: {"ops": 99, "errors": 0, "state": "STALLED"}})
    report = build_report(run.events)
    p = only_probe(report)
    (gap,) = p.write_gaps
    (stall,) = p.stalls
    assert gap.open and gap.end - T0 == pytest.approx(20.0)  # today: 23.6
    assert stall.open and stall.duration == pytest.approx(10.0)  # today: 13.6
    assert report.end - T0 == pytest.approx(20.0)
    assert "never recovered (10.1s until the probes stopped)" in render_text(report)
    assert "still stalled when the probes stopped (10.0s)" in render_text(report)


def test_old_records_without_run_stop_end_before_the_closing_verification():
    run = Run()
    run.writes(0.1, 10.0)
    run.add(12.0, "state", probe=PY, endpoint="aurora", state="STALLED", stalled_for=2.0, op="COMMIT")
    run.add(19.0, "tick", probes={PY: {"ops": 0, "state": "STALLED"}})
    run.add(22.0, "verify", endpoint="aurora", ok=True, acknowledged=99, lost=0, changed=0)
    run.add(22.1, "summary", probes={PY: {"ops": 99, "errors": 0, "state": "STALLED"}})
    p = only_probe(build_report(run.events))
    assert p.stalls[0].end - T0 == pytest.approx(19.0)


def test_in_doubt_at_stop_counts_once_and_is_not_a_fault():
    run = Run()
    run.writes(0.1, 10.0)
    # the COMMIT of id 999 was in flight when the probes stopped; id 5's returned after all
    run.add(10.05, "run_stop")
    run.add(10.06, "write_in_doubt", probe=PY, endpoint="aurora", id=999, value=3, address=A,
            error="COMMIT never returned before the probes stopped", at_stop=True)
    run.add(10.06, "write_in_doubt", probe=PY, endpoint="aurora", id=5, value=35, address=A,
            error="COMMIT never returned before the probes stopped", at_stop=True)
    run.add(10.1, "summary", probes={PY: {"ops": 99, "errors": 0, "state": "OK"}})
    p = only_probe(build_report(run.events))
    assert p.in_doubt == 1 and p.write_gaps == ()


def test_lost_writes_keep_the_lagging_reader_caveat():
    run = Run()
    run.writes(0.1, 2.0)
    run.add(2.0, "run_stop")
    run.add(2.5, "verify", endpoint="aurora", ok=False, acknowledged=19, lost=2, changed=0, lost_ids=[3, 4],
            server="127.0.0.12:3306 read_only=1",
            warnings=["the server answering is read-only (a reader?): rows may not be there yet"])
    run.add(2.6, "summary", probes={PY: {"ops": 19, "errors": 0, "state": "OK"}})
    report = build_report(run.events)
    line = next(l for l in render_text(report).splitlines() if l.startswith("Writes aurora"))
    assert "LOST WRITES, 19 acknowledged, 2 lost" in line and "may have read a lagging reader" in line
    assert report_as_dict(report)["verify_warnings"][0]["endpoint"] == "aurora"
