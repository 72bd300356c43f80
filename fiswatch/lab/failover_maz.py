"""`lab failover maz`: a failover of the lab's Multi-AZ DB cluster (fiswatch/lab/maz.py).

What RDS documents (RDS User Guide, multi-az-db-clusters-concepts, "Failover process"), and
the lab's steps, in the order a client meets them:

1. fence: the writer's proxy blackholes (open connections hang, new ones are accepted and
   hang) and both readers stop receiving from it (their IO threads stop): the writer is cut off;
2. apply: RDS waits until both readers applied everything they received; `lag` holds their
   SQL threads that many seconds first (a reader busy applying a backlog), so lag adds time;
3. promote, at the profile's time: the most advanced reader (highest applied GTID; a reader
   that does not answer is left out) stops replicating and takes writes (semi-sync source on);
4. re-point: the other reader replicates from the new writer; its SHOW REPLICA STATUS names the
   new writer (`Source_Server_Id` changes) unless the `stale_reader` fault keeps the old id;
5. DNS: the cluster endpoint names the new writer; the reader endpoint still hands out the new
   writer beside the other reader for a while ("cluster-ro may briefly hand out the new writer");
6. rejoin: the old writer's client sessions are closed, it replicates from the new writer
   (read-only), its proxy passes again and the reader endpoint hands out the two readers.

Stopped midway (Ctrl-C, cancel, an error), it is finished when a reader was promoted and rolled
back otherwise, so the cluster keeps exactly one writer. Killed midway (SIGKILL: nothing of it
runs on), its last step stays recorded as 'running' in the daemon (`lab status`: STOPPED HALFWAY),
and the next `lab failover maz` finishes or rolls it back first (recover_abandoned), then runs.
"""
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from fiswatch.lab import layout as L
from fiswatch.lab import maz
from fiswatch.lab.control import request
from fiswatch.lab.replication import replicate
from fiswatch.lab.failover import Cancelled, Emit, FailoverError, Interrupted, lab_password, sleep_until, why_text
from fiswatch.lab.mariadb import sql
from fiswatch.lab.settle import end_client_sessions, state_record, writable
from fiswatch.lab.lablock import try_lock

MAX_LAG = 600.0  # seconds; more is a typo, not a scenario


@dataclass(frozen=True)
class MazProfile:
    """Seconds after the fence at which each step happens (a step never runs early)."""

    name: str
    promote_at: float  # RDS detects the failure and promotes (if the readers applied by then)
    flip_at: float  # the cluster endpoint names the new writer
    ro_until: float  # the reader endpoint hands out the new writer until then
    rejoin_at: float  # the old writer is back as a reader


PROFILES = {
    # aws: "typically under 35 seconds" (RDS User Guide); planned: a minor version upgrade without
    # lag, ~1 s as the wrapper docs measure it; quick: for tests
    "aws": MazProfile("aws", promote_at=25.0, flip_at=30.0, ro_until=33.0, rejoin_at=35.0),
    "planned": MazProfile("planned", promote_at=0.5, flip_at=1.0, ro_until=1.5, rejoin_at=2.0),
    "quick": MazProfile("quick", promote_at=0.2, flip_at=0.4, ro_until=0.6, rejoin_at=0.8),
}


def check_options(profile: str, lag: float) -> None:
    """FailoverError (one line) for a profile or lag a failover cannot use."""
    if profile not in PROFILES:
        raise FailoverError("unknown Multi-AZ cluster failover profile %r: use %s" % (profile, ", ".join(PROFILES)))
    if not isinstance(lag, (int, float)) or lag != lag or not 0 <= lag <= MAX_LAG:
        raise FailoverError("--lag must be 0..%.0f seconds (how long the readers take to apply), got %r"
                            % (MAX_LAG, lag))


