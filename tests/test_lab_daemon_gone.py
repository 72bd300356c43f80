"""The lab's daemon SIGKILLed under a running demo / `watch --lab`: the dashboard's columns and a banner say
"lab daemon gone ... not a failover" (not `dns ... timeout`), and so do the record and the end summary.

Real: a lab of its own per test (the daemon dies), the real curses dashboard in a pty read back with pyte.
"""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, wait_for

from _lab_fixture import lab_processes, pick_lab_addresses
from fiswatch import events as E
from test_dashboard_pty import PtyTerminal, assert_restored

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.fixture
def doomed_lab(tmp_path):
    """A lab whose daemon the test kills; its orphaned mariadbd are ended by `lab down` at the end."""
    from fiswatch.lab.api import lab_up

    lab_dir = str(tmp_path / "lab")
    base, port, dns_port = pick_lab_addresses()
    try:
        yield lab_up(lab_dir, base=base, port=port, dns_port=dns_port)
    finally:
        subprocess.run([sys.executable, "-m", "fiswatch", "lab", "down", "--dir", lab_dir], capture_output=True,
                       env=dict(os.environ, PYTHONPATH=ROOT), timeout=240)
        wait_for(lambda: not lab_processes(lab_dir), timeout=60, message="no process of the lab left")
        shutil.rmtree(lab_dir, ignore_errors=True)


@pytest.mark.parametrize("command", ["demo", "watch"])
def test_a_killed_daemon_is_said_in_every_lab_column_the_banner_the_record_and_the_summary(doomed_lab, tmp_path,
                                                                                             command):
    record = str(tmp_path / "run.jsonl")
    if command == "demo":
        argv = ["demo", "--dir", doomed_lab.dir, "--no-failover", "--no-verify", "--backend", "pymysql",
                "--record", record]
    else:
        argv = ["watch", "--lab", doomed_lab.dir, "--no-verify", "--backend", "pymysql", "--record", record]
    t = PtyTerminal([sys.executable, "-m", "fiswatch"] + argv, rows=30, cols=100)
    try:
        t.wait_text("OK", timeout=120)
        os.kill(doomed_lab.pid, signal.SIGKILL)

        def every_column_says_so():
            t.pump()
            headers = [line for line in t.lines if line.startswith("AURORA")]
            return headers and headers[0].count("lab daemon gone") == 2 and "this is not a failover" in t.text
        t.wait(every_column_says_so, 60, "both lab columns (AURORA, RDS) and the banner saying the daemon is gone")
        header = next(line for line in t.lines if line.startswith("AURORA"))
        assert "dns" not in header and "timeout" not in header, header
        assert "4 of its mariadbd still run: fiswatch lab down --dir" in t.text
        t.send(b"q")
        t.wait_exit(timeout=120)
        assert_restored(t)
        assert b"Traceback" not in t.raw
    finally:
        t.close()
    summary = bytes(t.raw).decode("utf-8", "replace")
    assert "Lab daemon gone at t+" in summary and "its proxies and DNS stopped, not a failover" in summary, \
        summary[-3000:]
    with open(record) as fh:
        events = [json.loads(line) for line in fh if line.strip()]
    gone = [e for e in events if e["event"] == E.LAB_DAEMON]
    assert [e["state"] for e in gone] == ["gone"] and gone[0]["orphans"] == 4
    assert "not a failover" in gone[0]["message"]
    report = subprocess.run([sys.executable, "-m", "fiswatch", "report", record], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert report.returncode == 0 and "Lab daemon gone at t+" in report.stdout, report.stdout + report.stderr
