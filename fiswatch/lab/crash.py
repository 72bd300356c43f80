"""Outages where the name does not move: a writer crash and an instance reboot (issue 22 item 3).

`fiswatch lab crash aurora|rds`, Aurora's `ALTER SYSTEM CRASH` sent by a client (lab/wire/alter_system.py)
and `fiswatch lab reboot NAME` all restart ONE instance in place: no DNS change, no topology change,
the same server (same address, same server_id, same data) comes back.

  crash  (--kind instance|node): the proxy resets every open session (RST: clients see 2013/2006) and
         refuses connects (2003); mariadbd is killed (SIGKILL) and started again after `down_for`
         seconds (3 s by default, as Aurora labs observe); committed writes survive (InnoDB recovery).
  crash  --kind dispatcher: sessions reset and connects refused for `down_for`, the engine keeps running
         (the lab's assumption: AWS says only that the dispatcher crashes).
  reboot: mariadbd shuts down cleanly (sessions see the server close them), connects are refused until
         it is back; readers keep serving (Aurora MySQL 2.10+). `--failover` is failover.run_failover.

Every outage holds the lab's failover lock: one failover, crash or reboot at a time. Each step is a
`lab` event with `outage` = crash | reboot (fiswatch/events.py), `start` carrying outage_start and
`done` outage_end, as a failover's do, so the report's gap tables read them unchanged.
"""
import contextlib
import os
import threading
import time
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from fiswatch.lab import layout as L
from fiswatch.lab.control import request
from fiswatch.lab.failover import Cancelled, FailoverError, make_emitter, run_failover, sleep_until, why_text
from fiswatch.lab.mariadb import sql
from fiswatch.lab.outage_now import outage_running
from fiswatch.lab.settle import end_client_sessions
from fiswatch.lab.lablock import try_lock

CRASH_DOWN = 3.0  # seconds a crashed engine stays down (Aurora labs: back in about 3 s)
REBOOT_DOWN = 5.0  # seconds a rebooted instance refuses connects (AWS does not say: the lab's assumption)
MAX_DOWN = 600.0
CRASH_KINDS = ("instance", "dispatcher", "node")
UP_ROLES = ("writer", "primary")

Emit = Callable[..., None]


class CrashError(RuntimeError):
    """A crash or reboot could not run; one line. `usage`: the request itself was wrong (exit 2)."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def check_down(value: Any) -> float:
    """Seconds an instance stays down: 0..600."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise CrashError("--down must be a number of seconds, got %r" % (value,), usage=True) from None
    if not 0.0 <= seconds <= MAX_DOWN:
        raise CrashError("--down must be between 0 and %g seconds, got %g" % (MAX_DOWN, seconds), usage=True)
    return seconds


def take_lock(lab_dir: str) -> int:
    """The lab's failover lock, held (an fd), or CrashError when a failover, crash or reboot runs."""
    fd = try_lock(lab_dir)
    if fd is None:
        raise CrashError("a failover, crash or reboot already runs in %s: wait for it to finish" % lab_dir,
                         usage=True)
    return fd


@contextlib.contextmanager
def _held(lab_dir: str, lock_fd: Optional[int]) -> Iterator[None]:
    fd = take_lock(lab_dir) if lock_fd is None else lock_fd
    try:
        yield
    finally:
        os.close(fd)


def _lab(lab_dir: str) -> Tuple[L.Layout, Dict[str, Dict[str, Any]]]:
    state = request(os.path.join(lab_dir, L.CONTROL_SOCKET), "state")
    return L.Layout.from_dict(state["layout"]), {i["name"]: i for i in state["instances"]}


def find_instance(lab_dir: str, name: str) -> Tuple[L.Layout, L.InstanceSpec, bool]:
    """(layout, spec, is the writer/primary) of instance `name` of this lab, or CrashError (usage)."""
    layout, instances = _lab(lab_dir)
    if name not in instances:
        raise CrashError("unknown instance %r: this lab has %s" % (name, ", ".join(sorted(instances))), usage=True)
    spec = L.spec_by_name(name)
    if spec.cluster not in ("aurora", "rds"):
        raise CrashError("%s belongs to the Multi-AZ DB cluster: crash and reboot are modelled for aurora and rds "
                         "instances only" % name, usage=True)
    if not instances[name]["running"]:
        raise CrashError("%s is not running (its mariadbd is down): nothing to crash or reboot" % name, usage=True)
    return layout, spec, instances[name]["role"] in UP_ROLES


