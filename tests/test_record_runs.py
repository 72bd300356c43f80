"""What a record says stays true: several runs in one file, writes the final check could not reach.

Each test provokes the real fault against the machine's MariaDB: two real records joined
with `cat` (and one run appended to itself), and a run whose database stops answering
(a fault proxy black-holes it) before the end, so the closing check cannot run.
"""
import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, wait_for
from fiswatch.lab.proxy import FaultProxy

FISWATCH = [sys.executable, "-m", "fiswatch"]


def _env(mariadb):
    env = dict(os.environ, PYTHONPATH=ROOT, FISWATCH_PASSWORD_A=mariadb.password, PYTHONDONTWRITEBYTECODE="1",
               AWS_EC2_METADATA_DISABLED="true")
    env.pop("MYSQL_PWD", None)
    return env


def _events(path):
    from fiswatch.output.record import read_record

    return list(read_record(path))


def _writes(path):
    return sum(1 for e in _events(path) if e["event"] == "write")


def _run(args, env, timeout=120):
    return subprocess.run(FISWATCH + list(args), env=env, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout)


def _watch(mariadb, table, record, host=None, port=None, extra=()):
    url = "a=mysql://%s@%s:%d/%s" % (mariadb.user, host or mariadb.host, port or mariadb.port, mariadb.database)
    return FISWATCH + ["watch", "--endpoint", url, "--backend", "pymysql", "--plain", "--table", table,
                       "--record", str(record)] + list(extra)


@pytest.fixture
def table(mariadb):
    name = "runs_%d" % os.getpid()
    mariadb.query("CREATE TABLE IF NOT EXISTS %s (id INT AUTO_INCREMENT PRIMARY KEY, value INT)" % name)
    yield name
    mariadb.query("DROP TABLE IF EXISTS %s" % name)


def _record_a_run(mariadb, table, record, env, writes=20):
    """A real watch run until `writes` writes are in its record, then SIGTERM (ends as on q)."""
    proc = subprocess.Popen(_watch(mariadb, table, record), env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: os.path.exists(str(record)) and _writes(record) >= writes, 60,
                 message="%d writes in %s" % (writes, record))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return _writes(record)


