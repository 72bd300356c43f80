"""`fiswatch demo --exec COMMAND`: the user's own program runs in the lab beside the demo's probes.

COMMAND runs under `fiswatch lab exec` (so it resolves the lab's names and sees the same
failovers). Its output goes to a log file next to the run's record, and its lines show in
the dashboard's event log as `info` events (`exec: ...`): a line whose shape changes (an
error, a new address: counters and clocks do not count) at once, others once every 5 s;
the lab's password masked. When the demo stops, COMMAND gets SIGTERM (then SIGKILL after 5 s).
"""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from fiswatch.model import Event

LAB_EXEC_PREFIX = "fiswatch lab exec: "
EXIT_CANNOT, EXIT_NOEXEC, EXIT_NOTFOUND = 125, 126, 127  # lab exec's own (fiswatch/lab/exec.py)
HEARTBEAT = 5.0  # seconds: a line of unchanged shape reaches the event log this often
MIN_GAP = 0.2  # seconds between two `exec:` events, whatever the program prints
LINE_MAX = 160
_IP = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_DIGITS = re.compile(r"\d+")


def shape(line: str) -> Tuple[str, Tuple[str, ...]]:
    """A line without its counters and clocks, but with its addresses: a change is worth showing."""
    return _DIGITS.sub("#", _IP.sub("ip", line)), tuple(_IP.findall(line))


def parse_command(command: Optional[str], aws: bool = False) -> Optional[List[str]]:
    """argv of --exec COMMAND (None without it), or ValueError with one line saying what is wrong."""
    if command is None:
        if aws:
            raise ValueError("--exec-aws goes with --exec COMMAND")
        return None
    if aws:
        from fiswatch.lab.exec import ExecError
        from fiswatch.lab.exec_aws import require_moto

        try:
            require_moto()
        except ExecError as exc:
            raise ValueError(str(exc))
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ValueError("--exec %r: %s" % (command, exc))
    if not argv:
        raise ValueError("--exec needs a command, e.g. --exec 'python3 myapp.py'")
    if "/" not in argv[0] and shutil.which(argv[0]) is None:
        raise ValueError("--exec: %s: command not found" % argv[0])
    if "/" in argv[0] and not os.access(argv[0], os.X_OK):
        raise ValueError("--exec: %s: not an executable file" % argv[0])
    return argv


def mask(line: str, secret: Optional[str]) -> str:
    return line.replace(secret, "***") if secret else line


class ExecAlongside:
    """Demo hooks that also run COMMAND under `lab exec`; delegates the rest to the demo's hooks."""

    def __init__(self, inner: Any, argv: List[str], lab_dir: str, log_path: str, aws: bool = False) -> None:
        self.inner = inner
        self.argv = argv
        self.lab_dir = lab_dir
        self.log_path = log_path
        self.aws = aws
        self.proc: Optional[subprocess.Popen] = None
        self._reader: Optional[threading.Thread] = None
        self.failure: Optional[str] = None  # `lab exec` could not start COMMAND: why (the demo repeats it at the end)
        info = getattr(inner, "info", None)
        password = info.endpoints[0].password if info is not None and info.endpoints else None
        self._secret = password.reveal() if password is not None else None

    def attach(self, runner: Any, actions: Dict[str, Callable[[], None]], keys: List[Tuple[str, str]]) -> None:
        self.inner.attach(runner, actions, keys)
        command = [sys.executable, "-m", "fiswatch", "lab", "exec", "--dir", self.lab_dir]
        command += (["--aws"] if self.aws else []) + ["--"] + self.argv
        try:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            self.failure = "could not start `fiswatch lab exec` for %s: %s" % (self.argv[0], exc)
            runner.emit(Event.make("warning", message="exec: " + self.failure))
            return
        runner.emit(Event.make("info", message="exec: %s started (pid %d), output in %s"
                               % (shlex.join(self.argv)[:80], self.proc.pid, self.log_path)))
        self._reader = threading.Thread(target=self._read, args=(runner,), name="exec output", daemon=True)
        self._reader.start()

    def _read(self, runner: Any) -> None:
        try:
            self._copy_lines(runner)
        except (OSError, ValueError) as exc:  # the log cannot be written, or stop() closed the pipe
            runner.emit(Event.make("warning", message="exec: output no longer followed: %s" % exc))

    def _copy_lines(self, runner: Any) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        last_emit, last_shape, skipped, pending = 0.0, None, 0, None
        with open(self.log_path, "a", encoding="utf-8", errors="replace") as log:
            own = None  # what `lab exec` itself said (its lines, not COMMAND's, start with its name)
            for raw in proc.stdout:
                line = mask(raw.decode("utf-8", "replace").rstrip("\r\n"), self._secret)
                log.write("%s %s\n" % (time.strftime("%H:%M:%S"), line))
                log.flush()
                if line.startswith(LAB_EXEC_PREFIX):
                    own = line[len(LAB_EXEC_PREFIX):]
                    continue
                now, this_shape = time.monotonic(), shape(line)
                if (this_shape != last_shape and now - last_emit >= MIN_GAP) or now - last_emit >= HEARTBEAT:
                    more = " (+%d lines)" % skipped if skipped else ""
                    runner.emit(Event.make("info", message="exec: " + line[:LINE_MAX] + more))
                    last_emit, last_shape, skipped, pending = now, this_shape, 0, None
                else:
                    skipped, pending = skipped + 1, line
            if pending is not None:
                runner.emit(Event.make("info", message="exec: " + pending[:LINE_MAX]))
        code = proc.wait()
        if code in (EXIT_CANNOT, EXIT_NOEXEC, EXIT_NOTFOUND) and own is not None:
            self.failure = "`lab exec` could not start %s: %s" % (self.argv[0], own)
            runner.emit(Event.make("warning", message="exec: " + self.failure))
        elif own is not None:
            runner.emit(Event.make("info", message="exec: lab exec: " + own[:LINE_MAX]))
        if self.failure is None and not runner.stop_event.is_set():
            kind = "info" if code == 0 else "warning"
            runner.emit(Event.make(kind, message="exec: %s ended with exit code %d" % (self.argv[0], code)))

    def before_stop(self, runner: Any) -> None:
        self.inner.before_stop(runner)
        self.stop()

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # lab exec forwards it to COMMAND
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        if self._reader is not None:
            self._reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()
