"""`fiswatch demo --exec COMMAND`: the user's own program runs in the lab beside the demo's probes.

COMMAND runs under `fiswatch lab exec` (so it resolves the lab's names and sees the same
failovers). Its output goes to a log file next to the run's record, and its lines show in
the dashboard's event log as `info` events (`exec: ...`): a line whose shape changes (an
error, a new address: counters and clocks do not count) at once, others once every 5 s;
the lab's password masked. When the demo stops, COMMAND gets SIGTERM (then SIGKILL after 5 s).
The lab's proxies measure COMMAND from the wire (lab/wire/follow.py): its state changes
(writing / no acknowledged write for N s / writes refused on a demoted writer) reach the event
log, and its writes reach the record, the end summary and `fiswatch report` as a row.
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

from fiswatch import events as E
from fiswatch.lab.exec_error import EXIT_CANNOT, EXIT_NOEXEC, EXIT_NOTFOUND  # lab exec's own

LAB_EXEC_PREFIX = "fiswatch lab exec: "
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
        from fiswatch.lab.exec_error import ExecError
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


def exec_argv_for_watch(command: str, lab: Optional[str]) -> List[str]:
    """`watch --exec COMMAND`: its argv, or UsageError (one line, exit 2) when it is bad or --lab is missing."""
    from fiswatch.exits import UsageError

    if lab is None:
        raise UsageError("--exec runs your program in the local lab: give --lab too (or use `fiswatch demo --exec`)")
    try:
        argv = parse_command(command)
    except ValueError as exc:
        raise UsageError(str(exc))
    assert argv is not None
    return argv


class LabOnly:
    """The hooks of a `watch --lab` run: no keys, no jobs; the lab's password to mask in the output, and the
    lab's liveness (lab/liveness.py: the columns and a banner say when its daemon is gone)."""

    keys: Tuple[Tuple[str, str], ...] = ()

    def __init__(self, info: Any, lab_dir: str) -> None:
        from fiswatch.lab.liveness import LabLiveness

        self.info = info
        self.actions: Dict[str, Callable[[], None]] = {}
        self.liveness = LabLiveness(lab_dir)
        self.down, self.status_lines = self.liveness.down, self.liveness.status_lines

    def start(self, runner: Any) -> None:
        self.liveness.start(runner.emit, runner.stop_event)

    def before_stop(self, runner: Any) -> None:
        pass


def watch_hooks(argv: Optional[List[str]], lab: str, endpoints: Any, record: Optional[str]) -> Any:
    """`watch --lab`: the lab's liveness; with `--exec` (argv), the program beside the probes, as demo runs
    it, its log next to the record."""
    from types import SimpleNamespace

    from fiswatch.lab import api

    lab_dir = lab or api.default_lab_dir()
    inner = LabOnly(SimpleNamespace(endpoints=list(endpoints)), lab_dir)
    if argv is None:
        return inner
    if record:
        log_path = os.path.splitext(record)[0] + "-exec.log"
    else:
        runs = os.path.join(lab_dir, "runs")
        os.makedirs(runs, exist_ok=True)
        log_path = os.path.join(runs, time.strftime("watch-%Y%m%d-%H%M%S-exec.log"))
    return ExecAlongside(inner, argv, lab_dir, log_path)


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
        self.follower: Any = None
        self.failure: Optional[str] = None  # `lab exec` could not start COMMAND: why (the demo repeats it at the end)
        from fiswatch.lab.wire.follow import ProgramBoard

        self.board = ProgramBoard(os.path.basename(argv[0]))  # the program's column, published by the follower
        info = getattr(inner, "info", None)
        password = info.endpoints[0].password if info is not None and info.endpoints else None
        self._secret = password.reveal() if password is not None else None

    @property
    def keys(self) -> Tuple[Tuple[str, str], ...]:
        return tuple(self.inner.keys)

    @property
    def down(self) -> Callable[[], str]:
        return self.inner.down

    @property
    def status_lines(self) -> Callable[[], Tuple[str, ...]]:
        return self.inner.status_lines

    @property
    def programs(self) -> Tuple[Any, ...]:
        return (self.board,)

    @property
    def actions(self) -> Dict[str, Callable[[], None]]:
        return dict(self.inner.actions)

    def start(self, runner: Any) -> None:
        self.inner.start(runner)
        command = [sys.executable, "-m", "fiswatch", "lab", "exec", "--dir", self.lab_dir]
        command += (["--aws"] if self.aws else []) + ["--"] + self.argv
        try:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            self.failure = "could not start `fiswatch lab exec` for %s: %s" % (self.argv[0], exc)
            runner.emit(E.warning("exec: " + self.failure))
            return
        runner.emit(E.info("exec: %s started (pid %d), output in %s"
                           % (shlex.join(self.argv)[:80], self.proc.pid, self.log_path)))
        self._reader = threading.Thread(target=self._read, args=(runner,), name="exec output", daemon=True)
        self._reader.start()
        from fiswatch.lab.wire.follow import WireFollower

        self.follower = WireFollower(os.path.abspath(self.lab_dir), self.proc.pid, os.path.basename(self.argv[0]),
                                     runner.emit, self.board).start()

    def _read(self, runner: Any) -> None:
        try:
            self._copy_lines(runner)
        except (OSError, ValueError) as exc:  # the log cannot be written, or stop() closed the pipe
            runner.emit(E.warning("exec: output no longer followed: %s" % exc))

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
                    runner.emit(E.info("exec: " + line[:LINE_MAX] + more))
                    last_emit, last_shape, skipped, pending = now, this_shape, 0, None
                else:
                    skipped, pending = skipped + 1, line
            if pending is not None:
                runner.emit(E.info("exec: " + pending[:LINE_MAX]))
        code = proc.wait()
        if code in (EXIT_CANNOT, EXIT_NOEXEC, EXIT_NOTFOUND) and own is not None:
            self.failure = "`lab exec` could not start %s: %s" % (self.argv[0], own)
            runner.emit(E.warning("exec: " + self.failure))
        elif own is not None:
            runner.emit(E.info("exec: lab exec: " + own[:LINE_MAX]))
        if self.failure is None and not runner.stop_event.is_set():
            say = E.info if code == 0 else E.warning
            runner.emit(say("exec: %s ended with exit code %d" % (self.argv[0], code)))

    def before_stop(self, runner: Any) -> None:
        self.inner.before_stop(runner)
        stopped_at = time.time() if self.proc is not None and self.proc.poll() is None else None
        self.stop()
        if self.follower is not None:  # the program's writes into the record, before the run's summary
            self.follower.stop(stopped_at)

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
