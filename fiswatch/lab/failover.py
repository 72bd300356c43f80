"""Failover scenarios, driven from the caller's thread against a running lab.

Talks to the daemon (proxies, DNS, processes) over its control socket and to the
servers as root over their unix sockets. Each step is emitted as a `lab` Event, in the
order a client meets it.
"""
import fcntl
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

from fiswatch.lab import layout as L
from fiswatch.lab.control import request
from fiswatch.lab.daemon import log_line, replicate, wait_caught_up
from fiswatch.lab.mariadb import root_connect, sql


@dataclass(frozen=True)
class Profile:
    """Seconds after the start at which each step happens (a step never runs early)."""

    name: str
    promote_at: float  # writer fenced until then
    flip_at: float  # DNS answers the new writer from then on
    empty_for: float  # DNS answers empty/NXDOMAIN for this long before the flip
    flap_for: float  # after the flip, answers alternate old/new for this long
    rejoin_at: float  # the old writer is back as a read-only reader


PROFILES = {
    ("aurora", "fast"): Profile("fast", promote_at=1.0, flip_at=2.0, empty_for=1.0, flap_for=0.0, rejoin_at=2.5),
    ("aurora", "realistic"): Profile("realistic", promote_at=8.0, flip_at=15.0, empty_for=3.0, flap_for=20.0,
                                     rejoin_at=20.0),
    ("rds", "fast"): Profile("fast", promote_at=1.5, flip_at=2.5, empty_for=0.0, flap_for=0.0, rejoin_at=3.0),
    ("rds", "realistic"): Profile("realistic", promote_at=20.0, flip_at=30.0, empty_for=0.0, flap_for=0.0,
                                  rejoin_at=45.0),
}

Emit = Callable[..., None]  # emit(step, detail, **extra)


class FailoverError(RuntimeError):
    """A failover could not run; one line."""


def _sleep_until(t0: float, offset: float) -> None:
    delay = t0 + offset - time.time()
    if delay > 0:
        time.sleep(delay)


def _password(layout: L.Layout) -> str:
    with open(layout.credentials_file) as fh:
        return json.load(fh)["replication"]["password"]


def _roles(state: Dict[str, Any]) -> Dict[str, str]:
    return {i["name"]: i["role"] for i in state["instances"]}


def _promote(layout: L.Layout, new: L.InstanceSpec) -> str:
    """Stop replication on `new` and open it for writes; returns its GTID position before."""
    pos = sql(layout.server_socket(new), ["STOP SLAVE", "SELECT @@gtid_binlog_pos"])[0][0]
    sql(layout.server_socket(new), ["RESET SLAVE ALL", "SET GLOBAL read_only=0"])
    return pos


def _end_client_sessions(layout: L.Layout, spec: L.InstanceSpec) -> int:
    """Close the client sessions still open on a demoted writer, as the instance's restart does.

    A fenced client may have left a transaction open (its INSERT arrived, its COMMIT never
    will); `SET GLOBAL read_only=1` would wait for it forever. The clients do not notice:
    their side of the proxy stays fenced, silent.
    """
    socket_path = layout.server_socket(spec)
    rows = sql(socket_path, [("SELECT id FROM information_schema.processlist WHERE user = %s", (L.CLIENT_USER,))])
    closed = 0
    for (thread_id,) in rows:
        try:
            sql(socket_path, ["KILL %d" % int(thread_id)])
            closed += 1
        except Exception:  # already gone
            pass
    return closed


