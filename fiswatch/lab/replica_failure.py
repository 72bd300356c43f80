"""Aurora's `ALTER SYSTEM SIMULATE n PERCENT READ REPLICA FAILURE [TO ALL | TO "replica"] FOR INTERVAL q unit`.

AWS (AUG "Testing an Aurora Replica failure"): sent to the writer, it makes replication to all readers,
or to the one named, fail for the interval. The lab, for the interval:
  - stops replication into each reader named (`STOP SLAVE IO_THREAD`): the reader keeps serving reads,
    older and older, and has not heard of anything the writer commits meanwhile;
  - writes each such reader's growing lag (milliseconds since the failure began) into
    REPLICA_LAG_IN_MILLISECONDS of the topology table on the writer, as Aurora's replica_host_status
    shows it (lab/topology.py); the readers themselves do not get these rows until replication resumes;
  - then starts replication again (the reader catches up in a moment) and sets the lag back to 0.
The lab's assumptions, where AWS does not say: any percentage above 0 stops replication outright (the lab
cannot fail part of the replication stream); the interval is at most 10 minutes; the simulation holds the
lab's failover lock, so a failover, crash or reboot is refused until it ends (a failover would otherwise
wait for a reader that cannot catch up).
"""
import os
import re
import threading
import time
from typing import Callable, List, Optional, Tuple

from fiswatch.lab import aurora
from fiswatch.lab import layout as L

STATEMENT = re.compile(
    r"^\s*ALTER\s+SYSTEM\s+SIMULATE\s+(\d+(?:\.\d+)?)\s+PERCENT\s+READ\s+REPLICA\s+FAILURE"
    r"(?:\s+TO\s+(?:(ALL)|[\"'`]([^\"'`]+)[\"'`]))?\s+FOR\s+INTERVAL\s+(\d+)\s+(SECOND|MINUTE)S?\s*;?\s*$", re.I)
MAX_INTERVAL = 600.0
TICK = 1.0


def parse(text: str) -> Optional[Tuple[float, Optional[str], float]]:
    """(percent, reader name or None for all, seconds), or None when the text is not this statement.

    >>> parse('ALTER SYSTEM SIMULATE 100 PERCENT READ REPLICA FAILURE TO "fiswatch-lab-instance-2" FOR INTERVAL 2 MINUTE')
    (100.0, 'fiswatch-lab-instance-2', 120.0)
    >>> parse("alter system simulate 50 percent read replica failure for interval 10 second;")
    (50.0, None, 10.0)
    >>> parse("ALTER SYSTEM SIMULATE 100 PERCENT DISK FAILURE FOR INTERVAL 3 SECOND") is None
    True
    """
    match = STATEMENT.match(text)
    if not match:
        return None
    percent, _all, name, count, unit = match.groups()
    return float(percent), name, float(count) * (60.0 if unit.upper() == "MINUTE" else 1.0)


def check(percent: float, reader: Optional[str], seconds: float, readers: List[str]) -> str:
    """'' when the request can run, else the one line the client gets as ERROR 1105."""
    if not 0.0 < percent <= 100.0:
        return "READ REPLICA FAILURE: PERCENT must be above 0 and at most 100, got %g" % percent
    if not 0.0 < seconds <= MAX_INTERVAL:
        return "READ REPLICA FAILURE: the lab simulates 1 second to %d minutes, got %g s" % (MAX_INTERVAL / 60,
                                                                                              seconds)
    if reader is not None and reader not in readers:
        return "READ REPLICA FAILURE: no reader %r in this cluster (readers: %s)" % (reader, ", ".join(readers))
    return ""


