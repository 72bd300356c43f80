"""`lab exec` as a gate, the parts the first round left: the demoted-writer trap (--stale-dns) measured
from the wire, a failover where the program never wrote ("not measured", never a pass)."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest
from conftest import ROOT

from _lab_fixture import lab  # noqa: F401

pytestmark = pytest.mark.lab

POOL = textwrap.dedent("""\
    import os, sys, time
    import sqlalchemy
    from sqlalchemy import text
    url = sqlalchemy.engine.URL.create(
        "mysql+pymysql", username=os.environ["FISWATCH_LAB_USER"], password=os.environ["FISWATCH_LAB_PASSWORD"],
        host=os.environ["FISWATCH_LAB_AURORA_HOST"], port=int(os.environ["FISWATCH_LAB_PORT"]),
        database=os.environ["FISWATCH_LAB_DATABASE"])
    engine = sqlalchemy.create_engine(url, pool_pre_ping=sys.argv[1] == "pre_ping", pool_size=1, max_overflow=0,
                                      connect_args={"connect_timeout": 1, "read_timeout": 1, "write_timeout": 1})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS gate_pool (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)"))
    deadline = time.time() + float(sys.argv[2])
    while time.time() < deadline:
        try:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO gate_pool (v) VALUES (1)"))
        except sqlalchemy.exc.DBAPIError as exc:
            print("error", exc.orig.args[0], flush=True)
            time.sleep(0.05)
        time.sleep(0.05)
""")

WRITER = textwrap.dedent("""\
    import os, sys, time
    import pymysql
    deadline = time.time() + float(sys.argv[1])
    conn = None
    while time.time() < deadline:
        try:
            if conn is None:
                conn = pymysql.connect(host=os.environ["FISWATCH_LAB_AURORA_HOST"], port=int(os.environ["FISWATCH_LAB_PORT"]),
                                       user=os.environ["FISWATCH_LAB_USER"], password=os.environ["FISWATCH_LAB_PASSWORD"],
                                       database=os.environ["FISWATCH_LAB_DATABASE"], autocommit=True, connect_timeout=2,
                                       read_timeout=2, write_timeout=2)
                conn.cursor().execute("CREATE TABLE IF NOT EXISTS gate_more (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)")
            conn.cursor().execute("INSERT INTO gate_more (v) VALUES (1)")
        except Exception:
            conn = None
            time.sleep(0.2)
        time.sleep(0.05)
