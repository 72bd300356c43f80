"""`fiswatch report` and `fiswatch verify` on any file: wrong types, huge lines, /dev/zero, binary.

One clear line (or a note) and bounded memory, never a traceback. The memory and time of the
big cases are measured on a real `python -m fiswatch` child (its peak RSS from getrusage).
"""
import copy
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from fiswatch import events as E
from fiswatch.report.build import build_report
from fiswatch.report.cli import main as cli_main
from fiswatch.report.render_json import report_as_dict
from fiswatch.report.render_markdown import render_markdown
from fiswatch.report.render_text import render_text, summary_lines
from fiswatch.report.verify import collect
from test_report import make_run

WRONG = ["abc", "", -1, 3.5, 1e308, None, True, [], [1, "x"], {}, {"a": 1}, "nan", "inf"]


def everything(events):
    report = build_report(events)
    render_text(report)
    render_markdown(report)
    json.dumps(report_as_dict(report), allow_nan=False)
    summary_lines(report, width=80)
    collect(events)
    return report


@pytest.mark.slow
def test_every_field_of_every_event_with_a_wrong_type_never_raises():
    run = make_run()
    run.append({"ts": run[-1]["ts"] + 0.5, "event": E.VERIFY, "endpoint": "aurora", "ok": False, "acknowledged": 5,
                "lost": 1, "changed": 0, "warnings": ["x"], "error": None})
    run.append({"ts": run[-1]["ts"] + 0.5, "event": E.INFO, "message": "paused", "pause": True})
    run.append({"ts": run[-1]["ts"] + 0.5, "event": E.TOPOLOGY, "endpoint": "aurora", "lines": ["w1 writer"]})
    kinds = {}
    for ev in run:
        kinds.setdefault(ev["event"], set()).update(k for k in ev if k != "event")
    checked = 0
    for kind, keys in sorted(kinds.items()):
        for key in sorted(keys):
            for value in WRONG:
                events = copy.deepcopy(run)
                for ev in events:
                    if ev["event"] == kind:
                        ev[key] = copy.deepcopy(value)
                everything(events)  # no exception, whatever the type
                checked += 1
    assert checked > 300
    # nested values too: a probe entry of run_start, a tick's per-probe dict, a summary's probe
    for path in (("probes", 0), ("endpoints", 0)):
        events = copy.deepcopy(run)
        for value in WRONG:
            events[0][path[0]][path[1]] = value
            everything(events)
    for value in WRONG:
        events = copy.deepcopy(run)
        for ev in events:
            if ev["event"] in (E.TICK, E.SUMMARY):
                for name in list(ev["probes"]):
                    ev["probes"][name] = value
        everything(events)


def test_ts_that_is_not_a_number_is_a_counted_skip_not_a_traceback(tmp_path, capsys):
    events = make_run()
    lines = [json.dumps(ev) for ev in events]
    lines.insert(3, json.dumps({"ts": "abc", "event": E.WRITE, "probe": "aurora/pymysql", "id": 1}))
    lines.insert(5, json.dumps({"ts": None, "event": E.TICK, "probes": 5}))
    lines.insert(7, json.dumps({"ts": 5, "event": ["x"]}))
    lines.insert(9, "[1, 2, 3]")
    path = tmp_path / "typed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert cli_main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert "skipped 4 unreadable line(s): 2 with a `ts` that is not a number (line 4, 6, 8, 10)" in out
    assert "aurora/pymysql" in out
    # verify reads the same way: one line, exit 2 (no password to be had here), no traceback
    env = dict(os.environ, PYTHONPATH=ROOT, FISWATCH_PASSWORD_AURORA="x", MYSQL_PWD="")
    proc = subprocess.run([sys.executable, "-m", "fiswatch", "verify", str(path), "--timeout", "2",
                           "--endpoint", "aurora=mysql://u@127.0.0.1:1/db"], capture_output=True, text=True,
                          env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == 2 and "NOT VERIFIED" in proc.stdout


def run_measured(args, rlimit_as=None, timeout=60):
    """Run `python -m fiswatch ARGS` in a wrapper that reports the child's peak RSS (KiB)."""
    code = (
        "import json, resource, subprocess, sys\n"
        "limit = %r\n"
        "def pre():\n"
        "    if limit: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
        "p = subprocess.run([sys.executable, '-m', 'fiswatch'] + %r, capture_output=True, text=True,\n"
        "                   preexec_fn=pre, stdin=subprocess.DEVNULL, timeout=%r)\n"
        "print(json.dumps({'rc': p.returncode, 'out': p.stdout[-4000:], 'err': p.stderr[-4000:],\n"
        "                  'rss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
    ) % (rlimit_as, list(args), timeout)
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=timeout + 30)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def baseline_rss(tmp_path):
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(json.dumps(ev) for ev in make_run()) + "\n")
    result = run_measured(["report", str(small)])
    assert result["rc"] == 0
    return result["rss_kib"]


@pytest.mark.slow
def test_a_100_mb_single_line_is_skipped_in_bounded_memory(tmp_path):
    base = baseline_rss(tmp_path)
    path = tmp_path / "huge.jsonl"
    events = make_run()
    with open(str(path), "wb") as handle:
        handle.write((json.dumps(events[0]) + "\n").encode())
        handle.write(b'{"ts": 1, "event": "info", "message": "')
        chunk = b"x" * (1 << 20)
        for _ in range(100):  # 100 MiB on one line
            handle.write(chunk)
        handle.write(b'"}\n')
        for ev in events[1:]:
            handle.write((json.dumps(ev) + "\n").encode())
    try:
        result = run_measured(["report", str(path)])
    finally:
        os.remove(str(path))  # 100 MiB: not left for pytest's temp-dir retention
    assert result["rc"] == 0, result["err"]
    assert "Traceback" not in result["err"] + result["out"]
    assert "skipped 1 unreadable line(s): 1 longer than 1 MiB (line 2)" in result["out"]
    assert "aurora/pymysql" in result["out"] and "write gaps" in result["out"]
    # the line never sits in memory: a few MiB above the same command on a small record
    assert result["rss_kib"] - base < 40 * 1024, (result["rss_kib"], base)


def test_dev_zero_is_one_line_in_bounded_time_and_memory():
    result = run_measured(["report", "/dev/zero"], rlimit_as=1 << 30, timeout=60)
    assert result["rc"] == 2
    assert result["err"].strip() == ("fiswatch report: /dev/zero is not a fiswatch record: binary data (NUL bytes, "
                                     "no line end) from about byte 0")
    assert result["rss_kib"] < 200 * 1024


def test_binary_and_other_non_records_are_one_line(tmp_path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(3 << 20))
    for args in (["report", str(blob)], ["verify", str(blob)], ["report", str(tmp_path)],
                 ["verify", "/dev/zero"]):
        result = run_measured(args, rlimit_as=1 << 30)
        assert result["rc"] == 2, (args, result)
        err = result["err"].strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, (args, err)
        assert err.startswith("fiswatch %s: " % args[0])