# -- several runs in one record ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_record_of_two_runs_is_refused_and_each_run_is_read_on_its_own(mariadb, table, tmp_path):
    env = _env(mariadb)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    n1 = _record_a_run(mariadb, table, first, env)
    n2 = _record_a_run(mariadb, table, second, env)
    both = tmp_path / "both.jsonl"
    both.write_bytes(first.read_bytes() + second.read_bytes())  # `cat first second > both`

    for command in ("report", "verify"):
        proc = _run([command, str(both)], env)
        err = proc.stderr.decode()
        assert proc.returncode == 2 and proc.stdout == b"", (proc.stdout, err)
        assert err.count("\n") == 1 and "holds 2 runs" in err and "--run N" in err, err
        assert "Traceback" not in err

    # each run on its own reads as that run's own record
    for number, (alone, count) in enumerate(((first, n1), (second, n2)), 1):
        mine = json.loads(_run(["report", str(both), "--run", str(number), "--format", "json"], env).stdout)
        own = json.loads(_run(["report", str(alone), "--format", "json"], env).stdout)
        assert mine["run"] == number and mine["runs"] == 2
        assert [p["acknowledged"] for p in mine["probes"]] == [p["acknowledged"] for p in own["probes"]] == [count]
        assert mine["start"] == own["start"] and mine["end"] == own["end"]
        proc = _run(["verify", str(both), "--run", str(number)], env)
        out = proc.stdout.decode()
        assert proc.returncode == 0, (out, proc.stderr)
        assert "OK - %d acknowledged, 0 lost, 0 changed" % count in out, out

    # before: one run appended twice read as LOST WRITES (each id claimed by two writes)
    twice = tmp_path / "twice.jsonl"
    twice.write_bytes(first.read_bytes() * 2)
    proc = _run(["verify", str(twice)], env)
    assert proc.returncode == 2 and "holds 2 runs" in proc.stderr.decode() and b"LOST" not in proc.stdout
    proc = _run(["verify", str(twice), "--run", "2"], env)
    assert proc.returncode == 0 and "OK - %d acknowledged, 0 lost" % n1 in proc.stdout.decode(), proc.stdout

    proc = _run(["report", str(both), "--run", "3"], env)
    assert proc.returncode == 2 and "holds 2 runs: --run 3 is not one of them" in proc.stderr.decode()
    proc = _run(["report", str(both), "--run", "0"], env)
    assert proc.returncode == 2 and "not a run number" in proc.stderr.decode()

    # --record onto a file that holds a run keeps refusing
    proc = subprocess.run(_watch(mariadb, table, first, extra=["--duration", "1"]), env=env, cwd=ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert proc.returncode == 2 and "already exists" in proc.stderr.decode()
    assert _writes(first) == n1


# -- writes the final check could not reach ------------------------------------------------------------------------
@pytest.mark.slow
def test_writes_the_final_check_cannot_reach_are_counted_not_verified(mariadb, table, tmp_path):
    env = _env(mariadb)
    record = tmp_path / "run.jsonl"
    proxy = FaultProxy("127.0.0.1", 0, mariadb.host, mariadb.port, name="not-verified").start()
    try:
        host, port = proxy.address
        proc = subprocess.Popen(_watch(mariadb, table, record, host, port), env=env, cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: os.path.exists(str(record)) and _writes(record) >= 20, 60, message="writes recorded")
            proxy.set_mode("blackhole")  # the database stops answering: no probe writes at the end
            wait_for(lambda: any(e["event"] == "error" for e in _events(record)), 60, message="the probe's error")
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        out, err = out.decode(), err.decode()
        assert proc.returncode == 0, err
        acked = _writes(record)
        assert acked >= 20
        # --plain: the warning raised during the run is on stderr, not only in the record
        assert "warning: writes to a not verified: no probe was writing at the end" in err, err
        assert "Traceback" not in err
        # the summary counts every acknowledged write: none was verified
        summary = out[out.index("Run of"):]
        lines = summary.splitlines()
        n = next(n for n, l in enumerate(lines) if l.startswith("Writes a"))
        assert lines[n].startswith("Writes a: %d acknowledged NOT VERIFIED, t+" % acked), summary
        assert lines[n + 1] == "  why: no probe was writing at the end", summary
        assert lines[n + 2] == "  check them later: fiswatch verify %s" % record, summary
        assert not any(l.startswith("Writes a (verified") for l in lines), summary

        proc = _run(["report", str(record)], env)
        text = proc.stdout.decode()
        assert proc.returncode == 0 and ("Writes a: %d acknowledged NOT VERIFIED" % acked) in text, text
        data = json.loads(_run(["report", str(record), "--format", "json"], env).stdout)
        assert data["writes"] == [dict(data["writes"][0], endpoint="a", acknowledged=acked, verified=0,
                                       not_verified=acked, why_not_verified="no probe was writing at the end")]

        # the command the summary names checks them once the database answers again
        proxy.set_mode("pass")
        proc = _run(["verify", str(record)], env)
        assert proc.returncode == 0 and "OK - %d acknowledged, 0 lost" % acked in proc.stdout.decode(), proc.stdout
    finally:
        proxy.stop()


def test_a_check_covering_part_of_the_writes_leaves_the_rest_not_verified():
    """A check after a failover covered the first writes; the final one could not run (its error)."""
    from fiswatch.report.build import build_report
    from fiswatch.report.render_text import render_text, summary_lines

    t0 = 1_800_000_000.0
    events = [{"ts": t0, "event": "run_start", "probes": [{"probe": "a/p", "endpoint": "a", "backend": "p"}]}]
    events += [{"ts": t0 + 0.1 * n, "event": "write", "probe": "a/p", "endpoint": "a", "id": n, "value": n}
               for n in range(1, 296)]
    events += [{"ts": t0 + 13.7, "event": "verify", "endpoint": "a", "ok": True, "acknowledged": 68, "lost": 0},
               {"ts": t0 + 30.0, "event": "run_stop"},
               {"ts": t0 + 31.0, "event": "verify", "endpoint": "a", "ok": False, "acknowledged": 295,
                "error": "OperationalError: (2003, 'connect timeout')"},
               {"ts": t0 + 31.1, "event": "summary"}]
    report = build_report(events, record_path="/tmp/r.jsonl")
    text = render_text(report)
    assert "Writes a (verified t+13.7): OK, 68 acknowledged, 0 lost" in text
    assert ("Writes a: 227 of 295 acknowledged NOT VERIFIED, t+6.9..t+29.5\n"
            "  why: OperationalError: (2003, 'connect timeout')\n") in text, text
    assert "  check them later: fiswatch verify /tmp/r.jsonl" in text
    lines = summary_lines(report, width=80)
    assert all(len(l) <= 80 for l in lines if not l.startswith("  check")), lines
    assert any(l.startswith("Writes a: 227 of 295 acknowledged NOT VERIFIED") for l in lines)


def test_a_closing_check_that_did_not_finish_is_the_reason_given():
    from fiswatch.report.build import build_report
    from fiswatch.report.render_text import summary_lines

    t0 = 1_800_000_000.0
    events = [{"ts": t0, "event": "run_start", "probes": [{"probe": "a/p", "endpoint": "a", "backend": "p"}]},
              {"ts": t0 + 1, "event": "write", "probe": "a/p", "endpoint": "a", "id": 1, "value": 1},
              {"ts": t0 + 2, "event": "run_stop"},
              {"ts": t0 + 5, "event": "warning",
               "message": "verification did not finish in 3s; check later with `fiswatch verify FILE`"},
              {"ts": t0 + 5.1, "event": "summary"}]
    lines = summary_lines(build_report(events), width=80)
    n = lines.index("Writes a: 1 acknowledged NOT VERIFIED, t+1.0..t+1.0")
    assert lines[n + 1:n + 3] == ["  why: verification did not finish in 3s", "  check them later: fiswatch verify FILE"]


@pytest.mark.slow
def test_the_record_memory_figure_measures_both_commands(mariadb):
    """The harness of `python -m fiswatch.bench.record_memory` (figure 8) on a small record: both commands
    run to the end (verify finds every write), and each peak RSS comes from wait4()."""
    from fiswatch.bench.record_memory import figure

    fig = figure(sizes=(0.3,))
    assert fig.error is None
    rows = fig.details["records"]
    assert [r["size_mb"] for r in rows] == [0.0, 0.3]
    for row in rows:
        assert row["verify"]["last_line"].startswith("b (table bigrec_b): OK - %d acknowledged, 0 lost" % (
            row["writes"] // 2)), row
        assert 10 < row["report"]["peak_rss_mb"] < 1000 and 10 < row["verify"]["peak_rss_mb"] < 1000
    assert {m.name for m in fig.metrics} >= {"report peak RSS, 0 MB record", "verify peak RSS, 0 MB record"}


def test_addresses_in_turn_keep_a_connect_elsewhere_between_writes_to_one_address():
    """A probe writes to A, connects to B (and fails there), reconnects to A and writes: A -> B -> A."""
    from fiswatch.report.build import build_report

    t0 = 1_800_000_000.0
    w = lambda ts, n: {"ts": t0 + ts, "event": "write", "probe": "a/p", "endpoint": "a", "id": n, "value": n,  # noqa
                       "address": "127.0.0.1"}
    events = [{"ts": t0, "event": "run_start", "probes": [{"probe": "a/p", "endpoint": "a", "backend": "p"}]},
              w(1, 1), w(2, 2), {"ts": t0 + 3, "event": "connect", "probe": "a/p", "address": "127.0.0.2"},
              {"ts": t0 + 4, "event": "connect", "probe": "a/p", "address": "127.0.0.1"}, w(5, 3), w(6, 4)]
    probe = build_report(events).probes[0]
    assert probe.addresses == ("127.0.0.1", "127.0.0.2", "127.0.0.1")
    assert probe.acknowledged == 4
