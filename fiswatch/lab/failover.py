"""Failover scenarios, driven from the caller's thread against a running lab.

Talks to the daemon (proxies, DNS, processes) over its control socket and to the
servers as root over their unix sockets. Each step is emitted as a `lab` Event, in the
order a client meets it.
"""
import contextlib
import os
import signal
import threading
import time
from typing import Any, Dict, Iterator, List, Optional

from fiswatch.lab import aurora
from fiswatch.lab import layout as L
from fiswatch.lab.control import request
from fiswatch.lab.emitter import Emit, make_emitter
from fiswatch.lab.lablog import log_line
from fiswatch.lab.replication import replicate
from fiswatch.lab.mariadb import sql
from fiswatch.lab.settle import end_client_sessions, recover, resync_from, roles_for, state_record
from fiswatch.lab.profiles import PROFILES, Profile
from fiswatch.lab.topology import promote_statements
from fiswatch.lab.lablock import try_lock


class FailoverError(RuntimeError):
    """A failover could not run; one line."""


def lab_password(layout: L.Layout) -> str:
    from fiswatch.lab.files import password_of

    return password_of(layout.credentials_file, layout.dir)


def _roles(state: Dict[str, Any]) -> Dict[str, str]:
    return {i["name"]: i["role"] for i in state["instances"]}


def rejoin_detail(closed: int) -> str:
    """What the rejoin did to the old writer's client sessions, as it happened (docs/lab.md).

    >>> rejoin_detail(2)
    'demoted; the lab ended its 2 server-side client sessions, the clients were not told: their connections stay fenced (no error, no FIN) until their own timeout'
    """
    if not closed:
        return "demoted; it had no client session left"
    return ("demoted; the lab ended its %d server-side client session%s, the clients were not told: their "
            "connections stay fenced (no error, no FIN) until their own timeout" % (closed, "" if closed == 1 else "s"))


class Cancelled(Exception):
    """The caller asked the failover to stop (the demo quitting)."""


def sleep_until(t0: float, offset: float, cancel: Optional[threading.Event]) -> None:
    delay = t0 + offset - time.time()
    if cancel is None:
        if delay > 0:
            time.sleep(delay)
    elif cancel.wait(max(0.0, delay)):
        raise Cancelled()


def _promote(layout: L.Layout, target: str, new: L.InstanceSpec) -> str:
    """Stop replication on `new` and open it for writes; returns its GTID position before.

    For Aurora the topology names `new` the writer in the same breath as `read_only=0`."""
    pos = sql(layout.server_socket(new), ["STOP SLAVE", "SELECT @@gtid_binlog_pos"])[0][0]
    statements: list = ["RESET SLAVE ALL", "SET GLOBAL read_only=0"]
    if target == "aurora":
        statements += promote_statements(aurora.server_id(new.index))
    sql(layout.server_socket(new), statements)
    return pos


def _catch_up(layout: L.Layout, new: L.InstanceSpec, old: L.InstanceSpec, timeout: float,
              cancel: Optional[threading.Event]) -> None:
    """Wait (in 1 s slices, so a cancel is seen) until `new` applied all `old` committed."""
    pos = sql(layout.server_socket(old), ["SELECT @@gtid_binlog_pos"])[0][0]
    deadline = time.monotonic() + timeout
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if sql(layout.server_socket(new), [("SELECT MASTER_GTID_WAIT(%s, %s)", (pos, 1))])[0][0] == 0:
            return
        if time.monotonic() >= deadline:
            raise FailoverError("%s did not catch up with %s within %.0fs" % (new.name, old.name, timeout))


CRASH_LAG = 1.0  # seconds of replication lag a crash failover injects before killing the writer
CATCH_UP_TIMEOUT = 60.0
HEARTBEAT_LEASE = 300.0  # the topology heartbeat pauses at most this long if a failover dies


