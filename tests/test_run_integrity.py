"""A run ends with its record complete, or says loudly what is missing, whatever happens around it.

Each test provokes the real fault against the machine's MariaDB: the pty master closed
under a running dashboard, RLIMIT_FSIZE on the record, a FIFO nobody reads on stdout,
/dev/full, stdin from /dev/null, a slow INSERT in flight when the run stops.
"""
import fcntl
import os
import resource
import signal
import subprocess
import sys
import termios
import threading
import time

import psutil
import pytest

from conftest import ROOT, wait_for
from test_dashboard_pty import ByteStream, PtyTerminal, Screen

from fiswatch import events as E

FISWATCH = [sys.executable, "-m", "fiswatch"]


def _url(mariadb, name="a"):
    return "%s=mysql://%s@%s:%d/%s" % (name, mariadb.user, mariadb.host, mariadb.port, mariadb.database)


def _env(mariadb, **extra):
    env = dict(os.environ, PYTHONPATH=ROOT, FISWATCH_PASSWORD_A=mariadb.password, PYTHONDONTWRITEBYTECODE="1")
    env.pop("MYSQL_PWD", None)
    env.update(extra)
    return env


def _events(path):
    from fiswatch.output.record import read_record

    return list(read_record(path))  # skips a line cut short by a full disk


def _kinds(path):
    return [e["event"] for e in _events(path)]


def _assert_clean_stderr(text):
    assert "Traceback" not in text and "Error:" not in text and "Exception" not in text, text
    for line in text.splitlines():
        assert line.startswith("fiswatch"), "unexpected stderr line: %r" % line


def _stdout_is_the_controlling_tty():  # in the child, after setsid(); stdin may be /dev/null
    fcntl.ioctl(1, termios.TIOCSCTTY, 0)


