"""Zero-downtime patching as an outage users see: `lab patch`, `demo --patch` / key z, `lab exec --patch`.

lab/patch.py restarts the writer inside the lab daemon; this module runs that request the way
lab/crash.py runs a crash: under the lab's failover lock (one failover, crash, reboot or patch at a
time), refused on a lab without its RDS Proxy (only the proxy keeps sessions through a patch: without
it a patch is a reboot, `fiswatch lab reboot NAME`), and told as `lab` events with `outage` = patch:
`start` carries outage_start, `patch` what happened to the proxy's sessions, `done` outage_end, so the
record, the event log and the report's gap table name it as a patch.
"""
import argparse
import json
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, Optional

from fiswatch.lab import layout as L
from fiswatch.lab.control import request
from fiswatch.lab.crash import CrashError, take_lock, writer_of
from fiswatch.lab.failover import make_emitter
from fiswatch.lab.outage_now import outage_running

PATCH_TIMEOUT = 180.0  # seconds the daemon's restart of the writer may take

NO_PROXY = ("this lab runs without its RDS Proxy: zero-downtime patching keeps sessions only through it; start the "
            "lab with `fiswatch lab up --proxy` (a plain restart is `fiswatch lab reboot NAME`)")


def sessions_text(sessions: Dict[str, int]) -> str:
    """The proxy's sessions by fate, for one line.

    >>> sessions_text({"kept": 3, "rolled back": 1})
    '3 kept, 1 rolled back'
    >>> sessions_text({})
    'none open'
    """
    return ", ".join("%d %s" % (n, k) for k, n in sorted(sessions.items())) or "none open"


def check_patchable(lab_dir: str) -> None:
    """CrashError (usage) when the lab at `lab_dir` has no RDS Proxy; LabError-like errors pass on."""
    state = request(os.path.join(lab_dir, L.CONTROL_SOCKET), "state")
    if not state.get("rds_proxy"):
        raise CrashError(NO_PROXY, usage=True)


def run_patch_outage(lab_dir: str, target: str = "aurora", zdp: bool = True,
                     sink: Optional[Callable[[Any], None]] = None, echo: Optional[Callable[[str], None]] = None,
                     reason: str = "") -> Dict[str, Any]:
    """Patch `target`'s writer under the failover lock; returns the daemon's outcome with outage_start/_end.
    CrashError says why not (usage: the request itself cannot run)."""
    from fiswatch.lab.control import ControlError
    from fiswatch.lab.patch import PATCH_TARGETS

    lab_dir = os.path.abspath(lab_dir)
    if target not in PATCH_TARGETS:
        raise CrashError("patch applies to %s only, not %r" % (", ".join(PATCH_TARGETS), target), usage=True)
    fd = take_lock(lab_dir)  # a failover, crash, reboot or another patch runs: refused
    try:
        try:
            check_patchable(lab_dir)
        except ControlError as exc:
            raise CrashError(str(exc)) from None
        emit = make_emitter(lab_dir, target, False, sink, echo, what="patch")
        t0 = time.time()
        emit("start", "%s patch (%s%s): the writer's engine restarts; the RDS Proxy keeps client sessions%s" % (
            target, "zero-downtime" if zdp else "ZDP could not proceed: a plain restart",
            ", " + reason if reason else "", "" if zdp else " only until it drops them"),
            outage="patch", outage_start=t0)
        try:
            with outage_running(lab_dir, "patch", writer_of(lab_dir, target), target, t0):  # for `lab status`
                result = request(os.path.join(lab_dir, L.CONTROL_SOCKET), "patch", timeout=PATCH_TIMEOUT,
                                 target=target, zdp=zdp)
        except ControlError as exc:
            raise CrashError("patch of %s failed: %s" % (target, exc)) from None
        emit("patch", "%s engine restarted in %.1fs; proxy sessions: %s" % (
            result["instance"], result["seconds"], sessions_text(result["sessions"])), outage="patch")
        end = time.time()
        emit("done", "%s patched: the same instance at the same address, no DNS change" % result["instance"],
             outage="patch", outage_end=end)
        return dict(result, outage_start=t0, outage_end=end)
    finally:
        os.close(fd)


def run_patch(args: argparse.Namespace, lab_dir: str) -> int:
    """The command: one line and exit 2 when the request cannot run (no RDS Proxy, another outage runs)."""
    from fiswatch.lab.api import LabError, lab_status
    from fiswatch.lab.crash import CrashError

    try:
        lab_status(lab_dir)  # one line when no lab runs there
        result = run_patch_outage(lab_dir, args.target, zdp=not args.no_zdp,
                                  echo=None if args.json else lambda line: print(line, flush=True))
    except CrashError as exc:
        print("fiswatch lab patch: %s" % exc, file=sys.stderr)
        return 2 if exc.usage else 1
    except LabError as exc:
        print("fiswatch lab patch: %s" % exc, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    print("%s: %s engine restarted in %.1fs (%s)" % (
        result["target"], result["instance"], result["seconds"],
        "zero-downtime patching" if result["zdp"] else "ZDP could not proceed: a plain restart"))
    print("RDS Proxy sessions: %s" % sessions_text(result["sessions"]))
    return 0


def patch_aurora(lab_dir: str, sink: Callable[[Any], None], cancel: Optional[threading.Event] = None) -> str:
    """The demo's patch (`demo --patch`, key z): Aurora's writer; returns the endpoint to verify."""
    run_patch_outage(lab_dir, "aurora", sink=sink, reason="the demo")
    return "aurora"


__all__ = ["NO_PROXY", "PATCH_TIMEOUT", "check_patchable", "patch_aurora", "run_patch", "run_patch_outage",
           "sessions_text"]