def writer_of(lab_dir: str, target: str) -> str:
    if target not in ("aurora", "rds"):
        raise CrashError("unknown crash target %r: use aurora or rds" % (target,), usage=True)
    _, instances = _lab(lab_dir)
    return next(name for name, i in instances.items() if i["cluster"] == target and i["role"] in UP_ROLES)


def restart_in_place(layout: L.Layout, spec: L.InstanceSpec, up: bool, how: str, down_for: float, t0: float,
                     step: Callable[[str, str], None], cancel: Optional[threading.Event] = None) -> None:
    """Take `spec` down (`how`: kill | stop | dispatcher), keep connects refused until t0 + down_for, bring it
    back as it was (writer: read_only off; reader: replicating again). On any error it is brought back too."""
    ctl = layout.control_socket
    engine_down = how != "dispatcher"
    try:
        if how == "stop":  # a clean shutdown: the server closes its sessions, the proxy passes the close on
            request(ctl, "kill", instance=spec.name, graceful=True)
        request(ctl, "proxy", instance=spec.name, mode="refuse")  # open sessions reset, connects refused
        if spec.cluster == "aurora" and up:
            request(ctl, "heartbeat", pause_for=down_for + 30.0)
        if how == "kill":
            request(ctl, "kill", instance=spec.name)
            step("crash", "%s killed (SIGKILL): open sessions reset, connects refused; DNS and topology unchanged"
                 % spec.name)
        elif how == "dispatcher":
            closed = end_client_sessions(layout, spec)
            step("crash", "%s's dispatcher crashed: open sessions reset (%d server-side ended), connects refused; "
                          "the engine keeps running" % (spec.name, closed))
        else:
            step("reboot", "%s shut down: its sessions closed, connects refused; DNS unchanged" % spec.name)
        sleep_until(t0, down_for, cancel)
    finally:
        _bring_back(layout, spec, up, engine_down)


def _bring_back(layout: L.Layout, spec: L.InstanceSpec, up: bool, engine_down: bool) -> None:
    ctl = layout.control_socket
    running = next(bool(i["running"]) for i in request(ctl, "state")["instances"] if i["name"] == spec.name)
    if engine_down and not running:
        request(ctl, "start", instance=spec.name, read_only=not up)
        # the server's command line may carry --read-only (a promoted reader): set what its role needs
        sql(layout.server_socket(spec), ["SET GLOBAL read_only=%d" % (0 if up else 1)]
            + ([] if up else ["START SLAVE"]))
    request(ctl, "proxy", instance=spec.name, mode="pass")
    if spec.cluster == "aurora":
        request(ctl, "heartbeat")
        request(ctl, "readers_dns", cluster="aurora")


def _outage(lab_dir: str, target: str, outage: str, emit: Optional[Emit], echo: Optional[Callable[[str], None]],
            sink: Optional[Callable[[Any], None]]) -> Callable[..., None]:
    step = emit or make_emitter(lab_dir, target, False, sink, echo, what=outage)
    return lambda name, detail, **extra: step(name, detail, outage=outage, **extra)


def run_crash(lab_dir: str, target: str, kind: str = "instance", down_for: float = CRASH_DOWN,
              sink: Optional[Callable[[Any], None]] = None, echo: Optional[Callable[[str], None]] = None,
              reason: str = "", instance: Optional[str] = None, lock_fd: Optional[int] = None,
              cancel: Optional[threading.Event] = None) -> Dict[str, float]:
    """Crash the writer of `target` (or `instance`, e.g. a reader that got ALTER SYSTEM CRASH) and let it
    restart in place; returns outage_start / outage_end. CrashError says why not."""
    lab_dir = os.path.abspath(lab_dir)
    try:
        if kind not in CRASH_KINDS:
            raise CrashError("unknown crash kind %r: use %s" % (kind, ", ".join(CRASH_KINDS)), usage=True)
        down_for = check_down(down_for)
        with _held(lab_dir, lock_fd):
            name = instance or writer_of(lab_dir, target)
            layout, spec, up = find_instance(lab_dir, name)
            step = _outage(lab_dir, spec.cluster, "crash", None, echo, sink)
            t0 = time.time()
            step("start", "%s crash (%s%s): %s %s in %gs; no failover, DNS and topology unchanged" % (
                spec.cluster, kind, ", " + reason if reason else "", name,
                "restarts" if kind != "dispatcher" else "accepts connects again", down_for), outage_start=t0)
            with outage_running(lab_dir, "crash", name, spec.cluster, t0):  # for `lab status`
                restart_in_place(layout, spec, up, "dispatcher" if kind == "dispatcher" else "kill", down_for, t0,
                                 step, cancel)
            end = time.time()
            step("done", "%s back after %.1fs: the same instance at the same address" % (name, end - t0),
                 outage_end=end)
            return {"outage_start": t0, "outage_end": end}
    except CrashError:
        raise
    except (Exception, KeyboardInterrupt, Cancelled) as exc:  # noqa: BLE001
        raise CrashError("crash of %s stopped midway (%s): the lab brings the instance back before it stops; "
                         "check `fiswatch lab status`" % (instance or target, why_text(exc))) from None