def _resync_from(layout: L.Layout, old: L.InstanceSpec, new: L.InstanceSpec) -> str:
    """After a crash the old writer may hold writes the new one never got: copy the table
    from a consistent snapshot of the new writer and return the GTID position to replicate from."""
    src = root_connect(layout.server_socket(new))
    try:
        with src.cursor() as cur:
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
            status = dict((k.lower(), v) for k, v in cur.fetchall())
            cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (status["binlog_snapshot_file"],
                                                           int(status["binlog_snapshot_position"])))
            pos = cur.fetchone()[0] or ""
            cur.execute("SELECT id, value FROM %s.%s ORDER BY id" % (L.DATABASE, L.TABLE))
            rows = cur.fetchall()
            cur.execute("COMMIT")
    finally:
        src.close()
    dst = root_connect(layout.server_socket(old))
    try:
        with dst.cursor() as cur:
            cur.execute("SET sql_log_bin=0")
            cur.execute("DELETE FROM %s.%s" % (L.DATABASE, L.TABLE))
            for start in range(0, len(rows), 1000):
                cur.executemany("INSERT INTO %s.%s (id, value) VALUES (%%s, %%s)" % (L.DATABASE, L.TABLE),
                                rows[start:start + 1000])
    finally:
        dst.close()
    return pos


CRASH_LAG = 1.0  # seconds of replication lag a crash failover injects before killing the writer


