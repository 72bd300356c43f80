"""How a run is asked to end (signals) and how it ends once, even with its main thread stuck.

Python runs signal handlers in the main thread only; the dashboard's main thread can be
stuck inside curses writing to a terminal that takes no output. So signals also reach a
relay thread (a wakeup fd) that sets the run's stop event at once, and `EndOnce` lets a
rescue thread end the run when the main thread does not get there in time.
"""
import os
import threading
from typing import Any, Callable, Dict

_RELAY: Dict[str, Any] = {}  # the signal relay thread's write fd and the stop event it sets


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM, SIGHUP (a closed SSM session) and SIGINT end the run like q: terminal restored, summary kept.

    Python runs signal handlers in the main thread only, between bytecodes: a main thread
    blocked writing to a terminal that takes no output would never run them. So the signal
    numbers also go through a wakeup fd to a small thread that sets `stop` at once.
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    wanted = set()
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda signum, frame: stop.set())
            wanted.add(int(getattr(signal, name)))
    wanted.add(int(signal.SIGINT))
    _RELAY["stop"] = stop
    if _RELAY.get("fd") is not None:
        return  # one relay per process; it now sets this run's stop event
    try:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except (OSError, ValueError):  # pragma: no cover - no wakeup fd: the handlers above still work
        return
    _RELAY["fd"] = write_fd

    def relay() -> None:
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:  # pragma: no cover
                return
            if not data:  # pragma: no cover
                return
            target = _RELAY.get("stop")
            if target is not None and wanted.intersection(data):
                target.set()

    threading.Thread(target=relay, name="signals", daemon=True).start()


STUCK_SECONDS = 2.0  # the main thread may take this long to notice the end before the rescue ends the run


class EndOnce:
    """The end of a run happens once, from the main thread or, if the terminal holds it, the rescue thread.

    The dashboard paints from the main thread; a terminal that stops taking output (flow
    control, a stalled SSM channel) blocks it inside curses, where no signal handler runs.
    Then, STUCK_SECONDS after the run was asked to end (q, --duration, SIGTERM), a rescue
    thread ends the run itself (record, verification, summary into the record), restores
    the terminal's modes as far as it can without writing to it, and leaves the process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claimed = threading.Event()

    def claim(self) -> bool:
        with self._lock:
            if self._claimed.is_set():
                return False
            self._claimed.set()
            return True

    @staticmethod
    def park() -> None:
        threading.Event().wait()

    def rescue_when_stuck(self, stop: threading.Event, finish: Callable[[bool], int]) -> None:
        saved = _tty_modes(1)

        def rescue() -> None:
            stop.wait()
            if self._claimed.wait(STUCK_SECONDS) or not self.claim():
                return
            if saved is not None:
                _restore_tty_modes(1, saved)
            code = finish(True)
            os._exit(code)

        threading.Thread(target=rescue, name="end-of-run rescue", daemon=True).start()


def isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _tty_modes(fd: int):
    import termios

    try:
        return termios.tcgetattr(fd)
    except (termios.error, OSError):
        return None


def _restore_tty_modes(fd: int, modes) -> None:
    import termios

    try:
        termios.tcsetattr(fd, termios.TCSANOW, modes)  # TCSANOW: no wait for the blocked output
    except (termios.error, OSError):
        pass