def run_reboot(lab_dir: str, name: str, failover: bool = False, down_for: float = REBOOT_DOWN,
               sink: Optional[Callable[[Any], None]] = None, echo: Optional[Callable[[str], None]] = None,
               cancel: Optional[threading.Event] = None) -> Dict[str, float]:
    """Reboot instance `name` in place, or (`failover`, writer/primary only) fail its cluster over as FIS's
    aws:rds:reboot-db-instances with forceFailover does."""
    lab_dir = os.path.abspath(lab_dir)
    try:
        down_for = check_down(down_for)
        layout, spec, up = find_instance(lab_dir, name)
        if failover:
            if not up:
                raise CrashError("%s is not the writer/primary: --failover reboots the writer of its cluster "
                                 "(a reader's reboot never fails over)" % name, usage=True)
            emit = make_emitter(lab_dir, spec.cluster, False, sink, echo)
            return run_failover(lab_dir, spec.cluster, emit, profile="fast", cancel=cancel,
                                reason="reboot of %s with failover" % name)
        with _held(lab_dir, None):
            step = _outage(lab_dir, spec.cluster, "reboot", None, echo, sink)
            t0 = time.time()
            step("start", "reboot of %s (%s, %s): back in %gs; no failover, DNS unchanged%s" % (
                name, spec.cluster, "writer" if up else "reader", down_for,
                "; the readers keep serving (Aurora MySQL 2.10+)" if up and spec.cluster == "aurora" else ""),
                outage_start=t0)
            with outage_running(lab_dir, "reboot", name, spec.cluster, t0):  # for `lab status`
                restart_in_place(layout, spec, up, "stop", down_for, t0, step, cancel)
            end = time.time()
            step("done", "%s rebooted: back after %.1fs at the same address" % (name, end - t0), outage_end=end)
            return {"outage_start": t0, "outage_end": end}
    except CrashError:
        raise
    except FailoverError as exc:
        raise CrashError(str(exc)) from None
    except (Exception, KeyboardInterrupt, Cancelled) as exc:  # noqa: BLE001
        raise CrashError("reboot of %s stopped midway (%s): the lab brings the instance back before it stops; "
                         "check `fiswatch lab status`" % (name, why_text(exc))) from None


def crash_aurora(lab_dir: str, sink: Callable[[Any], None], cancel: Optional[threading.Event] = None) -> str:
    """The demo's crash (`demo --crash`, key c): Aurora's writer, 3 s; returns the endpoint to verify."""
    run_crash(lab_dir, "aurora", sink=sink, cancel=cancel, reason="the demo")
    return "aurora"


def sql_crash(lab_dir: str, log: Callable[[str], None]) -> Callable[[str, str], str]:
    """For lab/wire/alter_system.py inside the daemon: crash(instance, kind) starts the crash in a thread
    and returns '' or, when another outage runs, the one line the client gets as its error."""
    def crash(instance: str, kind: str) -> str:
        try:
            fd = take_lock(lab_dir)
        except (CrashError, OSError) as exc:
            return str(exc)

        def work() -> None:
            try:
                run_crash(lab_dir, "", kind, instance=instance, lock_fd=fd, reason="ALTER SYSTEM CRASH from a client")
            except CrashError as exc:
                log("lab: ALTER SYSTEM CRASH on %s: %s" % (instance, exc))

        threading.Thread(target=work, name="lab-alter-system-crash", daemon=True).start()
        return ""

    return crash


__all__ = ["CRASH_DOWN", "REBOOT_DOWN", "CRASH_KINDS", "CrashError", "check_down", "run_crash", "run_reboot", "writer_of",
           "crash_aurora", "sql_crash", "take_lock", "restart_in_place"]
