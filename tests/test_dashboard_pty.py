"""The real curses dashboard in a pseudo-terminal, read back with pyte.

Each test starts a process on the slave side of a pty (which becomes its controlling
terminal, so Ctrl-C and SIGWINCH behave as in a real terminal), feeds everything it writes
into a pyte screen, and asserts on the screen text, the raw escape sequences and the tty
attributes left behind.
"""
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios

import pyte
import pytest

from conftest import ROOT, wait_for

APP = os.path.join(ROOT, "tests", "dashboard_app.py")
SMCUP, RMCUP = b"\x1b[?1049h", b"\x1b[?1049l"  # xterm's alternate screen on / off
CURSOR_OFF, CURSOR_ON = b"\x1b[?25l", b"\x1b[?25h"


class Screen(pyte.Screen):
    """pyte's screen plus REP (CSI n b, "repeat the last character"), which ncurses uses."""

    last_char = " "

    def draw(self, data):
        if data:
            self.last_char = data[-1]
        super().draw(data)

    def repeat_last(self, count=1, *args, **kwargs):
        self.draw(self.last_char * max(1, count))


class ByteStream(pyte.ByteStream):
    csi = dict(pyte.ByteStream.csi, b="repeat_last")


def _take_controlling_tty() -> None:  # runs in the child after setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyTerminal:
    def __init__(self, argv, rows=24, cols=80, env=None):
        self.master, self.slave = os.openpty()
        self.set_size(rows, cols)
        self.attrs_before = termios.tcgetattr(self.slave)
        self.screen = Screen(cols, rows)
        self.stream = ByteStream(self.screen)
        self.raw = bytearray()
        full_env = dict(os.environ, TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8",
                        PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
        full_env.pop("NO_COLOR", None)
        # the size comes from the pty, as in a terminal: ncurses prefers LINES/COLUMNS over the
        # pty's size, and pytest-xdist's workers run with LINES=24 COLUMNS=80 (a resize was lost)
        full_env.pop("LINES", None)
        full_env.pop("COLUMNS", None)
        full_env.update(env or {})
        self.proc = subprocess.Popen(argv, stdin=self.slave, stdout=self.slave, stderr=self.slave, cwd=ROOT,
                                     env=full_env, start_new_session=True, preexec_fn=_take_controlling_tty)

    def set_size(self, rows, cols):
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def pump(self):
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.02)
            if not ready:
                return
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.raw += data
            self.stream.feed(data)

    @property
    def lines(self):
        return list(self.screen.display)

    @property
    def text(self):
        return "\n".join(self.screen.display)

    def wait_text(self, needle, timeout=30.0):
        def seen():
            self.pump()
            return needle in self.text
        self.wait(seen, timeout, repr(needle))

    def wait(self, predicate, timeout, what):
        """wait_for(), with the screen as it is at the deadline in the failure message."""
        try:
            wait_for(predicate, timeout=timeout, message=what)
        except AssertionError as exc:
            raise AssertionError("%s; screen:\n%s" % (exc, self.text)) from None

    def send(self, data: bytes):
        os.write(self.master, data)

    def resize(self, rows, cols):
        self.set_size(rows, cols)
        self.screen.resize(rows, cols)
        os.kill(self.proc.pid, signal.SIGWINCH)

    def wait_exit(self, timeout=10.0):
        def done():
            self.pump()
            return self.proc.poll() is not None
        self.wait(done, timeout, "the process to exit")
        self.pump()
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def term():
    terms = []

    def start(*args, **kwargs):
        t = PtyTerminal([sys.executable, APP] + list(args), **kwargs)
        terms.append(t)
        return t

    yield start
    for t in terms:
        t.close()


def stall_age(text):
    found = re.search(r"STALLED (\d+(?:\.\d)?)s", text)
    return float(found.group(1)) if found else None


