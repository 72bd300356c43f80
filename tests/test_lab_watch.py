"""The workshop's outcome on the lab, through `fiswatch watch --lab --json`.

An Aurora failover in the lab: the mysql-connector probe with the workshop's defaults
goes STALLED and stays so; the PyMySQL probe errors, reconnects to the new writer
(a new address) and writes again; no acknowledged write is lost.
"""
import json
import os
import subprocess
import sys
import threading

import pytest

from conftest import ROOT, wait_for

from fiswatch import events as E

pytestmark = pytest.mark.lab

MC, PY = "aurora/mysql-connector", "aurora/pymysql"


class Lines:
    """Collect a subprocess's JSON lines in a thread, so the test can poll them."""

    def __init__(self, proc):
        self.items = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc):
        for line in proc.stdout:
            self.items.append(json.loads(line))

    def of(self, event, **match):
        return [x for x in list(self.items) if x["event"] == event
                and all(x.get(k) == v for k, v in match.items())]


def test_watch_lab_json_stalled_vs_recovered(lab):
    from fiswatch.lab.api import failover, lab_status

    before = lab_status(lab.dir)
    old = before.instance("aurora", "writer")
    new = before.instance("aurora", "reader")
    env = dict(os.environ, PYTHONPATH=ROOT)
    cmd = [sys.executable, "-m", "fiswatch", "watch", "--lab", lab.dir, "--json", "--duration", "60",
           "--stall-after", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    lines = Lines(proc)
    try:
        wait_for(lambda: lines.of("state", probe=MC, state="OK") and lines.of("state", probe=PY, state="OK"), 60,
                 message="both aurora probes writing")
        steps = []
        failover(lab.dir, "aurora", emit=steps.append, profile="quick")
        assert [s.get("step") for s in steps][0] == "start" and steps[-1].get("step") == "done"
        # PyMySQL: a read-timeout error, then a connection to the new writer's address, then writes
        wait_for(lambda: lines.of("connect", probe=PY, address=new.address), 60,
                 message="pymysql reconnected to the new writer %s" % new.address)
        wait_for(lambda: any(t["probes"].get(PY, {}).get("ops", 0) > 0 and t["ts"] > steps[-1].ts
                             for t in lines.of("tick")), 60, message="pymysql writing after the failover")
        assert any(e["code"] == 2013 for e in lines.of("error", probe=PY))
        # DNS: the answer went from the old writer to the new one
        flips = wait_for(lambda: [d for d in lines.of("dns", endpoint="aurora") if d["addresses"] == [new.address]],
                         30, message="the DNS watcher saw the flip")
        assert flips[0]["previous"] in ([old.address], [])
        # mysql-connector with defaults: STALLED, and never anything else afterwards
        wait_for(lambda: lines.of("state", probe=MC, state="STALLED"), 30, message="mysql-connector STALLED")
    finally:
        proc.terminate()  # SIGTERM ends the run like q does: verification and summary still come
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        lines.thread.join(10)
    assert proc.returncode == 0
    assert lines.items[-1]["event"] == E.SUMMARY
    assert lines.items[-1]["probes"][MC]["stalled_now"] is True
    assert lines.items[-1]["probes"][PY]["stalled_now"] is False
    assert lines.of("verify", endpoint="aurora")[0]["lost"] == 0
    mc_states = [x["state"] for x in lines.of("state", probe=MC)]
    assert mc_states[-1] == "STALLED"
    assert not lines.of("error", probe=MC)


def test_watch_lab_summary_and_no_lost_writes(lab):
    """A short run with --duration ends on its own with verification and the summary."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-m", "fiswatch", "watch", "--lab", lab.dir, "--json", "--duration", "4",
                          "--backend", "pymysql"], capture_output=True, text=True, env=env, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    events = [json.loads(l) for l in out.stdout.splitlines()]
    assert events[-1]["event"] == E.SUMMARY
    verify = {e["endpoint"]: e for e in events if e["event"] == E.VERIFY}
    assert verify["aurora"]["ok"] and verify["aurora"]["acknowledged"] > 0 and verify["aurora"]["lost"] == 0
    assert verify["rds"]["ok"] and verify["rds"]["acknowledged"] > 0
    start = events[0]
    assert start["event"] == E.RUN_START
    assert {e["name"] for e in start["endpoints"]} == {"aurora", "rds"}
    assert "password" not in json.dumps(start).lower()
