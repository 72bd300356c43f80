"""`fiswatch lab exec` as a CI gate: real programs through real lab failovers, measured from the wire."""
import os
import signal
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest
from conftest import ROOT, wait_for

from _lab_fixture import lab  # noqa: F401
from _wire_fixture import lab_writer

pytestmark = pytest.mark.lab

WRITER = lab_writer("gate_writes")

LOSER = textwrap.dedent("""\
    import os, sys, time
    import pymysql
    conn = pymysql.connect(host=os.environ["FISWATCH_LAB_AURORA_HOST"], port=int(os.environ["FISWATCH_LAB_PORT"]),
                           user=os.environ["FISWATCH_LAB_USER"], password=os.environ["FISWATCH_LAB_PASSWORD"],
                           database=os.environ["FISWATCH_LAB_DATABASE"], autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE TABLE IF NOT EXISTS gate_lost (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
    ids = []
    for _ in range(5):
        cur.execute("INSERT INTO gate_lost (v) VALUES (1)")
        ids.append(cur.lastrowid)
    with open(sys.argv[1] + ".tmp", "w") as fh:
        fh.write(" ".join(map(str, ids)))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    deadline = time.time() + 60
    while not os.path.exists(sys.argv[1] + ".deleted") and time.time() < deadline:
        time.sleep(0.05)
    conn.close()
""")


def _gate(lab_dir, tmp_path, *args, timeout=240):
    env = dict(os.environ, PYTHONPATH=ROOT)
    argv = [sys.executable, "-m", "fiswatch", "lab", "exec", "--dir", lab_dir] + list(args)
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, cwd=str(tmp_path))


def _junit(path):
    suite = ET.parse(str(path)).getroot()
    return {case.get("name"): case.find("failure") is None for case in suite.iter("testcase")}, suite


def test_bad_expect_is_one_line_and_exit_2_before_anything_starts(tmp_path):
    for bad, words in (("max-gap=soon", "max-gap wants a number"), ("speed=3", "unknown expectation 'speed'"),
                       ("mars:lost=0", "unknown endpoint 'mars'"), ("lost=-1", "lost wants a whole number")):
        result = _gate(str(tmp_path / "no-lab"), tmp_path, "--expect", bad, "--", "true", timeout=60)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and words in result.stderr
    result = _gate(str(tmp_path / "no-lab"), tmp_path, "--failover", "aurora", "--", "true", timeout=60)
    assert result.returncode == 2 and "ENDPOINT@SECONDS" in result.stderr
    assert not os.path.exists(str(tmp_path / "no-lab"))  # nothing started


