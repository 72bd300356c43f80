"""`fiswatch lab switchover [--profile aws|fast]`: a Blue/Green switchover of a `lab up --blue-green` lab.

Driven from the caller's thread (as lab/failover.py), under the lab's failover lock, against the
daemon (proxies, DNS) and the servers (as root). Steps, at the profile's offsets from the start:

  SWITCHOVER_INITIATED      both rows of mysql.rds_topology
  SWITCHOVER_IN_PROGRESS    blue's writers read-only (1290); every proxy of both sides `offline`
                            (sessions closed, new logins 3032); green caught up (GTID) and promoted
  SWITCHOVER_IN_POST_PROCESSING  connections allowed again (old blue stays read-only: 1290)
  topology renamed          Aurora: green's SERVER_IDs become the blue names
  blue DNS                  blue names answer green's addresses (TTL 5 s); old blue is NAME-old1
  green DNS removed         green names answer NXDOMAIN
  SWITCHOVER_COMPLETED      only the target row left; the table is emptied `empty_after` seconds later

Stopped before green is promoted, it is rolled back (blue writable, proxies open, AVAILABLE); after,
it is completed at once; killed (SIGKILL) midway, the next `lab switchover` does that first
(recover_killed). The renames are one DNS update (the daemon's dns_batch), never half applied.
`--fault NAME` (lab/bg_faults.py) bends the run into what users hit. The phase is kept by the
daemon for `lab status --json` (last_failover).
"""
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import pymysql

from fiswatch.lab import bg_answers as A
from fiswatch.lab import bg_faults as F
from fiswatch.lab import bluegreen as B
from fiswatch.lab import layout as L
from fiswatch.lab.control import request
from fiswatch.lab.failover import Cancelled, why_text
from fiswatch.lab.mariadb import sql
from fiswatch.lab.settle import state_record
from fiswatch.lab.lablock import try_lock


class SwitchoverError(RuntimeError):
    """A switchover could not run (usage: nothing started) or stopped midway; one line."""

    def __init__(self, text: str, usage: bool = False) -> None:
        super().__init__(text)
        self.usage = usage


@dataclass(frozen=True)
class SwitchoverProfile:
    """Seconds after SWITCHOVER_INITIATED at which each step happens."""

    name: str
    in_progress_at: float
    post_at: float
    renamed_at: float
    blue_dns_at: float
    green_gone_at: float
    completed_at: float
    empty_after: float


# aws: the AWS Advanced Python Wrapper's measured timeline (its docs, UsingTheBlueGreenPlugin.md; 0 = IN_PROGRESS
# there, +2.3 s here) and the one RDS MySQL trace for the emptied table (sysown/proxysql PR #5934: 44 s);
# fast: the lab's assumption, for tests and the demo
PROFILES = {
    "aws": SwitchoverProfile("aws", 2.3, 4.8, 12.2, 20.9, 56.1, 57.0, 44.0),
    "fast": SwitchoverProfile("fast", 0.5, 1.5, 2.0, 2.5, 3.5, 4.0, 2.0),
}
CATCH_UP_TIMEOUT = 30.0
FAULTS = F.NAMES  # the fault switches (lab/bg_faults.py, docs/lab.md)
Emit = Callable[..., None]


def old1(name: str) -> str:
    """The name old blue takes: NAME-old1 (before the first dot).

    >>> old1("fiswatch-lab.cluster-c0ffee0c0ffe.lab-1.rds.amazonaws.com")
    'fiswatch-lab-old1.cluster-c0ffee0c0ffe.lab-1.rds.amazonaws.com'
    """
    head, _, rest = name.partition(".")
    return head + "-old1." + rest