def assert_restored(t):
    raw = bytes(t.raw)
    assert raw.count(SMCUP) >= 1 and raw.rfind(RMCUP) > raw.rfind(SMCUP), "alternate screen not left"
    assert raw.rfind(CURSOR_ON) > raw.rfind(CURSOR_OFF), "cursor left hidden"
    after = termios.tcgetattr(t.slave)
    assert after[3] == t.attrs_before[3], "local modes (echo, canonical) not restored"
    assert after[3] & termios.ECHO and after[3] & termios.ICANON


def test_screen_shows_columns_addresses_and_a_counting_stall(term):
    t = term()
    t.wait_text("STALLED")
    lines = t.lines
    header = next(l for l in lines if l.startswith("AURORA"))
    assert header.index("RDS") > 30
    assert any(re.search(r"127\.0\.10\.11 stale\s*\|127\.0\.10\.12\s*\|127\.0\.20\.21", l) for l in lines)
    assert "read_timeout: none" in t.text and "(7711, 21445)" in t.text
    first = stall_age(t.text)
    assert first is not None

    def older():
        t.pump()
        age = stall_age(t.text)
        return age is not None and age > first
    t.wait(older, 30, "the stall age to grow")
    assert "lab: aurora failover in progress" in t.text


@pytest.mark.slow
def test_resize_reflows_and_too_small_asks_for_more(term):
    t = term()
    t.wait_text("STALLED")
    assert "mysql-connector 9.4.0" not in t.text  # 19-column cells cut the patch version
    t.resize(30, 100)
    t.wait_text("mysql-connector 9.4.0")
    assert any(len(l.rstrip()) > 80 for l in t.lines)
    t.resize(14, 50)
    t.wait_text("need at least 75x16")
    assert "STALLED" not in t.text
    t.resize(24, 80)
    t.wait_text("STALLED")
    assert "too small" not in t.text
    t.send(b"q")
    assert t.wait_exit() == 0


def test_q_exits_promptly_and_restores_the_terminal(term):
    t = term()
    t.wait_text("STALLED")
    t.send(b"q")
    assert t.wait_exit() == 0  # a thread parked in recv() forever does not hold the exit
    assert b"summary: dashboard closed" in t.raw
    assert_restored(t)


def test_ctrl_c_exits_and_restores_the_terminal(term):
    t = term()
    t.wait_text("STALLED")
    t.send(b"\x03")  # the tty turns it into SIGINT for the foreground process group
    assert t.wait_exit() == 0
    assert b"summary: dashboard closed" in t.raw
    assert_restored(t)


def test_stop_event_ends_the_dashboard(term):
    t = term("--stop-after", "1.5")
    t.wait_text("STALLED")
    assert t.wait_exit(timeout=30) == 0
    assert b"summary: dashboard closed" in t.raw
    assert_restored(t)


def test_pause_help_and_confirmed_action(term):
    t = term()
    t.wait_text("STALLED")
    t.send(b"?")
    t.wait_text("show/hide this help")
    t.send(b"?")
    t.wait_text("(7711, 21445)")
    t.send(b"p")
    t.wait_text("PAUSED")
    t.send(b"f")
    t.wait_text("failover aurora? (y/n)")
    t.send(b"y")
    t.wait_text("failover aurora...")
    t.send(b"q")
    assert t.wait_exit() == 0
    assert b"actions f=1,pause=1" in t.raw


def test_frozen_display_without_a_pause_action(term):
    t = term("--no-pause-action")
    t.wait_text("STALLED")
    t.send(b"p")
    t.wait_text("PAUSED (display frozen")
    frozen = stall_age(t.text)
    t.wait_text("PAUSED (display frozen")
    # a few more refresh periods: the frame does not change
    for _ in range(10):
        t.pump()
        select.select([], [], [], 0.1)
    assert stall_age(t.text) == frozen
    t.send(b"p")

    def moving():
        t.pump()
        return "frozen" not in t.text and (stall_age(t.text) or 0) > frozen
    t.wait(moving, 30, "the display to resume")
    t.send(b"q")
    assert t.wait_exit() == 0


