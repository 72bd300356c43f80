"""`fiswatch demo --switchover` (three clients side by side through a Blue/Green switchover, docs/lesson.md ch. 10),
`lab exec --switchover` and `lab switchover` on a lab without green."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from _lab_fixture import lab, pick_lab_addresses  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASES = ["SWITCHOVER_INITIATED", "SWITCHOVER_IN_PROGRESS", "promote", "SWITCHOVER_IN_POST_PROCESSING",
          "topology-renamed", "blue-dns", "green-dns-removed", "SWITCHOVER_COMPLETED", "done"]


def test_demo_switchover_shows_each_client_through_it_and_the_report_pairs_the_gaps():
    lab_dir = tempfile.mkdtemp(prefix="fiswatch-bg-demo-")
    record = os.path.join(lab_dir, "demo.jsonl")
    base, _, dns_port = pick_lab_addresses()
    env = dict(os.environ, PYTHONPATH=ROOT, COLUMNS="80", LINES="24", AWS_EC2_METADATA_DISABLED="true")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "fiswatch", "demo", "--dir", lab_dir, "--base", base, "--dns-port", str(dns_port),
             "--switchover", "6", "--plain", "--duration", "30", "--record", record],
            capture_output=True, text=True, env=env, timeout=400, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
        events = [json.loads(line) for line in open(record) if line.strip()]
        steps = [e["step"] for e in events if e.get("event") == "lab" and e.get("target") == "bluegreen"]
        assert steps == PHASES
        start = next(e["ts"] for e in events if e.get("event") == "lab" and e["step"] == "SWITCHOVER_IN_PROGRESS")
        green = "%s.11" % base
        probes = [p["probe"] for p in next(e for e in events if e.get("event") == "run_start")["probes"]]
        assert {"aurora/mysql-connector", "aurora/pymysql"} <= set(probes)
        for probe in probes:
            after = [e for e in events if e.get("event") == "write" and e.get("probe") == probe and e["ts"] > start]
            if probe.startswith("aurora/") and "aws-wrapper" not in probe:
                assert after and after[-1]["address"] == green, probe  # back, on green, under the blue name
            if "aws-wrapper" in probe:
                assert "plugins=bg+failover_v2" in probe
                if not after or after[-1]["address"] != green:  # held: the column must say so, not OK
                    tick = [e for e in events if e.get("event") == "tick"][-1]
                    assert tick["probes"][probe]["state"] == "STALLED", tick["probes"][probe]
        report = subprocess.run([sys.executable, "-m", "fiswatch", "report", record], capture_output=True,
                                text=True, env=env, timeout=120, cwd=ROOT)
        assert "Lab switchover bluegreen: outage" in report.stdout, report.stdout[:2000]
        assert "AURORA switchover:" in report.stdout and "RDS switchover:" in report.stdout
    finally:
        subprocess.run([sys.executable, "-m", "fiswatch", "lab", "down", "--dir", lab_dir], capture_output=True,
                       env=dict(os.environ, PYTHONPATH=ROOT), timeout=180)
        shutil.rmtree(lab_dir, ignore_errors=True)


def test_lab_exec_takes_a_switchover_on_its_schedule():
    import argparse

    from fiswatch.lab.gate import GateUsage, add_gate_options, check_args

    p = argparse.ArgumentParser()
    add_gate_options(p)
    args = p.parse_args(["--switchover", "aurora@12", "--failover", "rds@3"])
    _, schedule = check_args(args)
    assert [(s.kind, s.target, s.at) for s in schedule] == [("failover", "rds", 3.0), ("switchover", "aurora", 12.0)]
    with pytest.raises(GateUsage) as err:
        check_args(p.parse_args(["--switchover", "green@x"]))
    assert str(err.value).startswith("--switchover green@x: say ENDPOINT@SECONDS")


def test_a_lab_without_green_says_so_in_one_line_and_exit_2(lab):  # noqa: F811
    result = subprocess.run([sys.executable, "-m", "fiswatch", "lab", "switchover", "--dir", lab.dir],
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, AWS_EC2_METADATA_DISABLED="true"))
    assert result.returncode == 2
    assert result.stderr == ("fiswatch lab switchover: no green environment in this lab: start it with "
                             "`fiswatch lab up --blue-green`\n")


def test_demo_switchover_at_80x24_shows_the_three_clients_and_the_phase_line():
    """The dashboard itself, in a pty of 80x24: during the switchover one screen shows mysql-connector,
    PyMySQL and the wrapper with `bg` side by side, and the switchover's phase line."""
    import re

    from test_dashboard_pty import PtyTerminal

    from fiswatch.backends.aws_wrapper import AwsWrapperBackend

    # the wrapper's column where it runs (Python >= 3.10); the demo leaves it out, and says so, elsewhere
    names = ["mysql-connector", "pymysql"] + (["aws-wrapper bg"] if AwsWrapperBackend().info().available else [])

    lab_dir = tempfile.mkdtemp(prefix="fiswatch-bg-pty-")
    base, _, dns_port = pick_lab_addresses()
    t = PtyTerminal([sys.executable, "-m", "fiswatch", "demo", "--dir", lab_dir, "--base", base, "--dns-port",
                     str(dns_port), "--switchover", "4", "--duration", "60"], rows=24, cols=80,
                    env={"AWS_EC2_METADATA_DISABLED": "true"})
    during = re.compile(r"^Blue/Green (SWITCHOVER_\w+|promote|topology-renamed|blue-dns|green-dns-removed) "
                        r"\d+\.\ds \(t\+", re.M)

    def switching_with_three_columns():
        t.pump()
        text = t.text
        side_by_side = [line for line in t.lines if all(name in line for name in names)]
        return bool(during.search(text)) and bool(side_by_side)
    try:
        t.wait(switching_with_three_columns, 300, "the phase line and the three columns on one 80x24 screen")
    finally:
        t.close()
        subprocess.run([sys.executable, "-m", "fiswatch", "lab", "down", "--dir", lab_dir], capture_output=True,
                       env=dict(os.environ, PYTHONPATH=ROOT), timeout=180)
        shutil.rmtree(lab_dir, ignore_errors=True)