class Failover:
    """One failover of `target`: its plan, its instances and how far it got."""

    def __init__(self, lab_dir: str, target: str, emit: Emit, plan: Profile, crash: bool, dns_style: str,
                 cancel: Optional[threading.Event], stale_dns: Optional[float] = None, reason: str = "") -> None:
        state = request(os.path.join(lab_dir, L.CONTROL_SOCKET), "state")
        self.layout = L.Layout.from_dict(state["layout"])
        try:  # the request, else the lab's `lab up --stale-dns` (Aurora only)
            self.stale_dns = L.stale_dns_for(target, stale_dns, self.layout.stale_dns)
        except L.LayoutError as exc:
            raise FailoverError(str(exc)) from None
        self.ctl = self.layout.control_socket
        self.target, self.emit, self.plan, self.crash, self.dns_style = target, emit, plan, crash, dns_style
        self.cancel = cancel
        roles = _roles(state)
        up_role, down_role = roles_for(target)
        specs = L.cluster_specs(target)
        self.old = next(s for s in specs if roles[s.name] == up_role)
        self.new = next(s for s in specs if roles[s.name] == down_role)
        # the writer's engine is dead (not stopped by the lab): nothing to wait for, promote at once
        self.dead = not crash and not next(bool(i["running"]) for i in state["instances"] if i["name"] == self.old.name)
        self.reason = reason
        self.step = "start"
        self.outage_end: Optional[float] = None

    def report(self, state: str, detail: str = "", **extra: Any) -> None:
        """Tell the daemon (for `lab status`); never fails the failover."""
        if self.stale_dns:
            extra["stale_dns"] = self.stale_dns
        record = state_record(self.target, state, self.step, detail, old=self.old.name, new=self.new.name,
                              pid=os.getpid(), profile=self.plan.name, crash=self.crash or self.dead, **extra)
        if self.reason and "reason" not in extra:
            record["trigger"] = self.reason
        try:
            request(self.ctl, "failover_state", state=record, timeout=10)
        except Exception:  # noqa: BLE001
            pass

    def reached(self, step: str, detail: str, **extra: Any) -> None:
        self.step = step
        self.emit(step, detail, **extra)
        self.report("running")

    def run(self) -> Dict[str, float]:
        layout, ctl, plan, old, new, target = self.layout, self.ctl, self.plan, self.old, self.new, self.target
        up_role, down_role = roles_for(target)
        crash, cancel = self.crash, self.cancel
        endpoint = L.ENDPOINT_NAMES[target]
        lag_for = CRASH_LAG if crash else 0.0
        t0 = time.time() + lag_for  # the outage starts when the writer is fenced
        dead = self.dead
        stale = {"stale_dns": self.stale_dns} if self.stale_dns else {}
        self.reached("start", "%s failover (%s%s%s%s): %s -> %s" % (
            target, plan.name, ", crash" if crash else "", ", DNS stale %gs after the rejoin" % self.stale_dns
            if self.stale_dns else "", ", %s" % self.reason if self.reason else "", old.name, new.name),
            outage_start=t0, **stale)
        if crash:
            # asynchronous replication falls behind: what the writer acknowledges from now on
            # exists only on the writer, and the crash below loses it
            sql(layout.server_socket(new), ["STOP SLAVE IO_THREAD"])
            self.reached("lag", "replication to %s paused for %.1fs: writes acknowledged now exist only on %s"
                         % (new.name, lag_for, old.name))
            sleep_until(t0, 0.0, cancel)
        request(ctl, "proxy", instance=old.name, mode="blackhole")
        if target == "aurora":
            request(ctl, "heartbeat", pause_for=HEARTBEAT_LEASE)
        if crash:
            request(ctl, "kill", instance=old.name)
            self.reached("blackhole", "%s fenced and killed (SIGKILL): its connections hang, writes not yet "
                         "replicated are lost" % old.name)
        elif dead:
            self.reached("blackhole", "%s is dead (its mariadbd is not running) and fenced: %s is promoted at once, "
                         "without catch-up; writes not yet replicated are lost" % (old.name, new.name))
        else:
            self.reached("blackhole", "%s fenced: open connections hang, new ones are accepted and hang" % old.name)

        if not dead:
            sleep_until(t0, plan.promote_at, cancel)
        if crash or dead:
            lag = "no catch-up"
        else:
            _catch_up(layout, new, old, CATCH_UP_TIMEOUT, cancel)
            lag = "caught up"
        if target == "aurora" and layout.readers > 1:
            # the promoted reader restarts: its sessions are reset, the other readers keep serving (only with
            # --readers N > 1: with one reader this reset made the AWS wrapper's failover fail, see docs/lab.md)
            request(ctl, "proxy", instance=new.name, mode="reset")
            request(ctl, "proxy", instance=new.name, mode="pass")
        pos = _promote(layout, target, new)
        request(ctl, "roles", roles={new.name: up_role, old.name: down_role})
        left_out = self._follow(new)
        if target == "aurora":
            request(ctl, "heartbeat")
        self.reached("promote", "%s promoted to %s (%s, GTID %s); read_only off%s%s" % (
            new.name, up_role, lag, pos, "; topology names it the writer" if target == "aurora" else "",
            "".join("; %s is not running (killed?): left out, the reader endpoint no longer names it" % name
                    for name in left_out)))

        new_value = new.dns_name if target == "aurora" else layout.proxy_address(new)[0]
        old_value = old.dns_name if target == "aurora" else layout.proxy_address(old)[0]
        kind = "CNAME" if target == "aurora" else "A"
        if self.stale_dns:
            return self._stale_dns_end(t0, pos, endpoint, kind, new_value, old_value)  # type: ignore[arg-type]
        if plan.empty_for > 0:
            sleep_until(t0, plan.flip_at - plan.empty_for, cancel)
            request(ctl, "dns_blank", name=endpoint, style=self.dns_style)
            self.reached("dns_empty", "%s answers %s for %.0fs" % (
                endpoint, "NXDOMAIN" if self.dns_style == "nxdomain" else "no address (NOERROR, empty)",
                plan.empty_for))
        sleep_until(t0, plan.flip_at, cancel)
        flap_until = None
        if plan.flap_for > 0:
            flap_until = time.time() + plan.flap_for
            request(ctl, "dns_set", name=endpoint, kind=kind, values=[old_value, new_value], ttl=5,
                    flap_until=flap_until)
        else:
            request(ctl, "dns_set", name=endpoint, kind=kind, values=[new_value], ttl=5)
        if target == "aurora":  # the readers by role (the old writer among them), a random one per query
            request(ctl, "readers_dns", cluster="aurora")
        outage_end = self.outage_end = time.time()
        self.reached("dns_flip", "%s -> %s %s (TTL 5s)" % (endpoint, kind, new_value))
        if flap_until is not None:
            self.reached("dns_flap", "%s answers %s or %s, picked per query, for %.0fs" % (
                endpoint, old_value, new_value, plan.flap_for))

        sleep_until(t0, plan.rejoin_at, cancel)
        self._rejoin(pos, "")
        if flap_until is not None:
            sleep_until(flap_until, 0.0, cancel)
            request(ctl, "dns_set", name=endpoint, kind=kind, values=[new_value], ttl=5)
        return self._done(t0, outage_end)

    def _follow(self, new: L.InstanceSpec) -> List[str]:
        """More Aurora readers (lab up --readers N) follow the new writer; one whose mariadbd is not running
        (killed during the failover: AWS fails over without it) is left out. Its name is returned."""
        left_out = []
        for extra in self.layout.cluster(self.target)[2:]:
            try:
                replicate(self.layout, extra, new, lab_password(self.layout))
            except Exception:
                state = request(self.ctl, "state")
                if next((bool(i["running"]) for i in state["instances"] if i["name"] == extra.name), True):
                    raise
                left_out.append(extra.name)
        return left_out

    def _rejoin(self, pos: str, then: str) -> None:
        """The old writer back as a read-only replica of the new one, its proxy passing again."""
        layout, old, new = self.layout, self.old, self.new
        if self.crash or self.dead:
            request(self.ctl, "start", instance=old.name, read_only=True)
            gtid = resync_from(layout, old, new)
            detail = "restarted after the %s, data re-copied from %s" % ("crash" if self.crash else "death", new.name)
        else:
            gtid = pos
            closed = end_client_sessions(layout, old)
            detail = rejoin_detail(closed)
        replicate(layout, old, new, lab_password(layout), gtid_pos=gtid)
        request(self.ctl, "proxy", instance=old.name, mode="pass")
        if self.target == "aurora":
            request(self.ctl, "readers_dns", cluster="aurora")
        self.reached("rejoin", "%s back as read-only %s replicating from %s (%s): writes through it get 1290%s"
                     % (old.name, roles_for(self.target)[1], new.name, detail, then))

    def _done(self, t0: float, outage_end: float) -> Dict[str, float]:
        up_role, new = roles_for(self.target)[0], self.new
        self.step = "done"
        self.emit("done", "%s failover complete: %s is %s; outage %.1fs" % (
            self.target, new.name, up_role, outage_end - t0), outage_end=outage_end)
        self.report("completed", "%s is the %s; outage %.1fs" % (new.name, up_role, outage_end - t0))
        return {"outage_start": t0, "outage_end": outage_end}

    def _stale_dns_end(self, t0: float, pos: str, endpoint: str, kind: str, new_value: str,
                       old_value: str) -> Dict[str, float]:
        """`--stale-dns N`: the demoted-writer trap. The cluster name keeps naming the old writer
        (no empty window, no flap), as a client's or resolver's DNS cache does on AWS, until N
        seconds after the old writer has rejoined read-only: a client that reconnects by name in
        that window lands on the demoted writer, its writes get 1290 and a ping passes."""
        plan, ctl, cancel = self.plan, self.ctl, self.cancel
        sleep_until(t0, min(plan.flip_at, plan.rejoin_at), cancel)
        self.reached("dns_stale", "%s still answers %s, the old writer (stale DNS): until %gs after it rejoins"
                     % (endpoint, old_value, self.stale_dns), stale_dns=self.stale_dns)
        sleep_until(t0, plan.rejoin_at, cancel)
        self._rejoin(pos, "; %s still names it for %gs" % (endpoint, self.stale_dns))
        sleep_until(time.time(), self.stale_dns, cancel)
        request(ctl, "dns_set", name=endpoint, kind=kind, values=[new_value], ttl=5)
        if self.target == "aurora":
            request(ctl, "dns_set", name=L.ENDPOINT_NAMES["aurora-ro"], kind="CNAME", values=[old_value], ttl=5)
        outage_end = self.outage_end = time.time()
        self.reached("dns_flip", "%s -> %s %s (TTL 5s), %gs after the old writer rejoined"
                     % (endpoint, kind, new_value, self.stale_dns))
        return self._done(t0, outage_end)

    def recover(self, why: str) -> str:
        """Finish or roll back after `why` stopped the failover at self.step; returns the one-line outcome."""
        outcome, detail = recover(self.layout, self.ctl, self.target, self.old, self.new, self.crash or self.dead,
                                  lab_password(self.layout))
        text = "%s at step %s (%s): %s" % (outcome, self.step, why, detail)
        if outcome == "finished":  # the failover happened: its `done`, with the outage's end
            self.emit("done", "%s failover %s" % (self.target, text), outage_end=self.outage_end or time.time(),
                      recovered=outcome)
        else:
            self.emit("rolled_back", text, outage_end=time.time(), recovered=outcome)
        self.report(outcome, detail, reason=why)
        return "%s failover %s at step %s (%s): %s" % (self.target, outcome, self.step, why, detail)


