"""Bad input from the command line: every numeric option, backend option, endpoint URL and table.

Each case is one line on stderr and exit 2, before anything starts (no probe, no lab, no AWS call).
"""
import os
import socket

import pytest

from fiswatch.cli import run

EP = "db=mysql://u@127.0.0.1:%d/x"


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _usage(argv, capsys):
    try:
        code = run(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()], captured.out


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch):
    monkeypatch.delenv("MYSQL_PWD", raising=False)
    monkeypatch.setenv("FISWATCH_PASSWORD_DB", "x")
    # if a bad value were accepted, no AWS call may leave the machine: a closed loopback port
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:%d" % _closed_port())


WATCH = ["watch", "--plain", "--backend", "pymysql"]
# (argv without the endpoint, the fragment the one line must hold)
NUMERIC = [
    (["--stall-after", "nan"], "argument --stall-after: 'nan' is not a number of seconds"),
    (["--stall-after", "inf"], "argument --stall-after: 'inf' is not a number of seconds"),
    (["--stall-after", "0"], "argument --stall-after: 0 is too small"),
    (["--stall-after", "0.01"], "ordinary calls would show as STALLED"),
    (["--interval", "nan"], "argument --interval: 'nan' is not a number of seconds"),
    (["--interval", "inf"], "argument --interval: 'inf' is not a number of seconds"),
    (["--interval", "1e9"], "argument --interval: 1e9 is too large"),
    (["--duration", "nan"], "argument --duration: 'nan' is not a number of seconds"),
    (["--duration", "inf"], "argument --duration: 'inf' is not a number of seconds"),
    (["--duration=-inf"], "argument --duration: '-inf' is not a number of seconds"),
    (["--duration", "0"], "leave --duration out to run until q"),
    (["--duration", "1e300"], "argument --duration: 1e300 is too large"),
]


@pytest.mark.parametrize("extra, fragment", NUMERIC)
def test_watch_numeric_options(extra, fragment):
    # a process with a deadline: a value taken as "run forever" must not hang the suite
    from test_cli import fiswatch

    out = fiswatch(*(WATCH + ["--duration", "1", "--endpoint", EP % _closed_port()] + extra),
                   env={"FISWATCH_PASSWORD_DB": "x"}, timeout=30)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1, lines
    assert fragment in lines[0]


BACKEND = [
    ("pymysql:read_timeout=nan", "read_timeout=nan"),
    ("pymysql:read_timeout=inf", "read_timeout=inf"),
    ("pymysql:read_timeout=0", "write read_timeout=none to wait forever"),
    ("pymysql:connect_timeout=nan", "connect_timeout=nan"),
    ("pymysql:write_timeout=1e9", "too large"),
    ("mysql-connector:read_timeout=0", "write read_timeout=none to wait forever"),
    ("mysql-connector:read_timeout=nan", "read_timeout=nan"),
    ("mysql-connector:write_timeout=inf", "write_timeout=inf"),
    ("mysql-connector:connection_timeout=-inf", "connection_timeout=-inf"),
]


