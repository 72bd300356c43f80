"""The report and verify on real lab runs: a pause during a failover, two failovers, a COMMIT that
never returns, and `verify` finding (or refusing) the database a record came from.
"""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, wait_for
from fiswatch import events as E
from fiswatch.output.record import RecordWriter, read_record
from fiswatch.report.build import build_report
from fiswatch.report.render_text import render_text, summary_lines
from fiswatch.report.timeline import overlap, subtract

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PY, MC = "aurora/pymysql", "aurora/mysql-connector"


def no_password_env():
    env = dict(os.environ, PYTHONPATH=ROOT)
    for key in list(env):
        if key.startswith("FISWATCH_PASSWORD_") or key == "MYSQL_PWD":
            del env[key]
    return env


def events_of(path):
    try:
        return list(read_record(path))
    except Exception:
        return []


def writes_after(path, probe, ts):
    return [e for e in events_of(path) if e["event"] == E.WRITE and e.get("probe") == probe and e["ts"] > ts]


def aurora_writer_socket(lab_dir):
    from fiswatch.lab.api import _state

    return next(i["socket"] for i in _state(lab_dir)["instances"] if i["cluster"] == "aurora" and i["role"] == "writer")


def test_pause_during_a_failover_and_two_failovers_in_one_run(lab, tmp_path):
    """A real run: pause (key p's action) through the end of failover 1, then failover 2 back."""
    from fiswatch.backends.registry import resolve_specs
    from fiswatch.lab import api
    from fiswatch.engine.runner import Output, RunOptions, Runner

    info = api.lab_status(lab.dir)
    record = str(tmp_path / "paused.jsonl")
    writer = RecordWriter(record)
    runner = Runner([info.endpoint("aurora")], resolve_specs(["pymysql"]),
                    RunOptions(interval=0.05, stall_after=2.0, nameserver=tuple(info.nameserver)),
                    outputs=[Output(lambda view, events: [writer.write(e) for e in events], "record")])
    runner.start()
    try:
        wait_for(lambda: len(writes_after(record, PY, 0)) >= 10, 60, message="writes before failover 1")

        def emit(event):
            runner.emit(event)
            if event.get("step") == "blackhole":
                runner.toggle_pause()  # the user presses p in the middle of the outage

        # the quick profile (DNS 1 s after promotion, not 9 s): the pause and the two gaps are the point
        api.failover(lab.dir, "aurora", emit=emit, profile="quick")
        ended = time.time()
        wait_for(lambda: time.time() > ended + 3.0, 10, message="3 s paused after the outage ended")
        runner.toggle_pause()
        resumed = time.time()
        wait_for(lambda: len(writes_after(record, PY, resumed)) >= 10, 60, message="writes after the resume")
        api.failover(lab.dir, "aurora", emit=runner.emit, profile="quick")  # back to the first writer
        second = time.time()
        wait_for(lambda: len(writes_after(record, PY, second)) >= 10, 60, message="writes after failover 2")
    finally:
        runner.stop()
        writer.close()
    report = build_report(read_record(record))
    (p,) = report.probes
    (pause,) = report.pauses
    first, second = report.failovers
    assert not pause.open and pause.start < first.outage_end < pause.end
    # each failover with its own gap
    one, two = p.outages
    assert (one.number, two.number) == (1, 2) and one.gap is not None and two.gap is not None
    assert one.gap is not two.gap
    assert one.gap.start <= first.outage_end <= one.gap.end and two.gap.start <= second.outage_end <= two.gap.end
    # the pause is not counted: not in the gap's duration, not in "beyond the outage"
    own = subtract(report.pauses, p.stalls)
    assert one.gap.paused == pytest.approx(overlap(own, one.gap.start, one.gap.end))
    assert one.gap.paused >= 3.0 - 0.1 or p.stalls
    assert one.gap.duration == pytest.approx(one.gap.span - one.gap.paused)
    assert one.beyond == pytest.approx(one.gap.end - first.outage_end - overlap(own, first.outage_end, one.gap.end))
    assert one.beyond < one.gap.end - first.outage_end - 2.5 or p.stalls
    # DNS: two flips, the second back to the first address; no "flap"
    dns = report.dns_for("aurora")
    assert len(dns.flips) == 2 and dns.flaps == 0
    assert set(dns.flips[1][2]) == set(dns.initial)
    text = render_text(report)
    assert "Paused (key p):" in text and "Lab failover aurora #2" in text and "flap" not in text
    line = next(l for l in summary_lines(report) if l.startswith(PY))
    assert "vs outage #" in line and "#1" in line and "#2" in line