class MazFailover:
    """One failover of the Multi-AZ DB cluster: its plan, its instances and how far it got."""

    def __init__(self, state: Dict[str, Any], emit: Emit, plan: MazProfile, lag: float, stale_reader: bool,
                 cancel: Optional[threading.Event], old: str = "") -> None:
        self.layout = L.Layout.from_dict(state["layout"])
        self.ctl = self.layout.control_socket
        self.emit, self.plan, self.lag, self.stale_reader, self.cancel = emit, plan, lag, stale_reader, cancel
        roles = {i["name"]: i["role"] for i in state["instances"]}
        specs = self.layout.cluster("maz")
        self.old = next(s for s in specs if s.name == old or (not old and roles.get(s.name) == "writer"))
        self.readers = [s for s in specs if s is not self.old]
        self.new: Optional[L.InstanceSpec] = None
        self.step = "start"
        self.t0 = 0.0

    def reached(self, step: str, detail: str, **extra: Any) -> None:
        self.step = step
        self.report("running", detail)  # recorded first: a process killed from here on is recovered by the next
        self.emit(step, detail, **extra)

    def report(self, state: str, detail: str, **extra: Any) -> None:
        record = state_record("maz", state, self.step, detail, old=self.old.name,
                              new=self.new.name if self.new else "", pid=os.getpid(), profile=self.plan.name,
                              crash=False, **extra)
        try:
            request(self.ctl, "failover_state", state=record, timeout=10)
        except Exception:  # noqa: BLE001
            pass

    # --- steps ---------------------------------------------------------------------------
    def run(self) -> Dict[str, float]:
        layout, ctl, plan, old = self.layout, self.ctl, self.plan, self.old
        self.t0 = t0 = time.time()
        self.reached("start", "maz failover (%s%s): writer %s, readers %s" % (
            plan.name, ", lag %.1fs" % self.lag if self.lag else "", old.name,
            ", ".join(r.name for r in self.readers)), outage_start=t0)
        request(ctl, "proxy", instance=old.name, mode="blackhole")
        for reader in self.readers:
            self._on(reader, ["STOP SLAVE IO_THREAD"] + (["STOP SLAVE SQL_THREAD"] if self.lag else []))
        self.reached("blackhole", "%s fenced: its connections hang, the readers receive nothing more from it"
                     % old.name)
        if self.lag:
            self.reached("lag", "readers apply after %.1fs (what they received waits in their relay logs)" % self.lag)
            sleep_until(t0, self.lag, self.cancel)
            for reader in self.readers:
                self._on(reader, ["START SLAVE SQL_THREAD"])
        positions = self._applied()
        sleep_until(t0, plan.promote_at, self.cancel)
        ranked = sorted(positions, key=lambda name: (-maz.gtid_seq(positions[name]), name))
        new = self.new = L.spec_by_name(ranked[0])
        sql(layout.server_socket(new), ["STOP SLAVE", "RESET SLAVE ALL"])
        maz.make_writer(layout, new)
        request(ctl, "roles", roles={new.name: "writer", old.name: "fenced"})
        self.reached("promote", "%s promoted (applied %s, the most advanced of %s); read_only off, semi-sync "
                     "source on" % (new.name, positions[new.name] or "nothing",
                                    ", ".join("%s %s" % (n, positions[n] or "-") for n in ranked)))
        for other in self.readers:
            if other is new:
                continue
            if other.name not in positions:
                continue  # not answering: restarted and re-pointed at rejoin
            self._repoint(other, new)
        sleep_until(t0, plan.flip_at, self.cancel)
        request(ctl, "dns_set", name=L.MAZ_ENDPOINT_NAMES["maz"], kind="CNAME", values=[new.dns_name], ttl=5)
        ro = request(ctl, "readers_dns", cluster="maz", extra=[new.dns_name])
        outage_end = time.time()
        self.reached("dns_flip", "%s -> CNAME %s (TTL 5s); %s hands out %s" % (
            L.MAZ_ENDPOINT_NAMES["maz"], new.dns_name, L.MAZ_ENDPOINT_NAMES["maz-ro"], ", ".join(ro)))
        sleep_until(t0, plan.rejoin_at, self.cancel)
        detail = self._rejoin()
        ro = request(ctl, "readers_dns", cluster="maz")
        self.reached("rejoin", "%s; %s hands out %s" % (detail, L.MAZ_ENDPOINT_NAMES["maz-ro"], ", ".join(ro)))
        self.step = "done"
        self.emit("done", "maz failover complete: %s is the writer; outage %.1fs" % (new.name, outage_end - t0),
                  outage_end=outage_end)
        self.report("completed", "%s is the writer; outage %.1fs" % (new.name, outage_end - t0))
        return {"outage_start": t0, "outage_end": outage_end}

    def _on(self, spec: L.InstanceSpec, statements: List[Any]) -> bool:
        """Run on a reader; False (said once as a step) when it does not answer."""
        try:
            sql(self.layout.server_socket(spec), statements, timeout=3)
            return True
        except Exception as exc:  # noqa: BLE001
            self.reached("reader_down", "%s does not answer (%s): left out" % (spec.name, type(exc).__name__))
            return False

    def _applied(self) -> Dict[str, Optional[str]]:
        """Wait until every answering reader applied all it received; name -> applied GTID position."""
        deadline = time.monotonic() + 60.0
        waiting = list(self.readers)
        positions: Dict[str, Optional[str]] = {}
        while waiting:
            if self.cancel is not None and self.cancel.is_set():
                raise Cancelled()
            for reader in list(waiting):
                drained = maz.relay_drained(self.layout, reader)
                if drained is None:  # killed, or not answering
                    self.reached("reader_down", "%s does not answer: not a candidate" % reader.name)
                    waiting.remove(reader)
                elif drained:
                    positions[reader.name] = maz.applied_position(self.layout, reader)
                    waiting.remove(reader)
            if waiting and time.monotonic() > deadline:
                raise FailoverError("%s did not apply its relay log within 60s" % ", ".join(r.name for r in waiting))
            if waiting:
                time.sleep(0.05)
        positions = {k: v for k, v in positions.items() if v is not None}
        if not positions:
            raise FailoverError("no reader of the Multi-AZ cluster answers: nothing to promote")
        self.reached("applied", "readers applied all they received: %s" % ", ".join(
            "%s %s" % kv for kv in sorted(positions.items())))
        return positions

    def _repoint(self, reader: L.InstanceSpec, new: L.InstanceSpec) -> None:
        replicate(self.layout, reader, new, lab_password(self.layout))  # continues from its own gtid_slave_pos
        if self.stale_reader:
            self.reached("repoint", "%s replicates from %s; fault: its SHOW REPLICA STATUS still names %s "
                         "(Source_Server_Id %d, stale)" % (reader.name, new.name, self.old.name, self.old.index))
        else:
            maz.record_source(self.layout, reader, new)
            self.reached("repoint", "%s replicates from %s (Source_Server_Id %d)" % (reader.name, new.name,
                                                                                    new.index))

    def _rejoin(self) -> str:
        """The old writer (and any reader that went down) back as readers of the new writer."""
        layout, ctl, old, new = self.layout, self.ctl, self.old, self.new
        assert new is not None
        password = lab_password(layout)
        closed = end_client_sessions(layout, old)
        maz.make_reader_settings(layout, old)
        pos = sql(layout.server_socket(old), ["SELECT @@gtid_binlog_pos"])[0][0]
        replicate(layout, old, new, password, gtid_pos=pos)
        maz.record_source(layout, old, new)
        request(ctl, "roles", roles={old.name: "reader"})
        request(ctl, "proxy", instance=old.name, mode="pass")
        parts = ["%s back as a read-only reader of %s (%d client session%s closed as by its restart)" % (
            old.name, new.name, closed, "" if closed == 1 else "s")]
        running = {i["name"]: bool(i["running"]) for i in request(ctl, "state")["instances"]}
        for reader in self.readers:
            if reader is new or running.get(reader.name, False):
                continue
            request(ctl, "start", instance=reader.name, read_only=True)
            replicate(layout, reader, new, password)
            maz.record_source(layout, reader, new)
            parts.append("%s restarted and replicating from %s" % (reader.name, new.name))
        return "; ".join(parts)

    # --- stopped midway ------------------------------------------------------------------
    def recover(self, why: str) -> str:
        """Finish (a reader takes writes) or roll back (nothing promoted); returns the outcome line."""
        layout, ctl, old = self.layout, self.ctl, self.old
        promoted = self.new if self.new is not None and writable(layout, self.new) else None
        if promoted is None:
            promoted = next((r for r in self.readers if writable(layout, r)), None)
        if promoted is not None:
            self.new = promoted
            request(ctl, "roles", roles={promoted.name: "writer", old.name: "fenced"})
            for reader in self.readers:
                if reader is not promoted and maz.applied_position(layout, reader) is not None:
                    replicate(layout, reader, promoted, lab_password(layout))
                    maz.record_source(layout, reader, promoted)
            request(ctl, "dns_set", name=L.MAZ_ENDPOINT_NAMES["maz"], kind="CNAME", values=[promoted.dns_name],
                    ttl=5)
            detail = self._rejoin()
            request(ctl, "readers_dns", cluster="maz")
            outcome = "finished"
            detail = "%s is the writer; %s" % (promoted.name, detail)
            self.emit("done", "maz failover finished at step %s (%s): %s" % (self.step, why, detail),
                      outage_end=time.time(), recovered=outcome)
        else:
            parts = []
            running = {i["name"]: bool(i["running"]) for i in request(ctl, "state")["instances"]}
            for reader in self.readers:
                if not running.get(reader.name, False):
                    request(ctl, "start", instance=reader.name, read_only=True)
                    parts.append("%s restarted" % reader.name)
                replicate(layout, reader, old, lab_password(layout))
                maz.record_source(layout, reader, old)
            request(ctl, "roles", roles={old.name: "writer"})
            request(ctl, "proxy", instance=old.name, mode="pass")
            request(ctl, "readers_dns", cluster="maz")
            outcome = "rolled back"
            detail = "%s is the writer again, both readers replicate from it%s" % (
                old.name, "; " + ", ".join(parts) if parts else "")
            self.emit("rolled_back", "maz failover rolled back at step %s (%s): %s" % (self.step, why, detail),
                      outage_end=time.time(), recovered=outcome)
        self.report(outcome, detail, reason=why)
        return "maz failover %s at step %s (%s): %s" % (outcome, self.step, why, detail)


