"""Is the lab's daemon still there? A thread beside a run (`demo`, `watch --lab`) that says so when it is gone.

When the daemon dies (SIGKILL, OOM killer), its DNS server and proxies die with it: every probe
then reports a DNS timeout or a refused connection, which reads as a failover gone wrong. This
watch pings the daemon's control socket every PERIOD seconds and emits one `lab_daemon` event
(state `gone`) when it stops answering (what that does to the probes, whether its mariadbd were
left running, and the cure), and one (state `back`) if it answers again.

While it is gone the dashboard says so where the probes' trouble shows: `down()` is what every
lab column's header shows instead of its DNS answer, `status_lines()` a banner at the foot of
the event log. Both read one frozen `Liveness` that the watch thread swaps whole.
"""
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

from fiswatch import events as E

PERIOD = 2.0
DOWN = "lab daemon gone"
BANNER = "lab daemon gone: the lab's proxies and DNS stopped; this is not a failover"


@dataclass(frozen=True)
class Liveness:
    """The daemon answers (`up`) or not since `since`; `orphans`: its mariadbd left running."""

    up: bool = True
    since: float = 0.0
    orphans: int = 0


def gone_message(lab_dir: str, orphans: int) -> str:
    """One line: the daemon is gone, what that does to the probes, what is left and the cure."""
    left = ("; %d of its mariadbd still run: `fiswatch lab down --dir %s` ends them" % (orphans, lab_dir)
            if orphans else "; `fiswatch lab up --dir %s` starts a new one" % lab_dir)
    return ("lab daemon gone: its DNS server and proxies no longer answer, so every probe's DNS timeout or "
            "refused connection from now on is that, not a failover%s" % left)


def count_orphans(lab_dir: str) -> int:
    from fiswatch.lab.orphans import find_orphans

    try:
        return len(find_orphans(lab_dir))
    except Exception:  # noqa: BLE001 - never let the watch thread die
        return 0


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
    """start(emit, stop_event): a daemon thread; `emit` gets fiswatch Events. `down`, `status_lines`: for the View."""

    def __init__(self, lab_dir: str, period: float = PERIOD) -> None:
        self.lab_dir = os.path.abspath(lab_dir)
        self.period = period
        self.state = Liveness()
        self._thread: Optional[threading.Thread] = None

    def start(self, emit: Callable[[Any], None], stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self._run, args=(emit, stop), name="lab-liveness", daemon=True)
        self._thread.start()

    def down(self) -> str:
        """What a lab column's header says instead of its DNS answer ("" while the daemon answers)."""
        return "" if self.state.up else DOWN

    def status_lines(self) -> Tuple[str, ...]:
        state = self.state
        if state.up:
            return ()
        return (BANNER + " (since %s)" % time.strftime("%H:%M:%S", time.localtime(state.since)),
                "%d of its mariadbd still run: fiswatch lab down --dir %s ends them" % (state.orphans, self.lab_dir)
                if state.orphans else "fiswatch lab up --dir %s starts a new lab" % self.lab_dir)

    def _run(self, emit: Callable[[Any], None], stop: threading.Event) -> None:
        while not stop.wait(self.period):
            now = answers(self.lab_dir)
            if now == self.state.up:
                continue
            if stop.is_set():
                return
            orphans = 0 if now else count_orphans(self.lab_dir)
            self.state = Liveness(now, time.time(), orphans)
            if now:
                emit(E.lab_daemon("back", lab_dir=self.lab_dir, orphans=0,
                                  message="lab daemon answers again (%s)" % self.lab_dir))
            else:
                emit(E.lab_daemon("gone", lab_dir=self.lab_dir, orphans=orphans,
                                  message=gone_message(self.lab_dir, orphans)))