""")


def _gate(lab_dir, tmp_path, *args, timeout=300):
    env = dict(os.environ, PYTHONPATH=ROOT, AWS_EC2_METADATA_DISABLED="true")
    argv = [sys.executable, "-m", "fiswatch", "lab", "exec", "--dir", lab_dir] + list(args)
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, cwd=str(tmp_path))


def _junit(path):
    suite = ET.parse(str(path)).getroot()
    return {case.get("name"): case.find("failure") is None for case in suite.iter("testcase")}


def test_stale_dns_needs_an_aurora_failover_and_a_good_value_before_anything_starts(tmp_path):
    for args, words in ((["--stale-dns", "8", "--failover", "rds@3"], "--stale-dns goes with an Aurora failover"),
                        (["--stale-dns", "soon", "--failover", "aurora@3"], "'soon' is not a number of seconds"),
                        (["--stale-dns", "900", "--failover", "aurora@3"], "--stale-dns")):
        result = _gate(str(tmp_path / "no-lab"), tmp_path, *(args + ["--", "true"]), timeout=60)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and words in result.stderr, result.stderr
    assert not os.path.exists(str(tmp_path / "no-lab"))


@pytest.mark.parametrize("pool", ["plain", "pre_ping"])
def test_a_sqlalchemy_pool_through_a_stale_dns_failover_is_on_a_demoted_writer(lab, tmp_path, pool):  # noqa: F811
    (tmp_path / "pool.py").write_text(POOL)
    result = _gate(lab.dir, tmp_path, "--failover", "aurora@6", "--stale-dns", "5", "--profile", "quick",
                   "--expect", "recovered", "--expect", "lost=0", "--junit", str(tmp_path / "j.xml"),
                   "--json", str(tmp_path / "v.json"), "--", sys.executable, "pool.py", pool, "20")
    assert result.returncode == 3, result.stderr
    assert ": on a demoted writer, writes refused for" in result.stderr, result.stderr
    failed = [line for line in result.stderr.splitlines() if "expectation failed" in line]
    assert len(failed) == 1 and "recovered" in failed[0] and "on a demoted writer" in failed[0], result.stderr
    doc = json.loads((tmp_path / "v.json").read_text())
    refused = doc["endpoints"]["aurora"]["refused"]
    # the program printed each refusal it met: the wire counted as many
    printed = result.stdout.count("error 1290") + result.stdout.count("error 1836")
    assert refused >= 10 and refused == printed, (refused, printed)
    assert "%d writes refused 1290/1836 by a read-only server" % refused in result.stderr
    assert doc["endpoints"]["aurora"]["errors"] == refused  # each refusal counted once (not twice)
    assert _junit(tmp_path / "j.xml") == {"failover aurora@6": True, "recovered": False, "lost=0": True}


def test_a_failover_where_the_program_never_wrote_is_not_measured_not_a_pass(lab, tmp_path):  # noqa: F811
    (tmp_path / "writer.py").write_text(WRITER)
    result = _gate(lab.dir, tmp_path, "--failover", "rds@2", "--profile", "quick", "--expect", "recovered",
                   "--expect", "aurora:recovered", "--expect", "max-gap=30", "--junit", str(tmp_path / "j.xml"),
                   "--", sys.executable, "writer.py", "14")
    assert result.returncode == 3, result.stderr
    failed = [line for line in result.stderr.splitlines() if "expectation failed" in line]
    assert len(failed) == 3, result.stderr
    for name in ("recovered", "max-gap=30"):
        assert any(line.startswith("fiswatch lab exec: expectation failed: %s: failover rds@2: not measured" % name)
                   for line in failed), result.stderr
    # aurora:recovered is out of the rds failover's scope, and aurora had no failover: nothing measured either
    assert _junit(tmp_path / "j.xml") == {"failover rds@2": True, "recovered": False, "aurora:recovered": False,
                                          "max-gap=30": False}


CLI_LOOP = ('end=$(($(date +%s)+{seconds})); while [ $(date +%s) -lt $end ]; do '
            'timeout 5 mysql --connect-timeout=1 -h "$FISWATCH_LAB_AURORA_HOST" -u "$FISWATCH_LAB_USER" '
            '"$FISWATCH_LAB_DATABASE" -e "CREATE TABLE IF NOT EXISTS cli_compare (id BIGINT AUTO_INCREMENT PRIMARY KEY, '
            'v INT); INSERT INTO cli_compare (v) VALUES (1)" 2>/dev/null; sleep 0.05; done')


def test_the_mysql_cli_loop_is_measured_within_a_second_of_the_pymysql_probe_in_the_same_failover(lab, tmp_path):  # noqa: F811
    """The issue's comparison: the `mysql` CLI in a loop (under `timeout`, it has no read timeout of its
    own) measured from the wire by `lab exec`, and fiswatch's PyMySQL probe watching the same lab at the
    same time; one Aurora failover; the two write gaps agree within a second, and nothing is lost."""
    from fiswatch.report.build import build_report

    env = dict(os.environ, PYTHONPATH=ROOT, AWS_EC2_METADATA_DISABLED="true")
    record = tmp_path / "probe.jsonl"
    watch = subprocess.Popen([sys.executable, "-m", "fiswatch", "watch", "--lab", lab.dir, "--backend", "pymysql",
                              "--json", "--no-verify", "--record", str(record), "--duration", "60"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=str(tmp_path))
    try:
        result = _gate(lab.dir, tmp_path, "--failover", "aurora@8", "--expect", "lost=0", "--expect", "recovered",
                       "--json", str(tmp_path / "v.json"), "--", "sh", "-c", CLI_LOOP.format(seconds=28))
    finally:
        # --duration 60 is the bound; the comparison needs the watch only while the gate runs:
        # SIGTERM ends it like q (record and summary kept, exit 0) instead of idling ~20 s more
        if watch.poll() is None:
            watch.send_signal(signal.SIGTERM)
        _, err = watch.communicate(timeout=120)
    assert result.returncode == 0, result.stderr
    assert watch.returncode == 0, err
    doc = json.loads((tmp_path / "v.json").read_text())
    assert doc["lost"]["lost"] == [] and doc["lost"]["checked"] == doc["endpoints"]["aurora"]["acknowledged"] > 20
    [failover] = doc["endpoints"]["aurora"]["failovers"]
    report = build_report([json.loads(line) for line in record.read_text().splitlines()])
    probe = next(p for p in report.probes if p.probe == "aurora/pymysql")
    assert probe.longest_gap is not None and not probe.longest_gap.open
    assert failover["gap"] is not None and not failover["open"]
    assert abs(failover["gap"] - probe.longest_gap.duration) <= 1.0, (failover["gap"], probe.longest_gap.duration)
