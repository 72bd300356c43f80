"""Zero-downtime patching where users see it (issue 22 item 5): the demo's key z, `lab exec --patch aurora@S`,
the report's table naming the outage a patch, and the bad input around it. Real labs, real clients."""
import json
import os
import subprocess
import sys

import pytest

from _demo_key import press_twice
from conftest import ROOT

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
