"""The lab under real faults: a writer's mariadbd killed behind its back, a lab file of the wrong
shape, the daemon SIGKILLed with its servers left running, a full disk at `lab down`.

One lab of its own (not the session's: these tests kill its parts), with a short writer grace.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, wait_for

from _lab_fixture import lab_processes, pick_lab_addresses, private_lab, port_free
from fiswatch import events as E

pytestmark = pytest.mark.lab

GRACE = 3.0


def _cli(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "fiswatch"] + list(args), capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), timeout=timeout)


def _server_pid(lab_dir, name):
    from fiswatch.lab import layout as L
    from fiswatch.lab.orphans import lab_server_pid

    return lab_server_pid(lab_dir, L.spec_by_name(name))


@pytest.fixture(scope="module")
def own_lab(tmp_path_factory):
    with private_lab(tmp_path_factory, "faultlab", writer_grace=GRACE) as info:
        yield info


def _roles(lab_dir):
    from fiswatch.lab.api import lab_status

    info = lab_status(lab_dir)
    return {i.name: (i.role, i.running) for i in info.instances}


def test_a_writer_killed_behind_the_labs_back_is_failed_over_after_the_grace(own_lab):
    """kill -9 of the Aurora writer's mariadbd (not by the lab): the lab fails over by itself, as Aurora does."""
    lab_dir = own_lab.dir
    writer = own_lab.instance("aurora", "writer").name
    reader = own_lab.instance("aurora", "reader").name
    pid = _server_pid(lab_dir, writer)
    assert pid
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _roles(lab_dir)[reader] == ("writer", True), timeout=120, message="automatic promotion")
    assert time.monotonic() - killed_at >= GRACE  # not before the grace: it might have come back
    wait_for(lambda: _roles(lab_dir)[writer] == ("reader", True), timeout=120, message="the dead one rejoined")
    with open(os.path.join(lab_dir, "lab.log")) as fh:
        log = fh.read()
    assert "died outside the lab's control" in log and "automatic failover of aurora" in log
    assert "is dead (its mariadbd is not running)" in log and "rolled back" not in log
    from fiswatch.lab.api import lab_status
    from fiswatch.lab.cli import describe_failover

    wait_for(lambda: (lab_status(lab_dir).failover_status() or {}).get("state") == "completed", timeout=120,
             message="the automatic failover completed")
    last = lab_status(lab_dir).failover_status()
    assert last["trigger"].startswith("automatic: %s dead for" % writer)
    assert "completed" in describe_failover(last)


def test_failover_of_a_dead_primary_promotes_at_once(own_lab):
    """`lab failover rds` while the primary's mariadbd is dead: promoted without catch-up, never rolled back."""
    from fiswatch.lab.api import failover, lab_status

    lab_dir = own_lab.dir
    primary = lab_status(lab_dir).instance("rds", "primary").name
    standby = lab_status(lab_dir).instance("rds", "standby").name
    os.kill(_server_pid(lab_dir, primary), signal.SIGKILL)
    wait_for(lambda: not _roles(lab_dir)[primary][1], timeout=30, message="the daemon sees it dead")
    events = []
    failover(lab_dir, "rds", emit=events.append, profile="quick")
    steps = [(e.get("step"), e.get("detail")) for e in events]
    assert [s for s, _ in steps] == ["start", "blackhole", "promote", "dns_flip", "rejoin", "done"], steps
    assert "is dead (its mariadbd is not running)" in steps[1][1]
    assert "no catch-up" in steps[2][1] and "restarted after the death" in steps[4][1]
    assert _roles(lab_dir)[standby] == ("primary", True) and _roles(lab_dir)[primary] == ("standby", True)


def test_rejoin_says_the_clients_were_not_told(own_lab):
    import pymysql

    from fiswatch.lab.api import failover, lab_status

    info = lab_status(own_lab.dir)
    writer = info.instance("aurora", "writer")
    # a client session open on the writer, through its proxy, by address (no DNS needed)
    conn = pymysql.connect(host=writer.address, port=writer.port, user=info.endpoint("aurora").user,
                           password=info.endpoint("aurora").password.reveal(), database="testdb",
                           connect_timeout=10, read_timeout=60)
    try:
        events = []
        failover(own_lab.dir, "aurora", emit=events.append, profile="quick")
    finally:
        conn.close()
    rejoin = [e.get("detail") for e in events if e.get("step") == "rejoin"][0]
    assert "the lab ended its 1 server-side client session" in rejoin
    assert "the clients were not told: their connections stay fenced" in rejoin
    assert "closed as by its restart" not in rejoin