def recover_abandoned(state: Dict[str, Any], emit: Emit) -> Dict[str, Any]:
    """A previous maz failover whose process died midway (SIGKILL: state 'running', its lock free):
    finish or roll it back now, from the servers (recover); returns the lab's state after that."""
    last = state.get("last_failover") or {}
    if last.get("target") != "maz" or last.get("state") != "running":
        return state
    job = MazFailover(state, emit, PROFILES.get(str(last.get("profile")), PROFILES["quick"]), 0.0, False, None,
                      old=str(last.get("old") or ""))
    job.step = str(last.get("step") or "start")
    job.new = L.spec_by_name(last["new"]) if last.get("new") else None
    job.recover("its process %s ended midway" % last.get("pid"))
    return request(job.ctl, "state")


def run_maz_failover(lab_dir: str, state: Dict[str, Any], emit: Emit, profile: str = "quick", lag: float = 0.0,
                     stale_reader: bool = False, cancel: Optional[threading.Event] = None) -> Dict[str, float]:
    """Run one failover of the Multi-AZ DB cluster; FailoverError (one line) when it cannot."""
    if "maz" not in (state.get("shapes") or ()):
        raise FailoverError("this lab has no Multi-AZ DB cluster: start one with `fiswatch lab up --multi-az-cluster`")
    check_options(profile, lag)
    lab_dir = os.path.abspath(lab_dir)
    lock_fd = try_lock(lab_dir)
    if lock_fd is None:
        raise FailoverError("a failover already runs in %s: wait for it to finish" % lab_dir)
    try:
        state = recover_abandoned(state, emit)
        job = MazFailover(state, emit, PROFILES[profile], float(lag), stale_reader, cancel)
        try:
            return job.run()
        except BaseException as exc:  # noqa: BLE001
            why = why_text(exc)
            try:
                outcome = job.recover(why)
            except Exception as again:  # noqa: BLE001
                job.report("failed", "could not finish or roll back: %s" % again, reason=why)
                raise FailoverError("maz failover stopped at step %s (%s) and could not be finished or rolled "
                                    "back: %s; `fiswatch lab down` and `up` start afresh" % (job.step, why, again)) \
                    from None
            if isinstance(exc, KeyboardInterrupt):
                raise Interrupted(outcome) from None
            raise FailoverError(outcome) from None
    finally:
        os.close(lock_fd)