class Switchover:
    def __init__(self, lab_dir: str, plan: SwitchoverProfile, emit: Emit,
                 cancel: Optional[threading.Event] = None, fault: F.Fault = F.Fault(),
                 state: Optional[Dict[str, Any]] = None) -> None:
        self.fault = fault
        state = state or request(os.path.join(lab_dir, L.CONTROL_SOCKET), "state")
        self.layout = L.Layout.from_dict(state["layout"])
        if not self.layout.blue_green:
            raise SwitchoverError("no green environment in this lab: start it with `fiswatch lab up --blue-green`",
                                  usage=True)
        self.ctl, self.plan, self.emit, self.cancel = self.layout.control_socket, plan, emit, cancel
        roles = {i["name"]: i["role"] for i in state["instances"]}
        self.sides = B.sides(self.layout, roles)
        blue_writer = self.sides[0][1]
        self.step, self.promoted, self.t0 = "start", False, time.time()
        self.began = self.t0  # the current step's start: its events' time (offsets are from t0, never summed)
        self.outage_start: Optional[float] = None
        self.outage_end: Optional[float] = None
        self.writers: List[L.InstanceSpec] = [blue for _, blue, _ in self.sides]
        self.greens: List[L.InstanceSpec] = [green for _, _, green in self.sides]
        self.refused_until: Optional[float] = None  # --fault monitors-refused: proxies open at this offset
        if state_of(state.get("last_failover")) is not None and state["last_failover"].get("state") == "switching":
            return  # a killed switchover's, to recover (recover_killed)
        try:
            rows = sql(self.layout.server_socket(blue_writer), ["SELECT status FROM %s" % A.RDS_TOPOLOGY])
        except pymysql.err.ProgrammingError:  # dropped by --fault no-metadata (1146)
            rows = [("none: the table is gone",)]
        if not rows or rows[0][0] != "AVAILABLE":
            raise SwitchoverError("the green environment was switched over already (rds_topology: %s); "
                                  "`fiswatch lab down` and `up --blue-green` for another"
                                  % (rows[0][0] if rows else "empty"), usage=True)

    # --- helpers -------------------------------------------------------------------
    def at(self, offset: float) -> None:
        if self.refused_until is not None and offset >= self.refused_until:
            self.wait_until(self.refused_until)
            self.refused_until = None
            self.proxies("pass")
            self.outage_end = time.time()
            self.reached("logins-allowed", "new logins allowed again after %gs refused (--fault %s)"
                         % (self.fault.seconds, self.fault.label))
        self.wait_until(offset)

    def wait_until(self, offset: float) -> None:
        delay = self.t0 + offset - time.time()
        if self.cancel is not None:
            if self.cancel.wait(max(0.0, delay)):
                raise Cancelled()
        elif delay > 0:
            time.sleep(delay)
        self.began = time.time()

    def reached(self, step: str, detail: str, state: str = "switching", **extra: float) -> None:
        self.step = step
        self.emit(step, detail, outage="switchover", ts=self.began, **extra)  # when the step began, not its end
        try:
            request(self.ctl, "failover_state", timeout=10, state=state_record(
                "switchover", state, step, detail, pid=os.getpid(), profile=self.plan.name, phase=step))
        except Exception:  # noqa: BLE001 - the record is for `lab status`; never fails the switchover
            pass

    def status(self, status: str) -> None:
        if not self.fault.statuses_after(status):
            return
        for spec in self.writers:
            sql(self.layout.server_socket(spec), A.status_statements(status))

    def proxies(self, mode: str) -> None:
        for spec in self.layout.instances:
            if spec.cluster in ("aurora", "rds", "aurora-green", "rds-green"):
                request(self.ctl, "proxy", instance=spec.name, mode=mode)

    # --- the run ---------------------------------------------------------------------
    def run(self) -> Dict[str, float]:
        plan, layout = self.plan, self.layout
        prepared = F.prepare(self.fault, layout, self.writers, self.greens)
        if prepared:
            self.reached("fault", "--fault %s: %s" % (self.fault.label, prepared))
        self.t0 = self.began = time.time()
        self.status("SWITCHOVER_INITIATED")
        self.reached("SWITCHOVER_INITIATED", "Blue/Green switchover (%s profile): %s" % (plan.name, ", ".join(
            "%s %s -> %s" % (shape, blue.name, green.name) for shape, blue, green in self.sides)))
        self.at(plan.in_progress_at)
        self.status("SWITCHOVER_IN_PROGRESS")
        for _, blue, _ in self.sides:
            sql(layout.server_socket(blue), ["SET GLOBAL read_only=1"])
        self.proxies("offline")
        outage_start = self.outage_start = time.time()
        self.reached("SWITCHOVER_IN_PROGRESS", "blue read-only (1290); sessions on both sides closed, new logins "
                     "refused (3032, as offline_mode)", outage_start=outage_start)
        positions = []
        self.at(plan.in_progress_at)  # a cancel seen here, before green's promotion, rolls back
        if self.fault.name == "rollback":
            self.at((plan.in_progress_at + plan.post_at) / 2)
            self.recover("the switchover timed out: --fault rollback")
            return {"outage_start": outage_start, "outage_end": time.time()}
        for _, blue, green in self.sides:  # both sides caught up before either is promoted
            pos = sql(layout.server_socket(blue), ["SELECT @@gtid_binlog_pos"])[0][0]
            rows = sql(layout.server_socket(green), [("SELECT MASTER_GTID_WAIT(%s, %s)", (pos, CATCH_UP_TIMEOUT))])
            if rows[0][0] != 0:
                raise SwitchoverError("%s did not catch up with %s within %.0fs" % (green.name, blue.name,
                                                                                    CATCH_UP_TIMEOUT))
            positions.append("%s at %s" % (green.name, pos))
        self.promoted = True  # from here on, stopped midway means completed
        for _, _, green in self.sides:
            sql(layout.server_socket(green), ["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only=0"])
        self.writers = [blue for _, blue, _ in self.sides] + [green for _, _, green in self.sides]
        self.reached("promote", "green caught up and promoted: %s" % "; ".join(positions))
        frozen = F.on_promoted(self.fault, layout, self.greens)
        if frozen:
            self.reached("fault", "--fault %s: %s" % (self.fault.label, frozen))
        self.at(plan.post_at)
        self.status("SWITCHOVER_IN_POST_PROCESSING")
        if self.fault.name == "monitors-refused":
            self.refused_until = plan.in_progress_at + self.fault.seconds
            self.reached("SWITCHOVER_IN_POST_PROCESSING", "new logins still refused for %gs from IN_PROGRESS "
                         "(--fault %s)" % (self.fault.seconds, self.fault.label))
            self.at(plan.post_at)  # opened here when S ends before POST_PROCESSING
        else:
            self.proxies("pass")
            self.outage_end = time.time()
            self.reached("SWITCHOVER_IN_POST_PROCESSING", "connections allowed on both sides; old blue stays "
                         "read-only")
        return self.finish(outage_start)

    def finish(self, outage_start: float) -> Dict[str, float]:
        plan = self.plan
        self.at(plan.renamed_at)
        if self.fault.name == "green-ids-kept":
            self.reached("topology-kept", "green's Aurora SERVER_IDs keep their -green- names (--fault green-ids-kept)")
        else:
            self.rename_topology()
        self.at(plan.blue_dns_at)
        self.rename_dns()
        self.at(plan.green_gone_at)
        self.remove_green_dns()
        self.at(plan.completed_at)
        self.status("SWITCHOVER_COMPLETED")
        self.reached("SWITCHOVER_COMPLETED", "only the target row left in mysql.rds_topology; emptied in %gs"
                     % plan.empty_after if self.fault.statuses_after("SWITCHOVER_COMPLETED") else
                     "mysql.rds_topology not written (--fault %s)" % self.fault.label)
        self.at(plan.completed_at + plan.empty_after)
        if self.refused_until is not None:  # refused past the end of the timeline
            self.at(self.refused_until)
        if self.fault.statuses_after("SWITCHOVER_COMPLETED"):
            for spec in self.writers:
                sql(self.layout.server_socket(spec), ["DELETE FROM %s" % A.RDS_TOPOLOGY])
        outage_end = self.outage_end or time.time()
        self.reached("done", "mysql.rds_topology %s; connections were refused %.1fs (IN_PROGRESS "
                     "to POST_PROCESSING)" % ("empty on both sides" if self.fault.statuses_after("SWITCHOVER_COMPLETED")
                                               else "left as --fault %s has it" % self.fault.label,
                                               outage_end - outage_start), state="done", outage_end=outage_end)
        return {"outage_start": outage_start, "outage_end": outage_end}

    def rename_topology(self) -> None:
        layout = self.layout
        renames = {g.name: B.blue_of(g.name) for g in L.GREEN_INSTANCES if g.cluster == "aurora-green"}
        for green in L.GREEN_INSTANCES:
            if green.cluster == "aurora-green":
                sql(layout.server_socket(green), A.self_statements(B.blue_of(green.name)))
        sql(layout.server_socket(L.GREEN_INSTANCES[0]), A.rename_statements(renames))
        self.reached("topology-renamed", "green's Aurora SERVER_IDs renamed: %s" % ", ".join(
            "%s -> %s" % kv for kv in renames.items()))

    def rename_dns(self) -> None:
        """One update of the lab's DNS (the daemon swaps every record at once): a switchover killed here
        leaves every name blue or every name renamed, never half."""
        names = self.layout.endpoint_names
        request(self.ctl, "dns_batch", changes=rename_changes(self.layout, self.sides))
        self.reached("blue-dns", "blue names answer green's addresses (TTL 5 s); old blue is %s and %s (read-only)"
                     % (old1(names["aurora"]), old1(names["rds"])))

    def remove_green_dns(self) -> None:
        names = [str(s.dns_name) for s in L.GREEN_INSTANCES] + [L.GREEN_ENDPOINT_NAMES["aurora-green"],
                                                                 L.GREEN_ENDPOINT_NAMES["aurora-green-ro"]]
        request(self.ctl, "dns_batch", changes=[{"name": name, "blank": "nxdomain"} for name in names])
        self.reached("green-dns-removed", "green names answer NXDOMAIN")

    def recover(self, why: str) -> str:
        """Stopped midway: rolled back before green's promotion, completed after."""
        self.began = time.time()
        if not self.promoted:
            for _, blue, _ in self.sides:
                sql(self.layout.server_socket(blue), ["SET GLOBAL read_only=0"])
            self.proxies("pass")
            self.status("AVAILABLE")
            text = "switchover rolled back at %s (%s): blue serves writes, green still replicates" % (self.step, why)
            self.reached("rolled_back", text, state="rolled_back", outage_end=time.time())
            return text
        self.cancel, self.t0 = None, time.time() - 10 ** 6  # every remaining step at once
        self.proxies("pass")
        step, self.refused_until = self.step, None
        now = time.time()
        self.outage_end = self.outage_end or now
        self.finish(self.outage_start or now)
        return "switchover completed at once after %s (%s): green serves writes under the blue names" % (step, why)


