"""The program measured from the wire as a line beside the probes: the pure view, then the real
dashboard in a pty (80x24 and 120x30) and --plain, with a real program through a real lab failover."""
import dataclasses
import os
import sys

import pytest
from conftest import ROOT
from dashboard_app import demo_view

from fiswatch.model import ProgramView
from fiswatch.output.plain import plain_lines
from fiswatch.ui.layout import UiState, render

from _lab_fixture import lab  # noqa: F401
from _wire_fixture import lab_writer

NOW = 1000.0
WRITING = ProgramView("python", "aurora", "writing", "writing, 18 ops/s", ops_per_s=18.0, acked=412,
                      instance="fiswatch-lab-instance-2")
REFUSED = ProgramView("app", "aurora", "refused", "writes refused", acked=80, refused=37,
                      instance="fiswatch-lab-instance-1")


def _screen(view, width, height):
    lines = render(view, width, height, UiState(), NOW)
    assert len(lines) == height and all(len(line) <= width for line in lines)
    return [line.text for line in lines]


@pytest.mark.parametrize("size", [(80, 24), (120, 30)])
def test_the_program_line_sits_above_the_event_log_and_every_probe_keeps_its_column(size):
    width, height = size
    plain = _screen(demo_view(), width, height)
    texts = _screen(dataclasses.replace(demo_view(), programs=(WRITING,)), width, height)
    line = next(i for i, t in enumerate(texts) if t.startswith("PROGRAM python on aurora"))
    assert "WRITING 18 ops/s  -> fiswatch-lab-instance-2" in texts[line]
    assert texts[line + 1].startswith("-- events")
    # the probes' part of the screen is unchanged: the line is taken from the event log
    assert texts[:line] == plain[:line]
    log_before = len(plain) - plain.index(next(t for t in plain if t.startswith("-- events")))
    assert len(texts) - (line + 1) == log_before - 1 >= 3


def test_two_endpoints_on_a_short_screen_share_one_line_and_each_state_reads_as_it_is():
    silent = ProgramView("app", "rds", "erroring", error=2013, silent_for=6.0, acked=9)
    texts = _screen(dataclasses.replace(demo_view(), programs=(REFUSED, silent)), 80, 24)
    programs = [t for t in texts if t.startswith("PROGRAM")]
    assert len(programs) == 1  # 80x24 with two bands: the event log keeps its 3 lines
    assert "aurora REFUSED 1290 x37 (demoted writer)" in programs[0] and "rds ERRORING 2013 6s" in programs[0]
    tall = [t for t in _screen(dataclasses.replace(demo_view(), programs=(REFUSED, silent)), 120, 40)
            if t.startswith("PROGRAM")]
    assert len(tall) == 2 and "-> fiswatch-lab-instance-1" in tall[0]


def test_plain_shows_the_program_after_the_probes():
    lines = plain_lines(dataclasses.replace(demo_view(), programs=(WRITING,)), 100)
    assert lines[-1] == "PROGRAM python on aurora  WRITING 18 ops/s  -> fiswatch-lab-instance-2  412 acked"
    lines = plain_lines(dataclasses.replace(demo_view(), programs=(WRITING,)), 80)
    assert lines[-1].startswith("PROGRAM python on aurora  WRITING 18 ops/s  -> fiswatch-lab-instance-2")
    assert all(len(line) <= 80 for line in lines)


def test_the_monitor_reads_the_programs_board_as_it_reads_a_probe():
    from fiswatch.engine.monitor import Monitor
    from fiswatch.lab.wire.follow import ProgramBoard

    board = ProgramBoard("python")
    monitor = Monitor([], {}, programs=[board])
    view, _ = monitor.tick()
    assert [(p.name, p.kind) for p in view.programs] == [("python", "starting")]
    board.snapshot = (WRITING,)
    view, _ = monitor.tick()
    assert view.programs == (WRITING,)


WRITER = lab_writer("column_writes")


@pytest.mark.lab
@pytest.mark.parametrize("size", [(24, 80), (30, 120)])
def test_demo_exec_shows_the_program_line_through_a_failover_in_a_pty(lab, tmp_path, size):  # noqa: F811
    from test_dashboard_pty import PtyTerminal

    (tmp_path / "writer.py").write_text(WRITER)
    rows, cols = size
    argv = [sys.executable, "-m", "fiswatch", "demo", "--dir", lab.dir, "--aurora-after", "6", "--rds-after", "1000",
            "--no-verify", "--duration", "150", "--record", str(tmp_path / "run.jsonl"),
            "--exec", "%s %s" % (sys.executable, tmp_path / "writer.py")]
    t = PtyTerminal(argv, rows=rows, cols=cols, env={"AWS_EC2_METADATA_DISABLED": "true"})
    try:
        def program_line():
            t.pump()
            return next((line for line in t.lines if line.startswith("PROGRAM")), "")

        t.wait(lambda: program_line().startswith("PROGRAM python") and " on aurora  WRITING" in program_line()
               and "-> " in program_line(), 90, "the program writing")
        first = program_line().split("-> ")[1].split()[0]
        header_row = next(i for i, line in enumerate(t.lines) if line.startswith("PROGRAM"))
        assert t.lines[header_row + 1].startswith("-- events")
        assert all(len(line.rstrip()) <= cols for line in t.lines)
        # the failover: the program stops writing (no write / erroring), then writes on the new writer
        t.wait(lambda: any(w in program_line() for w in ("NO WRITE", "ERRORING")), 90, "the program's gap")
        t.wait(lambda: "WRITING" in program_line() and "-> " in program_line() and first not in program_line(), 120,
               "the program writing on the promoted instance")
        t.send(b"q")
        assert t.wait_exit(120) == 0
    finally:
        t.close()


@pytest.mark.lab
def test_watch_lab_exec_plain_shows_the_program_and_bad_exec_is_one_line(lab, tmp_path):  # noqa: F811
    import subprocess

    env = dict(os.environ, PYTHONPATH=ROOT, AWS_EC2_METADATA_DISABLED="true")
    (tmp_path / "writer.py").write_text(WRITER)
    result = subprocess.run([sys.executable, "-m", "fiswatch", "watch", "--lab", lab.dir, "--plain", "--duration", "6",
                             "--no-verify", "--exec", "%s %s" % (sys.executable, tmp_path / "writer.py")],
                            capture_output=True, text=True, env=env, timeout=180, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "PROGRAM python on aurora  WRITING" in result.stdout
    # the program stopped by the run's end is not an outage: its row says so, not "never recovered"
    row = next(line for line in result.stdout.splitlines() if line.startswith("aurora/program "))
    assert row.endswith("no write gap"), row
    for args, words in ((["--endpoint", "a=mysql://u@127.0.0.1/db", "--exec", "true"], "give --lab too"),
                        (["--lab", lab.dir, "--exec", "no-such-command-xyz"], "no-such-command-xyz: command not found"),
                        (["--lab", lab.dir, "--exec", ""], "--exec needs a command")):
        bad = subprocess.run([sys.executable, "-m", "fiswatch", "watch", "--plain", "--duration", "1"] + args,
                             capture_output=True, text=True, env=env, timeout=60, cwd=str(tmp_path))
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and words in bad.stderr, bad.stderr
