"""Seconds_Behind_Source of the lab's Multi-AZ cluster readers: the value their SHOW REPLICA STATUS answers.

A thread in the daemon asks each Multi-AZ instance's server `SHOW SLAVE STATUS` (root, unix
socket) every POLL seconds and keeps one number per instance, which the instance's proxy puts in
the `Seconds_Behind_Source` column of its SHOW REPLICA STATUS answer (maz_answers.py):

- the SQL thread runs and MariaDB gives `Seconds_Behind_Master`: that number (MariaDB's own lag);
- MariaDB gives none (its SQL thread is stopped, as `lab failover maz --lag` does, or a user's
  `STOP SLAVE SQL_THREAD`) but the reader holds received transactions it has not applied: the
  seconds since it was last seen with nothing left to apply (the lab's assumption: MySQL counts
  from the oldest unapplied transaction's commit time; with a steady writer the two agree);
- otherwise NULL, as MySQL answers when its SQL thread is not running, and on the writer (no row).
"""
import threading
import time
from typing import Any, Callable, Dict, Mapping, Optional

from fiswatch.lab import layout as L
from fiswatch.lab.maz import applied_all, slave_status

POLL = 0.25  # seconds between two looks at every instance


def lag_seconds(status: Optional[Mapping[str, Any]], now: float, caught_up_at: float) -> Optional[int]:
    """What Seconds_Behind_Source says for one SHOW SLAVE STATUS row (None: no row, NULL).

    >>> row = {"Slave_SQL_Running": "Yes", "Seconds_Behind_Master": 3}
    >>> lag_seconds(row, 100.0, 90.0), lag_seconds({}, 100.0, 90.0)
    (3, None)
    >>> stopped = {"Slave_SQL_Running": "No", "Seconds_Behind_Master": None, "Master_Log_File": "b.1",
    ...            "Relay_Master_Log_File": "b.1", "Read_Master_Log_Pos": 900, "Exec_Master_Log_Pos": 400}
    >>> lag_seconds(stopped, 100.0, 92.5), lag_seconds(dict(stopped, Exec_Master_Log_Pos=900), 100.0, 92.5)
    (7, None)
    """
    if not status:
        return None
    behind = status.get("Seconds_Behind_Master")
    if behind is not None and status.get("Slave_SQL_Running") == "Yes":
        return int(behind)
    if not applied_all(status):
        return int(max(0.0, now - caught_up_at))
    return None


class ReplicaLag:
    """The poller: `of(name)` is the callable an instance's answers ask for its current lag."""

    def __init__(self, layout: L.Layout) -> None:
        self.layout = layout
        self.specs = [s for s in layout.instances if s.cluster == "maz"]
        self.lag: Dict[str, Optional[int]] = {}  # replaced whole by the poller, read by the proxies
        self.caught_up_at: Dict[str, float] = {}
        self.stopping = threading.Event()
        self.thread: Optional[threading.Thread] = None

    def start(self) -> "ReplicaLag":
        if self.specs:
            self.thread = threading.Thread(target=self.run, name="lab-maz-lag", daemon=True)
            self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(10)

    def of(self, name: str) -> Callable[[], Optional[int]]:
        return lambda: self.lag.get(name)

    def run(self) -> None:
        while not self.stopping.is_set():
            self.poll_once()
            self.stopping.wait(POLL)

    def poll_once(self) -> None:
        lag: Dict[str, Optional[int]] = {}
        for spec in self.specs:
            status = slave_status(self.layout, spec, timeout=2.0)
            now = time.time()
            if status is None or applied_all(status):
                self.caught_up_at[spec.name] = now
            lag[spec.name] = lag_seconds(status, now, self.caught_up_at.get(spec.name, now))
        self.lag = lag
