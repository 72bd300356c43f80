"""A third-party backend installed by entry point shows up and runs like a built-in one."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT

from fiswatch import events as E

PLUGIN = textwrap.dedent('''
    from fiswatch.backends.pymysql_backend import PyMySQLBackend

    class SlowReadBackend(PyMySQLBackend):
        """PyMySQL with a 3 s read timeout, shipped by another package."""
        name = "pymysql-slowread"
        defaults = {"connect_timeout": "1", "read_timeout": "3", "write_timeout": "3"}
''')


def make_plugin(tmp_path):
    (tmp_path / "fiswatch_slowread.py").write_text(PLUGIN)
    dist = tmp_path / "fiswatch_slowread-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fiswatch-slowread\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[fiswatch.backends]\npymysql-slowread = fiswatch_slowread:SlowReadBackend\n")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))


@pytest.mark.slow
def test_entry_point_backend_is_listed_and_runs(tmp_path, mariadb):
    env = make_plugin(tmp_path)
    out = subprocess.run([sys.executable, "-m", "fiswatch", "backends"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0
    assert "pymysql-slowread" in out.stdout and "read_timeout=3" in out.stdout
    env["FISWATCH_PASSWORD_DB"] = mariadb.password
    out = subprocess.run(
        [sys.executable, "-m", "fiswatch", "watch", "--json", "--duration", "2", "--backend", "pymysql-slowread",
         "--endpoint", "db=mysql://%s@127.0.0.1:%d/%s" % (mariadb.user, mariadb.port, mariadb.database)],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    events = [json.loads(l) for l in out.stdout.splitlines()]
    start = events[0]
    assert start["event"] == E.RUN_START and start["probes"][0]["timeouts"]["read"] == 3.0
    assert events[-1]["probes"]["db/pymysql-slowread"]["ops"] > 3
