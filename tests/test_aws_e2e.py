"""End to end: the real CLI against moto as a server on loopback and the real MariaDB.

A moto secret points at the test MariaDB (host is an IP literal, so nothing is resolved by
the system resolver); `fiswatch watch --secret ... --json --cloudwatch` must write rows and
publish the workshop's metric, which moto then lists. FIS create/start/status run through
the real CLI too.
"""
import json
import os
import subprocess
import sys

import pytest

from _aws_fixture import (CLUSTER_ID, MYSQL_ID, REGION, make_cluster, make_mysql, make_role, moto_server,
                          fis_moto_server, put_secret, session)
from conftest import ROOT, wait_for

from fiswatch import events as E

pytestmark = pytest.mark.slow  # subprocesses and moto servers: minutes, not seconds


def _env(url):
    env = dict(os.environ)
    env.update(AWS_ENDPOINT_URL=url, AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", PYTHONPATH=ROOT,
               FISWATCH_AWS_READ_TIMEOUT="20")  # moto is slow on a busy machine (3 s was missed under load)
    env.pop("AWS_PROFILE", None)
    return env


def _fiswatch(args, url, timeout=120):
    return subprocess.run([sys.executable, "-m", "fiswatch"] + args, cwd=ROOT, env=_env(url),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=timeout)


def _count(mariadb, table):
    return mariadb.query("SELECT COUNT(*) FROM `%s`" % table)[0][0]


def test_watch_from_secret_writes_rows_and_publishes_metrics(mariadb):
    table = "aws_e2e"
    mariadb.query("CREATE TABLE IF NOT EXISTS `%s` (id INT AUTO_INCREMENT PRIMARY KEY, value INT)" % table)
    before = _count(mariadb, table)
    with moto_server() as url:
        sess = session()
        make_cluster(sess)
        put_secret(sess, "E2eAuroraSecret", username=mariadb.user, password=mariadb.password,
                   host=mariadb.host, port=mariadb.port, dbname=mariadb.database, engine="mysql",
                   dbClusterIdentifier=CLUSTER_ID)
        result = _fiswatch(["watch", "--secret", "aurora=E2eAuroraSecret", "--json", "--duration", "4",
                            "--cloudwatch", "--backend", "pymysql", "--table", table], url)
        assert result.returncode == 0, result.stderr
        events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        summary = next(e for e in events if e["event"] == E.SUMMARY)
        rounds = summary["probes"]["aurora/pymysql"]["ops"]
        assert rounds > 0, result.stdout[-2000:]
        assert _count(mariadb, table) >= before + rounds
        assert mariadb.password not in result.stdout + result.stderr
        start = next(e for e in events if e["event"] == E.RUN_START)
        assert start["endpoints"][0]["source"] == "secret:E2eAuroraSecret"
        cw = sess.client("cloudwatch")

        def listed():
            names = {m["MetricName"] for m in cw.list_metrics(Namespace="fisworkshop")["Metrics"]}
            return names if "aurora_interactions_per_second" in names else None

        names = wait_for(listed, timeout=30, message="metrics in moto")
        assert {"interactions", "errors", "stalled"} <= names
        warnings = [e for e in events if e["event"] == E.WARNING]
        assert warnings == []
        topology = [e for e in events if e["event"] == E.TOPOLOGY]
        assert topology and topology[0]["endpoint"] == "aurora"
        assert topology[0]["lines"][0] == "cluster %s available" % CLUSTER_ID


def test_watch_with_missing_secret_says_one_line(mariadb):
    with moto_server() as url:
        result = _fiswatch(["watch", "--secret", "aurora=NoSuchSecret", "--json", "--duration", "2"], url)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "NoSuchSecret" in lines[0] and "not found" in lines[0]
    assert "Traceback" not in result.stderr


def test_watch_without_credentials_says_one_line(tmp_path):
    env = _env("http://127.0.0.1:9")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(key, None)
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    result = subprocess.run([sys.executable, "-m", "fiswatch", "watch", "--workshop", "--json", "--duration", "1"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=60)
    assert result.returncode == 1
    assert "no AWS credentials" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_experiment_commands_against_moto_server():
    with fis_moto_server() as url:
        sess = session()
        make_cluster(sess)
        make_mysql(sess)
        make_role(sess)
        created = _fiswatch(["experiment", "create", "aurora", "--cluster-id", CLUSTER_ID], url)
        assert created.returncode == 0, created.stderr
        assert created.stdout.startswith("created FIS template")
        again = _fiswatch(["experiment", "create", "aurora", "--cluster-id", CLUSTER_ID], url)
        assert again.stdout.startswith("reused existing FIS template"), again.stdout + again.stderr
        rds = _fiswatch(["experiment", "create", "rds", "--instance-id", MYSQL_ID], url)
        assert rds.returncode == 0, rds.stderr
        fis = sess.client("fis")
        templates = fis.list_experiment_templates()["experimentTemplates"]
        assert sorted(t["tags"]["Name"] for t in templates) == ["FisWorkshopAurora1", "FisWorkshopRds1"]

        started = _fiswatch(["experiment", "start", "aurora", "--wait", "--timeout", "60"], url)
        assert started.returncode == 0, started.stderr
        experiment_id = started.stdout.split()[2]
        states = [line.split()[1] for line in started.stdout.splitlines()[1:]]
        assert states[-1] == "completed" and "running" in states
        tags = fis.get_experiment(id=experiment_id)["experiment"]["tags"]
        assert tags == {"Name": "FisWorkshopAurora1Run1"}
        second = _fiswatch(["experiment", "start", "aurora"], url)
        second_id = second.stdout.split()[2]
        assert fis.get_experiment(id=second_id)["experiment"]["tags"] == {"Name": "FisWorkshopAurora1Run2"}

        status = _fiswatch(["experiment", "status", experiment_id], url)
        assert status.returncode == 0 and status.stdout.split()[1] == "completed"
        missing = _fiswatch(["experiment", "status", "EXPnothere"], url)
        assert missing.returncode == 1
        assert "EXPnothere" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_experiment_start_without_template_says_what_to_do():
    with moto_server() as url:
        result = _fiswatch(["experiment", "start", "rds"], url)
    if result.returncode == 1 and "FisWorkshopRds1" in result.stderr:
        assert "fiswatch experiment create rds" in result.stderr
    else:  # a moto without FIS answers 404: still one line, exit 1
        assert result.returncode == 1, result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
