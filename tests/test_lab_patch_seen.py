"""Zero-downtime patching where users see it (issue 22 item 5): the demo's key z, `lab exec --patch aurora@S`,
the report's table naming the outage a patch, and the bad input around it. Real labs, real clients."""
import json
import os
import subprocess
import sys
import threading

import pytest

from _demo_key import press_twice
from conftest import ROOT, wait_for

sys.path.insert(0, os.path.dirname(__file__))
from test_lab_rdsproxy import _lab_connect, _proxy_ip, _query, plab  # noqa: E402,F401

pytestmark = pytest.mark.lab


def _fiswatch(*args, timeout=120, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "fiswatch"] + list(args), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=dict(os.environ, PYTHONPATH=ROOT))


def _one_line(done, code, words):
    assert done.returncode == code, (done.returncode, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert words in done.stderr, done.stderr


def test_the_demo_key_z_patches_aurora_and_a_second_z_is_refused(plab):
    idle = _lab_connect(plab, _proxy_ip(plab), autocommit=True)
    idle_id = idle.thread_id()
    said, events = press_twice(plab.dir, "z", "patch aurora", timeout=240)
    assert said == "", [e.as_dict() for e in events]
    lab_events = [e for e in events if e.event == "lab"]
    assert [(e.get("step"), e.get("outage"), e.get("target")) for e in lab_events] == [
        ("start", "patch", "aurora"), ("patch", "patch", "aurora"), ("done", "patch", "aurora")]
    assert lab_events[0].get("outage_start") < lab_events[-1].get("outage_end")
    assert "1 kept" in lab_events[1].get("detail")  # the idle session, named in the event log
    assert idle.thread_id() == idle_id and _query(idle, "SELECT 1")[0] == ((1,),)


def test_lab_exec_schedules_a_patch_and_the_report_names_it(plab, tmp_path):
    from test_lab_gate import WRITER, _gate, _junit

    (tmp_path / "writer.py").write_text(WRITER)
    junit, record = tmp_path / "gate.xml", tmp_path / "run.jsonl"
    result = _gate(plab.dir, tmp_path, "--patch", "aurora@3", "--expect", "max-gap=60", "--expect", "lost=0",
                   "--expect", "recovered", "--junit", str(junit), "--record", str(record),
                   "--", sys.executable, "writer.py", "16")
    assert result.returncode == 0, result.stderr
    cases, _ = _junit(junit)
    assert cases == {"patch aurora@3": True, "max-gap=60": True, "lost=0": True, "recovered": True}
    steps = [e for e in map(json.loads, record.read_text().splitlines()) if e.get("event") == "lab"]
    assert [(s["step"], s.get("outage")) for s in steps] == [("start", "patch"), ("patch", "patch"),
                                                             ("done", "patch")]
    report = _fiswatch("report", str(record))
    assert report.returncode == 0, report.stderr
    assert "Lab patch aurora: outage" in report.stdout and "Lab failover" not in report.stdout, report.stdout
    assert "vs injected outage aurora: gap t+" in report.stdout, report.stdout  # the client's gap through it
    as_json = json.loads(_fiswatch("report", str(record), "--format", "json").stdout)
    assert [f["kind"] for f in as_json["failovers"]] == ["patch"]


def test_a_patch_while_another_outage_runs_or_for_rds_is_one_line_and_exit_2(plab, tmp_path):
    from fiswatch.lab.crash import take_lock

    _one_line(_fiswatch("lab", "exec", "--dir", plab.dir, "--patch", "rds@3", "--", "true"), 2,
              "--patch rds@3: say aurora@SECONDS")
    _one_line(_fiswatch("lab", "exec", "--dir", plab.dir, "--patch", "aurora", "--", "true"), 2,
              "--patch aurora: say ENDPOINT@SECONDS")
    fd = take_lock(plab.dir)  # a failover, crash, reboot or patch is running
    try:
        _one_line(_fiswatch("lab", "patch", "aurora", "--dir", plab.dir), 2, "already runs")
    finally:
        os.close(fd)
    _one_line(_fiswatch("demo", "--dir", plab.dir, "--patch", "5", "--no-failover"), 2, "--patch needs --proxy")
    state = _fiswatch("lab", "status", "--dir", plab.dir, "--json")
    assert all(i["running"] for i in json.loads(state.stdout)["instances"])  # the lab is as it was


def test_a_patch_on_a_lab_without_its_rds_proxy_is_one_line_and_exit_2(lab):
    _one_line(_fiswatch("lab", "patch", "aurora", "--dir", lab.dir), 2, "runs without its RDS Proxy")
    _one_line(_fiswatch("lab", "patch", "aurora", "--no-zdp", "--dir", lab.dir), 2, "lab up --proxy")
    refused = _fiswatch("lab", "exec", "--dir", lab.dir, "--patch", "aurora@1", "--", "sh", "-c", "echo ran")
    _one_line(refused, 2, "--patch: this lab runs without its RDS Proxy")  # before anything starts
    assert "lab up --proxy" in refused.stderr and "ran" not in refused.stdout, refused.stdout


OPEN_TRANSACTION = """\
import os, sys, time
import pymysql
def connect():
    return pymysql.connect(host=os.environ["FISWATCH_LAB_AURORA_HOST"], port=int(os.environ["FISWATCH_LAB_PORT"]),
                           user=os.environ["FISWATCH_LAB_USER"], password=os.environ["FISWATCH_LAB_PASSWORD"],
                           database=os.environ["FISWATCH_LAB_DATABASE"], autocommit=True, connect_timeout=2,
                           read_timeout=5, write_timeout=5)
conn = connect()
cur = conn.cursor()
cur.execute("CREATE TABLE IF NOT EXISTS patch_txn (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
cur.execute("INSERT INTO patch_txn (v) VALUES (0)")  # acknowledged (autocommit)
cur.execute("BEGIN")
cur.execute("INSERT INTO patch_txn (v) VALUES (1)")
cur.execute("INSERT INTO patch_txn (v) VALUES (2)")  # two writes held by the open transaction
deadline = time.time() + 90
try:
    while time.time() < deadline:  # inside the transaction until the patch ends the connection
        time.sleep(0.1)
        cur.execute("SELECT 1")
    sys.exit(3)
except pymysql.err.MySQLError:
    pass
while time.time() < deadline:
    try:
        connect().cursor().execute("INSERT INTO patch_txn (v) VALUES (3)")  # acknowledged after the patch
        break
    except pymysql.err.MySQLError:
        time.sleep(0.2)
"""


def test_an_open_transaction_through_a_patch_is_reported_rolled_back_never_lost(plab, tmp_path):
    from test_lab_gate import _gate

    from fiswatch.lab.outage_now import outage_now

    (tmp_path / "txn.py").write_text(OPEN_TRANSACTION)
    record = tmp_path / "run.jsonl"
    done = {}
    gate = threading.Thread(target=lambda: done.update(result=_gate(
        plab.dir, tmp_path, "--patch", "aurora@2", "--expect", "lost=0", "--record", str(record), "--",
        sys.executable, "txn.py")), daemon=True)
    gate.start()
    running = wait_for(lambda: outage_now(plab.dir), timeout=60, interval=0.01, message="the patch in progress")
    assert running["kind"] == "patch" and running["cluster"] == "aurora"  # what `lab status` shows meanwhile
    gate.join(240)
    result = done["result"]
    assert result.returncode == 0, result.stderr
    text = "1 transaction rolled back (2 writes not acknowledged)"
    assert text in result.stderr and "lost writes: 0 of 2 acknowledged inserts" in result.stderr, result.stderr
    client = next(e for e in map(json.loads, record.read_text().splitlines()) if e.get("event") == "wire_client")
    assert (client["acked"], client["rolled_back"], client["rolled_back_writes"]) == (2, 1, 2)
    report = _fiswatch("report", str(record))
    assert report.returncode == 0 and "  " + text in report.stdout.splitlines(), report.stdout
