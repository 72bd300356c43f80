"""The lab fails over by itself when a writer's engine dies outside its control, as Aurora and
RDS Multi-AZ do.

A thread of the daemon looks at each cluster's writer (aurora) and primary (rds) once a second.
When its mariadbd is not running although the lab did not stop it (a `kill -9`, the OOM killer,
a crash), and it has not come back within the grace period (`Layout.writer_grace`, default
10 s; 0 turns this off), the watchdog runs the cluster's failover (fast profile) from its own
thread, exactly as `fiswatch lab failover` would: the reader/standby is promoted at once
(failover.py: a dead writer is never waited for) and the dead one rejoins as a reader,
restarted and re-copied. A server the lab kills or restarts on purpose (a `--crash` failover,
a rejoin) is never taken for dead: it is marked `intended` while it is down. While any
failover runs (its lock is held), the watchdog waits.
"""
import threading
import time
from typing import Any, Callable, Dict, Optional

from fiswatch.lab.lablock import is_locked

POLL = 1.0


class WriterWatch:
    """Watches the writers of a running lab (`lab` is the daemon's Lab: servers, roles, intended)."""

    def __init__(self, lab: Any, log: Callable[[str], None]) -> None:
        self.lab = lab
        self.log = log
        self.grace = float(lab.layout.writer_grace)
        self._dead_since: Dict[str, float] = {}
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "WriterWatch":
        if self.grace > 0:
            self._thread = threading.Thread(target=self._run, name="lab-writer-watch", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self.lab.stopping.wait(POLL):
            for cluster in ("aurora", "rds"):
                try:
                    self.check(cluster, time.monotonic())
                except Exception as exc:  # noqa: BLE001 - never let the watch die; say why in lab.log
                    self.log("lab: writer watch (%s): %s: %s" % (cluster, type(exc).__name__, exc))

    def check(self, cluster: str, now: float) -> None:
        up_role = "writer" if cluster == "aurora" else "primary"
        spec = self.lab.role_holder(cluster, up_role)
        server = self.lab.servers.get(spec.name)
        if server is None or server.alive() or spec.name in self.lab.intended_down or self._failover_running():
            self._dead_since.pop(cluster, None)
            return
        since = self._dead_since.setdefault(cluster, now)
        if since == now:
            self.log("lab: the %s %s died outside the lab's control (mariadbd exited with %s): failing over "
                     "if it is not back within %.0fs" % (up_role, spec.name, server.proc.returncode
                                                         if server.proc is not None else "?", self.grace))
            return
        if now - since < self.grace:
            return
        self._dead_since.pop(cluster, None)
        self.failover(cluster, spec.name, now - since)

    def _failover_running(self) -> bool:
        return is_locked(self.lab.layout.dir)

    def failover(self, cluster: str, name: str, dead_for: float) -> None:
        from fiswatch.lab.failover import FailoverError, make_emitter, run_failover

        lab_dir = self.lab.layout.dir
        self.log("lab: %s dead for %.0fs: automatic failover of %s" % (name, dead_for, cluster))
        emit = make_emitter(lab_dir, cluster, False, None)
        try:
            run_failover(lab_dir, cluster, emit, profile="fast", reason="automatic: %s dead for %.0fs"
                         % (name, dead_for))
        except FailoverError as exc:
            self.log("lab: automatic failover of %s: %s" % (cluster, exc))


__all__ = ["WriterWatch", "POLL"]
