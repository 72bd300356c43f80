"""The command line as a user meets it: help, bad input, create-db, probe errors in --json."""
import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import ROOT

from fiswatch import events as E

PW = "FISWATCH_PASSWORD_DB"


def fiswatch(*args, env=None, timeout=60):
    full_env = dict(os.environ, PYTHONPATH=ROOT)
    full_env.pop("MYSQL_PWD", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "fiswatch"] + list(args), capture_output=True, text=True,
                          env=full_env, timeout=timeout, stdin=subprocess.DEVNULL)


def test_help_lists_commands():
    out = fiswatch("--help")
    assert out.returncode == 0
    for word in ("watch", "demo", "create-db", "backends", "lab", "report", "verify", "experiment"):
        assert word in out.stdout
    watch = fiswatch("watch", "--help")
    assert "--stall-after" in watch.stdout and "FISWATCH_PASSWORD_<NAME>" in watch.stdout


def test_backends_lists_versions_and_the_unset_read_timeout():
    out = fiswatch("backends")
    assert out.returncode == 0
    assert "mysql-connector-python" in out.stdout and "PyMySQL" in out.stdout
    assert "read_timeout=none" in out.stdout


@pytest.mark.parametrize("args, fragment", [
    (["watch", "--endpoint", "db=mysql://u:secretpw@127.0.0.1/x"], "remove the password"),
    (["watch", "--endpoint", "db=mysql://u@127.0.0.1/x", "--backend", "nosuch"], "unknown backend 'nosuch'"),
    (["watch", "--endpoint", "db=mysql://u@127.0.0.1/x", "--backend", "pymysql:read_timeout=x"], "number of seconds"),
    (["watch", "--endpoint", "db=mysql://u@127.0.0.1/x", "--backend", "pymysql:nope=1"], "unknown option nope"),
    (["watch", "--endpoint", "db=mysql://u@127.0.0.1/x", "--nameserver", "dns.example"], "--nameserver takes an IP"),
    (["watch", "--endpoint", "notaurl"], "NAME=mysql://"),
    (["watch"], "no endpoint"),
    (["watch", "--endpoint", "db=mysql://u@127.0.0.1/x", "--endpoint", "db=mysql://u@127.0.0.2/x"], "given twice"),
    (["watch", "--interval", "-1"], "too small"),
    (["nosuchcommand"], "invalid choice"),
])
def test_bad_usage_is_one_line_and_exit_2(args, fragment):
    out = fiswatch(*args)
    assert out.returncode == 2, out
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, out.stderr
    assert fragment in lines[0]
    assert "Traceback" not in out.stderr and "secretpw" not in out.stderr + out.stdout


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _errors(stdout):
    events = [json.loads(l) for l in stdout.splitlines()]
    return events, [e for e in events if e["event"] == E.ERROR]


@pytest.mark.slow
def test_probe_errors_are_reported_not_fatal(mariadb):
    """Wrong password, refused port and missing table: each a clear error in its probe, others unaffected."""
    url = "mysql://%s@127.0.0.1:%d/%s"
    out = fiswatch(
        "watch", "--json", "--duration", "3", "--backend", "pymysql", "--backend", "mysql-connector",
        "--endpoint", "good=" + url % (mariadb.user, mariadb.port, mariadb.database),
        "--endpoint", "badpw=" + url % (mariadb.user, mariadb.port, mariadb.database),
        "--endpoint", "refused=" + url % (mariadb.user, _free_port(), mariadb.database),
        "--endpoint", "notable=" + url % (mariadb.user, mariadb.port, mariadb.database), "--table", "test",
        env={"FISWATCH_PASSWORD_GOOD": mariadb.password, "FISWATCH_PASSWORD_BADPW": "wrong-pw-123",
             "FISWATCH_PASSWORD_REFUSED": mariadb.password, "FISWATCH_PASSWORD_NOTABLE": mariadb.password})
    assert out.returncode == 0, out.stderr
    events, errors = _errors(out.stdout)
    kinds = {(e["endpoint"], e["kind"]) for e in errors}
    assert ("badpw", "auth") in kinds
    assert ("refused", "refused") in kinds
    codes = {e["code"] for e in errors if e["endpoint"] == "badpw"}
    assert codes == {1045}
    summary = events[-1]["probes"]
    assert summary["good/pymysql"]["ops"] > 5 and summary["good/mysql-connector"]["ops"] > 5
    assert summary["badpw/pymysql"]["ops"] == 0 and summary["badpw/pymysql"]["last_error"] == "1045 auth"
    assert "wrong-pw-123" not in out.stdout + out.stderr and mariadb.password not in out.stdout + out.stderr


@pytest.mark.slow
def test_missing_table_names_the_table(mariadb):
    mariadb.query("DROP TABLE IF EXISTS nosuchtable")
    out = fiswatch("watch", "--json", "--duration", "4", "--backend", "pymysql", "--table", "nosuchtable",
                   "--endpoint", "db=mysql://%s@127.0.0.1:%d/%s" % (mariadb.user, mariadb.port, mariadb.database),
                   env={PW: mariadb.password})
    _, errors = _errors(out.stdout)
    assert errors and errors[0]["code"] == 1146 and errors[0]["kind"] == "no-table"
    assert "nosuchtable" in errors[0]["message"]


def test_create_db_creates_the_table_and_prints_the_address(mariadb):
    mariadb.query("DROP TABLE IF EXISTS createdb_test")
    out = fiswatch("create-db", "--table", "createdb_test",
                   "--endpoint", "aurora=mysql://%s@127.0.0.1:%d/%s" % (mariadb.user, mariadb.port, mariadb.database),
                   env={"FISWATCH_PASSWORD_AURORA": mariadb.password})
    assert out.returncode == 0, out.stderr
    header, address = out.stdout.splitlines()[:2]
    assert header.strip() == "AURORA" and address.strip() == "127.0.0.1"
    assert mariadb.query("SHOW TABLES LIKE 'createdb_test'")
    mariadb.query("DROP TABLE createdb_test")


@pytest.mark.slow
def test_plain_output_when_stdout_is_not_a_tty(mariadb):
    out = fiswatch("watch", "--duration", "2.5", "--backend", "pymysql",
                   "--endpoint", "aurora=mysql://%s@127.0.0.1:%d/%s" % (mariadb.user, mariadb.port, mariadb.database),
                   env={"FISWATCH_PASSWORD_AURORA": mariadb.password})
    assert out.returncode == 0, out.stderr
    assert "AURORA" in out.stdout and "127.0.0.1" in out.stdout
    assert "(" in out.stdout  # rows as (id, value)