def test_a_pymysql_writer_through_an_aurora_failover_passes_and_fails_expectations(lab, tmp_path):
    (tmp_path / "writer.py").write_text(WRITER)
    junit = tmp_path / "gate.xml"
    result = _gate(lab.dir, tmp_path, "--failover", "aurora@6", "--expect", "max-gap=60", "--expect", "lost=0",
                   "--expect", "recovered", "--expect", "aurora:max-gap=0.5", "--junit", str(junit),
                   "--json", str(tmp_path / "v.json"), "--record", str(tmp_path / "r.jsonl"),
                   "--", sys.executable, "writer.py", "22")
    assert result.returncode == 3, result.stderr
    failed = [line for line in result.stderr.splitlines() if "expectation failed" in line]
    assert len(failed) == 1 and "aurora:max-gap=0.5" in failed[0] and "failover 1 (aurora): gap" in failed[0]
    assert "at the DNS change" in result.stderr  # a DNS-following client, as the probes' PyMySQL
    assert "lost writes: 0 of" in result.stderr
    cases, suite = _junit(junit)
    assert cases == {"failover aurora@6": True, "max-gap=60": True, "lost=0": True, "recovered": True,
                     "aurora:max-gap=0.5": False}
    assert suite.get("failures") == "1"
    import json

    doc = json.loads((tmp_path / "v.json").read_text())
    gap = doc["endpoints"]["aurora"]["failovers"][0]["gap"]
    assert 0.5 < gap < 60 and doc["passed"] is False
    report = subprocess.run([sys.executable, "-m", "fiswatch", "report", str(tmp_path / "r.jsonl")],
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
    assert report.returncode == 0 and "aurora/program" in report.stdout, report.stderr


def test_the_mysql_cli_in_a_loop_through_a_failover_is_measured(lab, tmp_path):
    loop = ('end=$(($(date +%s)+18)); while [ $(date +%s) -lt $end ]; do '
            'timeout 5 mysql --connect-timeout=2 -h "$FISWATCH_LAB_AURORA_HOST" -u "$FISWATCH_LAB_USER" "$FISWATCH_LAB_DATABASE" '
            '-e "CREATE TABLE IF NOT EXISTS gate_cli (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT); '
            'INSERT INTO gate_cli (v) VALUES (1)" 2>/dev/null; sleep 0.1; done')
    # the quick profile (DNS 1 s after promotion): the point is the CLI measured, not which of the two it follows
    result = _gate(lab.dir, tmp_path, "--failover", "aurora@6", "--profile", "quick", "--expect", "max-gap=60",
                   "--expect", "lost=0", "--expect", "recovered", "--json", str(tmp_path / "v.json"), "--",
                   "sh", "-c", loop)
    assert result.returncode == 0, result.stderr
    import json

    doc = json.loads((tmp_path / "v.json").read_text())
    assert doc["clients"] > 10  # one process per mysql run, grouped under the program
    assert doc["endpoints"]["aurora"]["acknowledged"] > 10
    assert doc["lost"]["checked"] == doc["endpoints"]["aurora"]["acknowledged"]  # one id per INSERT
    assert doc["lost"]["lost"] == []
    assert "at the DNS change" in result.stderr or "at promotion" in result.stderr


def test_a_write_deleted_behind_the_programs_back_is_reported_lost_with_its_id(lab, tmp_path):
    from fiswatch.lab import layout as L
    from fiswatch.lab.mariadb import sql

    (tmp_path / "loser.py").write_text(LOSER)
    ids_file = tmp_path / "ids"
    proc = subprocess.Popen([sys.executable, "-m", "fiswatch", "lab", "exec", "--dir", lab.dir, "--expect", "lost=0",
                             "--junit", str(tmp_path / "j.xml"), "--", sys.executable, "loser.py", str(ids_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path),
                            env=dict(os.environ, PYTHONPATH=ROOT))
    wait_for(lambda: ids_file.exists(), timeout=120, message="the program's ids")
    ids = [int(x) for x in ids_file.read_text().split()]
    from fiswatch.lab.api import lab_status

    writer = lab_status(lab.dir).instance("aurora", "writer")
    spec = next(s for s in L.INSTANCES if s.name == writer.name)
    sql(L.Layout(dir=lab.dir).server_socket(spec), [("DELETE FROM %s.gate_lost WHERE id = %%s" % lab.endpoint(
        "aurora").database, (ids[2],))])
    (tmp_path / "ids.deleted").write_text("")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert "LOST aurora/%s.gate_lost id %d" % (lab.endpoint("aurora").database, ids[2]) in err
    assert "lost writes: 1 of 5" in err
    cases, _ = _junit(tmp_path / "j.xml")
    assert cases == {"lost=0": False}


def test_demo_exec_shows_the_program_measured_from_the_wire_beside_the_probes(lab, tmp_path):
    import json
    import threading

    (tmp_path / "writer.py").write_text(WRITER)
    record = tmp_path / "run.jsonl"
    # the failover is asked for once the program is seen writing (a loaded machine can take seconds to
    # start it): a failover before its first write would show no gap to report
    argv = [sys.executable, "-m", "fiswatch", "demo", "--dir", lab.dir, "--json", "--duration", "40",
            "--aurora-after", "1000", "--rds-after", "1000", "--no-verify", "--record", str(record),
            "--exec", "%s %s 60" % (sys.executable, tmp_path / "writer.py")]
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=str(tmp_path))
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()

    def said(text):
        return any(text in line and '"exec python' in line for line in list(lines))

    try:
        wait_for(lambda: said("on aurora: writing"), timeout=120, message="the program writing on aurora")
        failover = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "failover", "aurora", "--dir", lab.dir],
                                  capture_output=True, text=True, env=env, timeout=120)
        assert failover.returncode == 0, failover.stderr
        wait_for(lambda: said("no acknowledged write for"), timeout=60, message="the program's gap on the wire")
        # --duration 40 is the bound; the point is shown once the gap is: SIGTERM ends the demo like q
        # (record and summary kept, exit 0) instead of idling to the end (46 s -> ~20 s)
        proc.send_signal(signal.SIGTERM)
        stderr = proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    assert proc.returncode == 0, stderr
    events = [json.loads(line) for line in lines if line.startswith("{")]
    messages = [e.get("message", "") for e in events if e["event"] in ("info", "warning")]
    assert any(m.startswith("exec python") and "on aurora: writing" in m for m in messages), messages
    assert any(m.startswith("exec python") and "no acknowledged write for" in m for m in messages), messages
    wire = [json.loads(line) for line in record.read_text().splitlines() if '"wire_client"' in line]
    assert len(wire) == 1 and wire[0]["probe"] == "aurora/program" and wire[0]["acked"] > 10
    report = subprocess.run([sys.executable, "-m", "fiswatch", "report", str(record)], capture_output=True,
                            text=True, env=env, timeout=60)
    assert report.returncode == 0, report.stderr
    assert "aurora/program" in report.stdout


CONNECTOR = textwrap.dedent("""\
    import os, sys, time
    import mysql.connector
    conn = mysql.connector.connect(host=os.environ["FISWATCH_LAB_AURORA_HOST"], port=int(os.environ["FISWATCH_LAB_PORT"]),
                                   user=os.environ["FISWATCH_LAB_USER"], password=os.environ["FISWATCH_LAB_PASSWORD"],
                                   database=os.environ["FISWATCH_LAB_DATABASE"], autocommit=True, use_pure=True,
                                   ssl_disabled=True)  # and no read timeout: a fenced writer holds it for good
    cur = conn.cursor()
    cur.execute("CREATE TABLE IF NOT EXISTS gate_connector (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
    while True:
        cur.execute("INSERT INTO gate_connector (v) VALUES (1)")
        time.sleep(0.05)
""")


def test_mysql_connector_without_a_read_timeout_is_measured_as_never_recovered(lab, tmp_path):
    (tmp_path / "connector.py").write_text(CONNECTOR)
    # the quick profile: a client that never recovers shows it whatever the failover's timing
    result = _gate(lab.dir, tmp_path, "--failover", "aurora@6", "--profile", "quick", "--expect", "recovered",
                   "--expect", "lost=0", "--junit", str(tmp_path / "j.xml"), "--", "timeout", "-s", "KILL", "16",
                   sys.executable, "connector.py")
    assert result.returncode == 3, result.stderr
    assert "failover 1 (aurora at t+" in result.stderr and ": hung, no write for" in result.stderr
    failed = [line for line in result.stderr.splitlines() if "expectation failed" in line]
    assert len(failed) == 1 and "recovered" in failed[0] and "hung" in failed[0]
    cases, _ = _junit(tmp_path / "j.xml")
    assert cases == {"failover aurora@6": True, "recovered": False, "lost=0": True}
