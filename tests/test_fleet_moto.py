"""`fiswatch fleet` end to end: three real `watch --cloudwatch` runs publish to moto (server mode,
127.0.0.1) as three hosts; one writes through a fault proxy that is black-holed, so its
mysql-connector probe (no read timeout) stalls for good. `fleet --json`, `--plain`, the curses
screen in a pty (pyte) and `--dashboard` then read the room back through the real CLI.
"""
import json
import subprocess
import sys

import pytest

from _aws_fixture import moto_process, session
from conftest import ROOT, wait_for
from fiswatch import events as E
from fiswatch.lab.proxy import FaultProxy
from test_aws_e2e import _env
from test_dashboard_pty import PtyTerminal

pytestmark = pytest.mark.slow  # subprocesses and moto servers: minutes, not seconds

TABLE = "fleet_test"
HOSTS = ("alice", "bob", "carol")


def _watch(url, mariadb, host, aurora_port, log):
    env = _env(url)
    env.update(FISWATCH_PASSWORD_AURORA=mariadb.password, FISWATCH_PASSWORD_RDS=mariadb.password)
    args = [sys.executable, "-m", "fiswatch", "watch", "--json", "--duration", "240", "--cloudwatch",
            "--stall-after", "2", "--table", TABLE,
            "--endpoint", "aurora=mysql://%s@%s:%d/%s" % (mariadb.user, mariadb.host, aurora_port, mariadb.database),
            "--endpoint", "rds=mysql://%s@%s:%d/%s" % (mariadb.user, mariadb.host, mariadb.port, mariadb.database),
            "--backend", "mysql-connector", "--backend", "pymysql"]
    if host == "carol":
        env["FISWATCH_CLOUDWATCH_HOST"] = host  # the documented environment variable
    else:
        args += ["--cloudwatch-host", host]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _fleet(url, *args, timeout=120):
    env = _env(url)
    env["COLUMNS"] = "80"
    return subprocess.run([sys.executable, "-m", "fiswatch", "fleet", "--minutes", "1"] + list(args), cwd=ROOT,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=timeout)


def _room(url):
    result = _fleet(url, "--json", "--once")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in lines] == [E.FLEET], result.stdout
    return lines[0]


def _status(room, host, probe):
    for row in room["hosts"]:
        if row["host"] == host:
            cell = row["probes"].get(probe)
            return cell["status"] if cell else None
    return None


@pytest.fixture(scope="module")
def room(mariadb, tmp_path_factory):
    """Three hosts writing, published to a moto server; shared by this module's tests."""
    tmp_path = tmp_path_factory.mktemp("fleet")
    mariadb.query("CREATE TABLE IF NOT EXISTS `%s` (id INT AUTO_INCREMENT PRIMARY KEY, value INT)" % TABLE)
    proxy = FaultProxy("127.0.0.1", 0, mariadb.host, mariadb.port, name="fleet-test").start()
    procs = []
    try:
        with moto_process() as url:
            for host in HOSTS:
                port = proxy.address[1] if host == "carol" else mariadb.port
                log = open(str(tmp_path / ("%s.log" % host)), "w")
                procs.append(_watch(url, mariadb, host, port, log))
                log.close()

            def all_writing():
                room = _room(url)
                states = [_status(room, h, p) for h in HOSTS for p in ("aurora/mysql-connector", "rds/pymysql")]
                return room if states == ["writing"] * 6 else None

            wait_for(all_writing, timeout=90, interval=1, message="three hosts writing")
            yield url, proxy, tmp_path
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(30)
        proxy.stop()


def test_fleet_sees_a_stalled_host_among_three(room):
    url, proxy, tmp_path = room
    proxy.set_mode("blackhole")

    def stalled():
        room = _room(url)
        return room if _status(room, "carol", "aurora/mysql-connector") == "stalled" else None

    room = wait_for(stalled, timeout=90, interval=1, message="carol's mysql-connector stalled in the fleet")
    assert [row["host"] for row in room["hosts"]] == list(HOSTS)
    assert room["columns"] == ["aurora/mysql-connector", "aurora/pymysql", "rds/mysql-connector", "rds/pymysql"]
    for host in ("alice", "bob"):
        assert {p: c["status"] for p, c in room["hosts"][HOSTS.index(host)]["probes"].items()} == \
            dict.fromkeys(room["columns"], "writing")
    carol = room["hosts"][2]["probes"]
    assert carol["aurora/mysql-connector"]["never_recovered"] and carol["aurora/mysql-connector"]["for_s"] >= 2
    assert carol["rds/mysql-connector"]["status"] == "writing"  # rds does not go through the proxy
    mc = room["totals"]["aurora/mysql-connector"]
    assert (mc["probes"], mc["stalled"], mc["never_recovered"], mc["writing"]) == (3, 1, 1, 2)
    assert mc["worst_host"] == "carol" and mc["worst_gap_s"] >= 2
    assert room["totals"]["rds/pymysql"]["never_recovered"] == 0
    assert room["backends"]["mysql-connector"]["probes"] == 6
    assert room["api"]["GetMetricData"] >= 1 and room["api"]["ListMetrics"] >= 1

    def pymysql_not_writing():
        return _status(_room(url), "carol", "aurora/pymysql") in ("erroring", "connecting")

    wait_for(pymysql_not_writing, timeout=60, interval=1, message="carol's pymysql erroring (read timeout)")

    plain = _fleet(url, "--plain", "--once")
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), plain.stdout
    carol_line = next(line for line in lines if line.startswith("carol"))
    assert "STALL" in carol_line.split()[1], plain.stdout

    env = _env(url)
    env.pop("COLUMNS", None)
    t = PtyTerminal([sys.executable, "-m", "fiswatch", "fleet", "--minutes", "1", "--refresh", "2"], rows=24,
                    cols=80, env=env)
    try:
        t.wait(lambda: (t.pump(), "carol" in t.text and "STALLED" in t.text)[1], 90, "carol STALLED on screen")
        screen = t.lines
        assert screen[0].startswith(" fiswatch fleet") and "3 hosts" in screen[0]
        carol_row = next(line for line in screen if line.startswith("carol"))
        assert carol_row.split()[1] == "STALLED"
        assert any(line.startswith("ROOM") for line in screen) and "q quit" in screen[-1]
        t.send(b"q")
        assert t.wait_exit(30) == 0
    finally:
        t.close()


def test_dashboard_is_created_then_updated(room):
    url = room[0]
    first = _fleet(url, "--dashboard", "fiswatch-room")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("created CloudWatch dashboard fiswatch-room (aurora/mysql-connector, ")
    assert "#dashboards:name=fiswatch-room" in first.stdout
    again = _fleet(url, "--dashboard", "fiswatch-room")
    assert again.stdout.startswith("updated CloudWatch dashboard fiswatch-room"), again.stdout + again.stderr
    body = json.loads(session().client("cloudwatch").get_dashboard(DashboardName="fiswatch-room")["DashboardBody"])
    text = json.dumps(body)
    for name in ("interactions", "stalled", "errors", "write_gap", "aurora_interactions_per_second",
                 "rds_interactions_per_second", "aurora/pymysql", "rds/mysql-connector"):
        assert name in text, name
    bad = _fleet(url, "--dashboard", "no spaces please")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