SGR_COLOR = re.compile(rb"\x1b\[[0-9;]*(?:3[0-7]|38;5;\d+)m")
SGR_REVERSE = re.compile(rb"\x1b\[[0-9;]*\b7m|\x1b\[7m")


def test_colour_and_no_color(term):
    coloured = term()
    coloured.wait_text("STALLED")
    assert SGR_COLOR.search(bytes(coloured.raw)), "no colour sequence in a colour terminal"
    mono = term(env={"NO_COLOR": "1"})
    mono.wait_text("STALLED")
    raw = bytes(mono.raw)
    assert not SGR_COLOR.search(raw), "colour sent despite NO_COLOR"
    assert b"\x1b[7m" in raw or re.search(rb"\x1b\[[0-9;]*;7m", raw), "STALLED not in reverse video"
    # the STALLED cell is reverse video on the pyte screen as well
    y = next(i for i, l in enumerate(mono.lines) if "STALLED" in l and i > 0)
    x = mono.lines[y].index("STALLED")
    assert mono.screen.buffer[y][x].reverse


def test_ascii_only_terminal_gets_ascii_sparklines(term):
    t = term(env={"LC_ALL": "C", "LANG": "C"})
    t.wait_text("STALLED")
    t.wait_text("#### 19/s")
    assert max(bytes(t.raw)) < 0x80, "non-ASCII bytes sent to a C-locale terminal"
    assert any(l.startswith("-- events -----") and len(l.rstrip()) == 80 for l in t.lines)
    t.send(b"q")
    assert t.wait_exit() == 0


def test_unknown_terminal_type_is_one_clear_line(term):
    t = term(env={"TERM": "no-such-terminal-xyz"})
    assert t.wait_exit() != 0
    assert b"use --plain" in t.raw
    assert b"Traceback" not in t.raw


@pytest.mark.slow
def test_the_demos_five_columns_at_80x24_and_120x30(term):
    """The demo's probes (aurora x3, rds x2) through the real dashboard: state, address and rows of each."""
    from dashboard_app import column_facts, screen_columns

    t = term("--demo")
    for rows, cols, min_rows in ((24, 80, 3), (30, 120, 5)):
        if cols != 80:
            t.resize(rows, cols)

        def every_column():
            t.pump()
            columns = screen_columns(t.lines)
            facts = [column_facts(c) for c in columns]
            return len(columns) == 5 and all(s and a and n >= min_rows for s, a, n in facts) and facts
        t.wait(every_column, 30, "five columns with state, address and %d rows at %dx%d" % (min_rows, cols, rows))
        assert "aws-wrapper" in t.text and "STALLED" in t.text
    t.send(b"q")
    assert t.wait_exit() == 0
    assert_restored(t)


def test_fiswatch_watch_paints_rows_and_address_from_a_real_server(mariadb):
    url = "a=mysql://%s@%s:%d/%s" % (mariadb.user, mariadb.host, mariadb.port, mariadb.database)
    t = PtyTerminal([sys.executable, "-m", "fiswatch", "watch", "--endpoint", url, "--backend", "pymysql",
                     "--backend", "mysql-connector:read_timeout=1"],
                    env={"FISWATCH_PASSWORD_A": mariadb.password})
    try:
        t.wait_text("OK")

        def rows_and_address():
            t.pump()
            lines = t.lines
            header = [l for l in lines if l.startswith("A ")]
            rows = [l for l in lines if re.match(r"\(\d+, \d+\)\s*\|\(\d+, \d+\)", l)]
            addresses = [l for l in lines if re.match(r"127\.0\.0\.1\s*\|127\.0\.0\.1", l)]
            return header and len(rows) >= 5 and addresses
        t.wait(rows_and_address, 60, "rows and addresses of both probes")
        assert "pymysql" in t.text and "mysql-connector" in t.text
        assert mariadb.password not in t.text
        t.send(b"q")
        assert t.wait_exit(timeout=30) == 0
        assert_restored(t)
        assert b"Traceback" not in t.raw
        assert mariadb.password.encode() not in t.raw
    finally:
        t.close()