def run(layout: L.Layout, writer: L.InstanceSpec, readers: List[L.InstanceSpec], seconds: float,
        log: Callable[[str], None], stop: Optional[threading.Event] = None) -> None:
    """The failure itself (a thread of the daemon), replication already stopped; always resumes it at the end."""
    names = ", ".join(r.name for r in readers)
    log("lab: READ REPLICA FAILURE for %gs: replication to %s stopped, its lag grows" % (seconds, names))
    t0 = time.monotonic()
    try:
        stopper = stop or threading.Event()
        while True:
            elapsed = time.monotonic() - t0
            if elapsed >= seconds:
                break
            _set_lag(layout, writer, readers, elapsed * 1000.0)
            if stopper.wait(min(TICK, seconds - elapsed)):
                break
    except Exception as exc:  # noqa: BLE001
        log("lab: READ REPLICA FAILURE: %s: %s" % (type(exc).__name__, exc))
    finally:
        start_replication(layout, readers, log)
        try:
            _set_lag(layout, writer, readers, 0.0)
        except Exception:  # noqa: BLE001
            pass
        log("lab: READ REPLICA FAILURE over after %.1fs: replication to %s resumed" % (time.monotonic() - t0, names))


def stop_replication(layout: L.Layout, readers: List[L.InstanceSpec]) -> None:
    from fiswatch.lab.mariadb import sql

    for reader in readers:
        sql(layout.server_socket(reader), ["STOP SLAVE IO_THREAD"], timeout=2.0)


def start_replication(layout: L.Layout, readers: List[L.InstanceSpec], log: Callable[[str], None]) -> None:
    from fiswatch.lab.mariadb import sql

    for reader in readers:
        try:
            sql(layout.server_socket(reader), ["START SLAVE IO_THREAD"])
        except Exception as exc:  # noqa: BLE001
            log("lab: READ REPLICA FAILURE: could not resume replication to %s: %s" % (reader.name, exc))


def _set_lag(layout: L.Layout, writer: L.InstanceSpec, readers: List[L.InstanceSpec], lag_ms: float) -> None:
    from fiswatch.lab.mariadb import sql

    sql(layout.server_socket(writer), [("UPDATE " + aurora.TOPOLOGY_TABLE + " SET REPLICA_LAG_IN_MILLISECONDS = %s "
                                        "WHERE SERVER_ID = %s", (round(lag_ms), aurora.server_id(r.index)))
                                       for r in readers])


def sql_simulate(layout: L.Layout, role_of: Callable[[str], Optional[str]],
                 log: Callable[[str], None]) -> Callable[[str, str], Optional[str]]:
    """For lab/wire/alter_system.py in the daemon: simulate(instance, text) is None when `text` is not this
    statement; else it starts the failure in a thread and returns '', or the one line the client gets as
    ERROR 1105."""
    def simulate(instance: str, text: str) -> Optional[str]:
        from fiswatch.lab.crash import CrashError, take_lock

        parsed = parse(text)
        if parsed is None:
            return None
        if role_of(instance) != "writer":
            return "READ REPLICA FAILURE is simulated from the writer: send it to the cluster endpoint"
        percent, reader, seconds = parsed
        readers = [s for s in layout.cluster("aurora") if s.name != instance and role_of(s.name) == "reader"]
        why = check(percent, reader, seconds, [r.name for r in readers])
        if why:
            return why
        try:
            fd = take_lock(layout.dir)
        except (CrashError, OSError) as exc:
            return str(exc)
        chosen = [r for r in readers if reader is None or r.name == reader]
        try:  # before the client's OK, so what it writes next is not replicated (a few ms on the proxies' loop)
            stop_replication(layout, chosen)
        except Exception as exc:  # noqa: BLE001
            start_replication(layout, chosen, log)
            os.close(fd)
            return "READ REPLICA FAILURE could not stop replication: %s" % exc

        def work() -> None:
            try:
                run(layout, L.spec_by_name(instance), chosen, seconds, log)
            finally:
                os.close(fd)

        threading.Thread(target=work, name="lab-read-replica-failure", daemon=True).start()
        return ""

    return simulate


__all__ = ["parse", "check", "run", "sql_simulate", "MAX_INTERVAL"]