def run_failover(lab_dir: str, target: str, emit: Emit, profile: str = "fast", crash: bool = False,
                 dns_style: str = "empty", timings: Optional[Profile] = None) -> Dict[str, float]:
    """Run one failover of `target` ('aurora' | 'rds'); returns outage_start / outage_end."""
    if target not in ("aurora", "rds"):
        raise FailoverError("unknown failover target %r: use aurora or rds" % target)
    if (target, profile) not in PROFILES and timings is None:
        raise FailoverError("unknown failover profile %r: use fast or realistic" % profile)
    if dns_style not in ("empty", "nxdomain"):
        raise FailoverError("unknown DNS style %r: use empty or nxdomain" % dns_style)
    plan = timings or PROFILES[(target, profile)]
    state = request(os.path.join(lab_dir, L.CONTROL_SOCKET), "state")
    layout = L.Layout.from_dict(state["layout"])
    ctl = layout.control_socket
    roles = _roles(state)
    up_role, down_role = ("writer", "reader") if target == "aurora" else ("primary", "standby")
    specs = L.cluster_specs(target)
    old = next(s for s in specs if roles[s.name] == up_role)
    new = next(s for s in specs if roles[s.name] == down_role)
    endpoint = L.ENDPOINT_NAMES[target]

    lock_fd = os.open(os.path.join(layout.dir, "failover.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise FailoverError("a failover already runs in %s: wait for it to finish" % layout.dir)
        password = _password(layout)
        lag_for = CRASH_LAG if crash else 0.0
        t0 = time.time() + lag_for  # the outage starts when the writer is fenced
        emit("start", "%s failover (%s%s): %s -> %s" % (target, plan.name, ", crash" if crash else "",
                                                         old.name, new.name), outage_start=t0)
        if crash:
            # asynchronous replication falls behind: what the writer acknowledges from now on
            # exists only on the writer, and the crash below loses it
            sql(layout.server_socket(new), ["STOP SLAVE IO_THREAD"])
            emit("lag", "replication to %s paused for %.1fs: writes acknowledged now exist only on %s"
                 % (new.name, lag_for, old.name))
            time.sleep(max(0.0, t0 - time.time()))
        request(ctl, "proxy", instance=old.name, mode="blackhole")
        if crash:
            request(ctl, "kill", instance=old.name)
            emit("blackhole", "%s fenced and killed (SIGKILL): its connections hang, writes not yet "
                 "replicated are lost" % old.name)
        else:
            emit("blackhole", "%s fenced: open connections hang, new ones are accepted and hang" % old.name)

        _sleep_until(t0, plan.promote_at)
        if crash:
            lag = "no catch-up"
        else:
            wait_caught_up(layout, new, old, timeout=60)
            lag = "caught up"
        pos = _promote(layout, new)
        request(ctl, "roles", roles={new.name: up_role, old.name: down_role})
        emit("promote", "%s promoted to %s (%s, GTID %s); read_only off" % (new.name, up_role, lag, pos))

        new_value = new.dns_name if target == "aurora" else layout.proxy_address(new)[0]
        old_value = old.dns_name if target == "aurora" else layout.proxy_address(old)[0]
        kind = "CNAME" if target == "aurora" else "A"
        if plan.empty_for > 0:
            _sleep_until(t0, plan.flip_at - plan.empty_for)
            request(ctl, "dns_blank", name=endpoint, style=dns_style)
            emit("dns_empty", "%s answers %s for %.0fs" % (endpoint, "NXDOMAIN" if dns_style == "nxdomain"
                                                            else "no address (NOERROR, empty)", plan.empty_for))
        _sleep_until(t0, plan.flip_at)
        flap_until = None
        if plan.flap_for > 0:
            flap_until = time.time() + plan.flap_for
            request(ctl, "dns_set", name=endpoint, kind=kind, values=[old_value, new_value], ttl=5,
                    flap_until=flap_until)
        else:
            request(ctl, "dns_set", name=endpoint, kind=kind, values=[new_value], ttl=5)
        if target == "aurora":
            request(ctl, "dns_set", name=L.ENDPOINT_NAMES["aurora-ro"], kind="CNAME", values=[old.dns_name], ttl=5)
        outage_end = time.time()
        emit("dns_flip", "%s -> %s %s (TTL 5s)" % (endpoint, kind, new_value))
        if flap_until is not None:
            emit("dns_flap", "%s alternates between %s and %s for %.0fs" % (endpoint, old_value, new_value,
                                                                             plan.flap_for))

        _sleep_until(t0, plan.rejoin_at)
        if crash:
            request(ctl, "start", instance=old.name, read_only=True)
            gtid = _resync_from(layout, old, new)
            detail = "restarted after the crash, data re-copied from %s" % new.name
        else:
            gtid = pos
            closed = _end_client_sessions(layout, old)
            detail = "demoted, %d client session%s closed as by its restart" % (closed, "" if closed == 1 else "s")
        replicate(layout, old, new, password, gtid_pos=gtid)
        request(ctl, "proxy", instance=old.name, mode="pass")
        emit("rejoin", "%s back as read-only %s replicating from %s (%s): writes through it get 1290"
             % (old.name, down_role, new.name, detail))
        if flap_until is not None:
            time.sleep(max(0.0, flap_until - time.time()))
            request(ctl, "dns_set", name=endpoint, kind=kind, values=[new_value], ttl=5)
        emit("done", "%s failover complete: %s is %s; outage %.1fs" % (target, new.name, up_role, outage_end - t0),
             outage_end=outage_end)
        return {"outage_start": t0, "outage_end": outage_end}
    finally:
        os.close(lock_fd)


def make_emitter(lab_dir: str, target: str, crash: bool, sink: Optional[Callable[[Any], None]],
                 echo: Optional[Callable[[str], None]] = None) -> Emit:
    """An emit(step, detail, **extra) that builds Events, logs to lab.log and optionally echoes."""
    from fiswatch.model import Event

    layout_dir = lab_dir

    def emit(step: str, detail: str, **extra: Any) -> None:
        event = Event.make("lab", target=target, step=step, detail=detail, crash=crash, **extra)
        line = "failover %s: %-9s %s" % (target, step, detail)
        try:
            with open(os.path.join(layout_dir, L.LOG_FILE), "a") as fh:
                fh.write("%s %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.ts))
                                      + ".%03d" % (int(event.ts * 1000) % 1000), line))
        except OSError:
            pass
        if echo is not None:
            echo("%s.%03d %s" % (time.strftime("%H:%M:%S", time.localtime(event.ts)), int(event.ts * 1000) % 1000,
                                 line))
        if sink is not None:
            sink(event)

    return emit


__all__ = ["Profile", "PROFILES", "FailoverError", "run_failover", "make_emitter", "log_line"]