def _recover_abandoned(lab_dir: str, emit: Emit) -> None:
    """A previous failover whose process died midway (state 'running', its lock free): recover it now."""
    state = request(os.path.join(lab_dir, L.CONTROL_SOCKET), "state")
    last = state.get("last_failover") or {}
    if last.get("state") != "running":
        return
    if last.get("target") == "maz":  # failover_maz.recover_abandoned's: that shape's own steps
        raise FailoverError("a maz failover stopped halfway: `fiswatch lab failover maz` finishes or rolls it back")
    layout = L.Layout.from_dict(state["layout"])
    old, new = L.spec_by_name(last["old"]), L.spec_by_name(last["new"])
    outcome, detail = recover(layout, layout.control_socket, last["target"], old, new, bool(last.get("crash")),
                              lab_password(layout))
    why = "its process %s ended midway" % last.get("pid")
    emit("recovered", "previous %s failover %s at step %s (%s): %s" % (last["target"], outcome, last.get("step"),
                                                                       why, detail), recovered=outcome)
    record = dict(last, state=outcome, detail=detail, reason=why, ts=time.time())
    request(layout.control_socket, "failover_state", state=record)


def run_failover(lab_dir: str, target: str, emit: Emit, profile: str = "fast", crash: bool = False,
                 dns_style: str = "empty", timings: Optional[Profile] = None,
                 cancel: Optional[threading.Event] = None, stale_dns: Optional[float] = None,
                 reason: str = "") -> Dict[str, float]:
    """Run one failover of `target` ('aurora' | 'rds'); returns outage_start / outage_end.

    Stopped midway (KeyboardInterrupt, `cancel` set, an error) it is finished or rolled back
    (recovery.py) and FailoverError says which; KeyboardInterrupt is raised again after that."""
    if target not in ("aurora", "rds"):
        raise FailoverError("unknown failover target %r: use aurora or rds" % target)
    if (target, profile) not in PROFILES and timings is None:
        raise FailoverError("unknown failover profile %r: use %s" % (
            profile, ", ".join(sorted({p for (_, p) in PROFILES}))))
    if dns_style not in ("empty", "nxdomain"):
        raise FailoverError("unknown DNS style %r: use empty or nxdomain" % dns_style)
    plan = timings or PROFILES[(target, profile)]
    lab_dir = os.path.abspath(lab_dir)
    lock_fd = try_lock(lab_dir)
    if lock_fd is None:
        raise FailoverError("a failover already runs in %s: wait for it to finish" % lab_dir)
    try:
        _recover_abandoned(lab_dir, emit)
        job = Failover(lab_dir, target, emit, plan, crash, dns_style, cancel, stale_dns, reason)
        try:
            return job.run()
        except BaseException as exc:  # noqa: BLE001
            why = why_text(exc)
            with _sigint_ignored():
                try:
                    outcome = job.recover(why)
                except Exception as again:  # noqa: BLE001
                    job.report("failed", "could not finish or roll back: %s" % again, reason=why)
                    raise FailoverError("%s failover stopped at step %s (%s) and could not be finished or "
                                        "rolled back: %s; `fiswatch lab down` and `up` start afresh"
                                        % (target, job.step, why, again)) from None
            if isinstance(exc, KeyboardInterrupt):
                raise Interrupted(outcome) from None
            raise FailoverError(outcome) from None
    finally:
        os.close(lock_fd)


class Interrupted(FailoverError):
    """Ctrl-C/SIGTERM stopped a failover; it was finished or rolled back (str() says which)."""


def why_text(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, Cancelled):
        return "cancelled"
    return "%s: %s" % (type(exc).__name__, exc) if not isinstance(exc, FailoverError) else str(exc)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """A second Ctrl-C must not stop the recovery halfway (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


__all__ = ["Profile", "PROFILES", "Emit", "FailoverError", "Interrupted", "run_failover", "make_emitter", "log_line"]