def rename_changes(layout: L.Layout, sides: List[Any]) -> List[Dict[str, Any]]:
    """The DNS records of the rename (the daemon's `dns_batch`): blue names -> green's addresses, old blue
    under NAME-old1. `sides`: (shape, blue writer, green writer) as bluegreen.sides gives them."""
    green_writer, green_reader, green_rds = L.GREEN_INSTANCES
    names = layout.endpoint_names
    changes: List[Dict[str, Any]] = []
    for spec in layout.cluster("aurora"):
        target = green_writer if spec.name == sides[0][1].name else green_reader
        changes.append({"name": old1(str(spec.dns_name)), "kind": "A", "values": [layout.proxy_address(spec)[0]]})
        changes.append({"name": str(spec.dns_name), "kind": "A", "values": [layout.proxy_address(target)[0]]})
    changes.append({"name": old1(names["aurora"]), "kind": "CNAME", "values": [old1(str(sides[0][1].dns_name))]})
    changes.append({"name": old1(names["rds"]), "kind": "A", "values": [layout.proxy_address(sides[1][1])[0]]})
    changes.append({"name": names["rds"], "kind": "A", "values": [layout.proxy_address(green_rds)[0]]})
    return changes


def run_switchover(lab_dir: str, emit: Emit, profile: str = "fast",
                   cancel: Optional[threading.Event] = None, fault: str = "") -> Dict[str, float]:
    """Run one switchover; SwitchoverError (usage=True: nothing started) with one line when it cannot."""
    try:
        parsed = F.parse(fault)
    except F.FaultError as exc:
        raise SwitchoverError(str(exc), usage=True) from None
    if profile not in PROFILES:
        raise SwitchoverError("unknown switchover profile %r: use %s" % (profile, " or ".join(sorted(PROFILES))),
                              usage=True)
    lab_dir = os.path.abspath(lab_dir)
    lock_fd = try_lock(lab_dir)
    if lock_fd is None:
        raise SwitchoverError("a failover, crash or switchover already runs in %s: wait for it to finish"
                              % lab_dir, usage=True) from None
    try:
        state = request(os.path.join(lab_dir, L.CONTROL_SOCKET), "state")
        job = Switchover(lab_dir, PROFILES[profile], emit, cancel, parsed, state)
        last = state.get("last_failover")
        if state_of(last) is not None and last.get("state") == "switching":  # its lock is free: killed
            raise SwitchoverError("a switchover killed at %s (process %s) was found first: %s; nothing new started"
                                  % (last.get("phase"), last.get("pid"), recover_killed(job, last)))
        try:
            return job.run()
        except BaseException as exc:  # noqa: BLE001 - rolled back or completed, then said which
            why = why_text(exc)
            try:
                outcome = job.recover(why)
            except Exception as again:  # noqa: BLE001 - one line, never a traceback
                raise SwitchoverError("switchover stopped at %s (%s) and could not be rolled back or completed: %s; "
                                      "`fiswatch lab down` and `up --blue-green` start afresh"
                                      % (job.step, why, again)) from None
            raise SwitchoverError(outcome) from None
    finally:
        os.close(lock_fd)


def recover_killed(job: Switchover, last: Dict[str, Any]) -> str:
    """A switchover whose process died midway (state 'switching', the lock free): rolled back when green
    was not promoted yet (its read_only still on), completed at once after."""
    layout = job.layout
    job.step = str(last.get("phase") or "start")
    job.promoted = any(sql(layout.server_socket(g), ["SELECT @@read_only"])[0][0] == 0 for g in job.greens)
    if job.promoted:
        job.writers = job.writers + job.greens
    else:  # the promotion never ran (or stopped at STOP SLAVE): green replicates again
        for green in job.greens:
            try:
                sql(layout.server_socket(green), ["START SLAVE"])
            except pymysql.err.MySQLError:  # killed between STOP SLAVE and RESET SLAVE ALL: green stays as it is
                pass
    return job.recover("its process %s was killed" % last.get("pid"))


def state_of(last: Any) -> Optional[str]:
    """The phase of the last switchover as `lab status --json` keeps it (None: none ran)."""
    return last.get("phase") if isinstance(last, dict) and last.get("target") == "switchover" else None