def test_a_credentials_file_of_the_wrong_shape_is_one_line_in_status_and_watch(own_lab, tmp_path):
    path = own_lab.credentials_file
    with open(path, "rb") as fh:
        original = fh.read()
    try:
        for bad in (b"{}", b'{"aurora": 5}', b"\x00\xff" * 100):
            with open(path, "wb") as fh:
                fh.write(bad)
            for argv in (["lab", "status", "--dir", own_lab.dir], ["watch", "--lab", own_lab.dir,
                                                                    "--plain", "--duration", "1"]):
                result = _cli(*argv)
                assert result.returncode in (1, 2), (argv, result.stderr)
                assert "Traceback" not in result.stderr and "KeyError" not in result.stderr, result.stderr
                assert "lab file %s: " % path in result.stderr and "restart the lab" in result.stderr
    finally:
        with open(path, "wb") as fh:
            fh.write(original)
    assert _cli("lab", "status", "--dir", own_lab.dir).returncode == 0


def test_a_killed_daemon_leaves_orphans_that_status_names_and_down_ends(own_lab):
    """SIGKILL the daemon: its four mariadbd keep running. status/failover name them and the cure; down ends them."""
    import threading

    from fiswatch.lab.liveness import LabLiveness

    lab_dir = own_lab.dir
    pids = {name: _server_pid(lab_dir, name) for name in _roles(lab_dir)}
    assert all(pids.values())
    events, stop = [], threading.Event()
    liveness = LabLiveness(lab_dir, period=0.2)
    liveness.start(events.append, stop)  # what the demo's and `watch --lab`'s dashboard run
    try:
        os.kill(own_lab.pid, signal.SIGKILL)
        wait_for(lambda: own_lab.pid not in lab_processes(lab_dir), timeout=30, message="daemon gone")
        wait_for(lambda: events, timeout=30, message="the dashboard told")
    finally:
        stop.set()
    assert events[0].event == E.LAB_DAEMON and events[0].get("state") == "gone" and events[0].get("orphans") == 4
    assert events[0].get("message").startswith("lab daemon gone: its DNS server")
    assert liveness.down() == "lab daemon gone" and "this is not a failover" in liveness.status_lines()[0]
    assert "4 of its mariadbd still run: `fiswatch lab down --dir %s` ends them" % lab_dir in events[0].get("message")
    for argv in (["lab", "status", "--dir", lab_dir], ["lab", "failover", "aurora", "--dir", lab_dir]):
        result = _cli(*argv)
        assert result.returncode == 1, result
        line = result.stderr.strip()
        assert line.count("\n") == 0 and "no lab runs" not in line
        assert "the lab daemon in %s is gone (killed?) but 4 of its mariadbd still run" % lab_dir in line
        assert "`fiswatch lab down --dir %s` ends them" % lab_dir in line
        for pid in pids.values():
            assert "pid %d" % pid in line
    result = _cli("lab", "down", "--dir", lab_dir)
    assert result.returncode == 0, result.stderr
    assert "ending 4 mariadbd left by a lab daemon that died" in result.stderr
    wait_for(lambda: not lab_processes(lab_dir), timeout=30, message="no process of the lab left")
    layout_ports = [(own_lab.nameserver[0].rsplit(".", 1)[0] + ".%d" % (100 + n), 3306 + n) for n in range(1, 5)]
    assert all(port_free(h, p) for h, p in layout_ports)


def test_up_takes_orphans_down_first(tmp_path):
    """SIGKILLed daemon, then `lab up` on the same dir: it says it ends the orphans, then starts."""
    lab_dir = str(tmp_path / "lab")
    base, port, dns_port = pick_lab_addresses()
    up = ["lab", "up", "--dir", lab_dir, "--base", base, "--port", str(port), "--dns-port", str(dns_port)]
    try:
        assert _cli(*up).returncode == 0
        from fiswatch.lab.api import lab_status

        daemon = lab_status(lab_dir).pid
        os.kill(daemon, signal.SIGKILL)
        wait_for(lambda: daemon not in lab_processes(lab_dir), timeout=30, message="daemon gone")
        result = _cli(*up)
        assert result.returncode == 0, result.stderr
        assert "ending 4 mariadbd left by a lab daemon that died" in result.stderr
        assert "is taken" not in result.stderr
        assert lab_status(lab_dir).pid != daemon
    finally:
        _cli("lab", "down", "--dir", lab_dir)
        shutil.rmtree(lab_dir, ignore_errors=True)