@pytest.mark.parametrize("backend, fragment", BACKEND)
def test_backend_timeout_options(backend, fragment, capsys):
    # --duration bounds the run if the value were accepted (as on the old code)
    code, lines, _ = _usage(["watch", "--plain", "--duration", "1", "--backend", backend,
                             "--endpoint", EP % _closed_port()], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert fragment in lines[0] and "backend " + backend.split(":")[0] in lines[0]


def test_backend_none_still_means_no_timeout():
    from fiswatch.backends.registry import make_backend, parse_backend_spec

    backend = make_backend(parse_backend_spec("mysql-connector:read_timeout=none,write_timeout=off"))
    assert backend.settings["read_timeout"] is None and backend.settings["write_timeout"] is None
    assert make_backend(parse_backend_spec("pymysql:read_timeout=0.5")).settings["read_timeout"] == 0.5


@pytest.mark.parametrize("argv, fragment", [
    (["verify", "nofile.jsonl", "--timeout", "nan"], "argument --timeout: 'nan' is not a number of seconds"),
    (["verify", "nofile.jsonl", "--timeout", "inf"], "argument --timeout: 'inf' is not a number of seconds"),
    (["verify", "nofile.jsonl", "--timeout", "0"], "argument --timeout: 0 is too small"),
    (["experiment", "start", "aurora", "--wait", "--timeout", "nan"], "argument --timeout: 'nan' is not"),
    (["experiment", "start", "aurora", "--wait", "--timeout", "inf"], "argument --timeout: 'inf' is not"),
    (["experiment", "start", "aurora", "--wait", "--timeout", "-5"], "argument --timeout: -5 is too small"),
    (["experiment", "start", "aurora", "--timeout", "60"], "--timeout only applies with --wait"),
    (["demo", "--aurora-after", "nan"], "argument --aurora-after: 'nan' is not a number of seconds"),
    (["demo", "--rds-after", "inf"], "argument --rds-after: 'inf' is not a number of seconds"),
    (["demo", "--dns-port", "0"], "argument --dns-port: port 0 is not a usable port"),
])
def test_other_numeric_options(argv, fragment, capsys):
    code, lines, out = _usage(argv, capsys)
    assert code == 2 and len(lines) == 1, lines
    assert fragment in lines[0]
    assert "started experiment" not in out


@pytest.mark.parametrize("endpoints, fragment", [
    (["db=mysql://u@127.0.0.1:0/x"], "endpoint db: port 0 is not a usable port"),
    (["db=mysql://u@127.0.0.1/x?password=hunter2"], "remove the password from the URL"),
    (["db=mysql://u@127.0.0.1/x?ssl=1&PWD=hunter2"], "remove the password from the URL"),
    (["db=mysql://u@127.0.0.1/x?ssl=1"], "nothing may follow the database"),
    (["db=mysql://u@127.0.0.1/x#frag"], "nothing may follow the database"),
    (["a=mysql://u@127.0.0.1/x", "A=mysql://u@127.0.0.2/x"], "would share the password variable FISWATCH_PASSWORD_A"),
    (["db-1=mysql://u@127.0.0.1/x", "db_1=mysql://u@127.0.0.2/x"], "FISWATCH_PASSWORD_DB_1"),
])
def test_endpoint_urls(endpoints, fragment):
    from test_cli import fiswatch

    argv = ["watch", "--plain", "--duration", "1"]
    for text in endpoints:
        argv += ["--endpoint", text]
    out = fiswatch(*argv, env={"FISWATCH_PASSWORD_DB": "x"}, timeout=30)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1, lines
    assert fragment in lines[0]
    assert "hunter2" not in out.stderr + out.stdout


@pytest.mark.parametrize("command", ["watch", "create-db"])
def test_table_is_checked_the_same_way_everywhere(command, capsys):
    code, lines, _ = _usage([command, "--table", "my-table", "--endpoint", EP % _closed_port()], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "argument --table: table name 'my-table' is not a plain identifier" in lines[0]


@pytest.mark.slow
def test_create_db_uses_an_existing_table_without_create_privilege(mariadb):
    """A user allowed to read and write the table but not to CREATE: no 'CREATE command denied'."""
    from conftest import TEST_DB
    from test_cli import fiswatch

    user, password = "fiswatch_nc_%d" % os.getpid(), "nocreate-pw"  # per process: suites run side by side
    mariadb.query("CREATE TABLE IF NOT EXISTS nocreate_test (id INT AUTO_INCREMENT PRIMARY KEY, value INT)")
    for host in ("127.0.0.1", "localhost"):
        mariadb.query("CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s'" % (user, host, password))
        mariadb.query("GRANT SELECT, INSERT ON %s.* TO '%s'@'%s'" % (TEST_DB, user, host))
    try:
        url = "db=mysql://%s@127.0.0.1:%d/%s" % (user, mariadb.port, TEST_DB)
        out = fiswatch("create-db", "--table", "nocreate_test", "--endpoint", url,
                       env={"FISWATCH_PASSWORD_DB": password})
        assert out.returncode == 0, out.stderr
        assert out.stderr == "" and out.stdout.split() == ["DB", "127.0.0.1"]
        # a missing table is still created, and without the privilege the error says so
        mariadb.query("DROP TABLE IF EXISTS nocreate_missing")
        out = fiswatch("create-db", "--table", "nocreate_missing", "--endpoint", url,
                       env={"FISWATCH_PASSWORD_DB": password})
        assert out.returncode == 1 and "1142" in out.stderr and "Traceback" not in out.stderr
    finally:
        for host in ("127.0.0.1", "localhost"):
            mariadb.query("DROP USER IF EXISTS '%s'@'%s'" % (user, host))
        mariadb.query("DROP TABLE IF EXISTS nocreate_test")


@pytest.mark.slow
def test_create_db_creates_a_missing_table(mariadb):
    from test_cli import fiswatch

    mariadb.query("DROP TABLE IF EXISTS createdb_missing")
    url = "db=mysql://%s@127.0.0.1:%d/%s" % (mariadb.user, mariadb.port, mariadb.database)
    for _ in range(2):  # the second run finds it
        out = fiswatch("create-db", "--table", "createdb_missing", "--endpoint", url,
                       env={"FISWATCH_PASSWORD_DB": mariadb.password})
        assert out.returncode == 0, out.stderr
    assert mariadb.query("SHOW TABLES LIKE 'createdb_missing'")
    mariadb.query("DROP TABLE createdb_missing")


def test_environment_is_untouched():
    assert "AWS_ENDPOINT_URL" not in os.environ or os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1")
