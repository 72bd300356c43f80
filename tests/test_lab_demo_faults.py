"""The demo under faults: `--exec` that `lab exec` cannot start (a non-root user), a second `f` during a
failover, the footer after a failover ended."""
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest
from conftest import ROOT, wait_for

from _lab_fixture import lab_processes, pick_lab_addresses

pytestmark = pytest.mark.lab


class Collect:
    """The demo hooks' view of a run: where events go and whether it stops (a real Event list)."""

    def __init__(self):
        self.events = []
        self.stop_event = threading.Event()
        self.record_path = os.devnull

    def emit(self, event):
        self.events.append(event)

    def messages(self):
        return [e.get("message") for e in self.events if e.event == "info"]


def test_a_second_f_during_a_failover_is_refused_on_screen_and_the_footer_clears(lab):
    from fiswatch.commands.demo import DemoHooks

    hooks = DemoHooks(lab.dir, "quick", [], None)
    run = Collect()
    hooks.start(run)
    actions = hooks.actions

    first = {}
    thread = threading.Thread(target=lambda: first.setdefault("said", actions["f"]()))
    thread.start()
    try:
        wait_for(lambda: any(e.event == "lab" and e.get("step") == "start" for e in run.events), timeout=60,
                 message="the first failover started")
        assert actions["f"]() == "failover aurora already running: key ignored (one at a time per cluster)"
        assert "failover aurora already running: key ignored (one at a time per cluster)" in run.messages()
        thread.join(120)
    finally:
        run.stop_event.set()  # ends the hooks' lab liveness thread
    assert first["said"] == ""  # the action ends with the failover: the footer's `failover aurora...` goes
    assert [e.get("step") for e in run.events if e.event == "lab"].count("start") == 1  # nothing was queued
    assert [e.get("step") for e in run.events if e.event == "lab"][-1] == "done"


def test_an_action_that_ends_says_so_in_the_footer():
    from fiswatch.ui.screen import _start_action

    messages = queue.SimpleQueue()
    _start_action("f", lambda: "", messages)
    _start_action("r", lambda: None, messages)
    assert messages.get(timeout=30) == ""
    with pytest.raises(queue.Empty):
        messages.get(timeout=0.5)


def test_demo_exec_as_a_non_root_user_says_lab_exec_could_not_start_it(tmp_path):
    """uid nobody starts the demo's lab (no DNS on port 53 without privilege), so `lab exec` refuses getent."""
    lab_dir = tempfile.mkdtemp(prefix="fiswatch-nobody-")
    os.chown(lab_dir, 65534, 65534)
    base, _, dns_port = pick_lab_addresses()
    caps = "+dac_read_search"  # the interpreter may live under /root: read it, write nothing of root's
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=" + caps,
            "--ambient-caps=" + caps, sys.executable, "-m", "fiswatch", "demo", "--dir", lab_dir, "--base", base,
            "--dns-port", str(dns_port), "--plain", "--duration", "8", "--no-failover", "--no-verify",
            "--exec", "getent hosts fiswatch-lab.cluster-c0ffee.lab.rds.local"]
    env = dict(os.environ, PYTHONPATH=ROOT, HOME=lab_dir, XDG_STATE_HOME=lab_dir)
    try:
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd="/")
        assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
        assert "ended with exit code 125" not in result.stdout + result.stderr
        want = "fiswatch demo: --exec: `lab exec` could not start getent: the lab's DNS server does not answer on port 53"
        lines = [line for line in result.stderr.splitlines() if line.startswith(want)]
        assert len(lines) == 1, result.stderr[-2000:]
        assert "restart the lab as root" in lines[0]
        assert "Traceback" not in result.stderr
    finally:
        subprocess.run([sys.executable, "-m", "fiswatch", "lab", "down", "--dir", lab_dir], capture_output=True,
                       env=dict(os.environ, PYTHONPATH=ROOT), timeout=180)
        wait_for(lambda: not lab_processes(lab_dir), timeout=60, message="no process of nobody's lab")
        shutil.rmtree(lab_dir, ignore_errors=True)