def test_a_commit_that_never_returns_is_in_doubt_and_verify_finds_the_lab_by_itself(lab, tmp_path):
    """The writer stops acknowledging COMMITs (semi-sync with no replica acking): a real hang."""
    from fiswatch.lab.mariadb import sql

    record = str(tmp_path / "hang.jsonl")
    env = no_password_env()
    cmd = [sys.executable, "-m", "fiswatch", "watch", "--lab", lab.dir, "--json", "--backend", "mysql-connector",
           "--stall-after", "1", "--record", record, "--duration", "120"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    sock = aurora_writer_socket(lab.dir)
    try:
        wait_for(lambda: len(writes_after(record, MC, 0)) >= 10, 60, message="mysql-connector writing")
        sql(sock, ["SET GLOBAL rpl_semi_sync_master_timeout = 3600000",
                   "SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_COMMIT'",
                   "SET GLOBAL rpl_semi_sync_master_enabled = 1"])
        wait_for(lambda: [e for e in events_of(record) if e["event"] == E.STATE and e.get("probe") == MC
                          and e.get("state") == "STALLED" and e.get("op") == "COMMIT"], 60,
                 message="mysql-connector stalled in COMMIT")
        proc.terminate()
        proc.wait(timeout=60)
    finally:
        sql(sock, ["SET GLOBAL rpl_semi_sync_master_enabled = 0"])  # the hung COMMIT completes
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, proc.stderr.read()[-2000:]
    events = list(read_record(record))
    (doubt,) = [e for e in events if e["event"] == E.WRITE_IN_DOUBT and e.get("probe") == MC]
    assert doubt["at_stop"] is True and isinstance(doubt["id"], int) and isinstance(doubt["value"], int)
    stop = next(e for e in events if e["event"] == E.RUN_STOP)
    assert stop["ts"] <= doubt["ts"]
    mc = next(p for p in build_report(events).probes if p.probe == MC)
    assert mc.in_doubt == 1 and mc.stalls and mc.stalls[-1].end == stop["ts"]
    # verify, without a password and without --lab: the record names its lab
    out = subprocess.run([sys.executable, "-m", "fiswatch", "verify", record], capture_output=True, text=True,
                         env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("aurora"))
    assert "OK - " in line and "in doubt: 1 committed, 0 not committed" in line


@pytest.fixture(scope="module")
def lab_record(tmp_path_factory):
    from _lab_fixture import shared_lab

    lab = shared_lab(tmp_path_factory)
    record = str(tmp_path_factory.mktemp("rec") / "short.jsonl")
    out = subprocess.run([sys.executable, "-m", "fiswatch", "watch", "--lab", lab.dir, "--json", "--duration", "3",
                          "--backend", "pymysql", "--record", record], capture_output=True, text=True,
                         env=no_password_env(), timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    return record


def verify_cmd(*args, env=None):
    return subprocess.run([sys.executable, "-m", "fiswatch", "verify"] + list(args), capture_output=True, text=True,
                          env=env or no_password_env(), timeout=120, stdin=subprocess.DEVNULL)


def test_verify_of_a_lab_record_needs_no_password(lab_record):
    out = verify_cmd(lab_record)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "aurora (table test): OK" in out.stdout and "rds (table test): OK" in out.stdout


def test_verify_against_another_lab_is_refused(lab, lab_record, tmp_path):
    with open(lab_record) as handle:
        origin = json.loads(handle.readline())["endpoints"][0]["source"][len("lab:"):]
    other = str(tmp_path / "other-lab")
    out = verify_cmd(lab_record, "--lab", other)
    assert out.returncode == 2 and out.stdout == ""  # today: "no lab runs in ..." or, with a lab there, all lost
    assert out.stderr.strip() == (
        "fiswatch verify: refused: the record's endpoint aurora came from the lab in %s, not the one in %s; checked "
        "against another lab every write would look lost. Run `fiswatch verify FILE` without --lab (the record names "
        "its lab) or with --lab %s" % (origin, other, origin))


def test_verify_against_another_server_is_refused(lab_record, mariadb, tmp_path):
    import secrets

    table = "other_" + secrets.token_hex(4)
    with open(lab_record) as handle:
        lines = handle.read().splitlines()
    start = json.loads(lines[0])
    for item in start["endpoints"]:
        item["table"] = table  # the same run, as if it had written to this table name
    record = str(tmp_path / "other.jsonl")
    with open(record, "w") as handle:
        handle.write("\n".join([json.dumps(start)] + lines[1:]) + "\n")
    mariadb.query("CREATE TABLE %s (id INT AUTO_INCREMENT PRIMARY KEY, value INT)" % table)
    try:
        # ids 1..300 with values of their own, as any other run leaves them: one statement, one commit (300
        # connections and commits took 43 s on a loaded machine)
        values = [(n * 104729) % 32768 for n in range(300)]
        mariadb.query("INSERT INTO %s (value) VALUES %s" % (table, ", ".join(["(%s)"] * len(values))), values)
        url = "mysql://%s@%s:%d/%s" % (mariadb.user, mariadb.host, mariadb.port, mariadb.database)
        env = dict(no_password_env(), MYSQL_PWD=mariadb.password)
        out = verify_cmd(record, "--endpoint", "aurora=" + url, "--endpoint", "rds=" + url, env=env)
        assert out.returncode == 2, out.stdout + out.stderr  # today: exit 1, "LOST WRITES", every write lost
        assert "LOST" not in out.stdout
        for name in ("aurora", "rds"):
            line = next(l for l in out.stdout.splitlines() if l.startswith(name))
            assert "NOT VERIFIED - refused: none of the" in line and "not the database the run wrote to" in line
    finally:
        mariadb.query("DROP TABLE IF EXISTS %s" % table)


def test_unknown_endpoint_name_is_an_error(lab_record):
    out = verify_cmd(lab_record, "--endpoint", "zz=mysql://u@127.0.0.1:3306/db")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip() == ("fiswatch verify: --endpoint zz: the record has no endpoint named zz (it has aurora, "
                                  "rds); name the one to check")
