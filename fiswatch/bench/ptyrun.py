"""Run a command on a pseudo-terminal of a given size, drain (and optionally parse) its output."""
import fcntl
import os
import struct
import subprocess
import termios
import threading
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple


class PtyChild:
    """A child process whose stdin/stdout/stderr are a pty of `cols` x `rows`.

    A reader thread drains the terminal so the child never blocks on output; with
    `screen=True` the output is fed to a pyte screen and `watch(pattern)` records the
    first time the screen text matches.
    """

    def __init__(self, argv: Sequence[str], env: dict, cols: int = 200, rows: int = 60, screen: bool = False,
                 cwd: Optional[str] = None) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(env)
        env.setdefault("TERM", "xterm-256color")
        env["LINES"], env["COLUMNS"] = str(rows), str(cols)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(list(argv), stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.master = master
        self.bytes = 0
        self._screen: Any = None
        self._stream = None
        self._lock = threading.Lock()
        self._predicates: List[list] = []  # [predicate, first_time or None]
        if screen:
            import pyte

            self._screen = pyte.Screen(cols, rows)
            self._stream = pyte.ByteStream(self._screen)
        self._thread = threading.Thread(target=self._drain, name="pty-drain", daemon=True)
        self._thread.start()

    def watch(self, predicate: Callable[[str], bool]) -> int:
        with self._lock:
            self._predicates.append([predicate, None])
            return len(self._predicates) - 1

    def seen_at(self, index: int) -> Optional[float]:
        with self._lock:
            return self._predicates[index][1]

    def text(self) -> str:
        with self._lock:
            return "\n".join(self._screen.display) if self._screen is not None else ""

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            now = time.monotonic()
            self.bytes += len(data)
            if self._stream is not None:
                with self._lock:
                    self._stream.feed(data)
                    pending = [p for p in self._predicates if p[1] is None]
                    if pending:
                        text = "\n".join(self._screen.display)
                        for p in pending:
                            if p[0](text):
                                p[1] = now

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float) -> Tuple[int, int, Any]:
        """Wait for the child and return (pid, status, rusage) of it (its own CPU use)."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") \
                    else status
                self._close()
                return pid, status, usage
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError("%r did not end within %.0fs" % (self.proc.args[:4], timeout))  # type: ignore[index]
            time.sleep(0.02)

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, 9)
        except OSError:
            pass
        try:
            os.waitpid(self.proc.pid, 0)
        except ChildProcessError:
            pass
        self._close()

    def _close(self) -> None:
        try:
            os.close(self.master)
        except OSError:
            pass