class WatchTerminal(PtyTerminal):
    """`fiswatch watch` on a pty (stdout, and stdin unless given), stderr into a file read afterwards."""

    def __init__(self, argv, stderr_path, stdin=None, env=None, rows=24, cols=80):
        self.master, self.slave = os.openpty()
        self.set_size(rows, cols)
        self.attrs_before = termios.tcgetattr(self.slave)
        self.screen = Screen(cols, rows)
        self.stream = ByteStream(self.screen)
        self.raw = bytearray()
        full_env = dict(os.environ, TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8")
        full_env.update(env or {})
        with open(stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(argv, stdin=self.slave if stdin is None else stdin, stdout=self.slave,
                                         stderr=stderr, cwd=ROOT, env=full_env, start_new_session=True,
                                         preexec_fn=_stdout_is_the_controlling_tty)

    def close_master(self):
        """The SSM session / tmux window goes away: the pty is hung up."""
        os.close(self.master)
        self.master = os.open(os.devnull, os.O_RDONLY)  # for close()


def _watch_in_pty(mariadb, tmp_path, args, stdin=None, env=None):
    return WatchTerminal(term_argv(mariadb, args), str(tmp_path / "stderr.txt"), stdin=stdin,
                         env=_env(mariadb, **(env or {})))


def term_argv(mariadb, args):
    return FISWATCH + ["watch", "--endpoint", _url(mariadb), "--backend", "pymysql"] + list(args)


# -- 1. losing the terminal --------------------------------------------------------------------------------------
def test_closing_the_pty_under_the_dashboard_ends_the_run_like_q(mariadb, tmp_path):
    record = str(tmp_path / "run.jsonl")
    t = _watch_in_pty(mariadb, tmp_path, ["--record", record])
    try:
        t.wait_text("a/pymysql", timeout=60)
        wait_for(lambda: _kinds(record).count(E.WRITE) >= 5, timeout=60, message="writes in the record")
        t.close_master()
        assert t.proc.wait(30) == 0
    finally:
        t.close()
    kinds = _kinds(record)
    assert E.VERIFY in kinds and kinds[-1] == E.SUMMARY, kinds[-5:]
    assert any(e["event"] == E.WARNING and "terminal closed" in e.get("message", "") for e in _events(record))
    _assert_clean_stderr((tmp_path / "stderr.txt").read_text())


def test_closing_the_pty_removes_the_private_record(mariadb, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    t = _watch_in_pty(mariadb, tmp_path, [], env={"TMPDIR": str(tmp)})
    try:
        t.wait_text("a/pymysql", timeout=60)
        wait_for(lambda: list(tmp.iterdir()), timeout=30, message="the private record")
        time.sleep(1.0)
        t.close_master()
        assert t.proc.wait(30) == 0
    finally:
        t.close()
    assert list(tmp.iterdir()) == []
    _assert_clean_stderr((tmp_path / "stderr.txt").read_text())


def test_a_terminal_that_stops_taking_output_does_not_hold_the_end(mariadb, tmp_path):
    record = str(tmp_path / "run.jsonl")
    t = _watch_in_pty(mariadb, tmp_path, ["--record", record])
    try:
        t.wait_text("a/pymysql", timeout=60)
        t.send(b"\x13")  # XOFF: the terminal takes no more output (as a stalled SSM channel)
        for i in range(60):  # full repaints until the pty's buffer is full and curses blocks
            t.set_size(24 + i % 2, 80 + i % 3)
            os.kill(t.proc.pid, signal.SIGWINCH)
            time.sleep(0.05)
        wait_for(lambda: _kinds(record).count(E.TICK) >= 3, timeout=30, message="ticks while blocked")
        t.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = t.proc.wait(30)  # never reading the pty again
        assert time.monotonic() - started < 15
    finally:
        t.close()
    kinds = _kinds(record)
    assert E.VERIFY in kinds and kinds[-1] == E.SUMMARY, kinds[-5:]
    assert any("stopped taking output" in e.get("message", "") for e in _events(record) if e["event"] == E.WARNING)
    assert code == 3
    _assert_clean_stderr((tmp_path / "stderr.txt").read_text())


def test_dashboard_with_stdin_from_dev_null_does_not_spin(mariadb, tmp_path):
    t = _watch_in_pty(mariadb, tmp_path, [], stdin=subprocess.DEVNULL)
    try:
        t.wait_text("a/pymysql", timeout=60)
        proc = psutil.Process(t.proc.pid)
        before = proc.cpu_times()
        time.sleep(4.0)
        after = proc.cpu_times()
        used = (after.user + after.system) - (before.user + before.system)
        assert used < 2.0, "the dashboard used %.1fs of CPU in 4s" % used  # spinning uses ~4 s
        t.proc.send_signal(signal.SIGTERM)
        assert t.wait_exit(timeout=30) == 0
    finally:
        t.close()


# -- 2. the record cannot be written ---------------------------------------------------------------------------
def _small_files():
    resource.setrlimit(resource.RLIMIT_FSIZE, (24 * 1024, 24 * 1024))


@pytest.mark.slow
def test_record_under_rlimit_fsize_is_loud_and_the_verification_still_shows(mariadb, tmp_path):
    record = str(tmp_path / "run.jsonl")
    err_path = tmp_path / "err.txt"
    # no --duration: on two busy cores 4 s did not always fill the 24 kB; the run goes on until it
    # says the record cannot be written (at once, on stderr), then ends as on SIGTERM
    with open(str(err_path), "wb") as err_file:
        proc = subprocess.Popen(FISWATCH + ["watch", "--endpoint", _url(mariadb), "--backend", "pymysql", "--plain",
                                            "--interval", "0.01", "--record", record],
                                env=_env(mariadb), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err_file, preexec_fn=_small_files)
        try:
            wait_for(lambda: "the record cannot be written" in err_path.read_text(), 120,
                     message="the record's write error on stderr")
        finally:
            proc.send_signal(signal.SIGTERM)
            out = proc.communicate(timeout=120)[0].decode()
    err = err_path.read_text()
    assert proc.returncode == 3, (out, err)
    assert "the record cannot be written: File too large" in err
    assert "record incomplete from t+" in err and "the summary covers only the first" in err
    assert "Writes a (verified" in out, out  # the verification, from memory though the record lost it
    assert E.SUMMARY not in _kinds(record)
    _assert_clean_stderr(err)


def test_record_refuses_an_existing_file_without_overwrite(mariadb, tmp_path):
    record = tmp_path / "precious.json"
    record.write_text('{"keep": "me"}\n')
    proc = subprocess.run(FISWATCH + ["watch", "--endpoint", _url(mariadb), "--plain", "--duration", "1",
                                      "--record", str(record)],
                          env=_env(mariadb), cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "already exists" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert record.read_text() == '{"keep": "me"}\n'
    proc = subprocess.run(FISWATCH + ["watch", "--endpoint", _url(mariadb), "--backend", "pymysql", "--plain",
                                      "--duration", "1", "--record", str(record), "--overwrite"],
                          env=_env(mariadb), cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert _kinds(str(record))[-1] == E.SUMMARY


# -- 3. outputs never hold the run -----------------------------------------------------------------------------
def _full_fifo(path):
    """A FIFO with a reader that never reads, its buffer already full: every write blocks."""
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(path, os.O_WRONLY)
    os.set_blocking(writer, False)
    try:
        while True:
            os.write(writer, b"x" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(writer, True)
    return reader, writer


@pytest.mark.parametrize("how", ["duration", "sigterm"])
@pytest.mark.slow
def test_json_into_a_fifo_nobody_reads_ends_on_time_with_the_record_complete(mariadb, tmp_path, how):
    record = str(tmp_path / "run.jsonl")
    reader, writer = _full_fifo(str(tmp_path / "fifo"))
    args = ["--json", "--record", record] + (["--duration", "3"] if how == "duration" else [])
    try:
        proc = subprocess.Popen(term_argv(mariadb, args), env=_env(mariadb), cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=writer, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: os.path.exists(record) and _kinds(record).count(E.WRITE) >= 5, timeout=60, message="writes recorded")
            started = time.monotonic()
            if how == "sigterm":
                proc.send_signal(signal.SIGTERM)
            deadline = 3.0 if how == "duration" else 0.0
            wait_for(lambda: proc.poll() is not None, timeout=30, message="the process to end")
            # generous: the verification may take up to 3 s, outputs 1 s; a blocked run never ends
            assert time.monotonic() - started < deadline + 10
        finally:
            if proc.poll() is None:
                proc.kill()
            err = proc.communicate(timeout=10)[1].decode()
    finally:
        os.close(writer)
        os.close(reader)
    kinds = _kinds(record)
    assert E.VERIFY in kinds and kinds[-1] == E.SUMMARY, kinds[-5:]
    assert proc.returncode == 3
    assert "output incomplete: stdout did not take" in err
    _assert_clean_stderr(err)


@pytest.mark.parametrize("mode", ["--plain", "--json"])
def test_stdout_on_a_full_disk_is_one_line(mariadb, tmp_path, mode):
    record = str(tmp_path / "run.jsonl")
    with open("/dev/full", "w") as full:
        proc = subprocess.run(term_argv(mariadb, [mode, "--duration", "3", "--record", record]), env=_env(mariadb),
                              cwd=ROOT, stdin=subprocess.DEVNULL, stdout=full, stderr=subprocess.PIPE, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    assert len(err.splitlines()) == 1 and "No space left on device" in err, err
    _assert_clean_stderr(err)
    assert _kinds(record)[-1] == E.SUMMARY


def test_plain_into_a_pipe_closed_by_head_is_silent(mariadb, tmp_path):
    proc = subprocess.Popen(term_argv(mariadb, ["--plain", "--duration", "20"]), env=_env(mariadb), cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # `| head -1`
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert err.decode() == ""


# -- 4. plain text details ----------------------------------------------------------------------------------------
def test_plain_into_a_file_keeps_long_messages_and_warns_about_no_password(mariadb, tmp_path):
    env = _env(mariadb)
    env.pop("FISWATCH_PASSWORD_A")  # access denied: a long error message in the state line
    out = tmp_path / "out.txt"
    err_path = tmp_path / "err.txt"

    def long_lines():
        return [l for l in out.read_text().splitlines() if "Access denied" in l]

    # no --duration: the run goes on until a frame shows the error (a probe that never connected is
    # CONNECTING between its attempts, and says "retrying after: <the last error>" then), then SIGTERM
    with open(str(out), "w") as handle, open(str(err_path), "w") as err_handle:
        proc = subprocess.Popen(term_argv(mariadb, ["--plain", "--no-verify"]), env=env, cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=handle, stderr=err_handle)
        try:
            wait_for(long_lines, 60, message="a frame with the access-denied error")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    err = err_path.read_text()
    assert "no password for endpoint a" in err
    _assert_clean_stderr(err)
    lines = long_lines()
    assert lines and max(len(l) for l in lines) > 80, out.read_text()
    assert any(l.rstrip().endswith(")") for l in lines)  # not cut
    # never a bare CONNECTING once an attempt failed: every later state line of the probe names the error
    frames = out.read_text().split("\nRun of ")[0]  # the summary follows the frames
    states = [l for l in frames.splitlines() if l.startswith("a/pymysql")]
    first = next(n for n, l in enumerate(states) if "Access denied" in l)
    assert all("Access denied" in l for l in states[first:]), states


# -- 5. writes at stop -----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_writes_committed_while_stopping_are_in_the_record(mariadb, tmp_path):
    table = "drain_%d" % os.getpid()
    mariadb.query("CREATE TABLE %s (id INT AUTO_INCREMENT PRIMARY KEY, value INT)" % table)
    # every INSERT takes 0.2 s, so the run almost surely stops with one in flight
    mariadb.query("CREATE TRIGGER %s_slow BEFORE INSERT ON %s FOR EACH ROW SET @fiswatch_slow = SLEEP(0.2)"
                  % (table, table))
    try:
        for run in range(2):
            record = str(tmp_path / ("run%d.jsonl" % run))
            proc = subprocess.run(term_argv(mariadb, ["--plain", "--interval", "0", "--duration", "2", "--table",
                                                      table, "--record", record]),
                                  env=_env(mariadb), cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=60)
            assert proc.returncode == 0, proc.stderr
            rows = {r[0] for r in mariadb.query("SELECT id FROM %s" % table)}
            recorded = {e["id"] for e in _events(record) if e["event"] in (E.WRITE, E.WRITE_IN_DOUBT,
                                                                             "write_pending")}
            assert rows and rows <= recorded, "committed but not recorded: %s" % sorted(rows - recorded)
            mariadb.query("DELETE FROM %s" % table)
    finally:
        mariadb.query("DROP TABLE %s" % table)


# -- 8. memory, pause ----------------------------------------------------------------------------------------------
def test_event_pane_is_bounded_and_pause_toggles_atomically(mariadb):
    from fiswatch.config.checks import parse_endpoint
    from fiswatch.model import BackendSpec, Secret
    from fiswatch.engine.monitor import LOG_EVENTS
    from fiswatch.engine.runner import Runner

    from dataclasses import replace
    ep = replace(parse_endpoint(_url(mariadb), "test"), password=Secret(mariadb.password))
    runner = Runner([ep], [BackendSpec("pymysql")])
    for i in range(LOG_EVENTS * 3):
        runner.emit(E.error("rds/pymysql", "rds", code=2003, kind="refused", message="refused %d" % i))
    view = runner.step()  # the event pane keeps the newest; the record has them all
    errors = [e.get("message") for e in view.events if e.event == E.ERROR]
    assert len(view.events) == LOG_EVENTS and errors[-1] == "refused %d" % (LOG_EVENTS * 3 - 1)
    barrier = threading.Barrier(8)

    def press():
        barrier.wait()
        runner.toggle_pause()
    threads = [threading.Thread(target=press) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert runner.monitor.paused is False  # 8 presses: back to running
    assert all(not p.paused for p in runner.probes)
    runner.stop()


def test_too_small_terminal_suggests_plain():
    from fiswatch.ui.layout import too_small

    text = " ".join("".join(seg for seg, _ in line.segments) for line in too_small(80, 24, 189, 16))
    assert "--plain" in text


def test_no_command_module_imports_the_cli():
    import ast

    pkg = os.path.join(ROOT, "fiswatch")
    offenders = []
    for folder, _, files in os.walk(pkg):
        for name in files:
            if not name.endswith(".py") or name in ("cli.py", "__main__.py"):
                continue
            path = os.path.join(folder, name)
            for node in ast.walk(ast.parse(open(path).read())):
                if isinstance(node, ast.ImportFrom) and node.module == "fiswatch.cli":
                    offenders.append(path)
                if isinstance(node, ast.ImportFrom) and node.module == "fiswatch" and any(
                        a.name == "cli" for a in node.names):
                    offenders.append(path)
    assert offenders == []
    assert not os.path.exists(os.path.join(pkg, "app.py"))
