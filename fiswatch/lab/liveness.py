"""Is the lab's daemon still there? A thread beside a run (the demo) that says so when it is gone.

When the daemon dies (SIGKILL, OOM killer), its DNS server and proxies die with it: every probe
then reports a DNS timeout or a refused connection, which reads as a failover gone wrong. This
watch pings the daemon's control socket every PERIOD seconds and emits one `warning` event when
it stops answering ("lab daemon gone", and whether its mariadbd were left running, with the
cure), and one `info` event if it answers again.
"""
import os
import threading
from typing import Any, Callable, Optional

from fiswatch import events as E

PERIOD = 2.0


def gone_message(lab_dir: str) -> str:
    """One line: the daemon is gone, what that does to the probes, what is left and the cure."""
    from fiswatch.lab.orphans import find_orphans

    orphans = find_orphans(lab_dir)
    left = ("; %d of its mariadbd still run: `fiswatch lab down --dir %s` ends them" % (len(orphans), lab_dir)
            if orphans else "; `fiswatch lab up --dir %s` starts a new one" % lab_dir)
    return ("lab daemon gone: its DNS server and proxies no longer answer, so every probe's DNS timeout or "
            "refused connection from now on is that, not a failover%s" % left)


def answers(lab_dir: str) -> bool:
    from fiswatch.lab.control import ControlError, request
    from fiswatch.lab.layout import CONTROL_SOCKET

    try:
        request(os.path.join(lab_dir, CONTROL_SOCKET), "ping", timeout=5)
    except ControlError as exc:
        if exc.unreachable:
            return False
        from fiswatch.lab.orphans import lock_holder

        return lock_holder(lab_dir) is not None  # slow under load is not gone: its lock says whether it lives
    except Exception:  # noqa: BLE001 - never let the watch thread die
        return True
    return True


class LabLiveness:
    """start(emit, stop_event): a daemon thread; `emit` gets fiswatch Events."""

    def __init__(self, lab_dir: str, period: float = PERIOD) -> None:
        self.lab_dir = os.path.abspath(lab_dir)
        self.period = period
        self._thread: Optional[threading.Thread] = None

    def start(self, emit: Callable[[Any], None], stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self._run, args=(emit, stop), name="lab-liveness", daemon=True)
        self._thread.start()

    def _run(self, emit: Callable[[Any], None], stop: threading.Event) -> None:
        up = True
        while not stop.wait(self.period):
            now = answers(self.lab_dir)
            if now == up:
                continue
            if stop.is_set():
                return
            up = now
            if up:
                emit(E.info("lab daemon answers again (%s)" % self.lab_dir))
            else:
                emit(E.warning(gone_message(self.lab_dir)))
